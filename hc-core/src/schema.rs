//! The toolkit's own SQL for the subset of the Healthchecks v4.3 schema it uses, and the list of
//! tables and columns the services rely on.
//!
//! [`TABLES`] is the single source of truth: [`crate::db::check_schema`] checks a live database
//! against it at start-up, and `tests/it/schema.rs` checks both [`SQL`] and Healthchecks' own
//! schema dump against it.
//!
//! Operators apply the schema (only needed when the Django app's migrations have not created it)
//! with:
//!
//! ```sh
//! psql -v ON_ERROR_STOP=1 -1 -f hc-core/sql/schema.sql "host=/var/run/postgresql dbname=hc"
//! ```
//!
//! It is idempotent and never alters a table that already exists, so running it against a
//! database Healthchecks' migrations created changes nothing.

use anyhow::Context;

/// The schema SQL (`hc-core/sql/schema.sql`).
pub const SQL: &str = include_str!("../sql/schema.sql");

/// Applies [`SQL`] in one transaction; safe to call on every start and from several processes.
pub async fn apply(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    // The simple-query protocol runs a multi-statement string as one implicit transaction,
    // so a failure leaves nothing half-created and the connection idle (not aborted).
    client
        .batch_execute(SQL)
        .await
        .context("cannot apply the schema (hc-core/sql/schema.sql)")
}

/// A table the toolkit reads or writes.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Table name, as in Healthchecks.
    pub name: &'static str,
    /// Whether some service INSERTs rows: then every NOT NULL column without a default must be
    /// one the services know, or their INSERTs would fail.
    pub toolkit_inserts: bool,
    /// Every column, in Healthchecks' order.
    pub columns: &'static [Column],
}

/// A column and the type the services expect.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Column name (unquoted: `desc` is written `"desc"` in SQL).
    pub name: &'static str,
    /// The type as PostgreSQL's `format_type()` prints it, e.g. `character varying(100)`.
    pub sql_type: &'static str,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Whether the database generates the value (identity, or a serial default in databases
    /// created by older Django versions).
    pub generated: bool,
}

/// An index (or unique constraint) the services' queries rely on, by Healthchecks' name.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    /// Table the index is on.
    pub table: &'static str,
    /// Index name, as Django's migrations create it.
    pub name: &'static str,
    /// What relies on it.
    pub why: &'static str,
}

const NULL: bool = true;
const NOT_NULL: bool = false;

const fn col(name: &'static str, sql_type: &'static str, nullable: bool) -> Column {
    Column {
        name,
        sql_type,
        nullable,
        generated: false,
    }
}

const fn identity(sql_type: &'static str) -> Column {
    Column {
        name: "id",
        sql_type,
        nullable: NOT_NULL,
        generated: true,
    }
}

