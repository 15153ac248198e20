//! Unprocessed flips (`healthchecks-behaviour.md` §3.3, §3.4): claim a batch, update the nag
//! dates, select the channels, and record one pending notification (`error = 'Sending'`) per
//! (flip, channel), all in one transaction that also marks the flips processed.
//!
//! Unlike Healthchecks, marking a flip processed does not lose its alerts if the sender dies:
//! the pending notification rows are the to-do list that `deliveries` works through, and their
//! deterministic codes ([`crate::codes`]) make a second row for the same (flip, channel)
//! impossible. A flip is claimed only when no earlier flip of the same check is unprocessed, so
//! notifications of one check are created in flip order even with several senders.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;
use uuid::Uuid;

use crate::transports::is_noop;

/// A flip as claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlipRow {
    /// `id`.
    pub id: i32,
    /// `owner_id`: the check.
    pub check_id: i32,
    /// `old_status`.
    pub old_status: String,
    /// `new_status`.
    pub new_status: String,
}

/// A channel that may be notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    /// `id`.
    pub id: i32,
    /// `code`.
    pub code: Uuid,
    /// `kind`.
    pub kind: String,
    /// `value`.
    pub value: String,
    /// `disabled`.
    pub disabled: bool,
}

/// What one call of [`process_flips`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// Flips marked processed.
    pub flips: usize,
    /// Ids of the pending notifications created, in creation order.
    pub notifications: Vec<i32>,
}

/// Whether a flip to `new_status` from `old_status` notifies at all: only up and down flips do,
/// and `new→up` and `paused→up` are silent (§3.4).
pub fn notifies(old_status: &str, new_status: &str) -> bool {
    match new_status {
        "down" => true,
        "up" => !matches!(old_status, "new" | "paused"),
        _ => false,
    }
}

/// The channels to notify for a flip to `new_status`, in order: the check's `linked` channels
/// (already sorted fastest first) minus disabled and no-op ones, each group followed by its
/// `members` (looked up by code among the project's channels). A channel appears once even if it
/// is both linked and a group member; groups inside groups are not expanded.
pub fn select_channels(
    new_status: &str,
    linked: &[ChannelRow],
    members: &HashMap<Uuid, ChannelRow>,
) -> Vec<i32> {
    let mut selected = Vec::new();
    let mut seen = HashSet::new();
    let wanted = |channel: &ChannelRow| {
        !channel.disabled && !is_noop(&channel.kind, &channel.value, new_status)
    };
    for channel in linked.iter().filter(|c| wanted(c)) {
        if seen.insert(channel.id) {
            selected.push(channel.id);
        }
        if channel.kind == "group" {
            for member in group_members(&channel.value)
                .iter()
                .filter_map(|code| members.get(code))
                .filter(|m| m.kind != "group" && wanted(m))
            {
                if seen.insert(member.id) {
                    selected.push(member.id);
                }
            }
        }
    }
    selected
}

/// The member codes of a group channel's value (comma-separated UUIDs; bad entries skipped).
pub fn group_members(value: &str) -> Vec<Uuid> {
    value
        .split(',')
        .filter_map(|part| Uuid::parse_str(part.trim()).ok())
        .collect()
}

