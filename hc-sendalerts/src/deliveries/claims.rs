//! Claims: session advisory locks on notification ids, held on one dedicated connection per
//! sender for as long as a delivery runs, and released in batches once its result is committed.
//! Owns the claims connection; what is done with a claimed row lives in [`super`].

use std::sync::Arc;

use tokio_postgres::{Client, NoTls};

use crate::batch::Batcher;
use crate::codes::ours_sql;

/// The first key of this service's advisory locks ("hcsa"); the second is the notification id.
pub const LOCK_CLASS: i32 = 0x6863_7361;

/// The connection holding this sender's locks; `generation` counts reconnections, so a lock
/// taken on a dead connection is not released on its successor.
#[derive(Default)]
pub(super) struct LockConnection {
    client: Option<Client>,
    generation: u64,
}

impl LockConnection {
    /// Makes sure there is a live connection; returns its generation.
    async fn connect(&mut self, pg: &tokio_postgres::Config) -> anyhow::Result<u64> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = pg.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::warn!(%err, "the claims connection broke; its claims are released");
                }
            });
            self.client = Some(client);
            self.generation += 1;
        }
        Ok(self.generation)
    }
}

/// The candidates this sender now holds, sorted by whether they can be sent.
pub(super) struct Claimed {
    /// The claims connection's generation the locks were taken on.
    pub generation: u64,
    /// Pending and first in line for their check and channel: (notification, channel).
    pub ready: Vec<(i32, i32)>,
    /// Pending behind an earlier notification of the same check and channel; not held.
    pub blocked: Vec<i32>,
}

/// Locks the `candidates` nobody else holds, reads them again, and keeps the locks of the
/// ones that are still pending and first in line; every other lock is released at once.
pub(super) async fn claim(
    locks: &tokio::sync::Mutex<LockConnection>,
    pg: &tokio_postgres::Config,
    candidates: &[i32],
) -> anyhow::Result<Claimed> {
    let mut locks = locks.lock().await;
    let generation = locks.connect(pg).await?;
    let client = locks.client.as_ref().expect("connect() leaves a client");
    let locked: Vec<i32> = client
        .query(
            "SELECT id FROM unnest($2::int4[]) AS t(id) WHERE pg_try_advisory_lock($1, id)",
            &[&LOCK_CLASS, &candidates],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let rows = client
        .query(
            &format!(
                "SELECT n.id, n.channel_id, EXISTS ( \
                     SELECT 1 FROM api_notification e \
                     WHERE e.owner_id = n.owner_id AND e.channel_id = n.channel_id \
                       AND e.error = 'Sending' AND e.id < n.id AND {}) \
                 FROM api_notification n WHERE n.id = ANY($1) AND n.error = 'Sending'",
                ours_sql("e")
            ),
            &[&locked],
        )
        .await?;
    let mut ready = Vec::new();
    let mut blocked = Vec::new();
    for row in &rows {
        let (id, channel, waits): (i32, i32, bool) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if waits {
            blocked.push(id);
        } else {
            ready.push((id, channel));
        }
    }
    let sending: std::collections::HashSet<i32> = ready.iter().map(|(id, _)| *id).collect();
    let release: Vec<i32> = locked
        .iter()
        .copied()
        .filter(|id| !sending.contains(id))
        .collect();
    if !release.is_empty() {
        client
            .execute(
                "SELECT pg_advisory_unlock($1, id) FROM unnest($2::int4[]) AS t(id)",
                &[&LOCK_CLASS, &release],
            )
            .await?;
    }
    Ok(Claimed {
        generation,
        ready,
        blocked,
    })
}

/// Releases claims, many per statement; a claim taken on an earlier connection (`generation`)
/// died with it and is skipped.
pub(super) fn spawn_unlocker(
    locks: Arc<tokio::sync::Mutex<LockConnection>>,
    max: usize,
) -> Batcher<(i32, u64), ()> {
    Batcher::spawn(max, move |claims: Vec<(i32, u64)>| {
        let locks = locks.clone();
        async move {
            let locks = locks.lock().await;
            if let Some(client) = locks.client.as_ref().filter(|c| !c.is_closed()) {
                let ids: Vec<i32> = claims
                    .iter()
                    .filter(|(_, generation)| *generation == locks.generation)
                    .map(|(id, _)| *id)
                    .collect();
                if !ids.is_empty() {
                    if let Err(err) = client
                        .execute(
                            "SELECT pg_advisory_unlock($1, id) FROM unnest($2::int4[]) AS t(id)",
                            &[&LOCK_CLASS, &ids],
                        )
                        .await
                    {
                        tracing::debug!(%err, "cannot release claims; the session will");
                    }
                }
            }
            vec![(); claims.len()]
        }
    })
}
