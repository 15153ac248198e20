//! `cargo xtask dev` as a developer uses it: the built xtask runs in the background, the test
//! runs the printed `curl` and `psql` lines in a shell, sends SIGTERM as Ctrl-C would, and then
//! looks for anything left behind (processes, listening ports, the data directory).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hc_tests::binaries::binary;

/// How long xtask may take to start PostgreSQL and hchk-ping, and to stop them.
const PATIENCE: Duration = Duration::from_secs(120);

/// The line `xtask dev` prints last once everything runs (`xtask/src/dev.rs`).
const READY_LINE: &str = "Press Ctrl-C to stop hchk-ping and PostgreSQL and remove the data.";

/// A running `xtask dev --no-build`, with its stdout lines on a channel and its stderr collected.
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    area: PathBuf,
}

impl Dev {
    fn start(extra_env: &[(&str, &str)]) -> Dev {
        let xtask = binary("xtask");
        // target/debug/xtask: the build area is target/, as under `cargo xtask dev`.
        let target = xtask.parent().unwrap().parent().unwrap().to_path_buf();
        let mut child = Command::new(&xtask)
            .args(["dev", "--no-build"])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Dev {
            child,
            lines,
            stderr: Some(stderr),
            area: hc_tests::postgres::cluster_parent(&target.join("dev")).unwrap(),
        }
    }

    /// The stdout lines up to and including the ready line; `None` if stdout closed first.
    fn read_until_ready(&self) -> Option<Vec<String>> {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            let done = line == READY_LINE;
            lines.push(line);
            if done {
                return Some(lines);
            }
        }
    }

    /// Waits for the exit; returns the status and everything xtask wrote to stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "xtask dev did not exit");
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status, stderr)
    }
}

impl Drop for Dev {
    /// A failed test still stops xtask (as Ctrl-C would), so it stops its servers.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// The value after `marker` in the first line that has it, up to the next space or comma.
fn find_after(lines: &[String], marker: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in {lines:#?}"));
    let rest = &line[line.find(marker).unwrap() + marker.len()..];
    rest.split([' ', ',', ')'])
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_owned()
}

fn shell(line: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
    assert!(
        out.status.success(),
        "{line}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Process ids whose command line or environment contains `needle` (this process excluded).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let read = |file: &str| std::fs::read(entry.path().join(file)).unwrap_or_default();
        let text = [read("cmdline"), read("environ")].concat();
        if String::from_utf8_lossy(&text).contains(needle) {
            found.push(name);
        }
    }
    found
}

fn is_listening(port: &str) -> bool {
    TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok()
}

/// Cluster directories of the xtask process `pid` under `area`.
fn data_dirs_of(area: &Path, pid: u32) -> Vec<PathBuf> {
    let prefix = format!("hc-pg-{pid}-");
    std::fs::read_dir(area)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn printed_lines_work_and_sigterm_leaves_nothing_behind() {
    let dev = Dev::start(&[]);
    let pid = dev.child.id();
    let Some(lines) = dev.read_until_ready() else {
        let (status, stderr) = dev.wait();
        panic!("xtask dev ended before it was ready ({status}): {stderr}");
    };
    let ping_addr = find_after(&lines, "hchk-ping listens on http://");
    let ping_port = ping_addr.rsplit(':').next().unwrap().to_owned();
    let pg_port = find_after(&lines, " port=");
    let data = PathBuf::from(find_after(&lines, "data in "));
    assert!(data.starts_with(&dev.area), "{data:?} is in the build area");
    assert!(data.exists());

    let curls: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    assert!(curls.len() >= 7, "{lines:#?}");
    for (curl, what) in curls.iter().zip([
        "/ping/",
        "/start",
        "/fail",
        "/1",
        "/backup",
        "create=1",
        "--data-raw",
    ]) {
        assert!(curl.contains(what), "{curl} should show {what}");
    }
    // The success ping, once more with the status code shown: 200.
    assert_eq!(
        shell(&format!("{} -o /dev/null -w '%{{http_code}}'", curls[0])),
        "200"
    );
    for curl in &curls {
        // 201 Created for the check that `?create=1` made.
        let expected = if curl.contains("create=1") {
            "Created"
        } else {
            "OK"
        };
        assert_eq!(shell(curl), expected, "{curl}");
    }
    // The /fail above took the cron check down: hc-sendalerts mails the alert to the sink.
    let mail = lines
        .iter()
        .find(|l| l.starts_with("ls "))
        .expect("a line to read the mail");
    let delivered = hc_tests::eventually::eventually_blocking(PATIENCE, || {
        let out = Command::new("sh").arg("-c").arg(mail).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            text.contains("Subject: DOWN | cron"),
            "no alert yet: {text}"
        );
        Ok(text)
    });
    assert!(delivered.is_ok(), "{delivered:?}");
    let psql = lines.iter().find(|l| l.starts_with("psql ")).unwrap();
    let recorded = shell(psql);
    for expected in ["new-job", "backup done: 42 files", "(8 rows)"] {
        assert!(recorded.contains(expected), "{expected} in {recorded}");
    }

    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let area = dev.area.clone();
    let (status, stderr) = dev.wait();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!data.exists(), "{data:?} is removed");
    assert!(data_dirs_of(&area, pid).is_empty());
    assert!(!is_listening(&ping_port), "hchk-ping still listens");
    assert!(!is_listening(&pg_port), "postgres still listens");
    let listen = format!("HCHK_PING_LISTEN={ping_addr}");
    assert_eq!(processes_mentioning(&listen), Vec::<String>::new());
    assert_eq!(
        processes_mentioning(&data.to_string_lossy()),
        Vec::<String>::new()
    );
}

#[test]
fn a_failing_hchk_ping_stops_everything() {
    let marker = format!("bogus-{}", rand::random::<u64>());
    let dev = Dev::start(&[("PING_BODY_LIMIT", &marker)]);
    let pid = dev.child.id();
    let area = dev.area.clone();
    let (status, stderr) = dev.wait();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("PING_BODY_LIMIT"), "{stderr}");
    assert!(stderr.contains("exited at start-up"), "{stderr}");
    assert!(data_dirs_of(&area, pid).is_empty());
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new());
    assert_eq!(
        processes_mentioning(&format!("hc-pg-{pid}-")),
        Vec::<String>::new()
    );
}
