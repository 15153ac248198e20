//! CPU time spent by a benchmark's service and its PostgreSQL cluster, read from
//! `/proc/<pid>/stat`, so each benchmark can print CPU per unit of work next to its rates.
//!
//! Rates depend on the machine and on whatever else shares it; CPU per unit mostly does not.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;

/// CPU seconds (user + system), split by who spent them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// The service under test (all its threads).
    pub service: f64,
    /// The postmaster and every process it started, live or already reaped.
    pub postgres: f64,
}

impl Cpu {
    /// Service and PostgreSQL together.
    pub fn total(self) -> f64 {
        self.service + self.postgres
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            service: self.service - earlier.service,
            postgres: self.postgres - earlier.postgres,
        }
    }

    /// `service / PostgreSQL / total` per one of `units`, in seconds times `scale` (1e6 for µs,
    /// 1e3 for ms), with `decimals` digits.
    pub fn per(self, units: f64, scale: f64, decimals: usize) -> String {
        let per = |secs: f64| secs / units * scale;
        format!(
            "{:.decimals$} / {:.decimals$} / {:.decimals$}",
            per(self.service),
            per(self.postgres),
            per(self.total()),
        )
    }
}

/// Samples the CPU time of one service process and of one PostgreSQL cluster.
pub struct Meter {
    service: u32,
    /// The cluster's data directory, whose `postmaster.pid` names the postmaster; read at every
    /// sample, as a benchmark may restart the cluster.
    data_dir: PathBuf,
    ticks_per_s: f64,
}

impl Meter {
    /// A meter for process `service` and the cluster under `cluster_base` (its `data` folder).
    pub fn new(service: u32, cluster_base: &Path) -> anyhow::Result<Meter> {
        let meter = Meter {
            service,
            data_dir: cluster_base.join("data"),
            ticks_per_s: clock_ticks()?,
        };
        meter.sample()?;
        Ok(meter)
    }

    /// The CPU time spent so far. Sample at the start and the end of a phase and take
    /// [`Cpu::since`].
    pub fn sample(&self) -> anyhow::Result<Cpu> {
        let service = stat(self.service)?;
        let pid_file = self.data_dir.join("postmaster.pid");
        let postmaster: u32 = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("cannot read {}", pid_file.display()))?
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .context("no pid in postmaster.pid")?;
        // A backend that exits is reaped by the postmaster, which adds its time to its own
        // `cutime`/`cstime`: the postmaster's total with its children's plus that of the live
        // children counts every process of the cluster once.
        let mut postgres = stat(postmaster)?.with_children();
        for child in children_of(postmaster)? {
            // A child that exited since the listing is counted in the postmaster's
            // children's time at the next sample.
            if let Ok(child) = stat(child) {
                postgres += child.with_children();
            }
        }
        Ok(Cpu {
            service: service.own() as f64 / self.ticks_per_s,
            postgres: postgres as f64 / self.ticks_per_s,
        })
    }
}

/// The CPU time of this process's children that have exited and been waited for, in seconds.
/// Sample before starting a child and after waiting for it: the difference is that child's time,
/// exactly.
pub fn reaped_children() -> anyhow::Result<f64> {
    // First: the first call runs getconf, a child of ours.
    let ticks_per_s = clock_ticks()?;
    Ok(stat(std::process::id())?.children() as f64 / ticks_per_s)
}

/// CPU seconds of process `pid` alone (user + system, all its threads).
pub fn process_secs(pid: u32) -> anyhow::Result<f64> {
    let ticks_per_s = clock_ticks()?;
    Ok(stat(pid)?.own() as f64 / ticks_per_s)
}

/// Fields 14 to 17 of `/proc/<pid>/stat`, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Times {
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl Times {
    fn own(self) -> u64 {
        self.utime + self.stime
    }

    fn children(self) -> u64 {
        self.cutime + self.cstime
    }

    fn with_children(self) -> u64 {
        self.own() + self.children()
    }
}

/// The fields after the command name (field 2), which may hold spaces and parentheses; the
/// first returned field is field 3.
fn stat_fields(pid: &str) -> anyhow::Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .context("malformed /proc/<pid>/stat")?
        .1;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

fn stat(pid: u32) -> anyhow::Result<Times> {
    let fields = stat_fields(&pid.to_string())?;
    // Field n is at index n - 3.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("no field {n} in /proc/{pid}/stat"))?
            .parse()
            .with_context(|| format!("field {n} of /proc/{pid}/stat is no number"))
    };
    Ok(Times {
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
    })
}

/// The live processes whose parent (field 4) is `parent`.
fn children_of(parent: u32) -> anyhow::Result<Vec<u32>> {
    let parent = parent.to_string();
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let name = entry?.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Processes come and go while we look.
        let Ok(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(1) == Some(&parent) {
            children.push(pid.parse()?);
        }
    }
    Ok(children)
}

/// `getconf CLK_TCK`: the unit of `/proc/<pid>/stat` times, asked once.
fn clock_ticks() -> anyhow::Result<f64> {
    static TICKS: OnceLock<f64> = OnceLock::new();
    if let Some(ticks) = TICKS.get() {
        return Ok(*ticks);
    }
    let output = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("cannot run getconf")?;
    let ticks: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK printed no number")?;
    Ok(*TICKS.get_or_init(|| ticks))
}
