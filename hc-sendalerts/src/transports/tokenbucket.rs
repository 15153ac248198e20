//! Rate limits on `api_tokenbucket` (§7.7), shared with the Django app: the same keys, the same
//! arithmetic, so a bucket drained by one side is drained for the other.
//!
//! Unlike Healthchecks' read-then-save, [`authorize`] is one `INSERT … ON CONFLICT DO UPDATE …
//! WHERE` statement: concurrent senders cannot both spend the last token.

use crate::digest::sha1_hex;

use super::TransportError;

/// The message of a denied send, in Healthchecks' words.
pub const RATE_LIMITED: &str = "Rate limit exceeded";

/// Takes one token from the bucket `key` holding `capacity` tokens that refill fully in
/// `refill_secs` seconds; `Ok(false)` when the bucket is empty (nothing is saved then).
///
/// A new bucket starts full; an existing one first refills by the time elapsed since its last
/// use (`tokens` is the fraction of `capacity` left, capped at 1).
pub async fn authorize(
    pool: &deadpool_postgres::Pool,
    key: &str,
    capacity: u32,
    refill_secs: f64,
) -> Result<bool, TransportError> {
    const SQL: &str = "
        INSERT INTO api_tokenbucket AS b (value, tokens, updated)
        VALUES ($1, 1.0 - 1.0 / $2::float8, now())
        ON CONFLICT (value) DO UPDATE
        SET tokens = LEAST(1.0, b.tokens
                + EXTRACT(EPOCH FROM (now() - b.updated))::float8 / $3::float8)
                - 1.0 / $2::float8,
            updated = now()
        WHERE LEAST(1.0, b.tokens
                + EXTRACT(EPOCH FROM (now() - b.updated))::float8 / $3::float8)
                - 1.0 / $2::float8 >= 0
        RETURNING tokens";
    let client = pool
        .get()
        .await
        .map_err(|err| TransportError::transient(format!("rate limit check failed: {err}")))?;
    let rows = client
        .query(SQL, &[&key, &f64::from(capacity), &refill_secs])
        .await
        .map_err(|err| TransportError::transient(format!("rate limit check failed: {err}")))?;
    Ok(!rows.is_empty())
}

/// [`authorize`], with a denial as the final error "Rate limit exceeded".
pub async fn require(
    pool: &deadpool_postgres::Pool,
    key: &str,
    capacity: u32,
    refill_secs: f64,
) -> Result<(), TransportError> {
    if authorize(pool, key, capacity, refill_secs).await? {
        Ok(())
    } else {
        Err(TransportError::fail(RATE_LIMITED))
    }
}

/// Telegram's bucket for a chat: `tg-<chat_id>` (6 messages per minute).
pub fn telegram_key(chat_id: i64) -> String {
    format!("tg-{chat_id}")
}

/// Pushover's bucket for a user key: `po-<sha1(user_key + SECRET_KEY)>`.
pub fn pushover_key(user_key: &str, secret_key: &str) -> String {
    format!(
        "po-{}",
        sha1_hex(format!("{user_key}{secret_key}").as_bytes())
    )
}

/// ntfy's bucket for a server and topic: `ntfy-<sha1(url-topic-SECRET_KEY)>`.
pub fn ntfy_key(url: &str, topic: &str, secret_key: &str) -> String {
    format!(
        "ntfy-{}",
        sha1_hex(format!("{url}-{topic}-{secret_key}").as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected digests are the ones Healthchecks' own tests spell out.
    #[test]
    fn pushover_key_matches_healthchecks() {
        assert_eq!(
            pushover_key("123", "test-secret"),
            "po-c0ca2a9774952af32cabf86453f69e442c4ed0eb"
        );
    }

    #[test]
    fn ntfy_key_matches_healthchecks() {
        assert_eq!(
            ntfy_key("https://example.org", "foo", "test-secret"),
            "ntfy-5ce7382812a391e509699d832270d27729ca4bba"
        );
    }

    #[test]
    fn telegram_key_is_the_chat_id() {
        assert_eq!(telegram_key(-123), "tg--123");
    }
}
