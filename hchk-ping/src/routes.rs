//! URL routing and query parsing for ping URLs (`healthchecks-behaviour.md` §1.1), as pure
//! functions of the request target: no I/O, so the fuzz target and unit tests drive them directly.
//!
//! What needs the database (does the check exist, is an exit status over 255 reported before or
//! after the lookup, is `rid` valid) is carried in [`PingRoute`] for the writer to decide in
//! Healthchecks' order.

use uuid::Uuid;

/// What the URL asks for, before any keyword filter or pause rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlAction {
    /// `/ping/<uuid>` and `/0`.
    Success,
    /// `/start`.
    Start,
    /// `/fail` and `/1`..`/255`.
    Fail,
    /// `/log`.
    Log,
}

/// An exit status segment (`/<int>`); Django's `int` converter takes any number of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0..=255.
    Valid(u8),
    /// More than 255 (or too many digits to hold): 400 "invalid url format" after the lookup.
    TooLarge,
}

/// How the check is named in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/ping/<uuid>/…`.
    Code(Uuid),
    /// `/ping/<ping_key>/<slug>/…`; the slug is lowercase (an uppercase slug is a
    /// [`Route::BadRequest`]).
    Slug {
        /// The project's `ping_key`.
        ping_key: String,
        /// The check's slug.
        slug: String,
    },
}

/// A routed ping request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRoute {
    /// The check.
    pub target: Target,
    /// The action from the URL.
    pub action: UrlAction,
    /// The exit status segment, if the URL had one.
    pub exit_status: Option<ExitStatus>,
    /// The `rid` query parameter: `None` when absent, `Some(Err(()))` when present but not a
    /// UUID (including empty).
    pub rid: Option<Result<Uuid, ()>>,
    /// `?create=1` (slug routes only).
    pub create: bool,
}

/// The result of routing a request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A ping URL.
    Ping(PingRoute),
    /// A ping URL that is routed but invalid before any lookup: an uppercase slug.
    BadRequest(&'static str),
    /// `/health`.
    Health,
    /// `/metrics`.
    Metrics,
    /// Anything else: Django's 404 page.
    NotFound,
}

