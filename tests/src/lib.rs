//! The test harness: real servers on loopback, factories and reference oracles for `tests/it`.
//!
//! Nothing here is mocked: PostgreSQL is a real server started once per test run.

pub mod cronsim;
pub mod debian_cron;
pub mod venv;
