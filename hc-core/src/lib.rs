//! The shared core of the hc toolkit: everything two or more of the binaries need.
//!
//! Start with [`schedule`] (when is a check due) and [`status`] (what state is it in), which are pure;
//! [`config`] and [`db`] are the edges to the environment and PostgreSQL.
//! HTTP handlers and notification transports never live here.

pub mod config;
pub mod db;
pub mod exit;
pub mod logging;
pub mod process;
pub mod schedule;
pub mod schema;
pub mod shutdown;
pub mod status;
pub mod systemd;
