//! A local HTTP/1.1 server that stands in for webhook endpoints: it records every request
//! (method, path and query, headers with their raw bytes, body) and answers with scripted
//! replies (status, headers, body, an optional delay, redirects to itself).
//!
//! ```ignore
//! let recorder = Recorder::start().await;
//! recorder.enqueue(Reply::redirect(302, "/next"));   // the first request is redirected
//! recorder.respond_with(Reply::status(200));          // every other request gets 200
//! send_to(recorder.url("/hook?x=1")).await;
//! let requests = recorder.wait_for(2).await.unwrap();
//! assert_eq!(requests[1].path, "/next");
//! ```
//!
//! The server runs on the runtime that started it and stops when the [`Recorder`] is dropped.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long [`Recorder::wait_for`] waits for requests to arrive.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One recorded request.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method (`GET`, `POST`, …).
    pub method: String,
    /// The path and query exactly as requested (`/hook?x=1`).
    pub path: String,
    /// Headers in arrival order; names lowercase, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The raw value of the first header called `name` (case-insensitive).
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first header called `name`, decoded as Latin-1 (how HTTP/1.1 carries header bytes).
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_bytes(name)
            .map(|bytes| bytes.iter().map(|&b| char::from(b)).collect())
    }

    /// How many headers are called `name`.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the recorder answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: Vec<u8>,
    /// Time to wait before answering (the request is recorded at once).
    pub delay: Option<Duration>,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    /// A redirect (`301`, `302`, `303`, `307`, `308`) to `location`, which may be a path of the
    /// recorder itself (`/next`) or any URL.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status).with_header("Location", location)
    }

    /// The same reply with `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same reply, sent only after `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

#[derive(Debug)]
struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    arrived: Notify,
    /// Client connections not yet closed.
    open: std::sync::atomic::AtomicUsize,
}

/// Locks a mutex even if a panicking test thread poisoned it (the data is still usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running recorder on `127.0.0.1` and a free port.
#[derive(Debug)]
pub struct Recorder {
    addr: SocketAddr,
    state: Arc<State>,
    _stop: DropGuard,
}

impl Recorder {
    /// Starts a recorder that answers `200` with an empty body until told otherwise.
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free loopback port for the recorder");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(200)),
            arrived: Notify::new(),
            open: std::sync::atomic::AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, Arc::clone(&state), stop.clone()));
        Recorder {
            addr,
            state,
            _stop: stop.drop_guard(),
        }
    }

    /// Where the recorder listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The reply for every request that no [`Recorder::enqueue`]d reply is left for.
    pub fn respond_with(&self, reply: Reply) {
        *lock(&self.state.default) = reply;
    }

    /// Adds a reply to the script: scripted replies answer the next requests, in order.
    pub fn enqueue(&self, reply: Reply) {
        lock(&self.state.script).push_back(reply);
    }

    /// The requests recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Client connections open now. After its client is gone, a closed count means everything
    /// the client sent has been read and recorded.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived (at most [`PATIENCE`]) and returns them all.
    pub async fn wait_for(&self, n: usize) -> anyhow::Result<Vec<RecordedRequest>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            // Registered before the check, so a request recorded in between still wakes us.
            let arrived = self.state.arrived.notified();
            let requests = self.requests();
            if requests.len() >= n {
                return Ok(requests);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                bail!(
                    "the recorder got {} requests within {PATIENCE:?}, expected {n}",
                    self.requests().len()
                );
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = Arc::clone(&state);
        let stop = stop.clone();
        state.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            let counted = Arc::clone(&state);
            let service = service_fn(move |request| answer(Arc::clone(&state), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
            counted
                .open
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
}

async fn answer(
    state: Arc<State>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // A body that fails half-way is recorded as far as it got.
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes().to_vec())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
        body,
    };
    let reply = lock(&state.script)
        .pop_front()
        .unwrap_or_else(|| lock(&state.default).clone());
    lock(&state.requests).push(recorded);
    state.arrived.notify_waiters();
    if let Some(delay) = reply.delay {
        // The endpoint being slow is the behaviour under test, not a wait in a test.
        tokio::time::sleep(delay).await;
    }
    let mut response = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    Ok(response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("scripted replies have valid statuses and headers"))
}
