//! The stored message of an email ping (§1.7 keeps the whole message in `body_raw`), read for the
//! alert email (§3.8): its decoded `Subject` and the bytes attached as `last-ping.eml`, with the
//! nested `message/rfc822` parts (forwarded or bounced messages) cut out.
//!
//! Stored messages are whatever a mail server accepted, so reading one never fails: what cannot be
//! understood is attached as stored.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// What an alert shows of an email ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailPing {
    /// The `Subject`, decoded (RFC 2047) and on one line; `None` when missing or blank, which
    /// hides the "Last ping subject" line as in Healthchecks' template.
    pub subject: Option<String>,
    /// The message to attach as `last-ping.eml`.
    pub eml: Vec<u8>,
}

/// Reads the stored message `raw`.
///
/// Fallback for input that cannot be parsed: the raw bytes are attached unchanged, without a
/// subject line. That happens when mail-parser finds no header at all (the body was not a message),
/// and, defensively, if the parser panics on hostile input: a stored ping must never stop its
/// alert, and the recipient still gets exactly what the check's sender mailed.
pub fn read_email_ping(raw: &[u8]) -> EmailPing {
    let unchanged = || EmailPing {
        subject: None,
        eml: raw.to_vec(),
    };
    catch_unwind(AssertUnwindSafe(|| {
        MessageParser::default()
            .parse(raw)
            .map(|message| EmailPing {
                subject: message
                    .subject()
                    .map(one_line)
                    .filter(|subject| !subject.is_empty()),
                eml: resaved_text_message(raw, &message)
                    .unwrap_or_else(|| without_nested_messages(raw, &message)),
            })
    }))
    .ok()
    .flatten()
    .unwrap_or_else(unchanged)
}

/// The longest line Python's email package writes unencoded (`policy.max_line_length`).
const MAX_LINE_LENGTH: usize = 78;

/// A message that is not multipart, written again as Healthchecks' `bytes_to_sanitized_message`
/// does (`m.set_content(m.get_content())` under `email.policy.SMTP`): the headers as they came
/// (`Name: value`, line ends CRLF) without the `Content-*` ones, then
/// `Content-Type: text/plain; charset="utf-8"`, `Content-Transfer-Encoding` and
/// `MIME-Version: 1.0` (when missing), and the decoded text as 7bit or 8bit lines.
///
/// `None`, and the message is attached as stored, for multipart and non-text messages (on
/// which Healthchecks' `set_content` raises), for text with lines over 78 octets, which
/// Python would re-encode as quoted-printable or base64, and for a header block with a line
/// that is not a header field.
fn resaved_text_message(raw: &[u8], message: &Message<'_>) -> Option<Vec<u8>> {
    let root = message.parts.first()?;
    let text = match &root.body {
        PartType::Text(text) | PartType::Html(text) => text,
        _ => return None,
    };
    if root
        .content_type()
        .is_some_and(|content_type| !content_type.ctype().eq_ignore_ascii_case("text"))
    {
        return None;
    }
    let lines: Vec<&str> = split_bytes_lines(text);
    if lines.iter().any(|line| line.len() > MAX_LINE_LENGTH) {
        return None;
    }
    let header_end = usize::try_from(root.offset_body).ok()?.min(raw.len());
    let mut headers: Vec<Vec<u8>> = Vec::new();
    for line in raw[..header_end].split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        match headers.last_mut() {
            Some(header) if line.starts_with(b" ") || line.starts_with(b"\t") => {
                header.extend_from_slice(b"\r\n");
                header.extend_from_slice(line);
            }
            _ => headers.push(line.to_vec()),
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 100);
    let mut mime_version = false;
    for header in &headers {
        // A line that is no header field: Python would read the rest as the body, mail-parser
        // may not; attach the message as stored rather than lose what it says.
        let colon = header.iter().position(|&byte| byte == b':')?;
        let name = &header[..colon];
        if name.len() >= 8 && name[..8].eq_ignore_ascii_case(b"content-") {
            continue;
        }
        mime_version |= name.eq_ignore_ascii_case(b"mime-version");
        let value = &header[colon + 1..];
        let start = value
            .iter()
            .position(|&byte| byte != b' ' && byte != b'\t')
            .unwrap_or(value.len());
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&value[start..]);
        out.extend_from_slice(b"\r\n");
    }
    let cte = if text.is_ascii() { "7bit" } else { "8bit" };
    out.extend_from_slice(b"Content-Type: text/plain; charset=\"utf-8\"\r\n");
    out.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n").as_bytes());
    if !mime_version {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    out.extend_from_slice(b"\r\n");
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if text.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

/// The lines of `text` as Python's `bytes.splitlines` finds them (at CR, LF and CRLF).
pub(super) fn split_bytes_lines(text: &str) -> Vec<&str> {
    split_lines(text, |c| c == '\r' || c == '\n')
}

/// The lines of `text` split at every character `is_break` accepts, CRLF counting as one
/// break, with no empty line after a final break (Python's `splitlines`).
pub(super) fn split_lines(text: &str, is_break: impl Fn(char) -> bool) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(&is_break).unwrap_or(rest.len());
        lines.push(&rest[..end]);
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix("\r\n") {
            rest = after;
        } else if let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
        }
    }
    lines
}

