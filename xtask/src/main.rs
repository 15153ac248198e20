//! `cargo xtask`: the project's automation (placeholder).

fn main() {}
