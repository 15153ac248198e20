//! The one integration-test binary; each module below is one area of behaviour.

// Project schema SQL vs Healthchecks' dump, idempotence, and the start-up schema check.
mod schema;
