//! Entra ID access tokens, for everything Hindsight signs in for: the Graph source (Graph and
//! Azure Resource Manager) and webhooks that want a bearer token (Power Automate flows restricted
//! to a tenant). One client-credentials implementation: the request, the cache, the retries, and
//! errors that name what to fix but never carry the credential.
//!
//! A token is cached per (sign-in host, tenant, client ID, scope, credential) and renewed
//! [`RENEW_BEFORE`] its expiry, so no request carries a dying one. The sources of one daemon
//! share one cache ([`shared`]): an MSSP's sources that sign in with the same app to the same
//! tenant ask once. How the app proves who it is is a [`Credential`] (shared
//! `specs/entra-credentials.md`): a client secret, a certificate, a Kubernetes workload identity,
//! or the Azure VM's managed identity.

pub mod certificate;
pub mod claims;
pub mod imds;
pub mod settings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::clock::{Clock, SystemClock};

pub use settings::{CredentialKind, SignIn};

/// The global cloud's sign-in host; US Gov, China or a test server are set in configuration.
pub const GLOBAL_LOGIN: &str = "https://login.microsoftonline.com";

/// Renew a token this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A token answer larger than this is not a token answer.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

/// The client assertion type of certificates and federated tokens alike.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the app proves its identity in the client-credentials flow.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// A client secret from the app registration.
    Secret(SecretString),
    /// A certificate the app registration holds, with its private key: a fresh signed client
    /// assertion for each token request.
    Certificate(Arc<certificate::Certificate>),
    /// A federated token (Kubernetes projected service-account token) in this file, re-read for
    /// each token request: the kubelet rotates it.
    WorkloadIdentity(PathBuf),
    /// The Azure VM's managed identity, through the instance metadata endpoint.
    ManagedIdentity(imds::Identity),
}

impl Credential {
    /// Which credential, for the cache key: two sources with the same app and the same
    /// credential share tokens; a wrong secret never borrows a right one's token.
    fn id(&self) -> String {
        match self {
            Credential::Secret(s) => {
                let digest = <sha2::Sha256 as sha2::Digest>::digest(s.expose_secret().as_bytes());
                format!("secret:{}", digest[..12].iter().map(|b| format!("{b:02x}")).collect::<String>())
            }
            Credential::Certificate(c) => format!("certificate:{}", c.thumbprint),
            Credential::WorkloadIdentity(path) => format!("federated:{}", path.display()),
            Credential::ManagedIdentity(m) => m.id(),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret([redacted])"),
            Credential::Certificate(c) => write!(f, "{c:?}"),
            Credential::WorkloadIdentity(p) => write!(f, "WorkloadIdentity({})", p.display()),
            Credential::ManagedIdentity(m) => write!(f, "ManagedIdentity({})", m.id()),
        }
    }
}

/// An app registration in one tenant: who signs in, and where.
#[derive(Debug, Clone)]
pub struct App {
    /// Sign-in host (authority), e.g. [`GLOBAL_LOGIN`]; a trailing `/` is ignored.
    pub login_url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
}

impl App {
    fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.login_url.trim_end_matches('/'), self.tenant_id)
    }

    fn key(&self, scope: &str) -> Key {
        (
            self.login_url.trim_end_matches('/').to_owned(),
            self.tenant_id.clone(),
            self.client_id.clone(),
            scope.to_owned(),
            self.credential.id(),
        )
    }
}

/// How often a transient failure (429, 5xx, 408, a dropped connection, a garbled answer) is
/// tried again before the token request is given up.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included; at least one is always made.
    pub max_attempts: u32,
    /// First back-off, doubled after each failure, with full jitter.
    pub base: Duration,
    /// Longest wait between attempts, `Retry-After` included.
    pub max: Duration,
}

impl Retry {
    /// One attempt: for callers that retry at their own level (webhook deliveries).
    pub const ONCE: Retry = Retry { max_attempts: 1, base: Duration::ZERO, max: Duration::ZERO };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The identity platform answered and said no: a wrong tenant, client ID or secret, a
    /// disabled app. Trying again will not help.
    #[error("sign-in refused (HTTP {status}): {detail}")]
    Refused { status: u16, detail: String },
    /// No usable answer within the attempts allowed.
    #[error("{}", unavailable(*.attempts, .last))]
    Unavailable { attempts: u32, last: String },
    /// The credential could not be used on this side: a federated token file missing, no
    /// instance metadata endpoint, an assertion that could not be signed.
    #[error("{detail}")]
    Credential { detail: String },
}

