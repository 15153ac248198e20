//! Every variable a binary reads is documented, with the same default, in
//! `systemd/hc.env.example` and in the README's variable tables; a variable added without its
//! documentation fails here.
//!
//! The variables are found by running each binary's `Config::from_vars` over a recording
//! [`Vars`] (once with nothing set, once with every documented value), so nothing is listed by
//! hand. A commented line `#NAME=value` in the example file states the default: setting it must
//! give the same configuration as leaving it unset, and the README's table must say the same.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use hc_core::config::Vars;
use hc_tests::binaries::workspace_root;

/// A map that remembers which names were asked for.
struct Recording {
    map: HashMap<String, String>,
    read: Mutex<BTreeSet<String>>,
}

impl Recording {
    fn new(map: HashMap<String, String>) -> Recording {
        Recording {
            map,
            read: Mutex::new(BTreeSet::new()),
        }
    }

    /// The names read, with `NAME_FILE` folded into `NAME` (documented as `NAME[_FILE]`) and
    /// systemd's own `CREDENTIALS_DIRECTORY` left out.
    fn names(&self) -> BTreeSet<String> {
        self.read
            .lock()
            .unwrap()
            .iter()
            .filter(|name| *name != "CREDENTIALS_DIRECTORY")
            .map(|name| name.strip_suffix("_FILE").unwrap_or(name).to_owned())
            .collect()
    }
}

impl Vars for Recording {
    fn get(&self, name: &str) -> Option<String> {
        self.read.lock().unwrap().insert(name.to_owned());
        self.map.get(name).cloned()
    }
}

/// Each service's configuration as text (`Debug`), or its error, from `vars`.
type Parse = fn(&Recording) -> String;

fn services() -> Vec<(&'static str, Parse)> {
    vec![
        ("hchk-ping", |v| {
            format!("{:?}", hchk_ping::Config::from_vars(v))
        }),
        ("hc-sendalerts", |v| {
            format!("{:?}", hc_sendalerts::Config::from_vars(v))
        }),
        ("hc-prune", |v| {
            format!("{:?}", hc_prune::Config::from_vars(v))
        }),
        ("hc-backup", |v| {
            format!("{:?}", hc_backup::Config::from_vars(v))
        }),
        ("hc-metrics", |v| {
            format!("{:?}", hc_metrics::Config::from_vars(v))
        }),
    ]
}

/// What `systemd/hc.env.example` says: `NAME=value` lines (commented ones state defaults) and
/// every name it mentions.
struct EnvExample {
    defaults: BTreeMap<String, String>,
    values: BTreeMap<String, String>,
    mentioned: BTreeSet<String>,
}

fn env_example() -> EnvExample {
    let text = std::fs::read_to_string(workspace_root().join("systemd/hc.env.example")).unwrap();
    let mut example = EnvExample {
        defaults: BTreeMap::new(),
        values: BTreeMap::new(),
        mentioned: BTreeSet::new(),
    };
    for line in text.lines() {
        example.mentioned.extend(words(line));
        let (commented, rest) = match line.strip_prefix('#') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((name, value)) = rest.split_once('=') else {
            continue;
        };
        if !is_variable(name) {
            continue;
        }
        let target = if commented {
            &mut example.defaults
        } else {
            &mut example.values
        };
        target.insert(name.to_owned(), value.to_owned());
    }
    example
}

/// The README's variable tables: each row's names (backticked, `[_FILE]` dropped) and their
/// defaults (backticked, one per name) when the row gives one per name.
fn readme_tables() -> BTreeMap<String, Option<String>> {
    let text = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(names), Some(defaults)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let names: Vec<String> = backticked(names)
            .into_iter()
            .map(|name| name.replace("[_FILE]", ""))
            .filter(|name| is_variable(name))
            .collect();
        let defaults = backticked(defaults);
        for (i, name) in names.iter().enumerate() {
            let default = (defaults.len() == names.len()).then(|| defaults[i].clone());
            rows.insert(name.clone(), default);
        }
    }
    rows
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn words(line: &str) -> Vec<String> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| is_variable(word))
        .map(str::to_owned)
        .collect()
}

/// A variable's name: `DB`, or upper-case words joined by underscores.
fn is_variable(name: &str) -> bool {
    let shaped = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.contains('_');
    shaped || name == "DB"
}

/// The smallest environment every service starts with.
fn base() -> HashMap<String, String> {
    HashMap::from([("DB".to_owned(), "postgres".to_owned())])
}

#[test]
fn every_variable_read_is_documented_with_its_default() {
    let example = env_example();
    let readme = readme_tables();
    let mut problems = Vec::new();
    for (service, parse) in services() {
        // Read with nothing set, then with every documented value (some reads depend on others).
        let empty = Recording::new(base());
        let unset = parse(&empty);
        let mut all = base();
        all.extend(example.values.clone());
        all.extend(example.defaults.clone());
        let full = Recording::new(all);
        parse(&full);
        let names: BTreeSet<String> = empty.names().union(&full.names()).cloned().collect();
        for name in &names {
            if !example.mentioned.contains(name) {
                problems.push(format!(
                    "{service} reads {name}: not in systemd/hc.env.example"
                ));
            }
            match readme.get(name) {
                None => problems.push(format!("{service} reads {name}: not in a README table")),
                Some(readme_default) => {
                    if let Some(default) = example.defaults.get(name) {
                        if readme_default.as_deref() != Some(default.as_str()) {
                            problems.push(format!(
                                "{name}: hc.env.example's default {default:?}, the README's {readme_default:?}"
                            ));
                        }
                    }
                }
            }
            if let Some(default) = example.defaults.get(name) {
                let mut set = base();
                set.insert(name.clone(), default.clone());
                if parse(&Recording::new(set)) != unset {
                    problems.push(format!(
                        "{service}: #{name}={default} in hc.env.example is not the default"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
