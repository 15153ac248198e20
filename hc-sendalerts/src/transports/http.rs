//! The HTTP client of every HTTP transport (§3.6): http and https only, at most 3 redirects, a
//! 30 s limit per request, `User-Agent: healthchecks.io` unless overridden, and connections to
//! private addresses refused unless `INTEGRATIONS_ALLOW_PRIVATE_IPS` is on.
//!
//! STUB: to be implemented (see the issue note); the signatures are the contract.

use hc_core::config::Vars;
use hc_core::exit::ConfigError;

use super::TransportError;

/// HTTP client settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `INTEGRATIONS_ALLOW_PRIVATE_IPS`.
    pub allow_private_ips: bool,
}

impl HttpSettings {
    /// Reads the settings.
    pub fn from_vars(vars: &impl Vars) -> Result<HttpSettings, ConfigError> {
        Ok(HttpSettings {
            allow_private_ips: hc_core::config::parse_bool(
                vars,
                "INTEGRATIONS_ALLOW_PRIVATE_IPS",
                false,
            )?,
        })
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
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// A response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (bounded in size).
    pub body: Vec<u8>,
}

/// The shared client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    settings: HttpSettings,
}

impl HttpClient {
    /// Builds the client.
    pub fn new(settings: &HttpSettings) -> anyhow::Result<HttpClient> {
        Ok(HttpClient {
            settings: settings.clone(),
        })
    }

    /// Sends one request (one try), following redirects; any answer is `Ok`, connection-level
    /// failures are `Err` with Healthchecks' messages.
    pub async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let _ = self.settings.allow_private_ips;
        Err(TransportError::fail("HTTP transport not implemented yet"))
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
