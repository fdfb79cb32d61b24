//! HTTP to Microsoft Graph and the identity platform: the token cache, and requests retried the
//! way Graph's throttling guidance asks (`Retry-After` honoured, fractional too; other transient
//! failures backed off exponentially with jitter; permanent ones reported at once).

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use super::GraphError;
use super::config::GraphConfig;

/// Renew the token this long before it expires, so that no request carries a dying one.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

pub struct Client {
    http: reqwest::Client,
    token_url: String,
    scope: String,
    client_id: String,
    client_secret: SecretString,
    token: Option<(SecretString, Instant)>,
    max_attempts: u32,
    retry_base: Duration,
    retry_max: Duration,
    max_body: u64,
    /// Requests sent, for reports and the "requests per incident" figure.
    pub requests: usize,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: Option<u64>,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    /// Transient: try again after this long (from `Retry-After`) or after a back-off.
    Retry {
        after: Option<Duration>,
        why: String,
    },
}

impl Client {
    pub fn new(cfg: &GraphConfig) -> Result<Client, GraphError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            // The bearer token must never follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hindsight/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Setup(e.to_string()))?;
        Ok(Client {
            http,
            token_url: format!("{}/{}/oauth2/v2.0/token", cfg.login_base(), cfg.tenant_id),
            scope: format!("{}/.default", cfg.graph_base()),
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            token: None,
            max_attempts: cfg.max_attempts,
            retry_base: cfg.retry_base,
            retry_max: cfg.retry_max,
            max_body: cfg.max_page_bytes,
            requests: 0,
        })
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
    async fn token(&mut self) -> Result<SecretString, GraphError> {
        if let Some((t, expires)) = &self.token
            && Instant::now() + RENEW_BEFORE < *expires
        {
            return Ok(t.clone());
        }
        let mut delay = self.retry_base;
        let mut n = 0;
        let (token, lifetime) = loop {
            n += 1;
            let attempt = self.token_attempt().await?;
            match self.after_attempt(n, &mut delay, "token request", attempt)? {
                Ok(v) => break v,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        };
        self.token = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    fn forget_token(&mut self) {
        self.token = None;
    }

    async fn token_attempt(&mut self) -> Result<Attempt<(SecretString, Duration)>, GraphError> {
        self.requests += 1;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        let resp = match self.http.post(&self.token_url).form(&form).send().await {
            Ok(r) => r,
            Err(e) => return Ok(transport(&e)),
        };
        let status = resp.status();
        if let Some(retry) = transient(status, &resp) {
            return Ok(retry);
        }
        let body = read_limited(resp, 1 << 20).await;
        let body = match body {
            Ok(b) => b,
            Err(why) => return Ok(Attempt::Retry { after: None, why: why.to_string() }),
        };
        if !status.is_success() {
            return Err(GraphError::Auth { status: status.as_u16(), detail: aad_error(&body) });
        }
        match serde_json::from_slice::<TokenResponse>(&body) {
            Ok(t) => {
                // expires_in is usually 3599; a missing one is treated as an hour.
                let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600));
                Ok(Attempt::Done((t.access_token, lifetime)))
            }
            Err(e) => Ok(Attempt::Retry { after: None, why: format!("unreadable token response: {e}") }),
        }
    }

