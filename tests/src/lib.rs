//! The test harness: real servers on loopback, factories and reference oracles for `tests/it`.
//!
//! Nothing here is mocked: PostgreSQL is a real server started once per test run
//! ([`postgres::TestDb`] gives each test its own database), rows come from [`factories`], and
//! background effects are awaited with [`eventually::eventually`].

pub mod binaries;
pub mod cronsim;
pub mod debian_cron;
pub mod delay_proxy;
pub mod django;
pub mod eventually;
pub mod factories;
pub mod healthchecks;
pub mod http;
pub mod ping;
pub mod postgres;
pub mod recorder;
pub mod scratch;
pub mod service;
pub mod smtp;
pub mod supervisor;
pub mod systemd_calendar;
pub mod venv;