/// Routes `path` (still percent-encoded) and `query` (without `?`) under the path `prefix`
/// (the path of `SITE_ROOT`, `""` or like `/hc`).
pub fn route(prefix: &str, path: &str, query: Option<&str>) -> Route {
    let Some(path) = percent_decode(path).and_then(|bytes| String::from_utf8(bytes).ok()) else {
        return Route::NotFound;
    };
    if path == "/health" || path.strip_prefix(prefix) == Some("/health") {
        return Route::Health;
    }
    if path == "/metrics" || path.strip_prefix(prefix) == Some("/metrics") {
        return Route::Metrics;
    }
    let Some(rest) = path
        .strip_prefix(prefix)
        .and_then(|p| p.strip_prefix("/ping/"))
    else {
        return Route::NotFound;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    // The uuid routes are tried first (Django's URL order), then the slug routes.
    if let Some(code) = segments.first().and_then(|s| parse_route_uuid(s)) {
        let action = match &segments[1..] {
            [] | [""] => Some((UrlAction::Success, None)),
            [word] => action_segment(word),
            _ => None,
        };
        if let Some((action, exit_status)) = action {
            return ping_route(Target::Code(code), action, exit_status, query);
        }
    }
    let (key, slug, action) = match segments.as_slice() {
        [key, slug] => (*key, *slug, Some((UrlAction::Success, None))),
        [key, slug, word] => (*key, *slug, action_segment(word)),
        _ => return Route::NotFound,
    };
    let Some((action, exit_status)) = action else {
        return Route::NotFound;
    };
    if !is_slug(key) || !is_slug(slug) {
        return Route::NotFound;
    }
    if slug.bytes().any(|b| b.is_ascii_uppercase()) {
        return Route::BadRequest("invalid url format");
    }
    let target = Target::Slug {
        ping_key: key.to_owned(),
        slug: slug.to_owned(),
    };
    ping_route(target, action, exit_status, query)
}

fn ping_route(
    target: Target,
    action: UrlAction,
    exit_status: Option<ExitStatus>,
    query: Option<&str>,
) -> Route {
    let params = QueryParams::parse(query.unwrap_or(""));
    let rid = params.rid.map(|value| parse_rid(&value).ok_or(()));
    let create = matches!(target, Target::Slug { .. }) && params.create.as_deref() == Some("1");
    Route::Ping(PingRoute {
        target,
        action,
        exit_status,
        rid,
        create,
    })
}

/// An action segment: `start`, `fail`, `log`, or an exit status (`[0-9]+`).
fn action_segment(word: &str) -> Option<(UrlAction, Option<ExitStatus>)> {
    match word {
        "start" => Some((UrlAction::Start, None)),
        "fail" => Some((UrlAction::Fail, None)),
        "log" => Some((UrlAction::Log, None)),
        _ if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => {
            let exit = match word.parse::<u64>() {
                Ok(n) if n <= 255 => ExitStatus::Valid(n as u8),
                _ => ExitStatus::TooLarge,
            };
            let action = match exit {
                ExitStatus::Valid(0) => UrlAction::Success,
                _ => UrlAction::Fail,
            };
            Some((action, Some(exit)))
        }
        _ => None,
    }
}

/// Django's `uuid` path converter: lowercase hex with dashes in the 8-4-4-4-12 places.
fn parse_route_uuid(segment: &str) -> Option<Uuid> {
    is_canonical_uuid(segment, false).then(|| Uuid::parse_str(segment).ok())?
}

/// The `rid` rule: the canonical 8-4-4-4-12 form, hex in either case.
pub fn parse_rid(value: &str) -> Option<Uuid> {
    is_canonical_uuid(value, true).then(|| Uuid::parse_str(value).ok())?
}

fn is_canonical_uuid(text: &str, allow_upper: bool) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => {
                b.is_ascii_digit()
                    || (b'a'..=b'f').contains(&b)
                    || (allow_upper && (b'A'..=b'F').contains(&b))
            }
        })
}

