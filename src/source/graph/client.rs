//! HTTP to Microsoft Graph, with tokens from the shared Entra ID client (`crate::entra`):
//! requests retried the way Graph's throttling guidance asks (`Retry-After` honoured, fractional
//! too; other transient failures backed off exponentially with jitter; permanent ones reported
//! at once).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::GraphError;
use super::config::GraphConfig;
use crate::clock::{Clock, SystemClock};
use crate::entra::{App, CredentialKind, TokenClient, TokenError};
use crate::net::BodyError;

pub struct Client {
    /// The daemon's one HTTP client for Microsoft's APIs ([`shared_http`]); each request
    /// carries this client's own timeout.
    http: reqwest::Client,
    timeout: Duration,
    tokens: &'static TokenClient,
    app: App,
    /// Refusals name what to check for this kind of credential.
    credential: CredentialKind,
    retry: crate::entra::Retry,
    scope: String,
    /// For back-off sleeps and `Retry-After` dates.
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    retry_base: Duration,
    retry_max: Duration,
    max_body: u64,
    /// Graph requests sent (token requests are counted by `tokens`).
    gets: usize,
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt<T> {
    Done(T),
    /// Transient: try again after this long (from `Retry-After`) or after a back-off.
    Retry {
        after: Option<Duration>,
        why: String,
    },
}

/// One HTTP client for every Graph, ARM and hunting request of the daemon: each client built its
/// own TLS configuration and root store, about 135 KiB a source, and an MSSP has hundreds; one
/// client also shares connections to the one Graph host. Timeouts are per request.
fn shared_http() -> Result<reqwest::Client, String> {
    static SHARED: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            crate::install_crypto_provider();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                // The bearer token must never follow a redirect to another host.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("hindsight/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
}

impl Client {
    pub fn new(cfg: &GraphConfig) -> Result<Client, GraphError> {
        Client::for_scope(cfg, format!("{}/.default", cfg.graph_base()))
    }

    /// A client whose tokens are for `scope` (Azure Resource Manager's, for Sentinel), signed in
    /// as the source's app.
    pub fn for_scope(cfg: &GraphConfig, scope: String) -> Result<Client, GraphError> {
        let http = shared_http().map_err(GraphError::Setup)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let retry = crate::entra::Retry { max_attempts: cfg.max_attempts, base: cfg.retry_base, max: cfg.retry_max };
        let credential = cfg.sign_in().credential().map_err(|e| GraphError::Setup(e.to_string()))?;
        Ok(Client {
            tokens: crate::entra::shared(),
            http,
            app: App {
                login_url: cfg.login_base(),
                tenant_id: cfg.tenant_id.clone(),
                client_id: cfg.client_id.clone(),
                credential,
            },
            credential: cfg.credential,
            timeout: cfg.request_timeout,
            retry,
            scope,
            clock,
            max_attempts: cfg.max_attempts,
            retry_base: cfg.retry_base,
            retry_max: cfg.retry_max,
            max_body: cfg.max_page_bytes,
            gets: 0,
        })
    }

    /// Requests sent, token requests included, for reports and the "requests per incident" figure.
    pub fn requests(&self) -> usize {
        self.gets + self.tokens.requests_for(&self.app, &self.scope)
    }

    /// The access token this client signs in with (`hindsight check` reads its roles).
    pub async fn access_token(&self) -> Result<SecretString, GraphError> {
        self.token().await
    }

    /// What to do after attempt number `n` of `what`: its value, or how long to wait before the
    /// next, or the error that ends it. (A loop in each caller rather than a retry function
    /// taking an async closure: such closures make the poll's future lose `Send`.)
    fn after_attempt<T>(
        &self,
        n: u32,
        delay: &mut Duration,
        what: &str,
        attempt: Attempt<T>,
    ) -> Result<Result<T, Duration>, GraphError> {
        match attempt {
            Attempt::Done(v) => Ok(Ok(v)),
            Attempt::Retry { after, why } => {
                if n >= self.max_attempts {
                    return Err(GraphError::Exhausted { what: what.to_owned(), attempts: n, last: why });
                }
                // Full jitter on our own back-off; Retry-After is the server's word and kept.
                let wait = match after {
                    Some(d) => d.min(self.retry_max),
                    None => {
                        let jittered = delay.mul_f64(rand::rng().random_range(0.5..=1.0));
                        *delay = (*delay * 2).min(self.retry_max);
                        jittered
                    }
                };
                tracing::warn!(attempt = n, wait_ms = wait.as_millis() as u64, "{what}: {why}; retrying");
                Ok(Err(wait))
            }
        }
    }

