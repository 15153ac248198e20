//! Deterministic notification codes: one code per (flip, channel), so a notification can never
//! be recorded twice for the same flip and channel, and the flip it announces can be found from
//! the `api_notification` row alone, without new columns in Healthchecks' tables.
//!
//! Layout of the 16 bytes (an RFC 9562 version 8 UUID, which Healthchecks never makes: its
//! codes are version 4, so [`ours_sql`] tells our rows from its rows):
//!
//! ```text
//! 0..4 flip id (big-endian) | 4..6 mac | 6 version 8 + mac | 7 mac | 8 variant + mac
//! | 9..13 channel id (big-endian) | 13..16 mac
//! ```
//!
//! The `mac` bits are a keyed hash of both ids with `SECRET_KEY`, so codes cannot be guessed from
//! ids. Decoding reads only the structure, so a change of `SECRET_KEY` leaves pending
//! notifications deliverable.

use sha1::{Digest, Sha1};
use uuid::Uuid;

/// SQL condition true for rows of `api_notification` (called `alias` in the query) whose code
/// this service made.
pub fn ours_sql(alias: &str) -> String {
    format!("substr({alias}.code::text, 15, 1) = '8'")
}

/// The code of the notification of flip `flip_id` on channel `channel_id`.
pub fn notification_code(secret: &str, flip_id: i32, channel_id: i32) -> Uuid {
    let mut hasher = Sha1::new();
    hasher.update(b"hc-sendalerts notification\0");
    hasher.update(secret.as_bytes());
    hasher.update(b"\0");
    hasher.update(flip_id.to_be_bytes());
    hasher.update(channel_id.to_be_bytes());
    let mac = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes[0..4].copy_from_slice(&flip_id.to_be_bytes());
    bytes[4..6].copy_from_slice(&mac[0..2]);
    bytes[6] = 0x80 | (mac[2] & 0x0f);
    bytes[7] = mac[3];
    bytes[8] = 0x80 | (mac[4] & 0x3f);
    bytes[9..13].copy_from_slice(&channel_id.to_be_bytes());
    bytes[13..16].copy_from_slice(&mac[5..8]);
    Uuid::from_bytes(bytes)
}

/// The flip and channel ids of a code made by [`notification_code`]; `None` for other codes.
pub fn decode(code: Uuid) -> Option<(i32, i32)> {
    let bytes = code.as_bytes();
    if bytes[6] >> 4 != 8 || bytes[8] >> 6 != 0b10 {
        return None;
    }
    let flip = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let channel = i32::from_be_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]);
    Some((flip, channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (flip, channel) in [(1, 1), (7, 123_456), (i32::MAX, i32::MAX), (2_000_000, 3)] {
            let code = notification_code("secret", flip, channel);
            assert_eq!(decode(code), Some((flip, channel)));
            assert_eq!(code.get_version_num(), 8);
            assert_eq!(code.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(&code.to_string()[14..15], "8", "{code}");
        }
    }

    #[test]
    fn codes_are_deterministic_and_keyed() {
        let a = notification_code("secret", 5, 6);
        assert_eq!(a, notification_code("secret", 5, 6));
        assert_ne!(a, notification_code("other", 5, 6));
        assert_ne!(a, notification_code("secret", 6, 5));
    }

    #[test]
    fn healthchecks_codes_are_not_ours() {
        let v4 = Uuid::parse_str("0b5b6a2e-1d9a-4c3e-9f0a-2b7c1e4d5f6a").unwrap();
        assert_eq!(decode(v4), None);
    }
}
