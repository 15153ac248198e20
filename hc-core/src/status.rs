//! Check status computation, Healthchecks' `get_grace_start`, `going_down_after` and `get_status` (placeholder).
