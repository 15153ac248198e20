//! Recording results: a delivery's outcome becomes a [`Record`], and records are written many
//! per transaction (the notifications' errors, the channels' last results and `disabled`).

use std::collections::HashMap;

use chrono::Utc;
use deadpool_postgres::Pool;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::retry_db;
use crate::batch::Batcher;

/// A delivery's result, to be written with others by [`spawn_recorder`].
#[derive(Debug, Clone)]
pub(super) struct Record {
    /// The notification.
    pub id: i32,
    /// Its channel.
    pub channel_id: i32,
    /// When the delivery started.
    pub started: chrono::DateTime<Utc>,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// The error (empty: delivered).
    pub error: String,
    /// Whether the error disables the channel.
    pub disable: bool,
}

/// Writes delivery results, many per transaction: each notification's error, and each channel's
/// `last_notify`, `last_notify_duration`, `last_error` (from its latest delivery) and `disabled`.
/// Answers `false` for each if shutdown was requested while the database was unreachable.
pub(super) fn spawn_recorder(
    pool: Pool,
    shutdown: CancellationToken,
    max: usize,
) -> Batcher<Record, bool> {
    Batcher::spawn(max, move |records: Vec<Record>| {
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        async move {
            let written = retry_db(&shutdown, "record deliveries", || async {
                let mut client = pool.get().await?;
                write_records(&mut client, &records).await
            })
            .await;
            vec![written.is_some(); records.len()]
        }
    })
}

async fn write_records(client: &mut Client, records: &[Record]) -> anyhow::Result<()> {
    let ids: Vec<i32> = records.iter().map(|r| r.id).collect();
    let errors: Vec<&str> = records.iter().map(|r| r.error.as_str()).collect();
    // One row per channel: its latest notification (by id, which is flip order, as
    // Healthchecks' one-flip-at-a-time loop leaves it), disabled if any delivery said so.
    let mut latest: HashMap<i32, (&Record, bool)> = HashMap::new();
    for record in records {
        let entry = latest
            .entry(record.channel_id)
            .or_insert((record, record.disable));
        entry.1 |= record.disable;
        if record.id >= entry.0.id {
            entry.0 = record;
        }
    }
    let mut channels: Vec<(&Record, bool)> = latest.into_values().collect();
    channels.sort_by_key(|(record, _)| record.channel_id);
    let channel_ids: Vec<i32> = channels.iter().map(|(r, _)| r.channel_id).collect();
    let started: Vec<chrono::DateTime<Utc>> = channels.iter().map(|(r, _)| r.started).collect();
    let seconds: Vec<f64> = channels.iter().map(|(r, _)| r.seconds).collect();
    let channel_errors: Vec<&str> = channels.iter().map(|(r, _)| r.error.as_str()).collect();
    let disable: Vec<bool> = channels.iter().map(|(_, d)| *d).collect();
    let notification_ids: Vec<i32> = channels.iter().map(|(r, _)| r.id).collect();
    let tx = client.transaction().await?;
    // Sent together (pipelined); the channels are locked in id order first, so two senders
    // recording overlapping channels cannot deadlock.
    type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
    let lock_params: [Param; 1] = [&channel_ids];
    let notification_params: [Param; 2] = [&ids, &errors];
    let channel_params: [Param; 6] = [
        &channel_ids,
        &started,
        &seconds,
        &channel_errors,
        &disable,
        &notification_ids,
    ];
    futures_util::try_join!(
        tx.query(
            "SELECT 1 FROM api_channel WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &lock_params,
        ),
        tx.execute(
            "UPDATE api_notification n SET error = r.error \
             FROM unnest($1::int4[], $2::text[]) AS r(id, error) \
             WHERE n.id = r.id AND n.error = 'Sending'",
            &notification_params,
        ),
        // A later notification of the channel recorded already (by another batch or sender)
        // keeps its result on the channel.
        tx.execute(
            "UPDATE api_channel c SET \
                 last_notify = CASE WHEN r.newer THEN c.last_notify ELSE r.started END, \
                 last_notify_duration = CASE WHEN r.newer THEN c.last_notify_duration \
                     ELSE make_interval(secs => r.secs) END, \
                 last_error = CASE WHEN r.newer THEN c.last_error ELSE r.error END, \
                 disabled = c.disabled OR r.disable \
             FROM (SELECT u.*, EXISTS (SELECT 1 FROM api_notification m \
                       WHERE m.channel_id = u.id AND m.id > u.nid AND m.error <> 'Sending') \
                       AS newer \
                   FROM unnest($1::int4[], $2::timestamptz[], $3::float8[], $4::text[], \
                       $5::bool[], $6::int4[]) AS u(id, started, secs, error, disable, nid)) r \
             WHERE c.id = r.id",
            &channel_params,
        ),
    )?;
    tx.commit().await?;
    Ok(())
}

/// At most `max` characters of `text`, without NUL characters: PostgreSQL's text refuses them,
/// and an error quoting a remote answer must not make its whole batch of results unwritable.
pub(super) fn truncate(text: &str, max: usize) -> String {
    text.chars().filter(|c| *c != '\0').take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_errors_are_cut_and_lose_nul_characters() {
        assert_eq!(truncate("a\0b\0c", 2), "ab");
        assert_eq!(truncate("ééé", 2), "éé");
    }
}
