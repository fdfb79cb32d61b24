//! An in-process fake of the Microsoft Graph security incidents API (`GET /v1.0/security/incidents`)
//! and of the Microsoft identity platform token endpoint, served on 127.0.0.1. Tests cannot reach
//! the real services, so this fake keeps to the contract in shared/specs/graph-security-api.md,
//! failures included: client-credentials tokens that expire, `$filter`, `$top`, `$skip`, `$count`
//! and `$expand=alerts`, most recently updated first, absolute `@odata.nextLink` URLs with opaque
//! skip tokens, Graph and AADSTS error bodies, and faults on request (throttling, error statuses,
//! slow answers, cut or non-JSON bodies, expired tokens).

use std::cmp::{Ordering, Reverse};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

// Spelled out: the benches include this file by `#[path]`, which would look beside it instead.
#[path = "graph/arm.rs"]
mod arm;
#[path = "graph/hunting.rs"]
mod hunting;
#[path = "graph/sign_in.rs"]
mod sign_in;
#[path = "graph/writes.rs"]
mod writes;

#[allow(unused_imports)]
pub use sign_in::{FEDERATED_AUDIENCE, Federated, ManagedIdentity};

const INCIDENTS_PATH: &str = "/v1.0/security/incidents";
const RULES_PATH: &str = "/v1.0/security/rules/detectionRules";
const TOKEN_SUFFIX: &str = "/oauth2/v2.0/token";
/// The documentation gives no default page size for incidents; 20 stands in for the service's.
const DEFAULT_PAGE_SIZE: usize = 20;
const DEFAULT_TOKEN_LIFETIME: u64 = 3599;
const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const AAD_JSON: &str = "application/json; charset=utf-8";

/// The one app registration the token endpoint knows: its tenant, client id and secret, the
/// certificates (PEM) and federated credentials registered on it, the VM's managed identity,
/// and the application permissions granted (`None`: every one Hindsight uses).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub certificates: Vec<String>,
    pub federated: Vec<Federated>,
    pub managed_identity: Option<ManagedIdentity>,
    pub roles: Option<Vec<String>>,
}

/// The application permissions granted when a test does not say.
pub const ALL_ROLES: [&str; 3] =
    ["SecurityIncident.ReadWrite.All", "ThreatHunting.Read.All", "CustomDetection.Read.All"];

/// A failure queued for an endpoint; each request takes the next one before anything else is
/// checked, and normal answers resume when the queue is empty.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429 with body {"error":{"code":"TooManyRequests",...}} and, if Some, header Retry-After with that exact text (e.g. "1", "0.2").
    TooManyRequests { retry_after: Option<String> },
    /// 503 with optional Retry-After.
    Unavailable { retry_after: Option<String> },
    /// Any other status (500, 502, 504, 403 Authorization_RequestDenied, 400...) with a Graph error body.
    Status(u16),
    /// Wait this long before answering normally (a slow or hanging service; the client's timeout should fire first).
    Delay(Duration),
    /// Answer 200 with the normal JSON body cut in half (Content-Length matching the cut body).
    TruncatedBody,
    /// Answer 200 with a body that is not JSON ("<html>...").
    Malformed,
    /// Answer 401 InvalidAuthenticationToken as if the bearer token had expired.
    ExpiredToken,
    /// Answer normally, but with the page starting this many items later (items skipped) or,
    /// negative, earlier (items of the page before repeated), as when the list changes while
    /// it is paged. Incidents endpoint only.
    ShiftPage(isize),
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string as sent (still percent-encoded), empty when there is none.
    pub query: String,
    /// Whether an `Authorization` header was present, valid or not.
    pub authorized: bool,
    /// The `Prefer` header; several are joined with ", ".
    pub prefer: Option<String>,
}