/// Folds runs of whitespace (line breaks left by header folding, tabs) into single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `raw` with each `message/rfc822` part of `message` (not the message itself) removed together
/// with the delimiter line that opens it, so the multipart around it stays well formed.
///
/// A part whose offsets do not look as expected is kept whole rather than risk cutting the wrong
/// bytes.
fn without_nested_messages(raw: &[u8], message: &Message<'_>) -> Vec<u8> {
    let mut cuts: Vec<Range<usize>> = Vec::new();
    for part in message.parts.iter().skip(1).filter(|part| is_rfc822(part)) {
        let Some(cut) = part_cut(raw, part) else {
            continue;
        };
        // Parts come in stream order and a nested message's own parts are not listed here, so
        // cuts never overlap; checked anyway, because a bad cut would corrupt the attachment.
        if cuts.last().is_none_or(|last| last.end <= cut.start) {
            cuts.push(cut);
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut from = 0;
    for cut in cuts {
        out.extend_from_slice(&raw[from..cut.start]);
        from = cut.end;
    }
    out.extend_from_slice(&raw[from..]);
    out
}

fn is_rfc822(part: &MessagePart<'_>) -> bool {
    part.content_type().is_some_and(|content_type| {
        content_type.ctype().eq_ignore_ascii_case("message")
            && content_type
                .subtype()
                .is_some_and(|subtype| subtype.eq_ignore_ascii_case("rfc822"))
    })
}

/// The bytes to remove for `part`: from the line break before its delimiter line (`--boundary`)
/// to the end of its body, leaving the line break that opens the next delimiter. When the bytes
/// around the part are not a delimiter line and a following delimiter, only the part's headers and
/// body go (an empty part is left behind); `None` when the offsets are out of range.
fn part_cut(raw: &[u8], part: &MessagePart<'_>) -> Option<Range<usize>> {
    let start = usize::try_from(part.offset_header).ok()?;
    let end = usize::try_from(part.offset_end).ok()?;
    if start > end || end > raw.len() {
        return None;
    }
    let next_delimiter = raw[end..].starts_with(b"\r\n--") || raw[end..].starts_with(b"\n--");
    let before = &raw[..start];
    let delimiter_line = before
        .strip_suffix(b"\n")
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .and_then(|until_line_end| {
            let line_start = until_line_end
                .iter()
                .rposition(|&byte| byte == b'\n')
                .map_or(0, |newline| newline + 1);
            until_line_end[line_start..]
                .starts_with(b"--")
                .then_some(line_start)
        });
    match delimiter_line {
        Some(line_start) if next_delimiter && line_start > 0 => {
            // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
            let break_start = if line_start >= 2 && raw[line_start - 2] == b'\r' {
                line_start - 2
            } else {
                line_start - 1
            };
            Some(break_start..end)
        }
        _ => Some(start..end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(raw: &str, subject: Option<&str>, eml: &str) {
        let read = read_email_ping(raw.as_bytes());
        assert_eq!(read.subject.as_deref(), subject);
        assert_eq!(String::from_utf8_lossy(&read.eml), eml);
    }

    /// The headers `set_content` adds to a plain ASCII message.
    const TEXT_HEADERS: &str = "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n";

    #[test]
    fn plain_message_is_written_again_as_set_content_does() {
        check(
            "Subject: Foo bar baz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLorem ipsum\r\n",
            Some("Foo bar baz"),
            &format!("Subject: Foo bar baz\r\n{TEXT_HEADERS}\r\nLorem ipsum\r\n"),
        );
    }

    #[test]
    fn mime_version_is_kept_where_it_was() {
        check(
            "MIME-Version: 1.0\r\nSubject: a\r\n\r\nb\r\n",
            Some("a"),
            "MIME-Version: 1.0\r\nSubject: a\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
             Content-Transfer-Encoding: 7bit\r\n\r\nb\r\n",
        );
    }

    #[test]
    fn eight_bit_text_is_decoded_and_written_as_utf8() {
        check(
            "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n",
            Some("x"),
            "Subject: x\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
             Content-Transfer-Encoding: 8bit\r\nMIME-Version: 1.0\r\n\r\ncafé\r\n",
        );
    }

    #[test]
    fn long_lines_are_attached_as_stored() {
        let raw = format!("Subject: x\r\n\r\n{}\r\n", "a".repeat(79));
        check(&raw, Some("x"), &raw);
    }

    #[test]
    fn bare_line_feeds() {
        check(
            "Subject: Foo\n\nLorem ipsum\n",
            Some("Foo"),
            &format!("Subject: Foo\r\n{TEXT_HEADERS}\r\nLorem ipsum\r\n"),
        );
    }

    #[test]
    fn encoded_subject_is_decoded() {
        check(
            "Subject: =?UTF-8?B?UsWrxLfEq8WhaQ==?= =?UTF-8?Q?_ok?=\r\n\r\nbody\r\n",
            Some("Rūķīši ok"),
            &format!(
                "Subject: =?UTF-8?B?UsWrxLfEq8WhaQ==?= =?UTF-8?Q?_ok?=\r\n{TEXT_HEADERS}\r\nbody\r\n"
            ),
        );
    }

    #[test]
    fn folded_subject_is_one_line() {
        check(
            "Subject: backup\r\n\tfinished\r\n\r\nbody\r\n",
            Some("backup finished"),
            &format!("Subject: backup\r\n\tfinished\r\n{TEXT_HEADERS}\r\nbody\r\n"),
        );
    }

    #[test]
    fn blank_or_missing_subject_is_none() {
        check(
            "Subject:  \r\n\r\nx\r\n",
            None,
            &format!("Subject: \r\n{TEXT_HEADERS}\r\nx\r\n"),
        );
        check(
            "From: a@example.org\r\n\r\nx\r\n",
            None,
            &format!("From: a@example.org\r\n{TEXT_HEADERS}\r\nx\r\n"),
        );
    }

    #[test]
    fn nested_message_is_removed_with_its_delimiter() {
        let raw = "MIME-Version: 1.0\r\n\
            Subject: Outer subject\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
            \r\n\
            --b1\r\n\
            Content-Type: text/plain; charset=\"UTF-8\"\r\n\
            \r\n\
            Hello 456\r\n\
            \r\n\
            --b1\r\n\
            Content-Type: message/rfc822; name=\"Hello.eml\"\r\n\
            Content-Disposition: attachment; filename=\"Hello.eml\"\r\n\
            \r\n\
            MIME-Version: 1.0\r\n\
            Subject: Inner subject\r\n\
            Content-Type: text/plain; charset=\"UTF-8\"\r\n\
            \r\n\
            Hello 123\r\n\
            \r\n\
            \r\n\
            --b1--\r\n";
        let expected = "MIME-Version: 1.0\r\n\
            Subject: Outer subject\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
            \r\n\
            --b1\r\n\
            Content-Type: text/plain; charset=\"UTF-8\"\r\n\
            \r\n\
            Hello 456\r\n\
            \r\n\
            --b1--\r\n";
        check(raw, Some("Outer subject"), expected);
    }

    #[test]
    fn nested_message_between_parts_and_in_a_nested_multipart() {
        let raw = "Subject: s\n\
            Content-Type: multipart/mixed; boundary=\"outer\"\n\
            \n\
            --outer\n\
            Content-Type: multipart/alternative; boundary=\"inner\"\n\
            \n\
            --inner\n\
            Content-Type: text/plain\n\
            \n\
            one\n\
            --inner\n\
            Content-Type: message/rfc822\n\
            \n\
            Subject: gone\n\
            \n\
            gone 1\n\
            --inner--\n\
            --outer\n\
            Content-Type: message/rfc822\n\
            \n\
            Subject: gone too\n\
            \n\
            gone 2\n\
            --outer\n\
            Content-Type: text/plain\n\
            \n\
            two\n\
            --outer--\n";
        let read = read_email_ping(raw.as_bytes());
        let eml = String::from_utf8(read.eml).expect("ascii");
        assert!(!eml.contains("gone"), "{eml}");
        assert!(eml.contains("one\n--inner--\n--outer\n"), "{eml}");
        assert!(
            eml.contains("--outer\nContent-Type: text/plain\n\ntwo\n--outer--\n"),
            "{eml}"
        );
        let parsed = MessageParser::default()
            .parse(eml.as_bytes())
            .expect("still a message");
        assert_eq!(parsed.body_text(0).as_deref(), Some("one"));
        assert_eq!(parsed.body_text(1).as_deref(), Some("two"));
    }

    #[test]
    fn base64_nested_message_is_removed() {
        // "Subject: gone\r\n\r\ngone\r\n"
        let raw = "Subject: s\r\n\
            Content-Type: multipart/mixed; boundary=\"b\"\r\n\
            \r\n\
            --b\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            kept\r\n\
            --b\r\n\
            Content-Type: message/rfc822\r\n\
            Content-Transfer-Encoding: base64\r\n\
            \r\n\
            U3ViamVjdDogZ29uZQ0KDQpnb25lDQo=\r\n\
            --b--\r\n";
        let read = read_email_ping(raw.as_bytes());
        let eml = String::from_utf8(read.eml).expect("ascii");
        assert_eq!(
            eml,
            "Subject: s\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nkept\r\n--b--\r\n"
        );
    }

    #[test]
    fn unterminated_nested_message_is_cut_to_the_end() {
        let raw = "Subject: s\r\n\
            Content-Type: multipart/mixed; boundary=\"b\"\r\n\
            \r\n\
            --b\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            kept\r\n\
            --b\r\n\
            Content-Type: message/rfc822\r\n\
            \r\n\
            Subject: gone\r\n\
            \r\n\
            gone\r\n";
        let read = read_email_ping(raw.as_bytes());
        let eml = String::from_utf8_lossy(&read.eml);
        assert!(!eml.contains("gone"), "{eml}");
        assert!(eml.contains("kept"), "{eml}");
        assert_eq!(read.subject.as_deref(), Some("s"));
    }

    #[test]
    fn not_a_message_is_attached_unchanged() {
        for raw in [&b""[..], b"\xff\xfe\x00garbage"] {
            let read = read_email_ping(raw);
            assert_eq!(read.eml, raw, "{raw:?}");
            assert_eq!(read.subject, None);
        }
    }

    #[test]
    fn invalid_utf8_and_broken_mime_do_not_fail() {
        let raw = b"Subject: caf\xe9 =?bogus?Q?x\r\n\
            Content-Type: multipart/mixed; boundary=\r\n\
            Content-Transfer-Encoding: base64\r\n\
            \r\n\
            --\r\n\xff\xff not base64 \x00\r\n";
        let read = read_email_ping(raw);
        assert!(
            read.subject
                .is_some_and(|subject| subject.starts_with("caf"))
        );
        assert_eq!(read.eml, raw);
    }
}
