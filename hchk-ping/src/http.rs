//! The HTTP side: the accept loop with its abuse limits, request handling (body capture, client
//! address), and the responses of `healthchecks-behaviour.md` §1.2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::metrics::Metrics;
use crate::queue::{Job, Outcome, PingMeta, Queue};
use crate::routes::{PingRoute, Route, Target};
use crate::writer::Writers;

const CACHE_CONTROL: &str = "max-age=0, no-cache, no-store, must-revalidate, private";
const CONTENT_TYPE: &str = "text/html; charset=utf-8";
const NOT_FOUND_PAGE: &str = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n";
/// Longest method name `api_ping.method` (varchar(10)) can hold.
const MAX_METHOD_LEN: usize = 10;
/// Longest User-Agent stored, in characters (`api_ping.ua` is varchar(200)).
const MAX_UA_CHARS: usize = 200;

/// What request handlers share.
#[derive(Debug)]
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The queue to the writers.
    pub queue: Arc<Queue>,
    /// The writers (for the database state).
    pub writers: Arc<Writers>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

type Body = Full<Bytes>;

/// Accepts connections until `shutdown`, then lets in-flight requests finish within the grace
/// period.
pub async fn accept(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(app.config.max_connections));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit,
            () = shutdown.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, or a connection reset before accept: wait a moment.
                tracing::warn!(%err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service_app = app.clone();
        let service = service_fn(move |req| handle(service_app.clone(), peer, req));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(app.config.header_timeout)
            .max_buf_size(app.config.max_header_bytes)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("stopped accepting connections; finishing requests in flight");
    if tokio::time::timeout(app.config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at the end of the grace period");
    }
}

async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let route = crate::routes::route(&app.config.site_prefix, req.uri().path(), req.uri().query());
    let response = match route {
        Route::Ping(route) => ping(&app, peer, route, req).await,
        Route::BadRequest(message) => plain(StatusCode::BAD_REQUEST, message),
        Route::Health => health(&app).await,
        Route::Metrics => {
            let text = app
                .metrics
                .render(app.queue.len(), app.queue.dwell(Instant::now()));
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Ok(response);
        }
        Route::NotFound => plain(StatusCode::NOT_FOUND, NOT_FOUND_PAGE),
    };
    app.metrics.count_response(response.status().as_u16());
    Ok(response)
}

async fn health(app: &App) -> Response<Body> {
    let dwell = app.queue.dwell(Instant::now());
    if dwell > app.config.health_max_dwell {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "dwell time too high");
    }
    let probe = async {
        let client = app.writers.pool().get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Some(_)) => plain(StatusCode::OK, "OK"),
        _ => plain(StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn ping(
    app: &App,
    peer: SocketAddr,
    route: PingRoute,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(method) = stored_method(req.method().as_str()) else {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    };
    let headers = req.headers();
    let hard_limit = app.config.body_hard_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > hard_limit as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let trusted = &app.config.trusted_proxies;
    let remote_addr = trusted.client_addr(
        peer.ip(),
        headers.get("x-forwarded-for").map(HeaderValue::as_bytes),
    );
    let scheme = trusted.scheme(
        peer.ip(),
        headers.get("x-forwarded-proto").map(HeaderValue::as_bytes),
    );
    let ua: String = headers
        .get(header::USER_AGENT)
        .map(|v| latin1(v.as_bytes()))
        .unwrap_or_default();
    let keep = app.config.body_limit.unwrap_or(hard_limit);
    let body = match tokio::time::timeout(
        app.config.body_timeout,
        read_body(req.into_body(), keep, hard_limit),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        Ok(Err(BodyError::Broken)) => return plain(StatusCode::BAD_REQUEST, "bad request body"),
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "request body timed out"),
    };
    let slug_route = matches!(route.target, Target::Slug { .. });
    let (reply, answer) = oneshot::channel();
    app.queue.push(Job {
        route,
        meta: PingMeta {
            received: Utc::now(),
            scheme,
            remote_addr: Some(remote_addr),
            method,
            ua,
            body,
        },
        created: false,
        enqueued: Instant::now(),
        reply: Some(reply),
    });
    let outcome = answer.await.unwrap_or(Outcome::Unavailable);
    respond(outcome, slug_route, app.config.body_limit)
}

/// The method as `api_ping.method` stores it: upper-cased, as Django's `WSGIRequest` does (so
/// `post` counts as POST for a POST-only check); `None` when too long for the column.
fn stored_method(method: &str) -> Option<String> {
    (method.len() <= MAX_METHOD_LEN).then(|| method.to_ascii_uppercase())
}

/// A header value as Django sees it: WSGI decodes header bytes as Latin-1. NUL cannot be stored
/// in PostgreSQL text, and `api_ping.ua` holds 200 characters.
fn latin1(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter(|&&b| b != 0)
        .take(MAX_UA_CHARS)
        .map(|&b| char::from(b))
        .collect()
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Reads the body, keeping the first `keep` bytes and discarding the rest, up to `hard_limit`.
async fn read_body(mut body: Incoming, keep: usize, hard_limit: usize) -> Result<Bytes, BodyError> {
    let mut kept = BytesMut::new();
    let mut total: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > hard_limit {
            return Err(BodyError::TooLarge);
        }
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..data.len().min(room)]);
    }
    Ok(kept.freeze())
}

/// The response for a writer's outcome, with Healthchecks' headers.
fn respond(outcome: Outcome, slug_route: bool, body_limit: Option<usize>) -> Response<Body> {
    let (status, text, success) = match outcome {
        Outcome::Recorded => (StatusCode::OK, "OK", true),
        Outcome::Created => (StatusCode::CREATED, "Created", true),
        Outcome::NotFound => (StatusCode::NOT_FOUND, "not found", false),
        Outcome::AmbiguousSlug => (StatusCode::CONFLICT, "ambiguous slug", false),
        Outcome::InvalidUrl => (StatusCode::BAD_REQUEST, "invalid url format", false),
        Outcome::InvalidRid => (StatusCode::BAD_REQUEST, "invalid uuid format", false),
        Outcome::Unavailable => {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        Outcome::Internal => return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    };
    let mut response = plain(status, text);
    // Django's never_cache is on the `ping` view: the slug view's own 404 and 409 lack it.
    let never_cache =
        success || !slug_route || matches!(outcome, Outcome::InvalidUrl | Outcome::InvalidRid);
    let headers = response.headers_mut();
    if never_cache {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        let expires = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(value) = HeaderValue::from_str(&expires) {
            headers.insert(header::EXPIRES, value);
        }
    }
    if success {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        if let Some(limit) = body_limit {
            headers.insert("ping-body-limit", HeaderValue::from(limit));
        }
    }
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(method: &str, expected: Option<&str>) {
        assert_eq!(stored_method(method).as_deref(), expected, "{method}");
    }

    #[test]
    fn methods_are_upper_cased() {
        check("GET", Some("GET"));
        check("post", Some("POST"));
        check("Patch", Some("PATCH"));
        check("PROPFIND", Some("PROPFIND"));
    }

    #[test]
    fn methods_longer_than_the_column_are_refused() {
        check("ABCDEFGHIJ", Some("ABCDEFGHIJ"));
        check("ABCDEFGHIJK", None);
    }

    #[test]
    fn user_agents_are_latin1_like_wsgi() {
        assert_eq!(latin1(b"curl/8.0"), "curl/8.0");
        assert_eq!(latin1(b"caf\xe9"), "caf\u{e9}");
        assert_eq!(latin1(b"a\0b"), "ab");
        assert_eq!(latin1(&[b'x'; 300]).chars().count(), 200);
    }
}
