//! The PostgreSQL connection pool and the start-up schema check (placeholder).