/// Claims up to `limit` unprocessed flips and records their pending notifications, in one
/// transaction.
pub async fn process_flips(
    client: &mut Client,
    secret: &str,
    limit: i64,
) -> anyhow::Result<Processed> {
    let tx = client.transaction().await?;
    // Two statements over one table each, no join: with statistics taken before a burst of
    // flips, the planner believes almost no flip is unprocessed, and a join over the unprocessed
    // flips (the former `NOT EXISTS` over an earlier one) became a nested loop over them, quadratic
    // in the burst (190 ms a call in `cargo xtask bench alerts`, 55 s at 20,000 on stale
    // statistics). First the earliest unprocessed flip of each check, then those locked in id
    // order through the primary key; `processed` is read after the lock (a sender may have
    // processed one meanwhile) rather than filtered on, so the partial index is no choice there.
    let candidates: Vec<i32> = tx
        .query(
            "SELECT id FROM ( \
                 SELECT DISTINCT ON (owner_id) id FROM api_flip WHERE processed IS NULL \
                 ORDER BY owner_id, id) AS first",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    if candidates.is_empty() {
        return Ok(Processed::default());
    }
    let rows = tx
        .query(
            "SELECT id, owner_id, old_status, new_status, processed IS NULL FROM api_flip \
             WHERE id = ANY($1) ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&candidates, &limit],
        )
        .await?;
    let mut flips = Vec::with_capacity(rows.len());
    for row in &rows {
        if !row.try_get::<_, bool>(4)? {
            continue;
        }
        flips.push(FlipRow {
            id: row.try_get(0)?,
            check_id: row.try_get(1)?,
            old_status: row.try_get(2)?,
            new_status: row.try_get(3)?,
        });
    }
    if flips.is_empty() {
        return Ok(Processed::default());
    }
    let check_ids: Vec<i32> = flips.iter().map(|f| f.check_id).collect();
    update_nag_dates(&tx, &check_ids).await?;

    let notifying: Vec<&FlipRow> = flips
        .iter()
        .filter(|f| notifies(&f.old_status, &f.new_status))
        .collect();
    let (linked, members) = if notifying.is_empty() {
        Default::default()
    } else {
        let ids: Vec<i32> = notifying.iter().map(|f| f.check_id).collect();
        load_channels(&tx, &ids).await?
    };
    let (mut codes, mut owners, mut statuses, mut channels) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for flip in notifying {
        let linked = linked.get(&flip.check_id).map_or(&[][..], Vec::as_slice);
        for channel in select_channels(&flip.new_status, linked, &members) {
            codes.push(crate::codes::notification_code(secret, flip.id, channel));
            owners.push(flip.check_id);
            statuses.push(flip.new_status.clone());
            channels.push(channel);
        }
    }
    let mut notifications = Vec::with_capacity(codes.len());
    if !codes.is_empty() {
        // WITH ORDINALITY keeps the selection order in the ids (fastest channels first).
        let inserted = tx
            .query(
                "INSERT INTO api_notification (code, owner_id, check_status, channel_id, created, error) \
                 SELECT code, owner_id, check_status, channel_id, now(), 'Sending' \
                 FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::int4[]) WITH ORDINALITY \
                      AS n(code, owner_id, check_status, channel_id, ord) \
                 ORDER BY ord \
                 ON CONFLICT (code) DO NOTHING RETURNING id",
                &[&codes, &owners, &statuses, &channels],
            )
            .await?;
        for row in inserted {
            notifications.push(row.try_get(0)?);
        }
        notifications.sort_unstable();
    }
    let flip_ids: Vec<i32> = flips.iter().map(|f| f.id).collect();
    tx.execute(
        "UPDATE api_flip SET processed = now() WHERE id = ANY($1)",
        &[&flip_ids],
    )
    .await?;
    tx.commit().await?;
    Ok(Processed {
        flips: flips.len(),
        notifications,
    })
}

/// The enabled channels linked to each check, fastest first, and the project channels that
/// groups among them name.
async fn load_channels(
    tx: &tokio_postgres::Transaction<'_>,
    check_ids: &[i32],
) -> anyhow::Result<(HashMap<i32, Vec<ChannelRow>>, HashMap<Uuid, ChannelRow>)> {
    let rows = tx
        .query(
            "SELECT cc.check_id, ch.id, ch.code, ch.kind, ch.value, ch.disabled, ch.project_id \
             FROM api_channel_checks cc JOIN api_channel ch ON ch.id = cc.channel_id \
             WHERE cc.check_id = ANY($1) AND NOT ch.disabled \
             ORDER BY cc.check_id, ch.last_notify_duration ASC NULLS LAST, ch.id",
            &[&check_ids],
        )
        .await?;
    let mut linked: HashMap<i32, Vec<ChannelRow>> = HashMap::new();
    let mut groups: Vec<(i32, Uuid)> = Vec::new();
    for row in &rows {
        let channel = channel_row(row, 1)?;
        if channel.kind == "group" {
            let project: i32 = row.try_get(6)?;
            groups.extend(
                group_members(&channel.value)
                    .into_iter()
                    .map(|c| (project, c)),
            );
        }
        linked.entry(row.try_get(0)?).or_default().push(channel);
    }
    let mut members = HashMap::new();
    if !groups.is_empty() {
        let (projects, codes): (Vec<i32>, Vec<Uuid>) = groups.into_iter().unzip();
        // Members must belong to the group's own project.
        let rows = tx
            .query(
                "SELECT DISTINCT ch.id, ch.code, ch.kind, ch.value, ch.disabled \
                 FROM unnest($1::int4[], $2::uuid[]) AS m(project_id, code) \
                 JOIN api_channel ch ON ch.code = m.code AND ch.project_id = m.project_id",
                &[&projects, &codes],
            )
            .await?;
        for row in &rows {
            let channel = channel_row(row, 0)?;
            members.insert(channel.code, channel);
        }
    }
    Ok((linked, members))
}

fn channel_row(row: &tokio_postgres::Row, at: usize) -> anyhow::Result<ChannelRow> {
    Ok(ChannelRow {
        id: row.try_get(at)?,
        code: row.try_get(at + 1)?,
        kind: row.try_get(at + 2)?,
        value: row.try_get(at + 3)?,
        disabled: row.try_get(at + 4)?,
    })
}

/// Healthchecks' `Project.update_next_nag_dates` for the projects of `check_ids`: everyone in
/// them (owner and members) with a nag period gets a next nag date if any of their checks is
/// down and has none yet, and loses it if none is down.
///
/// "Any of their checks is down" is asked project by project, through the indexes on the
/// owner, the member and the check's project: asked of all down checks at once (one `OR` over
/// owner and members), the planner scanned every check for every person, 0.5 s a batch while
/// few checks were down (`cargo xtask bench alerts`).
async fn update_nag_dates(
    tx: &tokio_postgres::Transaction<'_>,
    check_ids: &[i32],
) -> anyhow::Result<()> {
    tx.execute(
        "WITH people AS ( \
             SELECT p.owner_id AS user_id FROM api_check c \
             JOIN accounts_project p ON p.id = c.project_id WHERE c.id = ANY($1) \
             UNION \
             SELECT m.user_id FROM api_check c \
             JOIN accounts_member m ON m.project_id = c.project_id WHERE c.id = ANY($1) \
         ), state AS ( \
             SELECT pr.id, pr.nag_period, ( \
                 EXISTS (SELECT 1 FROM accounts_project dp \
                     JOIN api_check d ON d.project_id = dp.id \
                     WHERE dp.owner_id = pr.user_id AND d.status = 'down') \
                 OR EXISTS (SELECT 1 FROM accounts_member dm \
                     JOIN api_check d ON d.project_id = dm.project_id \
                     WHERE dm.user_id = pr.user_id AND d.status = 'down') \
             ) AS any_down \
             FROM accounts_profile pr JOIN people ON people.user_id = pr.user_id \
             WHERE pr.nag_period <> interval '0' \
         ) \
         UPDATE accounts_profile pr \
         SET next_nag_date = CASE WHEN s.any_down THEN now() + s.nag_period END \
         FROM state s \
         WHERE pr.id = s.id AND ( \
             (s.any_down AND pr.next_nag_date IS NULL) \
             OR (NOT s.any_down AND pr.next_nag_date IS NOT NULL))",
        &[&check_ids],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: i32, kind: &str, value: &str) -> ChannelRow {
        ChannelRow {
            id,
            code: Uuid::from_u128(id as u128),
            kind: kind.to_owned(),
            value: value.to_owned(),
            disabled: false,
        }
    }

    #[test]
    fn only_up_and_down_flips_notify_and_first_ups_are_silent() {
        assert!(notifies("up", "down"));
        assert!(notifies("new", "down"));
        assert!(notifies("paused", "down"));
        assert!(notifies("down", "up"));
        assert!(!notifies("new", "up"));
        assert!(!notifies("paused", "up"));
        assert!(!notifies("up", "paused"));
        assert!(!notifies("paused", "new"));
    }

    #[test]
    fn disabled_and_noop_channels_are_skipped() {
        let mut disabled = channel(2, "webhook", r#"{"url_down": "http://x/"}"#);
        disabled.disabled = true;
        let linked = [
            channel(
                1,
                "email",
                r#"{"value": "a@example.org", "up": false, "down": true}"#,
            ),
            disabled,
            channel(3, "webhook", r#"{"url_down": "", "url_up": "http://x/"}"#),
            channel(4, "slack", "https://hooks.example.org/x"),
        ];
        let none = HashMap::new();
        assert_eq!(select_channels("down", &linked, &none), vec![1, 4]);
        assert_eq!(select_channels("up", &linked, &none), vec![3, 4]);
    }

    #[test]
    fn groups_bring_their_members_once() {
        let a = channel(10, "slack", "https://hooks.example.org/a");
        let b = channel(11, "slack", "https://hooks.example.org/b");
        let inner = channel(12, "group", "");
        let group = channel(
            20,
            "group",
            &format!("{}, not-a-uuid,{},{}", a.code, b.code, inner.code),
        );
        let members = [a.clone(), b, inner]
            .into_iter()
            .map(|c| (c.code, c))
            .collect();
        assert_eq!(
            select_channels("down", &[a, group], &members),
            vec![10, 20, 11]
        );
    }
}
