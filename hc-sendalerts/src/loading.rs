//! Loads what a pending notification needs to be sent ([`Alert`]) in one round trip: the
//! notification, its flip (found through the code, see [`crate::codes`]), the check, project,
//! owner, channel, the last ping at the flip's time, the previous flip and the other down checks.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::alert::{Alert, Channel, Check, Flip, OtherCheck, Ping, PingBody, Project};

/// What a pending notification turned out to be.
#[derive(Debug)]
pub enum Loaded {
    /// Not pending any more (delivered by someone else, or deleted with its check or channel).
    Gone,
    /// A notification to send.
    Alert(Box<Alert>),
    /// A group channel's notification: done when its members' notifications are.
    Group(Group),
    /// It cannot be sent (its flip no longer exists): record this error.
    Broken(i32, String),
}

/// A group channel's notification.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group channel's id.
    pub channel_id: i32,
    /// The flip.
    pub flip_id: i32,
    /// The check's project (members must be in it).
    pub project_id: i32,
    /// The group's value (member channel codes).
    pub value: String,
}

const ALERT_SQL: &str = "SELECT n.code, n.channel_id, \
    f.id, f.created, f.old_status, f.new_status, f.reason, \
    c.id, c.code, c.name, c.slug, c.tags, c.\"desc\", c.kind, \
    (EXTRACT(EPOCH FROM c.timeout) * 1000000)::int8, (EXTRACT(EPOCH FROM c.grace) * 1000000)::int8, \
    c.schedule, c.tz, c.status, c.n_pings, c.last_ping, c.last_start, \
    (EXTRACT(EPOCH FROM c.last_duration) * 1000000)::int8, c.created, c.manual_resume, c.methods, \
    c.start_kw, c.success_kw, c.failure_kw, c.filter_subject, c.filter_body, \
    c.filter_default_fail, c.filter_http_body, c.badge_key, \
    p.id, p.code, p.name, COALESCE(pr.tz, 'UTC'), u.email, \
    ch.code, ch.kind, ch.value, ch.name, ch.email_verified, \
    lp.n, lp.created, lp.kind, lp.scheme, host(lp.remote_addr), lp.method, lp.ua, lp.exitstatus, \
    lp.body_raw, lp.object_size, \
    pf.created, pf.new_status, \
    CASE WHEN ch.kind <> 'webhook' THEN \
      (SELECT json_agg(json_build_array(o.name, o.code, \
           (EXTRACT(EPOCH FROM o.last_ping) * 1000000)::int8) ORDER BY o.id) \
       FROM api_check o WHERE o.project_id = c.project_id AND o.id <> c.id AND o.status = 'down') END, \
    CASE WHEN ch.kind <> 'webhook' THEN \
      EXISTS (SELECT 1 FROM api_check o WHERE o.project_id = c.project_id AND o.id <> c.id) END, \
    (SELECT array_agg(k.code) FROM api_channel_checks kc JOIN api_channel k ON k.id = kc.channel_id \
       WHERE kc.check_id = c.id), \
    n.id \
    FROM api_notification n \
    JOIN api_check c ON c.id = n.owner_id \
    JOIN accounts_project p ON p.id = c.project_id \
    JOIN auth_user u ON u.id = p.owner_id \
    LEFT JOIN accounts_profile pr ON pr.user_id = p.owner_id \
    JOIN api_channel ch ON ch.id = n.channel_id \
    LEFT JOIN api_flip f ON f.id = ('x' || left(replace(n.code::text, '-', ''), 8))::bit(32)::int4 \
        AND f.owner_id = n.owner_id \
    LEFT JOIN LATERAL (SELECT * FROM api_ping x WHERE x.owner_id = c.id AND x.created <= f.created \
        ORDER BY x.created DESC, x.id DESC LIMIT 1) lp ON true \
    LEFT JOIN LATERAL (SELECT * FROM api_flip y WHERE y.owner_id = c.id AND y.created < f.created \
        ORDER BY y.created DESC, y.id DESC LIMIT 1) pf ON true \
    WHERE n.id = ANY($1) AND n.error = 'Sending'";

/// Loads pending notification `id`.
pub async fn load(client: &impl GenericClient, id: i32) -> anyhow::Result<Loaded> {
    Ok(load_many(client, &[id])
        .await?
        .remove(&id)
        .unwrap_or(Loaded::Gone))
}

/// Loads the pending notifications `ids` in one query; an id missing from the answer is no
/// longer pending ([`Loaded::Gone`]) and is left to the caller.
pub async fn load_many(
    client: &impl GenericClient,
    ids: &[i32],
) -> anyhow::Result<HashMap<i32, Loaded>> {
    // The flip id is the code's first four bytes (see `codes`); the join reads it there.
    let rows = client.query(ALERT_SQL, &[&ids]).await?;
    let mut loaded = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i32 = row.try_get(59)?;
        let channel_id: i32 = row.try_get(1)?;
        let one = read_alert(row).unwrap_or_else(|err| {
            Loaded::Broken(
                channel_id,
                format!("cannot read the notification's rows: {err:#}"),
            )
        });
        loaded.insert(id, one);
    }
    Ok(loaded)
}