/// The running fake. Dropping it stops the server.
pub struct FakeGraph {
    base: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<FakeState>>;

struct FakeState {
    creds: Credentials,
    base: String,
    incidents: HashMap<String, Value>,
    faults: VecDeque<Fault>,
    token_faults: VecDeque<Fault>,
    /// Every access token issued, and when it stops being accepted.
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    /// The skip tokens handed out in nextLinks.
    skip_tokens: HashMap<String, SkipToken>,
    max_top: Option<usize>,
    token_lifetime: u64,
    token_requests: usize,
    incident_requests: usize,
    requests: Vec<Recorded>,
    /// Custom detection rules as stored (either schema), and whether the app may read them
    /// (CustomDetection.Read.All).
    rules: Vec<Value>,
    rules_allowed: bool,
    writes: writes::Writes,
    hunting: hunting::Hunting,
    arm: arm::Arm,
    sign_in: sign_in::SignIn,
}

/// What a skip token stands for: an offset into the list as it is when the next page is asked
/// for (so updates in between shift the pages, as on the real service), and the query options it
/// was issued for (a token moved onto another query is refused).
struct SkipToken {
    offset: usize,
    options: Vec<(String, String)>,
}

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    // A test that panicked while holding the lock must not make every later request panic too.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeGraph {
    /// Binds 127.0.0.1:0 (ephemeral port), spawns the server on the current tokio runtime.
    pub async fn start(creds: Credentials) -> FakeGraph {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("FakeGraph: cannot bind 127.0.0.1:0: {e}"),
        };
        let base = match listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(e) => panic!("FakeGraph: no local address: {e}"),
        };
        let state = Arc::new(Mutex::new(FakeState::new(creds, base.clone())));
        // One handler for every path and method, so that every request is recorded, stray ones too.
        let app = Router::new().fallback(dispatch).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGraph { base, state, server }
    }

    /// "http://127.0.0.1:PORT"
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// The identity platform host: tokens come from POST {login_url}/{tenant}/oauth2/v2.0/token.
    pub fn login_url(&self) -> String {
        self.base.clone()
    }

    /// The Graph host: incidents are at GET {graph_url}/v1.0/security/incidents.
    pub fn graph_url(&self) -> String {
        self.base.clone()
    }

    /// Insert or replace an incident (keyed by its "id"); the value is a full Graph incident JSON object including "alerts" and "lastUpdateDateTime".
    pub fn upsert(&self, incident: Value) {
        let Some(id) = incident.get("id").and_then(Value::as_str).map(str::to_owned) else {
            panic!("FakeGraph::upsert: an incident needs a string \"id\": {incident}");
        };
        lock(&self.state).incidents.insert(id, incident);
    }

    /// Stores the tenant's custom detection rules (any schema), replacing those before.
    pub fn set_detection_rules(&self, rules: Vec<Value>) {
        lock(&self.state).rules = rules;
    }

    /// Whether the app holds CustomDetection.Read.All (default: yes); without it, 403.
    pub fn allow_detection_rules(&self, allowed: bool) {
        lock(&self.state).rules_allowed = allowed;
    }

    /// The incident as stored now (with what was written to it).
    pub fn incident(&self, id: &str) -> Option<Value> {
        lock(&self.state).incidents.get(id).cloned()
    }

    /// Whether the app holds SecurityIncident.ReadWrite.All (default: yes); without it,
    /// comments and PATCH answer 403.
    pub fn allow_incident_writes(&self, allowed: bool) {
        lock(&self.state).writes.forbidden = !allowed;
    }

    /// Whether a comment or tag write moves the incident's `lastUpdateDateTime` (default: yes).
    pub fn bump_on_write(&self, bump: bool) {
        lock(&self.state).writes.no_bump = !bump;
    }

    /// Longest comment accepted; a longer one gets 400.
    pub fn set_max_comment(&self, max: Option<usize>) {
        lock(&self.state).writes.max_comment = max;
    }

    /// Another writer (an analyst) sets these tags right after the next read of one incident.
    pub fn interleave_tags(&self, tags: &[&str]) {
        lock(&self.state).writes.interleave_tags = Some(tags.iter().map(|t| (*t).to_owned()).collect());
    }

    /// Faults for the next comment or PATCH requests, one each: `TooManyRequests` or `Status(n)`.
    pub fn push_write_fault(&self, fault: Fault) {
        check_fault(&fault);
        lock(&self.state).writes.faults.push_back(fault);
    }

    /// The next comment or PATCH is applied, then answered 504 (the answer lost on its way).
    pub fn lose_next_write_answer(&self) {
        lock(&self.state).writes.lose_answer = true;
    }

    /// Rows for every hunting query whose text contains `text`: `columns` as (name, type).
    pub fn set_hunt_result(&self, text: &str, columns: &[(&str, &str)], rows: Vec<Value>) {
        let columns = columns.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
        lock(&self.state).hunting.results.push((text.to_owned(), columns, rows));
    }

    /// Whether the app holds ThreatHunting.Read.All (default: yes).
    pub fn allow_hunting(&self, allowed: bool) {
        lock(&self.state).hunting.forbidden = !allowed;
    }

    /// Hunting answers spell the schema `Name`/`Type` (as some of the docs' samples do).
    pub fn capital_hunting_schema(&self, capital: bool) {
        lock(&self.state).hunting.capital_schema = capital;
    }

    /// Faults for the next hunting queries: `TooManyRequests`, `Status(n)` (500 with an empty
    /// message, as seen in the wild), `Delay`.
    pub fn push_hunt_fault(&self, fault: Fault) {
        check_fault(&fault);
        lock(&self.state).hunting.faults.push_back(fault);
    }

    /// The next query finds the tenant's CPU allowance spent: 429 without Retry-After, the body
    /// saying "You can run queries again in `again_in`" (e.g. "00:00:02").
    pub fn spend_hunting_cpu(&self, again_in: &str) {
        lock(&self.state).hunting.cpu_spent = Some(again_in.to_owned());
    }

    /// Hunting queries accepted per minute (default 45).
    pub fn set_hunts_per_minute(&self, n: usize) {
        lock(&self.state).hunting.per_minute = n;
    }

    /// Every hunting query takes this long to answer.
    pub fn set_hunt_latency(&self, latency: Option<Duration>) {
        lock(&self.state).hunting.latency = latency;
    }

    /// A Sentinel workspace (its ARM resource ID) and its analytics rules; set `arm_url` to
    /// `{base}/arm` to reach it.
    pub fn set_sentinel_rules(&self, workspace: &str, rules: Vec<Value>) {
        lock(&self.state).arm.workspaces.insert(workspace.to_ascii_lowercase(), rules);
    }

    /// Whether the app holds the Microsoft Sentinel Reader role (default: yes).
    pub fn allow_sentinel(&self, allowed: bool) {
        lock(&self.state).arm.forbidden = !allowed;
    }

    /// Faults for the next ARM requests: `TooManyRequests` or `Status(n)`.
    pub fn push_arm_fault(&self, fault: Fault) {
        check_fault(&fault);
        lock(&self.state).arm.faults.push_back(fault);
    }

    /// Requests to ARM so far.
    pub fn arm_requests(&self) -> usize {
        lock(&self.state).arm.requests
    }

    /// Every hunting request: (query, timespan).
    pub fn hunt_calls(&self) -> Vec<(String, Option<String>)> {
        lock(&self.state).hunting.calls.clone()
    }

    /// Every write accepted, in order: ("POST" or "PATCH", incident id).
    pub fn writes(&self) -> Vec<(String, String)> {
        lock(&self.state).writes.log.clone()
    }

    pub fn remove(&self, id: &str) {
        lock(&self.state).incidents.remove(id);
    }

    pub fn incident_count(&self) -> usize {
        lock(&self.state).incidents.len()
    }

    /// Faults for the incidents endpoint, consumed one per request, in order, before normal answers resume.
    pub fn push_fault(&self, fault: Fault) {
        check_fault(&fault);
        lock(&self.state).faults.push_back(fault);
    }

    /// Faults for the token endpoint. `Status(n)` answers n with an AADSTS7000215 `invalid_client`
    /// body, `ExpiredToken` an expired client secret (AADSTS7000222), throttling and unavailability
    /// `temporarily_unavailable`.
    pub fn push_token_fault(&self, fault: Fault) {
        check_fault(&fault);
        lock(&self.state).token_faults.push_back(fault);
    }

    /// Invalidate every token issued so far (next incidents request with an old token gets 401 InvalidAuthenticationToken).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        lock(&self.state).tokens.values_mut().for_each(|until| *until = now);
    }

    /// Largest $top accepted; a larger one gets 400 with a Graph error body (default: None = any).
    pub fn set_max_top(&self, max: Option<usize>) {
        lock(&self.state).max_top = max;
    }

    /// Token lifetime in seconds, reported in expires_in and enforced (default 3599); applies to
    /// tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        lock(&self.state).token_lifetime = secs;
    }

    /// The application permissions granted from now on (`None`: all Hindsight uses).
    pub fn set_roles(&self, roles: Option<&[&str]>) {
        lock(&self.state).creds.roles = roles.map(|r| r.iter().map(|s| s.to_string()).collect());
    }

    /// Registers a federated credential (issuer, subject) on the app.
    pub fn add_federated(&self, federated: Federated) {
        lock(&self.state).creds.federated.push(federated);
    }

    /// Client assertions (certificate or federated) accepted so far.
    pub fn assertions_accepted(&self) -> usize {
        lock(&self.state).sign_in.assertions_accepted
    }

    /// Every access token issued so far (for tests that look for them where they must not be).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state).tokens.keys().cloned().collect()
    }

    /// Requests to the token endpoint with POST, faulted ones included.
    pub fn token_requests(&self) -> usize {
        lock(&self.state).token_requests
    }

    /// Every GET to the incidents endpoint, faulted ones included.
    pub fn incident_requests(&self) -> usize {
        lock(&self.state).incident_requests
    }

    /// Every request received, in order, whatever its path or method.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        // Aborting the accept loop also drops axum's shutdown signal, so the connection tasks close
        // idle keep-alive connections too (a request in flight is finished first).
        self.server.abort();
    }
}

