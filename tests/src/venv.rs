//! The Python virtual environment that holds the reference oracles (`cronsim`, Django's signing).
//!
//! `cargo xtask test` creates it and passes its path in `HC_TEST_VENV`.

use std::path::PathBuf;

use hc_core::config::{Env, Vars};

/// The venv's Python interpreter.
///
/// Panics with instructions when the venv is missing: the oracle tests cannot run without it.
pub fn python() -> PathBuf {
    let Some(dir) = Env::capture().get("HC_TEST_VENV") else {
        panic!(
            "HC_TEST_VENV is not set: run the suite with `cargo xtask test`, which creates the venv"
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
