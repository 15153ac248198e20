//! The Python virtual environments that hold the reference oracles: `HC_TEST_VENV` (`cronsim`,
//! Django's signing) and `HC_ORACLE_VENV` (the Healthchecks app's requirements, Python 3.13).
//!
//! `cargo xtask test` creates both and passes their paths.

use std::path::PathBuf;

use hc_core::config::{Env, Vars};

/// The oracle venv's Python interpreter (`cronsim`, Django's signing).
///
/// Panics with instructions when the venv is missing: the oracle tests cannot run without it.
pub fn python() -> PathBuf {
    interpreter("HC_TEST_VENV")
}

/// The Python interpreter of the venv that runs the Healthchecks app (see [`crate::healthchecks`]).
///
/// Panics with instructions when the venv is missing.
pub fn healthchecks_python() -> PathBuf {
    interpreter("HC_ORACLE_VENV")
}

fn interpreter(variable: &str) -> PathBuf {
    let Some(dir) = Env::capture().get(variable) else {
        panic!(
            "{variable} is not set: run the suite with `cargo xtask test`, which creates the venv"
        )
    };
    let python = PathBuf::from(dir).join("bin/python");
    assert!(
        python.exists(),
        "{} does not exist: run `cargo xtask test` to create the venv",
        python.display()
    );
    python
}
