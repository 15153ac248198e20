//! The HTTP client of every HTTP transport (§3.6, Healthchecks' `hc/lib/curl.py`): http and https
//! only, at most 3 redirects, one time limit per request (30 s unless `SENDALERTS_HTTP_TIMEOUT`
//! says otherwise) covering redirects and the body, `User-Agent: healthchecks.io` unless the
//! request sets its own, and connections to private addresses refused unless
//! `INTEGRATIONS_ALLOW_PRIVATE_IPS` is on.
//!
//! The private-address rule is applied by [`GuardedConnector`] to the address each socket is
//! actually opened to (like Healthchecks' `OPENSOCKETFUNCTION`), after name resolution and on every
//! redirect hop, so neither DNS rebinding nor a redirect to `127.0.0.1` gets around it.
//! Errors carry Healthchecks' curl messages; whether they are worth a retry is this module's call.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hc_core::config::ConfigError;
use hc_core::config::Vars;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::TransportError;

/// Redirects followed before "Too many redirects" (curl's `MAXREDIRS` in Healthchecks).
pub const MAX_REDIRECTS: usize = 3;

/// Bytes of a response body kept; the rest is not read.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The `User-Agent` sent when a request does not set one.
pub const DEFAULT_USER_AGENT: &str = "healthchecks.io";

/// HTTP client settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `INTEGRATIONS_ALLOW_PRIVATE_IPS`.
    pub allow_private_ips: bool,
    /// `SENDALERTS_HTTP_TIMEOUT` (seconds, default 30): the limit for one request, redirects and
    /// response body included (Healthchecks' `timeout=30`).
    pub timeout: Duration,
}

impl HttpSettings {
    /// Reads the settings.
    pub fn from_vars(vars: &impl Vars) -> Result<HttpSettings, ConfigError> {
        let timeout_secs: u64 = hc_core::config::parse_var(vars, "SENDALERTS_HTTP_TIMEOUT", 30)?;
        if timeout_secs == 0 {
            return Err(ConfigError(
                "SENDALERTS_HTTP_TIMEOUT: must be at least 1 second".to_owned(),
            ));
        }
        Ok(HttpSettings {
            allow_private_ips: hc_core::config::parse_bool(
                vars,
                "INTEGRATIONS_ALLOW_PRIVATE_IPS",
                false,
            )?,
            timeout: Duration::from_secs(timeout_secs),
        })
    }
}

impl Default for HttpSettings {
    /// Healthchecks' defaults: private addresses refused, 30 s.
    fn default() -> HttpSettings {
        HttpSettings {
            allow_private_ips: false,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One request.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// An absolute http or https URL.
    pub url: String,
    /// Header names and values (values as bytes: webhooks send Latin-1).
    ///
    /// A header with an empty value is not sent, as with curl's `Name:` (so an empty
    /// `User-Agent` also drops the default one).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// A response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (at most [`MAX_RESPONSE_BODY`] bytes; the rest is dropped).
    pub body: Vec<u8>,
}

type HyperClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// The shared client (cheap to clone: connections are pooled and shared).
#[derive(Clone)]
pub struct HttpClient {
    settings: HttpSettings,
    client: HyperClient,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client (rustls with the `ring` provider and Mozilla's roots).
    pub fn new(settings: &HttpSettings) -> anyhow::Result<HttpClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|err| anyhow::anyhow!("cannot set up TLS: {err}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(GuardedConnector {
                allow_private_ips: settings.allow_private_ips,
            });
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpClient {
            settings: settings.clone(),
            client,
        })
    }

