//! Locating the workspace's built binaries, to test them as processes.
//!
//! `cargo xtask test` builds every binary before it runs the tests; the binaries sit next to
//! the `deps/` folder that holds the test executable.

use std::path::PathBuf;

/// The names of the workspace's binaries, one systemd unit each.
pub const BINARIES: &[&str] = &[
    "hchk-ping",
    "hc-sendalerts",
    "hc-prune",
    "hc-backup",
    "hc-metrics",
];

/// The path of the built binary `name` (for example `hc-sendalerts`).
///
/// Panics with instructions when it has not been built.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the suite with `cargo xtask test` (or `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// The workspace root (the folder holding the virtual manifest).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hc-tests lives one level below the workspace root")
        .to_path_buf()
}
