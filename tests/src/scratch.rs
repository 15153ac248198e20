//! Scratch directories for tests: unique, created fresh, removed when dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

/// A directory under the system's temporary directory, removed (with its content) on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates a new empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> anyhow::Result<ScratchDir> {
        let path = unique_path(prefix);
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A path under the temporary directory that nothing uses yet: the process id, a counter and a
/// random part keep parallel tests and parallel test runs apart.
pub fn unique_path(prefix: &str) -> PathBuf {
    unique_path_in(&std::env::temp_dir(), prefix)
}

/// Like [`unique_path`], under `parent`; the name starts with `<prefix>-<process id>-`.
pub fn unique_path_in(parent: &Path, prefix: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::random();
    parent.join(format!("{prefix}-{}-{n}-{random:08x}", std::process::id()))
}