/// A Retry-After that is not a valid header value is a mistake in the test: say so there, not as
/// a dropped header in the answer.
fn check_fault(fault: &Fault) {
    if let Fault::TooManyRequests { retry_after: Some(text) } | Fault::Unavailable { retry_after: Some(text) } = fault
        && HeaderValue::from_str(text).is_err()
    {
        panic!("FakeGraph: Retry-After {text:?} is not a valid header value");
    }
}

impl FakeState {
    fn new(creds: Credentials, base: String) -> FakeState {
        FakeState {
            creds,
            base,
            incidents: HashMap::new(),
            faults: VecDeque::new(),
            token_faults: VecDeque::new(),
            tokens: HashMap::new(),
            tokens_issued: 0,
            skip_tokens: HashMap::new(),
            max_top: None,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            token_requests: 0,
            incident_requests: 0,
            requests: Vec::new(),
            rules: Vec::new(),
            rules_allowed: true,
            writes: writes::Writes::default(),
            hunting: hunting::Hunting::default(),
            arm: arm::Arm::default(),
            sign_in: sign_in::SignIn::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routing and recording

/// What a request path names.
enum Endpoint {
    Token {
        tenant: String,
    },
    Incidents,
    Hunting,
    /// A Sentinel workspace's analytics rules (ARM), by workspace resource ID.
    ArmRules {
        workspace: String,
    },
    /// One incident (`GET`, `PATCH`) or its comments (`POST`).
    Incident {
        id: String,
        comments: bool,
    },
    Rules,
    /// The instance metadata endpoint of an Azure VM (managed identity).
    Imds,
    Unknown,
}

fn endpoint(path: &str) -> Endpoint {
    if path == INCIDENTS_PATH {
        return Endpoint::Incidents;
    }
    if path == RULES_PATH {
        return Endpoint::Rules;
    }
    if path == sign_in::IMDS_PATH {
        return Endpoint::Imds;
    }
    if let Some(workspace) = arm::workspace(path) {
        return Endpoint::ArmRules { workspace };
    }
    if hunting::PATHS.contains(&path) {
        return Endpoint::Hunting;
    }
    if let Some((id, comments)) = writes::incident_path(path) {
        return Endpoint::Incident { id, comments };
    }
    match path.strip_prefix('/').and_then(|p| p.strip_suffix(TOKEN_SUFFIX)) {
        Some(tenant) if !tenant.is_empty() && !tenant.contains('/') => Endpoint::Token { tenant: tenant.to_owned() },
        _ => Endpoint::Unknown,
    }
}

async fn dispatch(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let endpoint = endpoint(uri.path());
    let fault = record(&state, &method, &uri, &headers, &endpoint);
    // Graph refuses a token issued for ARM's audience.
    if !matches!(endpoint, Endpoint::Token { .. } | Endpoint::ArmRules { .. } | Endpoint::Imds) {
        let bearer =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| lock(&state).arm.tokens.contains(t)) {
            return GraphError::unauthorized("Invalid audience.").respond(&headers);
        }
    }
    match endpoint {
        Endpoint::Token { tenant } if method == Method::POST => {
            token_endpoint(&state, &tenant, &headers, &body, fault).await
        }
        Endpoint::Token { .. } => AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            format!("The endpoint only accepts POST requests. Received a {method} request."),
        )
        .respond(),
        Endpoint::Incidents if method == Method::GET => {
            incidents_endpoint(&state, uri.query().unwrap_or_default(), &headers, fault).await
        }
        Endpoint::Rules if method == Method::GET => rules_endpoint(&state, uri.query().unwrap_or_default(), &headers),
        Endpoint::Imds => sign_in::imds_endpoint(&state, uri.query().unwrap_or_default(), &headers),
        Endpoint::ArmRules { workspace } => {
            arm::endpoint(&state, &workspace, uri.query().unwrap_or_default(), &headers)
        }
        Endpoint::Hunting if method == Method::POST => hunting::endpoint(&state, &headers, &body).await,
        Endpoint::Hunting => GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed on this resource."),
        )
        .respond(&headers),
        Endpoint::Incident { id, comments } => writes::endpoint(&state, &method, &id, comments, &headers, &body),
        Endpoint::Incidents | Endpoint::Rules => GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed on this resource."),
        )
        .respond(&headers),
        Endpoint::Unknown => {
            let segment = uri.path().rsplit('/').next().unwrap_or_default();
            GraphError::bad_request(format!("Resource not found for the segment '{segment}'.")).respond(&headers)
        }
    }
}