fn unavailable(attempts: u32, last: &str) -> String {
    if attempts <= 1 {
        format!("token request: {last}")
    } else {
        format!("token request failed {attempts} times; last: {last}")
    }
}

/// (sign-in host, tenant, client ID, scope, credential)
type Key = (String, String, String, String, String);

/// One key's cached token, behind its own async lock, and the requests sent for it.
#[derive(Default)]
struct Slot {
    cached: tokio::sync::Mutex<Option<Cached>>,
    requests: AtomicUsize,
}

struct Cached {
    token: SecretString,
    expires: DateTime<Utc>,
}

/// The token client. Share one per set of callers that should share tokens; it is safe to use
/// from many tasks at once (callers of the same key wait for one request rather than each
/// sending their own).
pub struct TokenClient {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    retry: Retry,
    /// One slot per key, each behind its own async lock, so that a slow sign-in for one app
    /// does not hold up another.
    cache: Mutex<HashMap<Key, Arc<Slot>>>,
    requests: AtomicUsize,
    /// For the instance metadata endpoint: never through a proxy, a short connect timeout.
    imds: OnceLock<reqwest::Client>,
}

/// The daemon's one token client: every Graph source (and its ARM and hunting clients) asks it,
/// so tokens are shared by everything that signs in with the same app to the same tenant.
/// Connections are not pooled: a token is asked for about once an hour, and a pooled connection
/// would outlive the runtime that opened it.
pub fn shared() -> &'static TokenClient {
    static SHARED: OnceLock<TokenClient> = OnceLock::new();
    SHARED.get_or_init(|| {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!("hindsight/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only a TLS provider missing fails here, and one is installed just above.
            .unwrap_or_default();
        TokenClient::new(http, Retry::ONCE)
    })
}

/// What one attempt came to.
pub(crate) enum Attempt {
    Done(SecretString, Duration),
    Retry { after: Option<Duration>, why: String },
}

impl TokenClient {
    /// `http` should not follow redirects (a token answer never is one) and should carry the
    /// caller's timeouts. Expiry and back-off go by the system clock.
    pub fn new(http: reqwest::Client, retry: Retry) -> TokenClient {
        TokenClient::with_clock(http, retry, Arc::new(SystemClock))
    }

    /// As [`TokenClient::new`], with expiry and back-off on `clock`.
    pub fn with_clock(http: reqwest::Client, retry: Retry, clock: Arc<dyn Clock>) -> TokenClient {
        TokenClient {
            http,
            clock,
            retry,
            cache: Mutex::new(HashMap::new()),
            requests: AtomicUsize::new(0),
            imds: OnceLock::new(),
        }
    }

