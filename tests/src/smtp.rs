//! A real SMTP server for tests: OpenSMTPD on a free loopback port, delivering every message it
//! accepts, whatever the recipient, into a maildir that tests read.
//!
//! The server runs under [`crate::supervisor`], so it stops when the [`SmtpSink`] is dropped or
//! the test process ends. OpenSMTPD's queue directory (`/var/spool/smtpd`) and control socket
//! (`/var/run/smtpd.sock`) are compiled in; where a private mount namespace is allowed each sink
//! bind-mounts its own directories there, so that sinks of parallel tests and parallel runs can
//! run side by side and never pick up each other's queued mail. Without one, only one sink can
//! run on the machine at a time.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;

use crate::eventually::eventually;
use crate::postgres::{free_port, is_root, user_ids};
use crate::scratch::unique_path_in;
use crate::supervisor::spawn_supervised;

/// How long the server may take to answer its greeting after it was started.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How long [`SmtpSink::wait_for_messages`] waits for deliveries.
const DELIVERY_PATIENCE: Duration = Duration::from_secs(30);

/// OpenSMTPD's queue directory (compiled in; it must be root's, mode 0711).
const SPOOL: &str = "/var/spool/smtpd";

/// The directory of OpenSMTPD's control socket (compiled in: `/var/run/smtpd.sock`).
const RUN: &str = "/var/run";

/// The user that owns delivered mail (the virtual table maps every address to it).
const MAILDIR_USER: &str = "nobody";

/// A running OpenSMTPD that accepts any message on `127.0.0.1` without authentication or TLS.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    maildir: PathBuf,
    supervisor: Mutex<Option<(Child, ChildStdin)>>,
}