/// Records the request, counts it, and takes the next fault queued for its endpoint.
fn record(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, endpoint: &Endpoint) -> Option<Fault> {
    let prefer: Vec<&str> = headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()).collect();
    let mut s = lock(state);
    s.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        authorized: headers.contains_key(header::AUTHORIZATION),
        prefer: (!prefer.is_empty()).then(|| prefer.join(", ")),
    });
    match endpoint {
        Endpoint::Token { .. } if method == Method::POST => {
            s.token_requests += 1;
            s.token_faults.pop_front()
        }
        Endpoint::Incidents if method == Method::GET => {
            s.incident_requests += 1;
            s.faults.pop_front()
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// 200 with the first half of `body`; the body's length sets Content-Length.
fn truncated(body: &Value, content_type: &'static str) -> Response {
    let mut bytes = body.to_string().into_bytes();
    bytes.truncate(bytes.len() / 2);
    reply(StatusCode::OK, content_type, bytes)
}

/// 200 with what a misbehaving proxy or gateway might send instead of JSON.
fn malformed() -> Response {
    let page = "<html><head><title>Service Unavailable</title></head><body><h1>Try again later</h1></body></html>";
    reply(StatusCode::OK, "text/html; charset=utf-8", page)
}

fn with_retry_after(mut response: Response, retry_after: Option<String>) -> Response {
    // Checked by `check_fault` when the fault was queued.
    if let Some(value) = retry_after.and_then(|text| HeaderValue::from_str(&text).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Something shaped like a UUID, as Graph and the identity platform use for request ids.
fn uuid() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A random string of letters and digits, for access and skip tokens.
fn opaque(len: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}

/// A Graph error: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
#[derive(Debug)]
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> GraphError {
        GraphError { status, code, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn unauthorized(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
    }

    /// The error a `Fault::Status(n)` stands for; the code is the one Graph uses for that status.
    fn for_status(n: u16) -> GraphError {
        let status = StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, message) = match status.as_u16() {
            400 => ("BadRequest", "Invalid request."),
            401 => ("InvalidAuthenticationToken", "Access token validation failure."),
            403 => ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
            404 => ("NotFound", "The requested resource does not exist."),
            429 => ("TooManyRequests", "Too many requests."),
            502 => ("BadGateway", "Bad gateway."),
            503 => ("ServiceNotAvailable", "The service is temporarily unavailable."),
            504 => ("GatewayTimeout", "The gateway timed out."),
            _ => ("UnknownError", "An internal server error occurred."),
        };
        GraphError::new(status, code, message)
    }

    /// The response, with the request ids in the body and in headers as Graph sends them; the
    /// client's `client-request-id` is echoed when it sent one.
    fn respond(self, request: &HeaderMap) -> Response {
        let request_id = uuid();
        let client_request_id =
            request.get("client-request-id").and_then(|v| v.to_str().ok()).map_or_else(uuid, str::to_owned);
        let body = json!({"error": {"code": self.code, "message": self.message, "innerError": {
            "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": request_id,
            "client-request-id": client_request_id,
        }}});
        let mut response = reply(self.status, GRAPH_JSON, body.to_string());
        let headers = response.headers_mut();
        for (name, value) in [("request-id", request_id), ("client-request-id", client_request_id)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"\", error=\"invalid_token\""),
            );
        }
        response
    }
}

/// An identity platform error: `{"error","error_description":"AADSTSn: ...","error_codes",...}`.
#[derive(Debug)]
struct AadError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: impl Into<String>) -> AadError {
        AadError { status, error, code, description: description.into() }
    }

    fn body(&self) -> Value {
        let (trace_id, correlation_id) = (uuid(), uuid());
        let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.description
        );
        json!({
            "error": self.error, "error_description": description, "error_codes": [self.code],
            "timestamp": timestamp, "trace_id": trace_id, "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }

    fn respond(self) -> Response {
        reply(self.status, AAD_JSON, self.body().to_string())
    }

    fn missing(parameter: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    fn invalid_secret(client_id: &str) -> AadError {
        AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

async fn token_endpoint(
    state: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
    fault: Option<Fault>,
) -> Response {
    if let Some(fault) = fault
        && let Some(response) = token_fault(state, tenant, headers, body, fault).await
    {
        return response;
    }
    match issue_token(state, tenant, headers, body) {
        Ok(token) => reply(StatusCode::OK, AAD_JSON, token.to_string()),
        Err(e) => e.respond(),
    }
}

/// The answer a fault gives instead of the normal one; `None` after a `Delay`, which answers
/// normally, late.
async fn token_fault(
    state: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
    fault: Fault,
) -> Option<Response> {
    let unavailable = |status, retry_after| {
        let error = AadError::new(
            status,
            "temporarily_unavailable",
            50000,
            "There was an error issuing a token or an issue with our sign-in service.",
        );
        with_retry_after(error.respond(), retry_after)
    };
    let client_id = lock(state).creds.client_id.clone();
    Some(match fault {
        Fault::TooManyRequests { retry_after } => unavailable(StatusCode::TOO_MANY_REQUESTS, retry_after),
        Fault::Unavailable { retry_after } => unavailable(StatusCode::SERVICE_UNAVAILABLE, retry_after),
        Fault::Status(n) => {
            let mut error = AadError::invalid_secret(&client_id);
            error.status = StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error.respond()
        }
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Fault::TruncatedBody => {
            let normal = issue_token(state, tenant, headers, body).unwrap_or_else(|e| e.body());
            truncated(&normal, AAD_JSON)
        }
        Fault::Malformed => malformed(),
        Fault::ExpiredToken => AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!("The provided client secret keys for app '{client_id}' are expired."),
        )
        .respond(),
        // Pages are an incidents matter; the token endpoint answers normally.
        Fault::ShiftPage(_) => return None,
    })
}

/// The client-credentials grant, checked the way the identity platform does, then a new token.
fn issue_token(state: &Shared, tenant: &str, headers: &HeaderMap, body: &Bytes) -> Result<Value, AadError> {
    let form = token_form(headers, body);
    let mut s = lock(state);
    s.check_tenant(tenant)?;
    check_grant_type(&form)?;
    s.check_client(&form, tenant)?;
    s.check_scope(&form)?;
    let token = s.new_token(form.get("scope").map_or("", String::as_str), tenant);
    // A token for ARM's scope is ARM's only, and Graph's are Graph's only.
    if form.get("scope").is_some_and(|scope| arm::is_arm_scope(scope))
        && let Some(t) = token["access_token"].as_str()
    {
        s.arm.tokens.insert(t.to_owned());
    }
    Ok(token)
}

/// The form fields of a token request (the first of repeated ones). A body that is not
/// form-encoded has none, so the request fails on its first missing parameter, as it does there.
fn token_form(headers: &HeaderMap, body: &Bytes) -> HashMap<String, String> {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let mut form = HashMap::new();
    if form_encoded {
        for (k, v) in url::form_urlencoded::parse(body) {
            form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    form
}

fn check_grant_type(form: &HashMap<String, String>) -> Result<(), AadError> {
    match form.get("grant_type").map(String::as_str) {
        None => Err(AadError::missing("grant_type")),
        Some("client_credentials") => Ok(()),
        Some(other) => Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

impl FakeState {
    /// Tenant ids and domain names are compared without regard to case.
    fn check_tenant(&self, tenant: &str) -> Result<(), AadError> {
        // "*": a multi-tenant app every tenant consented to (an MSSP's, for the load bench).
        if tenant.eq_ignore_ascii_case(&self.creds.tenant) || self.creds.tenant == "*" {
            return Ok(());
        }
        Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing \
                 into the correct cloud."
            ),
        ))
    }

    fn check_client(&mut self, form: &HashMap<String, String>, tenant: &str) -> Result<(), AadError> {
        let Some(client_id) = form.get("client_id") else {
            return Err(AadError::missing("client_id"));
        };
        if *client_id != self.creds.client_id {
            // The identity platform answers an unknown app with 400 unauthorized_client, not 401.
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can \
                     happen if the application has not been installed by the administrator of the tenant.",
                    self.creds.tenant
                ),
            ));
        }
        if form.contains_key("client_assertion") {
            return self.check_assertion(form, tenant);
        }
        match form.get("client_secret") {
            None => Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )),
            Some(secret) if *secret == self.creds.client_secret => Ok(()),
            Some(_) => Err(AadError::invalid_secret(client_id)),
        }
    }

    /// One scope, `{resource}/.default`. Any resource is accepted: the endpoint also stands in for
    /// the identity platform of other services (a Power Automate flow's, for webhooks).
    fn check_scope(&self, form: &HashMap<String, String>) -> Result<(), AadError> {
        let Some(scope) = form.get("scope") else {
            return Err(AadError::missing("scope"));
        };
        if scope.strip_suffix("/.default").is_some_and(|resource| !resource.is_empty() && !resource.contains(' ')) {
            return Ok(());
        }
        Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value \
                 with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ))
    }

    fn new_token(&mut self, scope: &str, tenant: &str) -> Value {
        self.tokens_issued += 1;
        let lifetime = self.token_lifetime;
        let roles: Vec<String> = match &self.creds.roles {
            Some(r) => r.clone(),
            None => ALL_ROLES.iter().map(|r| r.to_string()).collect(),
        };
        let audience = scope.trim_end_matches("/.default");
        let token = sign_in::access_token(self.tokens_issued, audience, tenant, &roles, lifetime);
        self.tokens.insert(token.clone(), Instant::now() + Duration::from_secs(lifetime));
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token})
    }

    /// A live token issued here, in `Authorization: Bearer <token>`.
    fn check_bearer(&self, headers: &HeaderMap) -> Result<(), GraphError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(GraphError::unauthorized("Access token is empty."));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, token)| token.trim());
        match token.and_then(|t| self.tokens.get(t)) {
            None => Err(GraphError::unauthorized("CompactToken parsing failed with error code: 80049217")),
            Some(until) if Instant::now() >= *until => {
                Err(GraphError::unauthorized("Lifetime validation failed, the token is expired."))
            }
            Some(_) => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Custom detection rules (GET /v1.0/security/rules/detectionRules)

/// A page of the rules: `$top` of them (at most 100) from `$skip`, with an `@odata.nextLink`
/// while more remain; 403 without CustomDetection.Read.All, as the service answers.
fn rules_endpoint(state: &Shared, query: &str, headers: &HeaderMap) -> Response {
    let s = lock(state);
    if let Err(e) = s.check_bearer(headers) {
        return e.respond(headers);
    }
    if !s.rules_allowed {
        return GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
        .respond(headers);
    }
    let option = |k: &str| {
        query
            .split('&')
            .find_map(|p| p.split_once('=').filter(|(key, _)| *key == k).and_then(|(_, v)| v.parse::<usize>().ok()))
    };
    let top = option("$top").unwrap_or(100).min(100);
    let skip = option("$skip").unwrap_or(0);
    let page: Vec<&Value> = s.rules.iter().skip(skip).take(top).collect();
    let mut body = serde_json::json!({
        "@odata.context": format!("{}/v1.0/$metadata#security/rules/detectionRules", s.base),
        "value": page,
    });
    if skip + top < s.rules.len() {
        body["@odata.nextLink"] = Value::String(format!("{}{RULES_PATH}?$top={top}&$skip={}", s.base, skip + top));
    }
    reply(StatusCode::OK, GRAPH_JSON, body.to_string())
}

// ---------------------------------------------------------------------------------------------
// Incidents endpoint

async fn incidents_endpoint(state: &Shared, query: &str, headers: &HeaderMap, fault: Option<Fault>) -> Response {
    if let Some(fault) = fault
        && let Some(response) = incidents_fault(state, query, headers, fault).await
    {
        return response;
    }
    let page = {
        let mut s = lock(state);
        s.check_bearer(headers).and_then(|()| s.list(query, wants_unknown_enum_members(headers), 0))
    };
    match page {
        Ok(page) => reply(StatusCode::OK, GRAPH_JSON, page.to_string()),
        Err(e) => e.respond(headers),
    }
}

/// The answer a fault gives instead of the normal one; `None` after a `Delay`, which answers
/// normally, late.
async fn incidents_fault(state: &Shared, query: &str, headers: &HeaderMap, fault: Fault) -> Option<Response> {
    Some(match fault {
        Fault::TooManyRequests { retry_after } => {
            let error = GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Retry after the interval in the Retry-After header.",
            );
            with_retry_after(error.respond(headers), retry_after)
        }
        Fault::Unavailable { retry_after } => {
            with_retry_after(GraphError::for_status(503).respond(headers), retry_after)
        }
        Fault::Status(n) => GraphError::for_status(n).respond(headers),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Fault::TruncatedBody => {
            // The fault comes before the token is checked, so the page is cut whatever the token.
            let normal = lock(state).list(query, wants_unknown_enum_members(headers), 0);
            let normal = normal.unwrap_or_else(|_| json!({"value": []}));
            truncated(&normal, GRAPH_JSON)
        }
        Fault::Malformed => malformed(),
        Fault::ExpiredToken => {
            GraphError::unauthorized("Lifetime validation failed, the token is expired.").respond(headers)
        }
        Fault::ShiftPage(shift) => {
            let page = {
                let mut s = lock(state);
                s.check_bearer(headers).and_then(|()| s.list(query, wants_unknown_enum_members(headers), shift))
            };
            match page {
                Ok(page) => reply(StatusCode::OK, GRAPH_JSON, page.to_string()),
                Err(e) => e.respond(headers),
            }
        }
    })
}