/// Django's `slug` path converter: `[-a-zA-Z0-9_]+`.
fn is_slug(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The query parameters a ping reads; like Django's `QueryDict.get`, the last value wins.
#[derive(Debug, Default, PartialEq, Eq)]
struct QueryParams {
    rid: Option<String>,
    create: Option<String>,
}

impl QueryParams {
    fn parse(query: &str) -> QueryParams {
        let mut params = QueryParams::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                let plus = s.replace('+', " ");
                percent_decode(&plus).map(|b| String::from_utf8_lossy(&b).into_owned())
            };
            let (Some(name), Some(value)) = (decode(name), decode(value)) else {
                continue;
            };
            match name.as_str() {
                "rid" => params.rid = Some(value),
                "create" => params.create = Some(value),
                _ => {}
            }
        }
        params
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "3a4c9d0e-5b6f-4a7b-8c9d-0e1f2a3b4c5d";

    #[track_caller]
    fn check(path: &str, query: Option<&str>, expected: Route) {
        assert_eq!(route("", path, query), expected, "{path} ? {query:?}");
    }

    fn code() -> Uuid {
        Uuid::parse_str(CODE).unwrap()
    }

    fn ping(
        target: Target,
        action: UrlAction,
        exit_status: Option<ExitStatus>,
        rid: Option<Result<Uuid, ()>>,
        create: bool,
    ) -> Route {
        Route::Ping(PingRoute {
            target,
            action,
            exit_status,
            rid,
            create,
        })
    }

    fn slug(key: &str, slug: &str) -> Target {
        Target::Slug {
            ping_key: key.to_owned(),
            slug: slug.to_owned(),
        }
    }

    #[test]
    fn uuid_actions() {
        let c = || Target::Code(code());
        check(
            &format!("/ping/{CODE}"),
            None,
            ping(c(), UrlAction::Success, None, None, false),
        );
        check(
            &format!("/ping/{CODE}/"),
            None,
            ping(c(), UrlAction::Success, None, None, false),
        );
        check(
            &format!("/ping/{CODE}/start"),
            None,
            ping(c(), UrlAction::Start, None, None, false),
        );
        check(
            &format!("/ping/{CODE}/fail"),
            None,
            ping(c(), UrlAction::Fail, None, None, false),
        );
        check(
            &format!("/ping/{CODE}/log"),
            None,
            ping(c(), UrlAction::Log, None, None, false),
        );
    }

    #[test]
    fn exit_statuses() {
        let c = || Target::Code(code());
        let valid = |n| Some(ExitStatus::Valid(n));
        check(
            &format!("/ping/{CODE}/0"),
            None,
            ping(c(), UrlAction::Success, valid(0), None, false),
        );
        check(
            &format!("/ping/{CODE}/007"),
            None,
            ping(c(), UrlAction::Fail, valid(7), None, false),
        );
        check(
            &format!("/ping/{CODE}/255"),
            None,
            ping(c(), UrlAction::Fail, valid(255), None, false),
        );
        let large = Some(ExitStatus::TooLarge);
        check(
            &format!("/ping/{CODE}/256"),
            None,
            ping(c(), UrlAction::Fail, large, None, false),
        );
        check(
            &format!("/ping/{CODE}/999999999999999999999999999999"),
            None,
            ping(c(), UrlAction::Fail, large, None, false),
        );
        check(
            &format!("/ping/{CODE}/-1"),
            None,
            ping(slug(CODE, "-1"), UrlAction::Success, None, None, false),
        );
    }

    #[test]
    fn unrouted_forms() {
        check(&format!("/ping/{CODE}/fail/"), None, Route::NotFound);
        check("/ping/key/slug/", None, Route::NotFound);
        check("/ping/not-uuid/", None, Route::NotFound);
        check("/ping/", None, Route::NotFound);
        check("/pingx/abc", None, Route::NotFound);
        check("/", None, Route::NotFound);
        check("/ping/a/b/c/d", None, Route::NotFound);
        check("/ping/a.b/c", None, Route::NotFound);
        check("/ping/%zz/c", None, Route::NotFound);
    }

    #[test]
    fn uppercase_and_dashless_uuids_fall_through_to_slugs() {
        let upper = CODE.to_uppercase();
        check(&format!("/ping/{upper}"), None, Route::NotFound);
        // `start` is then the slug, under the ping key `<UPPERCASE UUID>`.
        check(
            &format!("/ping/{upper}/start"),
            None,
            ping(slug(&upper, "start"), UrlAction::Success, None, None, false),
        );
        let dashless = CODE.replace('-', "");
        check(&format!("/ping/{dashless}"), None, Route::NotFound);
        check(
            &format!("/ping/{CODE}/other"),
            None,
            ping(slug(CODE, "other"), UrlAction::Success, None, None, false),
        );
    }

    #[test]
    fn slug_routes() {
        check(
            "/ping/abc_DEF-1/backup",
            None,
            ping(
                slug("abc_DEF-1", "backup"),
                UrlAction::Success,
                None,
                None,
                false,
            ),
        );
        check(
            "/ping/key/backup/start",
            None,
            ping(slug("key", "backup"), UrlAction::Start, None, None, false),
        );
        check(
            "/ping/key/backup/3",
            None,
            ping(
                slug("key", "backup"),
                UrlAction::Fail,
                Some(ExitStatus::Valid(3)),
                None,
                false,
            ),
        );
        check(
            "/ping/key/Backup",
            None,
            Route::BadRequest("invalid url format"),
        );
        check(
            "/ping/key/backup",
            Some("create=1"),
            ping(slug("key", "backup"), UrlAction::Success, None, None, true),
        );
        check(
            "/ping/key/backup",
            Some("create=true"),
            ping(slug("key", "backup"), UrlAction::Success, None, None, false),
        );
        check(
            "/ping/key/backup",
            Some("create=1&create=0"),
            ping(slug("key", "backup"), UrlAction::Success, None, None, false),
        );
        check(
            &format!("/ping/{CODE}"),
            Some("create=1"),
            ping(Target::Code(code()), UrlAction::Success, None, None, false),
        );
    }

    #[test]
    fn run_ids() {
        let rid = "A1B2C3D4-0000-4000-8000-00000000000F";
        let parsed = Uuid::parse_str(rid).unwrap();
        let c = || Target::Code(code());
        check(
            &format!("/ping/{CODE}"),
            Some(&format!("rid={rid}")),
            ping(c(), UrlAction::Success, None, Some(Ok(parsed)), false),
        );
        check(
            &format!("/ping/{CODE}"),
            Some("rid="),
            ping(c(), UrlAction::Success, None, Some(Err(())), false),
        );
        check(
            &format!("/ping/{CODE}"),
            Some("rid"),
            ping(c(), UrlAction::Success, None, Some(Err(())), false),
        );
        check(
            &format!("/ping/{CODE}"),
            Some("rid=12345"),
            ping(c(), UrlAction::Success, None, Some(Err(())), false),
        );
        check(
            &format!("/ping/{CODE}"),
            Some(&format!("rid={rid}0")),
            ping(c(), UrlAction::Success, None, Some(Err(())), false),
        );
        let dashless = rid.replace('-', "");
        check(
            &format!("/ping/{CODE}"),
            Some(&format!("rid={dashless}")),
            ping(c(), UrlAction::Success, None, Some(Err(())), false),
        );
        check(
            &format!("/ping/{CODE}"),
            Some(&format!("x=1&rid={}", rid.replace('-', "%2D"))),
            ping(c(), UrlAction::Success, None, Some(Ok(parsed)), false),
        );
    }

    #[test]
    fn site_root_prefix() {
        assert_eq!(
            route("/hc", &format!("/ping/{CODE}"), None),
            Route::NotFound
        );
        assert!(matches!(
            route("/hc", &format!("/hc/ping/{CODE}"), None),
            Route::Ping(_)
        ));
        assert_eq!(route("/hc", "/hc/health", None), Route::Health);
        assert_eq!(route("/hc", "/health", None), Route::Health);
        assert_eq!(route("", "/metrics", None), Route::Metrics);
    }

    #[test]
    fn percent_encoded_paths_are_decoded() {
        let encoded = CODE.replace('-', "%2d");
        check(
            &format!("/ping/{encoded}"),
            None,
            ping(Target::Code(code()), UrlAction::Success, None, None, false),
        );
        check("/ping/%ff/x", None, Route::NotFound);
    }

    mod never_panics {
        use proptest::prelude::*;

        use super::super::route;

        /// Path pieces that reach the interesting branches: separators, escapes (good and bad),
        /// UUID-like and slug-like segments, action words, digits and non-ASCII text.
        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("/".to_owned()),
                Just("/ping/".to_owned()),
                Just("/hc".to_owned()),
                Just("%".to_owned()),
                Just("%2".to_owned()),
                Just("%2d".to_owned()),
                Just("%ff".to_owned()),
                Just(super::CODE.to_owned()),
                Just("start".to_owned()),
                Just("999999999999999999999".to_owned()),
                "[a-zA-Z0-9_-]{0,8}",
                "[0-9]{1,4}",
                any::<String>(),
            ]
        }

        fn text() -> impl Strategy<Value = String> {
            prop::collection::vec(piece(), 0..8).prop_map(|pieces| pieces.concat())
        }

        fn query() -> impl Strategy<Value = Option<String>> {
            prop::option::of(
                prop::collection::vec(
                    prop_oneof![
                        Just("rid=".to_owned()),
                        Just("create=1".to_owned()),
                        Just("&".to_owned()),
                        Just("=".to_owned()),
                        Just("+".to_owned()),
                        Just("%".to_owned()),
                        "[a-z0-9%=&+-]{0,12}",
                        any::<String>(),
                    ],
                    0..8,
                )
                .prop_map(|pieces| pieces.concat()),
            )
        }

        proptest! {
            #[test]
            fn random_targets(prefix in prop_oneof![Just(String::new()), text()], path in text(), query in query()) {
                let _ = route(&prefix, &path, query.as_deref());
            }
        }
    }
}