    /// A valid access token, from the cache or freshly requested.
    async fn token(&self) -> Result<SecretString, GraphError> {
        self.tokens.token_with(&self.app, &self.scope, self.retry).await.map_err(|e| match e {
            TokenError::Refused { status, detail } => GraphError::Auth {
                status,
                // The hint follows after a full stop of its own.
                detail: detail.trim_end_matches('.').to_owned(),
                hint: self.credential.hint(),
            },
            TokenError::Unavailable { attempts, last } => {
                GraphError::Exhausted { what: "token request".into(), attempts, last }
            }
            TokenError::Credential { detail } => GraphError::Credential(detail),
        })
    }

    async fn forget_token(&self) {
        self.tokens.forget(&self.app, &self.scope).await;
    }

    /// GETs a Graph URL and parses the JSON body (into a `serde_json::Value`, or straight into
    /// the type the caller reads), retrying what is transient. A 401 gets one fresh token and
    /// one more try.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&mut self, url: &str) -> Result<T, GraphError> {
        let mut refreshed = false;
        loop {
            let result = self.get_with_retries(url).await;
            match result {
                Err(GraphError::Unauthorized { .. }) if !refreshed => {
                    tracing::info!("Graph answered 401; requesting a new token once");
                    self.forget_token().await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    async fn get_with_retries<T: serde::de::DeserializeOwned>(&mut self, url: &str) -> Result<T, GraphError> {
        let mut delay = self.retry_base;
        let mut n = 0;
        loop {
            n += 1;
            let attempt = self.get_attempt(url).await?;
            match self.after_attempt(n, &mut delay, "Graph request", attempt)? {
                Ok(v) => return Ok(v),
                Err(wait) => self.clock.sleep(wait).await,
            }
        }
    }

    async fn get_attempt<T: serde::de::DeserializeOwned>(&mut self, url: &str) -> Result<Attempt<T>, GraphError> {
        let token = self.token().await?;
        self.gets += 1;
        let resp = self
            .http
            .get(url)
            .timeout(self.timeout)
            .bearer_auth(token.expose_secret())
            // Without it, enum members added after `unknownFutureValue` arrive as that sentinel.
            .header("Prefer", "include-unknown-enum-members")
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry { after: None, why: crate::net::transport_error(e) }),
        };
        let status = resp.status();
        if let Some(retry) = transient(status, &resp, self.clock.now()) {
            return Ok(retry);
        }
        let body = match crate::net::read_limited(resp, self.max_body).await {
            Ok(b) => b,
            // The same page would be as large again: not retried; the source pages smaller.
            Err(BodyError::TooLarge(limit)) if status.is_success() => return Err(GraphError::TooLarge { limit }),
            Err(why) => return Ok(Attempt::Retry { after: None, why: why.to_string() }),
        };
        match status {
            s if s.is_success() => read_success(&body),
            StatusCode::UNAUTHORIZED => Err(GraphError::Unauthorized { detail: graph_error(&body) }),
            StatusCode::FORBIDDEN => Err(GraphError::Forbidden { detail: graph_error(&body) }),
            StatusCode::BAD_REQUEST => Err(GraphError::BadRequest { detail: graph_error(&body) }),
            s => Err(GraphError::Status { status: s.as_u16(), detail: graph_error(&body) }),
        }
    }
}

impl Client {
    /// Sends `body` with `method` (POST, PATCH) and parses the JSON answer. Unlike a GET, a
    /// write is sent once: an answer lost in transit may still have been applied, so whether
    /// to try again is the caller's decision (write-back first reads what is there). A 401
    /// gets one fresh token and one more try: the request was refused, so nothing was applied.
    pub async fn send_json(
        &mut self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, GraphError> {
        let mut refreshed = false;
        loop {
            match self.send_once(method.clone(), url, body).await {
                Err(GraphError::Unauthorized { .. }) if !refreshed => {
                    self.forget_token().await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &mut self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, GraphError> {
        let token = self.token().await?;
        self.gets += 1;
        let resp = self
            .http
            .request(method, url)
            .timeout(self.timeout)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| GraphError::Transient { after: None, status: None, detail: crate::net::transport_error(e) })?;
        let status = resp.status();
        if let Some(Attempt::Retry { after, why }) = transient::<()>(status, &resp, self.clock.now()) {
            let detail = match crate::net::read_limited(resp, 64 * 1024).await {
                Ok(b) => format!("{why}: {}", graph_error(&b)),
                Err(_) => why,
            };
            return Err(GraphError::Transient { after, status: Some(status.as_u16()), detail });
        }
        let body = crate::net::read_limited(resp, self.max_body).await.map_err(|e| GraphError::Transient {
            after: None,
            status: None,
            detail: e.to_string(),
        })?;
        match status {
            s if s.is_success() => {
                if body.is_empty() {
                    return Ok(serde_json::Value::Null);
                }
                serde_json::from_slice(&body)
                    .map_err(|e| GraphError::Protocol(format!("the answer to a write is not valid JSON ({e})")))
            }
            StatusCode::UNAUTHORIZED => Err(GraphError::Unauthorized { detail: graph_error(&body) }),
            StatusCode::FORBIDDEN => Err(GraphError::Forbidden { detail: graph_error(&body) }),
            StatusCode::BAD_REQUEST => Err(GraphError::BadRequest { detail: graph_error(&body) }),
            s => Err(GraphError::Status { status: s.as_u16(), detail: graph_error(&body) }),
        }
    }
}

/// A successful answer read as `T`. A cut or garbled body is a transport accident more often
/// than a service bug, and is tried again; valid JSON of another shape (an array, an object
/// without the fields asked for) would come back the same, and is a protocol error at once.
fn read_success<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Attempt<T>, GraphError> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(Attempt::Done(v)),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(GraphError::Protocol(format!("the response is not what Graph answers ({e})")))
        }
        Err(e) => Ok(Attempt::Retry { after: None, why: format!("response body is not valid JSON ({e})") }),
    }
}

/// 429, 503 (with their `Retry-After`), other 5xx and 408 are worth another try.
fn transient<T>(
    status: StatusCode,
    resp: &reqwest::Response,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Attempt<T>> {
    let retryable =
        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error();
    if !retryable {
        return None;
    }
    let after = crate::net::retry_after_header(resp.headers(), now);
    Some(Attempt::Retry { after, why: format!("HTTP {status}") })
}

/// `code: message` of a Graph error body, or the start of whatever came instead.
fn graph_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => format!("{}: {}", b.error.code.unwrap_or_default(), b.error.message.unwrap_or_default()),
        Err(_) => crate::net::snippet(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarized() {
        let g =
            br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges","innerError":{}}}"#;
        assert_eq!(graph_error(g), "Authorization_RequestDenied: Insufficient privileges");
        let a = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}"#;
        assert_eq!(crate::entra::aad_error(a), "invalid_client: AADSTS7000215: Invalid client secret provided.");
        assert_eq!(graph_error(b"<html>\n<body>Bad gateway</body>"), "<html> <body>Bad gateway</body>");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Page {
        #[allow(dead_code)]
        value: Vec<serde_json::Value>,
    }

    /// A cut or garbled answer is tried again; valid JSON of another shape fails at once.
    #[test]
    fn a_garbled_answer_is_retried_and_one_of_another_shape_is_refused() {
        assert!(matches!(read_success::<Page>(br#"{"value": []}"#), Ok(Attempt::Done(_))));
        for garbled in [&br#"{"value": [{"id": "1"#[..], b"<html>Bad gateway</html>", b""] {
            match read_success::<Page>(garbled) {
                Ok(Attempt::Retry { why, .. }) => assert!(why.starts_with("response body is not valid JSON"), "{why}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(garbled)),
            }
        }
        for shape in [&b"[]"[..], br#"{"value": 3}"#, br#"{"items": []}"#] {
            match read_success::<Page>(shape) {
                Err(GraphError::Protocol(m)) => assert!(m.starts_with("the response is not what Graph answers"), "{m}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(shape)),
            }
        }
    }
}