/// `Prefer: include-unknown-enum-members`, possibly among other preferences.
fn wants_unknown_enum_members(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("include-unknown-enum-members"))
}

impl FakeState {
    /// One page of incidents for a query string: matching, most recently updated first.
    fn list(&mut self, raw_query: &str, unknown_enum_members: bool, shift: isize) -> Result<Value, GraphError> {
        let query = ListQuery::parse(raw_query)?;
        let top = self.page_size(query.top)?;
        let offset = (query.skip.unwrap_or(0) + self.skip_token_offset(&query)?).saturating_add_signed(shift);
        let matching = self.matching(&query.filter);
        let total = matching.len();
        let value: Vec<Value> = matching
            .into_iter()
            .skip(offset)
            .take(top)
            .map(|incident| present(incident, query.expand_alerts, unknown_enum_members))
            .collect();
        let mut page = Map::new();
        page.insert("@odata.context".into(), json!(self.context_url(query.expand_alerts)));
        if query.count {
            page.insert("@odata.count".into(), json!(total));
        }
        page.insert("value".into(), Value::Array(value));
        if top > 0 && offset + top < total {
            page.insert("@odata.nextLink".into(), json!(self.next_link(&query, offset + top)));
        }
        Ok(Value::Object(page))
    }

    fn page_size(&self, top: Option<usize>) -> Result<usize, GraphError> {
        match (top, self.max_top) {
            (Some(top), Some(max)) if top > max => Err(GraphError::bad_request(format!(
                "The limit of '{max}' for Top query has been exceeded. The value from the incoming request is '{top}'."
            ))),
            (Some(top), _) => Ok(top),
            (None, max) => Ok(max.map_or(DEFAULT_PAGE_SIZE, |max| max.min(DEFAULT_PAGE_SIZE))),
        }
    }