/// Every table the toolkit uses, with all its columns (as in Healthchecks v4.3).
pub const TABLES: &[Table] = &[
    Table {
        name: "auth_user",
        toolkit_inserts: false,
        columns: &[
            identity("integer"),
            col("password", "character varying(128)", NOT_NULL),
            col("last_login", "timestamp with time zone", NULL),
            col("is_superuser", "boolean", NOT_NULL),
            col("username", "character varying(150)", NOT_NULL),
            col("first_name", "character varying(150)", NOT_NULL),
            col("last_name", "character varying(150)", NOT_NULL),
            col("email", "character varying(254)", NOT_NULL),
            col("is_staff", "boolean", NOT_NULL),
            col("is_active", "boolean", NOT_NULL),
            col("date_joined", "timestamp with time zone", NOT_NULL),
        ],
    },
    Table {
        name: "accounts_profile",
        toolkit_inserts: false,
        columns: &[
            identity("integer"),
            col("next_report_date", "timestamp with time zone", NULL),
            col("user_id", "integer", NOT_NULL),
            col("ping_log_limit", "integer", NOT_NULL),
            col("token", "character varying(128)", NOT_NULL),
            col("check_limit", "integer", NOT_NULL),
            col("last_sms_date", "timestamp with time zone", NULL),
            col("sms_limit", "integer", NOT_NULL),
            col("sms_sent", "integer", NOT_NULL),
            col("sort", "character varying(20)", NOT_NULL),
            col("nag_period", "interval", NOT_NULL),
            col("next_nag_date", "timestamp with time zone", NULL),
            col("deletion_notice_date", "timestamp with time zone", NULL),
            col("last_active_date", "timestamp with time zone", NULL),
            col("call_limit", "integer", NOT_NULL),
            col("calls_sent", "integer", NOT_NULL),
            col("last_call_date", "timestamp with time zone", NULL),
            col("reports", "character varying(10)", NOT_NULL),
            col("tz", "character varying(36)", NOT_NULL),
            col("theme", "character varying(10)", NULL),
            col("totp", "character varying(32)", NULL),
            col("totp_created", "timestamp with time zone", NULL),
            col("deletion_scheduled_date", "timestamp with time zone", NULL),
            col("over_limit_date", "timestamp with time zone", NULL),
        ],
    },
    Table {
        name: "accounts_project",
        toolkit_inserts: false,
        columns: &[
            identity("integer"),
            col("code", "uuid", NOT_NULL),
            col("name", "character varying(200)", NOT_NULL),
            col("api_key", "character varying(128)", NOT_NULL),
            col("api_key_readonly", "character varying(128)", NOT_NULL),
            col("owner_id", "integer", NOT_NULL),
            col("badge_key", "character varying(150)", NOT_NULL),
            col("ping_key", "character varying(128)", NULL),
            col("show_slugs", "boolean", NOT_NULL),
        ],
    },
    Table {
        name: "accounts_member",
        toolkit_inserts: false,
        columns: &[
            identity("integer"),
            col("user_id", "integer", NOT_NULL),
            col("project_id", "integer", NOT_NULL),
            col("transfer_request_date", "timestamp with time zone", NULL),
            col("role", "character varying(1)", NOT_NULL),
        ],
    },
    Table {
        name: "api_check",
        toolkit_inserts: true,
        columns: &[
            identity("integer"),
            col("code", "uuid", NOT_NULL),
            col("last_ping", "timestamp with time zone", NULL),
            col("alert_after", "timestamp with time zone", NULL),
            col("status", "character varying(6)", NOT_NULL),
            col("timeout", "interval", NOT_NULL),
            col("name", "character varying(100)", NOT_NULL),
            col("created", "timestamp with time zone", NOT_NULL),
            col("grace", "interval", NOT_NULL),
            col("tags", "character varying(500)", NOT_NULL),
            col("n_pings", "integer", NOT_NULL),
            col("kind", "character varying(10)", NOT_NULL),
            col("schedule", "character varying(100)", NOT_NULL),
            col("tz", "character varying(36)", NOT_NULL),
            col("has_confirmation_link", "boolean", NOT_NULL),
            col("desc", "text", NOT_NULL),
            col("last_start", "timestamp with time zone", NULL),
            col("project_id", "integer", NOT_NULL),
            col("last_duration", "interval", NULL),
            col("methods", "character varying(30)", NOT_NULL),
            col("manual_resume", "boolean", NOT_NULL),
            col("slug", "character varying(100)", NOT_NULL),
            col("failure_kw", "character varying(200)", NOT_NULL),
            col("filter_body", "boolean", NOT_NULL),
            col("filter_subject", "boolean", NOT_NULL),
            col("success_kw", "character varying(200)", NOT_NULL),
            col("last_start_rid", "uuid", NULL),
            col("start_kw", "character varying(200)", NOT_NULL),
            col("badge_key", "uuid", NOT_NULL),
            col("filter_default_fail", "boolean", NOT_NULL),
            col("filter_http_body", "boolean", NOT_NULL),
        ],
    },
    Table {
        name: "api_channel",
        toolkit_inserts: false,
        columns: &[
            identity("integer"),
            col("code", "uuid", NOT_NULL),
            col("created", "timestamp with time zone", NOT_NULL),
            col("kind", "character varying(20)", NOT_NULL),
            col("value", "text", NOT_NULL),
            col("email_verified", "boolean", NOT_NULL),
            col("name", "character varying(100)", NOT_NULL),
            col("project_id", "integer", NOT_NULL),
            col("last_error", "character varying(200)", NOT_NULL),
            col("last_notify", "timestamp with time zone", NULL),
            col("disabled", "boolean", NOT_NULL),
            col("last_notify_duration", "interval", NULL),
        ],
    },
    Table {
        name: "api_channel_checks",
        toolkit_inserts: false,
        columns: &[
            identity("integer"),
            col("channel_id", "integer", NOT_NULL),
            col("check_id", "integer", NOT_NULL),
        ],
    },
    Table {
        name: "api_flip",
        toolkit_inserts: true,
        columns: &[
            identity("integer"),
            col("created", "timestamp with time zone", NOT_NULL),
            col("processed", "timestamp with time zone", NULL),
            col("old_status", "character varying(8)", NOT_NULL),
            col("new_status", "character varying(8)", NOT_NULL),
            col("owner_id", "integer", NOT_NULL),
            col("reason", "character varying(8)", NOT_NULL),
        ],
    },
    Table {
        name: "api_notification",
        toolkit_inserts: true,
        columns: &[
            identity("integer"),
            col("check_status", "character varying(6)", NOT_NULL),
            col("created", "timestamp with time zone", NOT_NULL),
            col("channel_id", "integer", NOT_NULL),
            col("owner_id", "integer", NULL),
            col("error", "character varying(200)", NOT_NULL),
            col("code", "uuid", NOT_NULL),
        ],
    },
    Table {
        name: "api_ping",
        toolkit_inserts: true,
        columns: &[
            identity("bigint"),
            col("created", "timestamp with time zone", NOT_NULL),
            col("remote_addr", "inet", NULL),
            col("method", "character varying(10)", NOT_NULL),
            col("ua", "character varying(200)", NOT_NULL),
            col("owner_id", "integer", NOT_NULL),
            col("scheme", "character varying(10)", NOT_NULL),
            col("n", "integer", NULL),
            col("kind", "character varying(6)", NULL),
            col("exitstatus", "smallint", NULL),
            col("body_raw", "bytea", NULL),
            col("object_size", "integer", NULL),
            col("rid", "uuid", NULL),
        ],
    },
    Table {
        name: "api_tokenbucket",
        toolkit_inserts: true,
        columns: &[
            identity("integer"),
            col("value", "character varying(80)", NOT_NULL),
            col("tokens", "double precision", NOT_NULL),
            col("updated", "timestamp with time zone", NOT_NULL),
        ],
    },
];