    /// Token requests sent so far, retries included.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn slot(&self, key: Key) -> Arc<Slot> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(key).or_default().clone()
    }

    /// Token requests sent for `app` and `scope` so far, retries included.
    pub fn requests_for(&self, app: &App, scope: &str) -> usize {
        self.slot(app.key(scope)).requests.load(Ordering::Relaxed)
    }

    /// A token for `scope` (an audience plus `/.default`), from the cache while it has more than
    /// [`RENEW_BEFORE`] to live, freshly requested otherwise, retried on the client's policy.
    pub async fn token(&self, app: &App, scope: &str) -> Result<SecretString, TokenError> {
        self.token_with(app, scope, self.retry).await
    }

    /// [`TokenClient::token`], with the caller's retry policy (each source has its own).
    pub async fn token_with(&self, app: &App, scope: &str, retry: Retry) -> Result<SecretString, TokenError> {
        let slot = self.slot(app.key(scope));
        let mut cached = slot.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && self.clock.now() + RENEW_BEFORE < c.expires
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.request(app, scope, retry, &slot.requests).await?;
        let expires = self.clock.now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
        *cached = Some(Cached { token: token.clone(), expires });
        Ok(token)
    }

    /// Drops the cached token for `scope`: the service refused it (revoked, or its roles
    /// changed), so the next call asks for a new one.
    pub async fn forget(&self, app: &App, scope: &str) {
        *self.slot(app.key(scope)).cached.lock().await = None;
    }

    async fn request(
        &self,
        app: &App,
        scope: &str,
        retry: Retry,
        counter: &AtomicUsize,
    ) -> Result<(SecretString, Duration), TokenError> {
        let url = app.token_url();
        let max_attempts = retry.max_attempts.max(1);
        let mut delay = retry.base;
        let mut n = 0;
        loop {
            n += 1;
            counter.fetch_add(1, Ordering::Relaxed);
            let why = match self.attempt(app, &url, scope).await? {
                Attempt::Done(token, lifetime) => return Ok((token, lifetime)),
                Attempt::Retry { after, why } if n < max_attempts => {
                    // Full jitter on our own back-off; a Retry-After is the server's word and kept.
                    let wait = match after {
                        Some(d) => d.min(retry.max),
                        None => {
                            let jittered = delay.mul_f64(rand::rng().random_range(0.5..=1.0));
                            delay = (delay * 2).min(retry.max);
                            jittered
                        }
                    };
                    tracing::warn!(attempt = n, wait_ms = wait.as_millis() as u64, "token request: {why}; retrying");
                    self.clock.sleep(wait).await;
                    continue;
                }
                Attempt::Retry { why, .. } => why,
            };
            return Err(TokenError::Unavailable { attempts: n, last: why });
        }
    }

    async fn attempt(&self, app: &App, url: &str, scope: &str) -> Result<Attempt, TokenError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut form =
            vec![("grant_type", "client_credentials"), ("client_id", app.client_id.as_str()), ("scope", scope)];
        let assertion;
        match &app.credential {
            // In the form body, never the URL: reqwest's errors name the URL.
            Credential::Secret(s) => form.push(("client_secret", s.expose_secret())),
            Credential::Certificate(c) => {
                // A new assertion (new jti, new times) for every request, retries included.
                assertion = c
                    .assertion(url, &app.client_id, self.clock.now())
                    .map_err(|detail| TokenError::Credential { detail })?;
                form.extend([("client_assertion_type", JWT_BEARER), ("client_assertion", assertion.as_str())]);
            }
            Credential::WorkloadIdentity(path) => {
                // Re-read for every request: the kubelet rotates the file, and an old token expires.
                assertion = read_federated_token(path).await?;
                form.extend([("client_assertion_type", JWT_BEARER), ("client_assertion", assertion.as_str())]);
            }
            Credential::ManagedIdentity(identity) => {
                let http = self.imds.get_or_init(|| {
                    reqwest::Client::builder()
                        .no_proxy()
                        .connect_timeout(imds::CONNECT_TIMEOUT)
                        .timeout(Duration::from_secs(30))
                        .redirect(reqwest::redirect::Policy::none())
                        .pool_max_idle_per_host(0)
                        .build()
                        .unwrap_or_default()
                });
                return identity.attempt(http, scope).await;
            }
        }
        let resp = match self.http.post(url).form(&form).send().await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry { after: None, why: crate::net::transport_error(e) }),
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
        {
            let after = crate::net::retry_after_header(resp.headers(), self.clock.now());
            return Ok(Attempt::Retry { after, why: format!("HTTP {status}") });
        }
        let body = match crate::net::read_limited(resp, MAX_TOKEN_RESPONSE).await {
            Ok(b) => b,
            Err(why) => return Ok(Attempt::Retry { after: None, why: why.to_string() }),
        };
        if !status.is_success() {
            return Err(TokenError::Refused { status: status.as_u16(), detail: aad_error(&body) });
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: SecretString,
            expires_in: Option<u64>,
        }
        match serde_json::from_slice::<TokenResponse>(&body) {
            // expires_in is usually 3599; a missing one is taken as an hour.
            Ok(t) => Ok(Attempt::Done(t.access_token, Duration::from_secs(t.expires_in.unwrap_or(3600)))),
            // serde_json's message names the field and position, never the value.
            Err(e) => Ok(Attempt::Retry { after: None, why: format!("unreadable token response: {e}") }),
        }
    }
}

/// The federated token in `path`, or an error that says where it should have come from.
async fn read_federated_token(path: &std::path::Path) -> Result<String, TokenError> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        Ok(_) => Err(TokenError::Credential {
            detail: format!("workload identity: the federated token file {} is empty", path.display()),
        }),
        Err(e) => Err(TokenError::Credential {
            detail: format!(
                "workload identity: cannot read the federated token file {} ({e}); on AKS the pod needs the label azure.workload.identity/use: \"true\" and a service account annotated with azure.workload.identity/client-id",
                path.display()
            ),
        }),
    }
}