    fn skip_token_offset(&self, query: &ListQuery) -> Result<usize, GraphError> {
        let Some(token) = &query.skip_token else {
            return Ok(0);
        };
        match self.skip_tokens.get(token) {
            None => Err(GraphError::bad_request("The $skiptoken is not valid.")),
            Some(issued) if same_options(&issued.options, &query.options) => Ok(issued.offset),
            Some(_) => Err(GraphError::bad_request(
                "The $skiptoken was issued for other query options; follow @odata.nextLink as it is.",
            )),
        }
    }

    /// The incidents the filter keeps, most recently updated first (ties by id), as documented.
    fn matching(&self, filter: &[Condition]) -> Vec<&Value> {
        let mut items: Vec<&Value> =
            self.incidents.values().filter(|incident| filter.iter().all(|c| c.holds(incident))).collect();
        // `Reverse(None)`, no or an unreadable time, sorts after every time.
        items.sort_by_cached_key(|incident| {
            let id = incident.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            (Reverse(instant(incident, "lastUpdateDateTime")), id)
        });
        items
    }

    fn context_url(&self, expand_alerts: bool) -> String {
        let expansion = if expand_alerts { "(alerts())" } else { "" };
        format!("{}/v1.0/$metadata#security/incidents{expansion}", self.base)
    }