/// The indexes and unique constraints the services' queries and `ON CONFLICT` clauses rely on.
pub const INDEXES: &[Index] = &[
    Index {
        table: "api_check",
        name: "api_check_aa_not_down",
        why: "sendalerts finds checks going down",
    },
    Index {
        table: "api_check",
        name: "api_check_code_d76cf6a3_uniq",
        why: "pings look checks up by code",
    },
    Index {
        table: "api_check",
        name: "api_check_project_slug",
        why: "slug pings look checks up by project and slug",
    },
    Index {
        table: "api_flip",
        name: "api_flip_not_processed",
        why: "sendalerts claims unprocessed flips",
    },
    Index {
        table: "api_flip",
        name: "api_flip_owner_created",
        why: "flips of one check by time (prune, status history)",
    },
    Index {
        table: "api_ping",
        name: "api_ping_owner_id_e4ea931d",
        why: "pings of one check (inline pruning, ping bodies)",
    },
    Index {
        table: "api_channel_checks",
        name: "api_channel_checks_channel_id_check_id_8edbcb0d_uniq",
        why: "one assignment per channel and check",
    },
    Index {
        table: "api_channel_checks",
        name: "api_channel_checks_check_id_2f0bca8a",
        why: "channels of one check",
    },
    Index {
        table: "api_notification",
        name: "api_notification_code_08624819_uniq",
        why: "notification status callbacks look notifications up by code",
    },
    Index {
        table: "api_tokenbucket",
        name: "api_tokenbucket_value_key",
        why: "rate limits look buckets up by value",
    },
    Index {
        table: "accounts_project",
        name: "accounts_project_ping_key_key",
        why: "ping-key URLs look projects up by ping_key",
    },
];

/// The table called `name` in [`TABLES`].
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|table| table.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_is_on_a_known_table() {
        for index in INDEXES {
            assert!(table(index.table).is_some(), "{}", index.name);
        }
    }

    #[test]
    fn every_table_is_created_by_the_sql() {
        for table in TABLES {
            let guard = format!("to_regclass('{}') IS NULL", table.name);
            assert!(
                SQL.contains(&guard),
                "{} has no guarded CREATE TABLE",
                table.name
            );
        }
    }

    #[test]
    fn every_index_is_named_in_the_sql() {
        for index in INDEXES {
            assert!(
                SQL.contains(index.name),
                "{} is not in schema.sql",
                index.name
            );
        }
    }

    #[test]
    fn every_table_has_a_generated_id() {
        for table in TABLES {
            assert!(
                table.columns.iter().any(|c| c.name == "id" && c.generated),
                "{}",
                table.name
            );
        }
    }
}