    /// GETs a Graph URL and parses the JSON body, retrying what is transient. A 401 gets one
    /// fresh token and one more try.
    pub async fn get_json(&mut self, url: &str) -> Result<serde_json::Value, GraphError> {
        let mut refreshed = false;
        loop {
            let result = self.get_with_retries(url).await;
            match result {
                Err(GraphError::Unauthorized { .. }) if !refreshed => {
                    tracing::info!("Graph answered 401; requesting a new token once");
                    self.forget_token();
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    async fn get_with_retries(&mut self, url: &str) -> Result<serde_json::Value, GraphError> {
        let mut delay = self.retry_base;
        let mut n = 0;
        loop {
            n += 1;
            let attempt = self.get_attempt(url).await?;
            match self.after_attempt(n, &mut delay, "incidents request", attempt)? {
                Ok(v) => return Ok(v),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn get_attempt(&mut self, url: &str) -> Result<Attempt<serde_json::Value>, GraphError> {
        let token = self.token().await?;
        self.requests += 1;
        let resp = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            // Without it, enum members added after `unknownFutureValue` arrive as that sentinel.
            .header("Prefer", "include-unknown-enum-members")
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Ok(transport(&e)),
        };
        let status = resp.status();
        if let Some(retry) = transient(status, &resp) {
            return Ok(retry);
        }
        let body = match read_limited(resp, self.max_body).await {
            Ok(b) => b,
            // The same page would be as large again: not retried; the source pages smaller.
            Err(BodyError::TooLarge(limit)) if status.is_success() => return Err(GraphError::TooLarge { limit }),
            Err(why) => return Ok(Attempt::Retry { after: None, why: why.to_string() }),
        };
        match status {
            s if s.is_success() => match serde_json::from_slice(&body) {
                Ok(v) => Ok(Attempt::Done(v)),
                // A cut or garbled body is a transport accident more often than a service bug.
                Err(e) => Ok(Attempt::Retry { after: None, why: format!("response body is not valid JSON ({e})") }),
            },
            StatusCode::UNAUTHORIZED => Err(GraphError::Unauthorized { detail: graph_error(&body) }),
            StatusCode::FORBIDDEN => Err(GraphError::Forbidden { detail: graph_error(&body) }),
            StatusCode::BAD_REQUEST => Err(GraphError::BadRequest { detail: graph_error(&body) }),
            s => Err(GraphError::Status { status: s.as_u16(), detail: graph_error(&body) }),
        }
    }
}

/// 429, 503 (with their `Retry-After`), other 5xx and 408 are worth another try.
fn transient<T>(status: StatusCode, resp: &reqwest::Response) -> Option<Attempt<T>> {
    let retryable =
        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error();
    if !retryable {
        return None;
    }
    let after =
        resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    Some(Attempt::Retry { after, why: format!("HTTP {status}") })
}

fn transport<T>(e: &reqwest::Error) -> Attempt<T> {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    // reqwest's message names the URL; ours never carry secrets (the secret goes in the body).
    Attempt::Retry { after: None, why: format!("{kind}: {e}") }
}

/// `Retry-After` in seconds, fractional allowed (Graph's sample shows `2.128`). HTTP dates are
/// not used by Graph and are ignored in favour of our own back-off.
pub(super) fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

pub(super) enum BodyError {
    TooLarge(u64),
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "response larger than {limit} bytes"),
            BodyError::Read(why) => f.write_str(why),
        }
    }
}

/// The body, read in chunks and given up on as soon as it passes `limit`: an oversized answer
/// never sits in memory whole.
async fn read_limited(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Read(format!("reading the response failed: {e}"))),
        }
    }
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
        Err(_) => snippet(body),
    }
}

/// `error: error_description` of an identity platform error body (AADSTS codes included).
fn aad_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Option<String>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let desc = b.error_description.unwrap_or_default();
            // The first line holds the AADSTS code and reason; trace and correlation IDs follow.
            format!("{}: {}", b.error.unwrap_or_default(), desc.lines().next().unwrap_or_default())
        }
        Err(_) => snippet(body),
    }
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_fractional_seconds() {
        assert_eq!(parse_retry_after("2.128"), Some(Duration::from_millis(2128)));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("1e9"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn error_bodies_are_summarized() {
        let g =
            br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges","innerError":{}}}"#;
        assert_eq!(graph_error(g), "Authorization_RequestDenied: Insufficient privileges");
        let a = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}"#;
        assert_eq!(aad_error(a), "invalid_client: AADSTS7000215: Invalid client secret provided.");
        assert_eq!(graph_error(b"<html>\n<body>Bad gateway</body>"), "<html> <body>Bad gateway</body>");
    }
}
