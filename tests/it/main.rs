//! The one integration-test binary; each module below is one area of behaviour.

/// Every binary as a process: help, version, exit codes.
mod processes;
/// Conventions: file docs, no leftovers, dependency direction.
mod tidy;
/// The systemd units: present, verified, sandboxed.
mod units;
