//! The toolkit's own SQL for the subset of the Healthchecks v4.3 schema it uses (placeholder).