    /// Sends one request (one try), following redirects; any answer is `Ok`, connection-level
    /// failures are `Err` with Healthchecks' messages.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        match tokio::time::timeout(self.settings.timeout, self.follow(request)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(TransportError::transient("Connection timed out")),
        }
    }

    /// The request and its redirects, without the time limit.
    async fn follow(&self, mut request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut uri = parse_url(&request.url)?;
        let mut redirects = 0;
        loop {
            let response = self.send_once(&request, &uri).await?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            let Some(location) = location.filter(|_| is_redirect(status)) else {
                let body = read_capped(response.into_body()).await?;
                return Ok(HttpResponse { status, body });
            };
            if redirects == MAX_REDIRECTS {
                return Err(TransportError::fail("Too many redirects"));
            }
            redirects += 1;
            let next = parse_url(&resolve_location(&uri, &location))?;
            if origin(&next) != origin(&uri) {
                // Like curl: credentials set by the caller do not follow a redirect elsewhere.
                request.headers.retain(|(name, _)| {
                    !name.eq_ignore_ascii_case("authorization")
                        && !name.eq_ignore_ascii_case("cookie")
                });
            }
            if status == 303 && request.method != "HEAD" {
                request.method = "GET".to_owned();
                request.body = None;
            }
            uri = next;
        }
    }

    async fn send_once(
        &self,
        request: &HttpRequest,
        uri: &Uri,
    ) -> Result<hyper::Response<hyper::body::Incoming>, TransportError> {
        let method = hyper::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            TransportError::fail(format!("Invalid HTTP method: {}", request.method))
        })?;
        let mut builder = hyper::Request::builder().method(method).uri(uri.clone());
        let (mut has_user_agent, mut has_accept) = (false, false);
        for (name, value) in &request.headers {
            // An empty value removes curl's own header, as `Accept:` does on curl's command line.
            if name.eq_ignore_ascii_case("user-agent") {
                has_user_agent = true;
            }
            if name.eq_ignore_ascii_case("accept") {
                has_accept = true;
            }
            if value.is_empty() {
                continue;
            }
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| TransportError::fail(format!("Invalid header name: {name}")))?;
            let header_value = HeaderValue::from_bytes(value)
                .map_err(|_| TransportError::fail(format!("Invalid value of header {name}")))?;
            builder = builder.header(header_name, header_value);
        }
        if !has_user_agent {
            builder = builder.header(
                hyper::header::USER_AGENT,
                HeaderValue::from_static(DEFAULT_USER_AGENT),
            );
        }
        if !has_accept {
            // curl's default, which Healthchecks' requests carry.
            builder = builder.header(hyper::header::ACCEPT, HeaderValue::from_static("*/*"));
        }
        let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
        let request = builder
            .body(body)
            .map_err(|err| TransportError::fail(format!("HTTP request failed: {err}")))?;
        self.client
            .request(request)
            .await
            .map_err(|err| classify_error(&err))
    }
}

/// `Ok` for 200, 201, 202 and 204; otherwise "Received status code N" (transient for 5xx).
pub fn expect_success(response: HttpResponse) -> Result<HttpResponse, TransportError> {
    match response.status {
        200 | 201 | 202 | 204 => Ok(response),
        code if code >= 500 => Err(TransportError::transient(format!(
            "Received status code {code}"
        ))),
        code => Err(TransportError::fail(format!("Received status code {code}"))),
    }
}