    /// The absolute URL of the next page: the same options and a new `$skiptoken`, or, for a
    /// client paging with `$skip` itself, the next `$skip`.
    fn next_link(&mut self, query: &ListQuery, offset: usize) -> String {
        let mut options = query.options.clone();
        if query.skip.is_some() {
            options.push(("$skip".into(), offset.to_string()));
        } else {
            let token = opaque(24);
            self.skip_tokens.insert(token.clone(), SkipToken { offset, options: query.options.clone() });
            options.push(("$skiptoken".into(), token));
        }
        format!("{}{INCIDENTS_PATH}?{}", self.base, encode_query(&options))
    }
}

fn same_options(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// `$name=value&...` with the values percent-encoded, spaces as %20 as Graph writes them.
fn encode_query(options: &[(String, String)]) -> String {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>().replace('+', "%20");
    options.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

fn instant(value: &Value, field: &str) -> Option<DateTime<Utc>> {
    let text = value.get(field)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// An incident as the response carries it: alerts only with `$expand=alerts`, and enum members
/// added after `unknownFutureValue` only to clients that asked for them.
fn present(incident: &Value, expand_alerts: bool, unknown_enum_members: bool) -> Value {
    let mut incident = incident.clone();
    let Some(fields) = incident.as_object_mut() else {
        return incident;
    };
    if !expand_alerts {
        fields.remove("alerts");
    }
    if !unknown_enum_members {
        hide_evolved_members(fields);
    }
    incident
}

/// Members of Graph's evolvable enums listed after `unknownFutureValue`: without
/// `Prefer: include-unknown-enum-members` the service sends that sentinel instead.
const EVOLVED_INCIDENT_STATUS: &[&str] = &["awaitingAction"];
const EVOLVED_SERVICE_SOURCE: &[&str] = &[
    "microsoftDefenderForCloud",
    "microsoftSentinel",
    "microsoftInsiderRiskManagement",
    "microsoftThreatIntelligence",
];
const EVOLVED_DETECTION_SOURCE: &[&str] = &[
    "microsoftDefenderForCloud",
    "microsoftDefenderForIoT",
    "microsoftDefenderForServers",
    "microsoftDefenderForStorage",
    "microsoftDefenderForDNS",
    "microsoftDefenderForDatabases",
    "microsoftDefenderForContainers",
    "microsoftDefenderForNetwork",
    "microsoftDefenderForAppService",
    "microsoftDefenderForKeyVault",
    "microsoftDefenderForResourceManager",
    "microsoftDefenderForApiManagement",
    "nrtAlerts",
    "scheduledAlerts",
    "microsoftDefenderThreatIntelligenceAnalytics",
    "builtInMl",
    "microsoftInsiderRiskManagement",
    "microsoftThreatIntelligence",
    "microsoftDefenderForAIServices",
    "securityCopilot",
    "microsoftSentinel",
];

fn hide_evolved_members(incident: &mut Map<String, Value>) {
    hide_evolved(incident, "status", EVOLVED_INCIDENT_STATUS);
    let alerts = incident.get_mut("alerts").and_then(Value::as_array_mut).into_iter().flatten();
    for alert in alerts.filter_map(Value::as_object_mut) {
        hide_evolved(alert, "serviceSource", EVOLVED_SERVICE_SOURCE);
        hide_evolved(alert, "detectionSource", EVOLVED_DETECTION_SOURCE);
    }
}

fn hide_evolved(object: &mut Map<String, Value>, field: &str, evolved: &[&str]) {
    if let Some(value) = object.get_mut(field)
        && value.as_str().is_some_and(|v| evolved.iter().any(|e| e.eq_ignore_ascii_case(v)))
    {
        *value = json!("unknownFutureValue");
    }
}

// ---------------------------------------------------------------------------------------------
// Query options

/// The query options of a list request.
#[derive(Default)]
struct ListQuery {
    filter: Vec<Condition>,
    top: Option<usize>,
    skip: Option<usize>,
    skip_token: Option<String>,
    expand_alerts: bool,
    count: bool,
    /// The options a nextLink repeats, decoded, in the order received (all but `$skip` and
    /// `$skiptoken`).
    options: Vec<(String, String)>,
}

impl ListQuery {
    fn parse(raw: &str) -> Result<ListQuery, GraphError> {
        let mut query = ListQuery::default();
        let mut seen = HashSet::new();
        for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            // Parameters without a `$` are not query options; the service ignores them.
            if !name.starts_with('$') {
                continue;
            }
            if !seen.insert(name.to_string()) {
                return Err(GraphError::bad_request(format!(
                    "Query option '{name}' was specified more than once, but it must be specified at most once."
                )));
            }
            query.apply(&name, &value)?;
        }
        Ok(query)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), GraphError> {
        match name {
            "$filter" => self.filter = parse_filter(value).map_err(GraphError::bad_request)?,
            "$top" => self.top = Some(parse_number(name, value)?),
            "$expand" => self.expand_alerts = parse_expand(value)?,
            "$count" => self.count = parse_bool(name, value)?,
            // Accepted and ignored: `$select` only trims fields; `$orderby` is not documented for
            // incidents (Elastic's connector sends it and gets answers), and the documented order
            // is kept so that a client relying on another one shows up.
            "$select" | "$orderby" => {}
            "$skip" => {
                self.skip = Some(parse_number(name, value)?);
                return Ok(());
            }
            "$skiptoken" => {
                self.skip_token = Some(value.to_owned());
                return Ok(());
            }
            other => {
                return Err(GraphError::bad_request(format!("The query parameter '{other}' is not supported.")));
            }
        }
        self.options.push((name.to_owned(), value.to_owned()));
        Ok(())
    }
}

fn parse_number(name: &str, value: &str) -> Result<usize, GraphError> {
    value
        .trim()
        .parse()
        .map_err(|_| GraphError::bad_request(format!("Invalid value '{value}' for {name} query option found.")))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, GraphError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(GraphError::bad_request(format!("Invalid value '{value}' for {name} query option found."))),
    }
}

fn parse_expand(value: &str) -> Result<bool, GraphError> {
    match value.trim() {
        "alerts" => Ok(true),
        other => Err(GraphError::bad_request(format!(
            "Could not find a property named '{other}' on type 'microsoft.graph.security.incident'."
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// $filter: comparisons of the documented properties, joined with `and`

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

impl Op {
    /// Operators are lower case in OData 4.0.
    fn parse(word: &str) -> Option<Op> {
        Some(match word {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            "le" => Op::Le,
            "lt" => Op::Lt,
            _ => return None,
        })
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering.is_eq(),
            Op::Ne => ordering.is_ne(),
            Op::Ge => ordering.is_ge(),
            Op::Gt => ordering.is_gt(),
            Op::Le => ordering.is_le(),
            Op::Lt => ordering.is_lt(),
        }
    }
}

/// One comparison of a `$filter`.
#[derive(Debug)]
enum Condition {
    /// A DateTimeOffset property against an instant.
    Time { field: &'static str, op: Op, at: DateTime<Utc> },
    /// A string or enum property against a quoted text, or `null` (None); `eq` or `ne`.
    Text { field: &'static str, op: Op, value: Option<String> },
}

const TIME_FIELDS: [&str; 2] = ["createdDateTime", "lastUpdateDateTime"];
const TEXT_FIELDS: [&str; 5] = ["assignedTo", "classification", "determination", "severity", "status"];

impl Condition {
    fn holds(&self, incident: &Value) -> bool {
        match self {
            Condition::Time { field, op, at } => match instant(incident, field) {
                Some(t) => op.holds(t.cmp(at)),
                // A missing value compares as null: only `ne` holds.
                None => *op == Op::Ne,
            },
            Condition::Text { field, op, value } => {
                let actual = incident.get(*field).and_then(Value::as_str);
                // Enum members are matched without regard to case: the service filters on the
                // member, however a payload happens to spell it.
                let equal = match (actual, value) {
                    (Some(a), Some(v)) => a.eq_ignore_ascii_case(v),
                    (None, None) => true,
                    _ => false,
                };
                equal == (*op == Op::Eq)
            }
        }
    }
}

/// A lexical piece of a `$filter`.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Paren,
}

fn parse_filter(filter: &str) -> Result<Vec<Condition>, String> {
    let tokens = tokenize(filter)?;
    if tokens.is_empty() {
        return Err("Invalid filter clause: the $filter expression is empty.".into());
    }
    if tokens.contains(&Token::Paren) || tokens.iter().any(|t| matches!(t, Token::Word(w) if w == "or" || w == "not")) {
        return Err(format!(
            "Invalid filter clause: '{filter}': this fake supports only comparisons joined with 'and'."
        ));
    }
    tokens.split(|t| matches!(t, Token::Word(w) if w == "and")).map(|clause| comparison(clause, filter)).collect()
}

/// Splits a filter into words, quoted texts (`''` stands for a quote) and parentheses.
fn tokenize(filter: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            tokens.push(Token::Paren);
        } else if c == '\'' {
            chars.next();
            tokens.push(Token::Quoted(quoted(&mut chars, filter)?));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace() && !"()'".contains(**c)) {
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

/// The rest of a quoted text, after its opening quote.
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, filter: &str) -> Result<String, String> {
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return Err(format!("Invalid filter clause: unterminated string literal in '{filter}'.")),
            Some('\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                text.push('\'');
            }
            Some('\'') => return Ok(text),
            Some(c) => text.push(c),
        }
    }
}

/// `property op literal`.
fn comparison(clause: &[Token], filter: &str) -> Result<Condition, String> {
    let [Token::Word(property), Token::Word(op), literal] = clause else {
        return Err(format!("Invalid filter clause: syntax error in '{filter}': expected 'property operator value'."));
    };
    let Some(op) = Op::parse(op) else {
        return Err(format!("Invalid filter clause: unknown operator '{op}' in '{filter}'."));
    };
    if let Some(field) = TIME_FIELDS.iter().find(|f| *f == property) {
        return time_comparison(field, op, literal);
    }
    if let Some(field) = TEXT_FIELDS.iter().find(|f| *f == property) {
        return text_comparison(field, op, literal);
    }
    Err(format!(
        "Invalid filter clause: Could not find a property named '{property}' on type 'microsoft.graph.security.incident'."
    ))
}

/// Datetimes are unquoted ISO-8601 with an offset (`2026-11-20T08:00:00Z`, fractions allowed),
/// compared as instants.
fn time_comparison(field: &'static str, op: Op, literal: &Token) -> Result<Condition, String> {
    match literal {
        Token::Word(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Ok(Condition::Time { field, op, at: at.with_timezone(&Utc) }),
            Err(_) => Err(format!(
                "Invalid filter clause: The DateTimeOffset text '{text}' should be in format \
                 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range."
            )),
        },
        _ => Err(format!(
            "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types \
             'Edm.DateTimeOffset' and 'Edm.String' for operator kind '{op:?}' on '{field}'."
        )),
    }
}

/// Strings and enum members are quoted; only `eq` and `ne` are supported on them here.
fn text_comparison(field: &'static str, op: Op, literal: &Token) -> Result<Condition, String> {
    if !matches!(op, Op::Eq | Op::Ne) {
        return Err(format!("Invalid filter clause: this fake supports only 'eq' and 'ne' on '{field}'."));
    }
    match literal {
        Token::Quoted(text) => Ok(Condition::Text { field, op, value: Some(text.clone()) }),
        Token::Word(word) if word == "null" => Ok(Condition::Text { field, op, value: None }),
        Token::Word(word) => Err(format!("Invalid filter clause: '{word}' is not a quoted value for '{field}'.")),
        Token::Paren => Err(format!("Invalid filter clause: a value is missing for '{field}'.")),
    }
}