/// Reads one row of [`ALERT_SQL`].
fn read_alert(row: &tokio_postgres::Row) -> anyhow::Result<Loaded> {
    let code: Uuid = row.try_get(0)?;
    let Some((flip_id, _)) = crate::codes::decode(code) else {
        return Ok(Loaded::Gone);
    };
    let channel_id: i32 = row.try_get(1)?;
    let flip_found: Option<i32> = row.try_get(2)?;
    if flip_found.is_none() {
        return Ok(Loaded::Broken(
            channel_id,
            "the flip of this notification no longer exists".to_owned(),
        ));
    }
    let kind: String = row.try_get(40)?;
    if kind == "group" {
        return Ok(Loaded::Group(Group {
            channel_id,
            flip_id,
            project_id: row.try_get(34)?,
            value: row.try_get(41)?,
        }));
    }
    let micros = |at: usize| -> anyhow::Result<Option<TimeDelta>> {
        Ok(row
            .try_get::<_, Option<i64>>(at)?
            .map(TimeDelta::microseconds))
    };
    let flip = Flip {
        id: flip_id,
        created: row.try_get(3)?,
        old_status: row.try_get(4)?,
        new_status: row.try_get(5)?,
        reason: row.try_get(6)?,
    };
    let check = Check {
        id: row.try_get(7)?,
        code: row.try_get(8)?,
        name: row.try_get(9)?,
        slug: row.try_get(10)?,
        tags: row.try_get(11)?,
        desc: row.try_get(12)?,
        kind: row.try_get(13)?,
        timeout: micros(14)?.unwrap_or_default(),
        grace: micros(15)?.unwrap_or_default(),
        schedule: row.try_get(16)?,
        tz: row.try_get(17)?,
        status: row.try_get(18)?,
        n_pings: row.try_get(19)?,
        last_ping: row.try_get(20)?,
        last_start: row.try_get(21)?,
        last_duration: micros(22)?,
        created: row.try_get(23)?,
        manual_resume: row.try_get(24)?,
        methods: row.try_get(25)?,
        start_kw: row.try_get(26)?,
        success_kw: row.try_get(27)?,
        failure_kw: row.try_get(28)?,
        filter_subject: row.try_get(29)?,
        filter_body: row.try_get(30)?,
        filter_default_fail: row.try_get(31)?,
        filter_http_body: row.try_get(32)?,
        badge_key: row.try_get(33)?,
        channels: row.try_get::<_, Option<Vec<Uuid>>>(58)?.unwrap_or_default(),
    };
    let project = Project {
        code: row.try_get(35)?,
        name: row.try_get(36)?,
        owner_tz: row.try_get(37)?,
        owner_email: row.try_get(38)?,
    };
    let channel = Channel {
        id: channel_id,
        code: row.try_get(39)?,
        kind,
        value: row.try_get(41)?,
        name: row.try_get(42)?,
        email_verified: row.try_get(43)?,
    };
    let last_ping = match row.try_get::<_, Option<DateTime<Utc>>>(45)? {
        None => None,
        Some(created) => {
            let body_raw: Option<Vec<u8>> = row.try_get(52)?;
            let object_size: Option<i32> = row.try_get(53)?;
            Some(Ping {
                n: row.try_get(44)?,
                created,
                kind: row.try_get(46)?,
                scheme: row.try_get(47)?,
                remote_addr: row.try_get(48)?,
                method: row.try_get(49)?,
                ua: row.try_get(50)?,
                exitstatus: row.try_get(51)?,
                body: match (body_raw, object_size) {
                    (Some(body), _) => PingBody::Inline(body),
                    (None, Some(size)) => PingBody::InObjectStorage(size),
                    (None, None) => PingBody::None,
                },
            })
        }
    };
    let previous: (Option<DateTime<Utc>>, Option<String>) = (row.try_get(54)?, row.try_get(55)?);
    let down_since = match previous {
        (Some(created), Some(status)) if status == "down" && flip.new_status == "up" => {
            Some(created)
        }
        _ => None,
    };
    // NULL for webhooks: they never list the other down checks, and the list is most of the cost
    // of this query in a project of a few hundred checks.
    let has_others = row.try_get::<_, Option<bool>>(57)?.unwrap_or(false);
    let other_down = if has_others {
        let listed = row.try_get::<_, Option<serde_json::Value>>(56)?;
        let mut others = other_checks(listed.as_ref());
        // Healthchecks' sortchecks(…, "name"): a stable sort by natural_name_key.
        others.sort_by_cached_key(OtherCheck::natural_name_key);
        Some(others)
    } else {
        None
    };
    Ok(Loaded::Alert(Box::new(Alert {
        notification: code,
        flip,
        check,
        project,
        channel,
        last_ping,
        down_since,
        other_down,
    })))
}

/// The other down checks from their JSON list of `[name, code, last ping in µs]`.
fn other_checks(listed: Option<&serde_json::Value>) -> Vec<OtherCheck> {
    let Some(items) = listed.and_then(serde_json::Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let name = item.get(0)?.as_str()?.to_owned();
            let code = item.get(1)?.as_str()?.parse().ok()?;
            let last_ping = item
                .get(2)
                .and_then(serde_json::Value::as_i64)
                .and_then(DateTime::from_timestamp_micros);
            Some(OtherCheck {
                name,
                code,
                last_ping,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(names: &[&str]) -> Vec<String> {
        let listed = json!(
            names
                .iter()
                .map(|n| json!([n, Uuid::nil(), null]))
                .collect::<Vec<_>>()
        );
        let mut others = other_checks(Some(&listed));
        others.sort_by_cached_key(OtherCheck::natural_name_key);
        others.into_iter().map(|o| o.name).collect()
    }

    #[test]
    fn names_sort_as_healthchecks_sorts_them() {
        assert_eq!(
            named(&["check 10", "Check 9", "alpha", "check 100", "beta 2", ""]),
            ["", "alpha", "beta 2", "Check 9", "check 10", "check 100"]
        );
        // Zero-padded digits compare as characters: "a1" is "a00000001", after "a-".
        assert_eq!(named(&["a1", "a-"]), ["a-", "a1"]);
        // Ties keep the database order.
        assert_eq!(named(&["B", "b", " b "]), ["B", "b", " b "]);
    }
}