/// Whether Healthchecks (Python's `ipaddress`, `is_private`) counts `ip` as private, plus the
/// shared address space 100.64.0.0/10; IPv4-mapped and IPv4-compatible IPv6 addresses are judged
/// by their IPv4 address.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    matches!(
        (a, b, c, d),
        (0, ..)                                 // "this network", 0.0.0.0
            | (10, ..)                          // RFC 1918
            | (100, 64..=127, ..)               // shared address space (carrier-grade NAT)
            | (127, ..)                         // loopback
            | (169, 254, ..)                    // link-local
            | (172, 16..=31, ..)                // RFC 1918
            | (192, 0, 0, 0..=7)                // IETF protocol assignments
            | (192, 0, 0, 170..=171)            // NAT64/DNS64 discovery
            | (192, 0, 2, _)                    // TEST-NET-1
            | (192, 168, ..)                    // RFC 1918
            | (198, 18..=19, ..)                // benchmarking
            | (198, 51, 100, _)                 // TEST-NET-2
            | (203, 0, 113, _)                  // TEST-NET-3
            | (240..=255, ..) // reserved, and broadcast
    )
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    if segments[..6] == [0; 6] {
        // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d: none is a public destination.
        return true;
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        let [_, _, _, _, _, _, hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return is_private_v4(v4);
    }
    let first = segments[0];
    (first & 0xfe00) == 0xfc00                  // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80           // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0           // site-local fec0::/10 (deprecated)
        || (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1) // 64:ff9b:1::/48
        || (segments[..4] == [0x100, 0, 0, 0])  // discard-only 100::/64
        || (segments[0] == 0x2001 && segments[1] < 0x200) // IETF protocol assignments 2001::/23
        || (segments[0] == 0x2001 && segments[1] == 0xdb8) // documentation
        || (segments[0] == 0x2002 && is_private_v4(Ipv4Addr::from(
            (u32::from(segments[1]) << 16) | u32::from(segments[2]),
        ))) // 6to4 of a private IPv4 address
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Parses an absolute http or https URL; other schemes are refused like curl's `PROTOCOLS`.
fn parse_url(url: &str) -> Result<Uri, TransportError> {
    let uri: Uri = encode_unsafe_bytes(url)
        .parse()
        .map_err(|_| TransportError::fail("HTTP request failed: malformed URL"))?;
    match uri.scheme_str() {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
        _ => {
            return Err(TransportError::fail(
                "HTTP request failed: unsupported protocol",
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::fail("HTTP request failed: malformed URL"));
    }
    Ok(uri)
}

/// Percent-encodes spaces, controls and non-ASCII bytes, as curl does with URLs it is given.
fn encode_unsafe_bytes(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for byte in url.bytes() {
        if byte <= b' ' || byte >= 0x7f {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// The scheme, host and port of `uri`.
fn origin(uri: &Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(default_port(&scheme));
    (scheme, host, port)
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Resolves a `Location` value against the URL that answered with it (RFC 3986 reference forms,
/// without dot-segment removal).
fn resolve_location(base: &Uri, location: &str) -> String {
    let location = location.trim();
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let has_scheme = location.split_once(':').is_some_and(|(prefix, _)| {
        prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if has_scheme {
        location.to_owned()
    } else if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let path = base.path();
        let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{scheme}://{authority}{directory}{location}")
    }
}

/// Reads at most [`MAX_RESPONSE_BODY`] bytes and drops the rest (the connection is not reused
/// then).
async fn read_capped(mut body: hyper::body::Incoming) -> Result<Vec<u8>, TransportError> {
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            TransportError::transient(format!("HTTP request failed: {}", short_cause(&err)))
        })?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_RESPONSE_BODY - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
            if kept.len() == MAX_RESPONSE_BODY {
                break;
            }
        }
    }
    Ok(kept)
}

/// Why a connection could not be opened: the connector's own errors, found again in the
/// client's error chain to pick Healthchecks' message.
#[derive(Debug)]
pub enum ConnectError {
    /// The host name did not resolve.
    Resolve(std::io::Error),
    /// Every resolved address was private and private addresses are not allowed.
    PrivateAddress,
    /// No address accepted the connection.
    Connect(std::io::Error),
    /// The URL had no host.
    NoHost,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Resolve(err) => write!(f, "could not resolve host: {err}"),
            ConnectError::PrivateAddress => f.write_str("private address refused"),
            ConnectError::Connect(err) => write!(f, "connection failed: {err}"),
            ConnectError::NoHost => f.write_str("URL without host"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Maps the client's error to Healthchecks' curl messages.
fn classify_error(err: &hyper_util::client::legacy::Error) -> TransportError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(connect) = current.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Resolve(_) | ConnectError::NoHost => {
                    TransportError::transient("Could not resolve host")
                }
                ConnectError::PrivateAddress => {
                    TransportError::fail("Connections to private IP addresses are not allowed")
                }
                ConnectError::Connect(_) => TransportError::transient("Connection failed"),
            };
        }
        if current.downcast_ref::<rustls::Error>().is_some() {
            return TransportError::transient("TLS handshake failed");
        }
        source = current.source();
    }
    if err.is_connect() {
        // Errors of the TLS layer that are not a rustls::Error (for example the peer closing
        // the connection during the handshake).
        return TransportError::transient("TLS handshake failed");
    }
    TransportError::transient(format!("HTTP request failed: {}", short_cause(err)))
}

/// The innermost message of an error chain.
fn short_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Opens TCP connections for the client, refusing private addresses unless allowed; each
/// resolved address is checked right before its socket is opened.
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    allow_private_ips: bool,
}

impl GuardedConnector {
    async fn connect(
        allow_private_ips: bool,
        uri: Uri,
    ) -> Result<TokioIo<TcpStream>, ConnectError> {
        let host = uri.host().ok_or(ConnectError::NoHost)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port(&scheme));
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(ConnectError::Resolve)?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(ConnectError::Resolve(std::io::Error::other("no addresses")));
        }
        let mut last_error = None;
        for address in addresses {
            if !allow_private_ips && is_private_address(address.ip()) {
                continue;
            }
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    // Requests are small and answered at once; Nagle would only delay them.
                    let _ = stream.set_nodelay(true);
                    return Ok(TokioIo::new(stream));
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.map_or(ConnectError::PrivateAddress, ConnectError::Connect))
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(GuardedConnector::connect(self.allow_private_ips, uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_private(address: &str, expected: bool) {
        let ip: IpAddr = address.parse().expect("test address parses");
        assert_eq!(is_private_address(ip), expected, "{address}");
    }

    #[test]
    fn loopback_is_private() {
        check_private("127.0.0.1", true);
        check_private("127.255.0.9", true);
        check_private("::1", true);
    }

    #[test]
    fn rfc1918_is_private() {
        check_private("10.1.2.3", true);
        check_private("172.16.0.1", true);
        check_private("172.31.255.255", true);
        check_private("192.168.1.1", true);
    }

    #[test]
    fn neighbours_of_rfc1918_are_public() {
        check_private("172.15.255.255", false);
        check_private("172.32.0.0", false);
        check_private("11.0.0.1", false);
        check_private("192.169.0.1", false);
    }

    #[test]
    fn link_local_and_unspecified_are_private() {
        check_private("169.254.169.254", true);
        check_private("0.0.0.0", true);
        check_private("::", true);
        check_private("fe80::1", true);
    }

    #[test]
    fn unique_local_is_private() {
        check_private("fc00::1", true);
        check_private("fd12:3456::1", true);
    }

    #[test]
    fn reserved_and_documentation_ranges_are_private() {
        check_private("100.64.0.1", true);
        check_private("198.18.0.1", true);
        check_private("192.0.2.1", true);
        check_private("240.0.0.1", true);
        check_private("255.255.255.255", true);
        check_private("2001:db8::1", true);
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_by_their_ipv4_address() {
        check_private("::ffff:127.0.0.1", true);
        check_private("::ffff:10.0.0.1", true);
        check_private("::ffff:8.8.8.8", false);
        check_private("::127.0.0.1", true);
        check_private("64:ff9b::7f00:1", true);
        check_private("64:ff9b::808:808", false);
        check_private("2002:7f00:1::", true);
    }

    #[test]
    fn public_addresses_are_allowed() {
        check_private("8.8.8.8", false);
        check_private("1.1.1.1", false);
        check_private("2606:4700:4700::1111", false);
        check_private("2a00:1450:4001:82a::200e", false);
    }

    #[track_caller]
    fn check_location(base: &str, location: &str, expected: &str) {
        let base: Uri = base.parse().expect("test URL parses");
        assert_eq!(resolve_location(&base, location), expected);
    }

    #[test]
    fn absolute_locations_are_kept() {
        check_location("http://a/b/c", "https://x/y", "https://x/y");
    }

    #[test]
    fn scheme_relative_locations_take_the_scheme() {
        check_location("https://a/b/c", "//x/y", "https://x/y");
    }

    #[test]
    fn absolute_paths_replace_the_path() {
        check_location("http://a:8080/b/c?q", "/d", "http://a:8080/d");
    }

    #[test]
    fn relative_paths_replace_the_last_segment() {
        check_location("http://a/b/c", "d", "http://a/b/d");
        check_location("http://a", "d", "http://a/d");
    }

    #[test]
    fn query_only_locations_keep_the_path() {
        check_location("http://a/b/c?x", "?y", "http://a/b/c?y");
    }

    #[test]
    fn only_http_and_https_are_accepted() {
        assert!(parse_url("http://example.org/").is_ok());
        assert!(parse_url("HTTPS://example.org/").is_ok());
        let err = parse_url("ftp://example.org/").expect_err("ftp is refused");
        assert_eq!(err.failure, super::super::Failure::Final);
        assert!(parse_url("file:///etc/passwd").is_err());
        assert!(parse_url("example.org").is_err());
    }

    #[test]
    fn spaces_and_non_ascii_are_percent_encoded() {
        assert_eq!(
            encode_unsafe_bytes("http://a/b c/ä"),
            "http://a/b%20c/%C3%A4"
        );
    }

    #[test]
    fn success_codes_are_those_of_healthchecks() {
        for code in [200, 201, 202, 204] {
            assert!(
                expect_success(HttpResponse {
                    status: code,
                    body: vec![]
                })
                .is_ok()
            );
        }
        let err = expect_success(HttpResponse {
            status: 500,
            body: vec![],
        })
        .expect_err("500");
        assert_eq!(err.message, "Received status code 500");
        assert_eq!(err.failure, super::super::Failure::Transient);
        let err = expect_success(HttpResponse {
            status: 404,
            body: vec![],
        })
        .expect_err("404");
        assert_eq!(err.failure, super::super::Failure::Final);
    }

    #[test]
    fn the_timeout_defaults_to_30_seconds_and_can_be_set() {
        let vars: std::collections::HashMap<&str, &str> = [].into_iter().collect();
        let settings = HttpSettings::from_vars(&vars).expect("defaults parse");
        assert_eq!(settings.timeout, Duration::from_secs(30));
        assert!(!settings.allow_private_ips);
        let vars: std::collections::HashMap<&str, &str> =
            [("SENDALERTS_HTTP_TIMEOUT", "2")].into_iter().collect();
        let settings = HttpSettings::from_vars(&vars).expect("2 parses");
        assert_eq!(settings.timeout, Duration::from_secs(2));
        let vars: std::collections::HashMap<&str, &str> =
            [("SENDALERTS_HTTP_TIMEOUT", "0")].into_iter().collect();
        assert!(HttpSettings::from_vars(&vars).is_err());
    }
}