impl SmtpSink {
    /// Starts a server on a free port and waits until it greets clients.
    ///
    /// OpenSMTPD must be started as root (it drops privileges itself), so this fails otherwise.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        SmtpSink::start_rejecting(&[]).await
    }

    /// Like [`SmtpSink::start`], but `RCPT TO` any of `rejected` gets OpenSMTPD's permanent
    /// `550 Invalid recipient`.
    pub async fn start_rejecting(rejected: &[&str]) -> anyhow::Result<SmtpSink> {
        if !is_root() {
            bail!("OpenSMTPD must be started as root: run the tests as root");
        }
        let mut last_error = None;
        for _ in 0..3 {
            let sink = SmtpSink::spawn(free_port()?, rejected)?;
            match sink.wait_until_ready().await {
                Ok(()) => return Ok(sink),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("smtpd did not start")))
    }

    fn spawn(port: u16, rejected: &[&str]) -> anyhow::Result<SmtpSink> {
        let base = unique_path_in(&std::env::temp_dir(), "hc-smtp");
        std::fs::create_dir(&base).with_context(|| format!("cannot create {}", base.display()))?;
        // `nobody` must pass through to the maildir.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711))?;
        let maildir = base.join("maildir");
        std::fs::create_dir(&maildir)?;
        let (uid, gid) = user_ids(MAILDIR_USER)?;
        std::os::unix::fs::chown(&maildir, Some(uid), Some(gid))
            .with_context(|| format!("cannot give {} to {MAILDIR_USER}", maildir.display()))?;
        let virtuals = base.join("virtuals");
        std::fs::write(&virtuals, format!("@ {MAILDIR_USER}\n"))?;
        let mut conf_text = format!(
            "table catchall file:{virtuals}\n\
             listen on 127.0.0.1 port {port}\n\
             action \"sink\" maildir \"{maildir}\" virtual <catchall>\n",
            virtuals = virtuals.display(),
            maildir = maildir.display(),
        );
        if !rejected.is_empty() {
            let list: Vec<String> = rejected.iter().map(|a| format!("\"{a}\"")).collect();
            conf_text.push_str(&format!(
                "table rejected {{ {} }}\nmatch from any for any rcpt-to <rejected> reject\n",
                list.join(", ")
            ));
        }
        conf_text.push_str("match from any for any action \"sink\"\n");
        let conf = base.join("smtpd.conf");
        std::fs::write(&conf, conf_text)?;

        let smtpd = smtpd_program();
        let spool = base.join("spool");
        let run = base.join("run");
        let mut server: Vec<&OsStr> = Vec::new();
        if private_mounts_possible() {
            std::fs::create_dir(&spool)?;
            std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o711))?;
            std::fs::create_dir(&run)?;
            // The mount point must exist outside the namespace too.
            std::fs::create_dir_all(SPOOL).with_context(|| format!("cannot create {SPOOL}"))?;
            std::fs::set_permissions(SPOOL, std::fs::Permissions::from_mode(0o711))?;
            // Without --fork, unshare execs: the supervisor's signal reaches smtpd itself.
            server
                .extend(["unshare", "-m", "--propagation", "private", "sh", "-c"].map(OsStr::new));
            server.push(OsStr::new(
                "mount --bind \"$1\" \"$2\" && mount --bind \"$3\" \"$4\" && exec \"$5\" -d -f \"$6\"",
            ));
            server.extend([
                OsStr::new("hc-test-smtpd"),
                spool.as_os_str(),
                OsStr::new(SPOOL),
                run.as_os_str(),
                OsStr::new(RUN),
                smtpd.as_os_str(),
                conf.as_os_str(),
            ]);
        } else {
            server.extend([smtpd.as_os_str(), OsStr::new("-d"), OsStr::new("-f")]);
            server.push(conf.as_os_str());
        }
        let supervisor = spawn_supervised("hc-test-smtpd", &base, "TERM", &server)?;
        Ok(SmtpSink {
            port,
            maildir,
            supervisor: Mutex::new(Some(supervisor)),
        })
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let ready = eventually(START_PATIENCE, || async {
            if let Some(failure) = self.exited()? {
                return Ok(Err(failure));
            }
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            let mut greeting = [0_u8; 3];
            stream.read_exact(&mut greeting).await?;
            anyhow::ensure!(&greeting == b"220", "unexpected greeting");
            Ok(Ok(()))
        })
        .await
        .with_context(|| format!("smtpd on port {} did not greet", self.port))?;
        ready.map_err(|failure| anyhow::anyhow!("smtpd on port {} exited: {failure}", self.port))
    }

    /// `Some(log)` when the supervisor has exited.
    fn exited(&self) -> anyhow::Result<Option<String>> {
        let mut guard = self
            .supervisor
            .lock()
            .map_err(|_| anyhow::anyhow!("supervisor lock poisoned"))?;
        let Some((child, _)) = guard.as_mut() else {
            return Ok(Some("stopped".to_owned()));
        };
        match child.try_wait()? {
            None => Ok(None),
            Some(status) => {
                let mut log = String::new();
                if let Some(stderr) = child.stderr.as_mut() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut log);
                }
                *guard = None;
                Ok(Some(format!("{status}: {}", log.trim())))
            }
        }
    }

    /// The maildir that delivered messages land in (`new/` holds one file per message).
    pub fn maildir(&self) -> &Path {
        &self.maildir
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The variables `hc-sendalerts` reads to send through this server (plain SMTP, no TLS).
    pub fn vars(&self) -> HashMap<String, String> {
        HashMap::from(
            [
                ("EMAIL_HOST", "127.0.0.1"),
                ("EMAIL_PORT", &self.port.to_string()),
                ("EMAIL_USE_TLS", "False"),
                ("EMAIL_USE_SSL", "False"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
    }

    /// The messages delivered so far, in the order of their maildir file names.
    pub fn messages(&self) -> anyhow::Result<Vec<Message>> {
        let mut paths = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.maildir.join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                paths.push(entry?.path());
            }
        }
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let raw = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Ok(Message::parse(raw))
            })
            .collect()
    }

    /// Waits until at least `n` messages have been delivered and returns all of them.
    pub async fn wait_for_messages(&self, n: usize) -> anyhow::Result<Vec<Message>> {
        eventually(DELIVERY_PATIENCE, || async {
            let messages = self.messages()?;
            anyhow::ensure!(
                messages.len() >= n,
                "{} of {n} messages delivered",
                messages.len()
            );
            Ok(messages)
        })
        .await
    }

    /// Stops the server and waits until it is gone; the supervisor removes its directory.
    pub fn stop(&self) -> anyhow::Result<()> {
        let taken = self
            .supervisor
            .lock()
            .map_err(|_| anyhow::anyhow!("supervisor lock poisoned"))?
            .take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            child
                .wait()
                .context("cannot wait for the smtpd supervisor")?;
        }
        Ok(())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// One delivered message: its bytes as stored (with OpenSMTPD's `Return-Path`, `Delivered-To`
/// and `Received` added on top) and its unfolded header fields.
#[derive(Debug, Clone)]
pub struct Message {
    /// The whole message.
    pub raw: Vec<u8>,
    /// Header fields in order, names as written, values unfolded and trimmed.
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// Splits the header section of `raw` into fields.
    pub fn parse(raw: Vec<u8>) -> Message {
        let text = String::from_utf8_lossy(&raw);
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        Message { raw, headers }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `smtpd`, from `/usr/sbin` (not on a non-root `PATH`) or else wherever `PATH` finds it.
fn smtpd_program() -> PathBuf {
    let sbin = Path::new("/usr/sbin/smtpd");
    if sbin.exists() {
        sbin.to_owned()
    } else {
        PathBuf::from("smtpd")
    }
}

/// Whether this machine lets us give smtpd a private mount namespace (not in every container).
fn private_mounts_possible() -> bool {
    static POSSIBLE: OnceLock<bool> = OnceLock::new();
    *POSSIBLE.get_or_init(|| {
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}