/// `error: first line of error_description` of an identity platform error (its AADSTS code and
/// reason; trace and correlation IDs follow on later lines), or the start of whatever came.
pub fn aad_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Option<String>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let desc = b.error_description.unwrap_or_default();
            format!("{}: {}", b.error.unwrap_or_default(), desc.lines().next().unwrap_or_default())
        }
        Err(_) => crate::net::snippet(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use axum::extract::{Form, State};
    use axum::http::StatusCode as Status;
    use axum::response::{IntoResponse, Response};
    use std::sync::Mutex as StdMutex;

    const SECRET: &str = "s3cret-VALUE-never-shown";

    /// Status, headers and body of one scripted answer.
    type Answer = (u16, Vec<(&'static str, &'static str)>, String);

    /// A token endpoint on 127.0.0.1 answering from a script: each request pops the next
    /// answer (status, headers, body); an empty script issues tokens. Every form is recorded.
    #[derive(Clone, Default)]
    struct Fake {
        script: Arc<StdMutex<Vec<Answer>>>,
        forms: Arc<StdMutex<Vec<HashMap<String, String>>>>,
        lifetime: Arc<StdMutex<u64>>,
    }

    async fn endpoint(State(fake): State<Fake>, Form(form): Form<HashMap<String, String>>) -> Response {
        let n = {
            let mut forms = fake.forms.lock().unwrap();
            forms.push(form.clone());
            forms.len()
        };
        let next = {
            let mut script = fake.script.lock().unwrap();
            (!script.is_empty()).then(|| script.remove(0))
        };
        match next {
            Some((status, headers, body)) => {
                let mut r = (Status::from_u16(status).unwrap(), body).into_response();
                for (k, v) in headers {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                r
            }
            None => axum::Json(serde_json::json!({
                "token_type": "Bearer",
                "expires_in": *fake.lifetime.lock().unwrap(),
                "access_token": format!("token-{n}-for-{}", form.get("scope").cloned().unwrap_or_default()),
            }))
            .into_response(),
        }
    }

    async fn serve(fake: Fake) -> String {
        *fake.lifetime.lock().unwrap() = 3599;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            axum::Router::new().route("/{tenant}/oauth2/v2.0/token", axum::routing::post(endpoint)).with_state(fake);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }

    fn app(login_url: &str) -> App {
        App {
            login_url: login_url.into(),
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "hindsight-app".into(),
            credential: Credential::Secret(SECRET.to_owned().into()),
        }
    }

    fn client(clock: Arc<ManualClock>, retry: Retry) -> TokenClient {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TokenClient::with_clock(http, retry, clock)
    }

    fn t0() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    const GRAPH: &str = "https://graph.microsoft.com/.default";
    const FLOW: &str = "https://service.flow.microsoft.com//.default";

    #[tokio::test]
    async fn client_credentials_cached_per_scope_and_renewed_before_expiry() {
        let fake = Fake::default();
        let url = serve(fake.clone()).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let tokens = client(clock.clone(), Retry::ONCE);
        let app = app(&url);

        let first = tokens.token(&app, GRAPH).await.unwrap();
        assert_eq!(first.expose_secret(), format!("token-1-for-{GRAPH}"));
        let form = fake.forms.lock().unwrap()[0].clone();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "hindsight-app");
        assert_eq!(form["client_secret"], SECRET);
        assert_eq!(form["scope"], GRAPH);

        // Cached for the same key, also under a sign-in URL written without the slash.
        assert_eq!(tokens.token(&app, GRAPH).await.unwrap().expose_secret(), first.expose_secret());
        assert_eq!(
            tokens.token(&self::app(url.trim_end_matches('/')), GRAPH).await.unwrap().expose_secret(),
            first.expose_secret()
        );
        assert_eq!(tokens.requests(), 1);
        // Another scope, another client ID: each its own token.
        assert_eq!(tokens.token(&app, FLOW).await.unwrap().expose_secret(), format!("token-2-for-{FLOW}"));
        let other = App { client_id: "other-app".into(), ..app.clone() };
        tokens.token(&other, GRAPH).await.unwrap();
        assert_eq!(tokens.requests(), 3);

        // 3599 s to live: kept until five minutes before its end, then renewed.
        clock.advance(
            chrono::Duration::seconds(3599)
                - chrono::Duration::from_std(RENEW_BEFORE).unwrap()
                - chrono::Duration::seconds(1),
        );
        assert_eq!(tokens.token(&app, GRAPH).await.unwrap().expose_secret(), first.expose_secret());
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(tokens.token(&app, GRAPH).await.unwrap().expose_secret(), format!("token-4-for-{GRAPH}"));

        // A refused token is forgotten: the next call asks again.
        tokens.forget(&app, GRAPH).await;
        assert_eq!(tokens.token(&app, GRAPH).await.unwrap().expose_secret(), format!("token-5-for-{GRAPH}"));
        assert_eq!(tokens.requests(), 5);
    }

    #[tokio::test]
    async fn callers_at_once_share_one_request() {
        let fake = Fake::default();
        let url = serve(fake.clone()).await;
        let tokens = Arc::new(client(Arc::new(ManualClock::new(t0())), Retry::ONCE));
        let app = app(&url);
        let calls = (0..8).map(|_| {
            let (tokens, app) = (tokens.clone(), app.clone());
            tokio::spawn(async move { tokens.token(&app, GRAPH).await.map(|t| t.expose_secret().to_owned()) })
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.unwrap().unwrap(), format!("token-1-for-{GRAPH}"));
        }
        assert_eq!(tokens.requests(), 1);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_on_the_clock_and_refusals_are_not() {
        let fake = Fake::default();
        let url = serve(fake.clone()).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let retry = Retry { max_attempts: 3, base: Duration::from_secs(10), max: Duration::from_secs(60) };
        let tokens = Arc::new(client(clock.clone(), retry));
        let app = app(&url);

        // A 429 asking for 30 s, then a 503: the back-off waits on the clock, so this test
        // moves the clock instead of sleeping through it.
        fake.script
            .lock()
            .unwrap()
            .extend([(429, vec![("retry-after", "30")], String::new()), (503, vec![], String::new())]);
        let started = std::time::Instant::now();
        let call = {
            let (tokens, app) = (tokens.clone(), app.clone());
            tokio::spawn(async move { tokens.token(&app, GRAPH).await })
        };
        while !call.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            clock.advance(chrono::Duration::seconds(5));
        }
        assert!(call.await.unwrap().is_ok());
        assert_eq!(tokens.requests(), 3);
        assert!(clock.now() >= t0() + chrono::Duration::seconds(30), "the Retry-After was honoured");
        assert!(started.elapsed() < Duration::from_secs(10), "waited on the clock, not in real time");

        // Three 500s: given up, saying how often and why.
        tokens.forget(&app, GRAPH).await;
        fake.script.lock().unwrap().extend((0..3).map(|_| (500, vec![("retry-after", "0")], String::new())));
        let err = tokens.token(&app, GRAPH).await.unwrap_err();
        assert_eq!(err, TokenError::Unavailable { attempts: 3, last: "HTTP 500 Internal Server Error".into() });
        assert_eq!(err.to_string(), "token request failed 3 times; last: HTTP 500 Internal Server Error");

        // A refusal is final at once, with the AADSTS reason and without the secret.
        let body = format!(
            r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the client secret value.\r\nTrace ID: 1","error_codes":[7000215],"echo":"{SECRET}"}}"#
        );
        fake.script.lock().unwrap().push((401, vec![], body));
        let before = tokens.requests();
        let err = tokens.token(&app, GRAPH).await.unwrap_err();
        assert_eq!(tokens.requests(), before + 1);
        assert!(matches!(&err, TokenError::Refused { status: 401, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "sign-in refused (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the client secret value."
        );
    }

    #[tokio::test]
    async fn nothing_shows_the_secret() {
        // Nobody listens on a port just closed: a transport error.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let app = app(&format!("http://127.0.0.1:{port}"));
        let err = client(Arc::new(ManualClock::new(t0())), Retry::ONCE).token(&app, GRAPH).await.unwrap_err();
        assert!(err.to_string().starts_with("token request: could not connect"), "{err}");
        for shown in [err.to_string(), format!("{err:?}"), format!("{app:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
        }
        assert!(format!("{app:?}").contains("Secret([redacted])"));
    }
}
