//! An in-process fake of the Microsoft Graph security incidents API and of the identity
//! platform's token endpoint, on 127.0.0.1 with an ephemeral port. It follows the contract in
//! shared/specs/graph-security-api.md: client-credentials tokens, `$filter` on
//! `lastUpdateDateTime` (and `status`), `$top`, `$expand=alerts`, most recently updated first,
//! absolute `@odata.nextLink` URLs, Graph and AADSTS error bodies; and it fails on request:
//! 429/503 with `Retry-After`, other statuses, slow answers, cut or non-JSON bodies, expired tokens.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub struct Credentials {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone, Debug)]
pub enum Fault {
    TooManyRequests { retry_after: Option<String> },
    Unavailable { retry_after: Option<String> },
    Status(u16),
    Delay(Duration),
    TruncatedBody,
    Malformed,
    ExpiredToken,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorized: bool,
    pub prefer: Option<String>,
}

struct Inner {
    creds: Credentials,
    base: String,
    incidents: BTreeMap<String, Value>,
    faults: VecDeque<Fault>,
    token_faults: VecDeque<Fault>,
    tokens: HashSet<String>,
    issued: u64,
    max_top: Option<usize>,
    lifetime: u64,
    token_requests: usize,
    incident_requests: usize,
    requests: Vec<Recorded>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct FakeGraph {
    state: Shared,
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeGraph {
    pub async fn start(creds: Credentials) -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let state: Shared = Arc::new(Mutex::new(Inner {
            creds,
            base: base.clone(),
            incidents: BTreeMap::new(),
            faults: VecDeque::new(),
            token_faults: VecDeque::new(),
            tokens: HashSet::new(),
            issued: 0,
            max_top: None,
            lifetime: 3599,
            token_requests: 0,
            incident_requests: 0,
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/security/incidents", get(incidents))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGraph { state, base, task }
    }

    pub fn base_url(&self) -> String {
        self.base.clone()
    }
    pub fn login_url(&self) -> String {
        self.base.clone()
    }
    pub fn graph_url(&self) -> String {
        self.base.clone()
    }
    pub fn upsert(&self, incident: Value) {
        let id = incident["id"].as_str().map(str::to_owned).unwrap_or_else(|| incident["id"].to_string());
        lock(&self.state).incidents.insert(id, incident);
    }
    pub fn remove(&self, id: &str) {
        lock(&self.state).incidents.remove(id);
    }
    pub fn incident_count(&self) -> usize {
        lock(&self.state).incidents.len()
    }
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.state).faults.push_back(fault);
    }
    pub fn push_token_fault(&self, fault: Fault) {
        lock(&self.state).token_faults.push_back(fault);
    }
    pub fn expire_tokens(&self) {
        lock(&self.state).tokens.clear();
    }
    pub fn set_max_top(&self, max: Option<usize>) {
        lock(&self.state).max_top = max;
    }
    pub fn set_token_lifetime(&self, secs: u64) {
        lock(&self.state).lifetime = secs;
    }
    pub fn token_requests(&self) -> usize {
        lock(&self.state).token_requests
    }
    pub fn incident_requests(&self) -> usize {
        lock(&self.state).incident_requests
    }
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": Utc::now().to_rfc3339(), "request-id": "00000000-0000-0000-0000-000000000001",
        "client-request-id": "00000000-0000-0000-0000-000000000002"}}});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": format!("{description}\r\nTrace ID: 1\r\nCorrelation ID: 2"),
        "error_codes": [7000215], "timestamp": Utc::now().to_rfc3339(), "trace_id": "1", "correlation_id": "2"});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Answers a queued fault, or `None` to answer normally. `Delay` waits, then answers normally.
async fn apply(fault: Option<Fault>, normal_body: impl FnOnce() -> Option<String>) -> Option<Response> {
    let with_retry = |status: StatusCode, code: &str, after: Option<String>| {
        let mut r = graph_error(status, code, "Too many requests or the service is unavailable.");
        if let Some(a) = after
            && let Ok(v) = a.parse()
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    };
    match fault? {
        Fault::TooManyRequests { retry_after } => {
            Some(with_retry(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", retry_after))
        }
        Fault::Unavailable { retry_after } => {
            Some(with_retry(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", retry_after))
        }
        Fault::Status(n) => {
            let status = StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match n {
                403 => "Authorization_RequestDenied",
                400 => "BadRequest",
                _ => "InternalServerError",
            };
            Some(graph_error(status, code, "Injected failure."))
        }
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::TruncatedBody => {
            let body = normal_body().unwrap_or_else(|| "{\"value\": [".into());
            let cut = body[..body.len() / 2].to_owned();
            Some((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], cut).into_response())
        }
        Fault::Malformed => Some(
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html><body>Gateway</body></html>")
                .into_response(),
        ),
        Fault::ExpiredToken => Some(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )),
    }
}

async fn token(State(state): State<Shared>, Path(tenant): Path<String>, body: String) -> Response {
    let fault = {
        let mut s = lock(&state);
        s.token_requests += 1;
        s.requests.push(Recorded {
            method: "POST".into(),
            path: format!("/{tenant}/oauth2/v2.0/token"),
            query: String::new(),
            authorized: false,
            prefer: None,
        });
        s.token_faults.pop_front()
    };
    if let Some(Fault::Status(n)) = fault {
        let status = StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return aad_error(status, "temporarily_unavailable", "AADSTS50001: Injected failure.");
    }
    if let Some(r) = apply(fault, || None).await {
        return r;
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut s = lock(&state);
    if tenant != s.creds.tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if !form.get("scope").is_some_and(|sc| sc.ends_with("/.default")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        );
    }
    if form.get("client_id") != Some(&s.creds.client_id) || form.get("client_secret") != Some(&s.creds.client_secret) {
        return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    }
    s.issued += 1;
    let token = format!("fake-token-{}-{}", s.issued, rand::random::<u64>());
    s.tokens.insert(token.clone());
    let body =
        json!({"token_type": "Bearer", "expires_in": s.lifetime, "ext_expires_in": s.lifetime, "access_token": token});
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// One condition of a `$filter`.
enum Cond {
    Time(String, DateTime<Utc>),
    Status(String),
}

fn parse_filter(f: &str) -> Result<Vec<Cond>, String> {
    let mut out = Vec::new();
    for part in f.split(" and ") {
        let words: Vec<&str> = part.split_whitespace().collect();
        match words.as_slice() {
            ["lastUpdateDateTime", op @ ("ge" | "gt" | "le" | "lt"), value] => {
                let t = DateTime::parse_from_rfc3339(value).map_err(|e| format!("invalid date-time '{value}': {e}"))?;
                out.push(Cond::Time((*op).to_owned(), t.with_timezone(&Utc)));
            }
            ["status", "eq", value] if value.starts_with('\'') && value.ends_with('\'') && value.len() >= 2 => {
                out.push(Cond::Status(value[1..value.len() - 1].to_owned()));
            }
            _ => return Err(format!("Invalid filter clause: '{part}'")),
        }
    }
    Ok(out)
}

fn matches(incident: &Value, conds: &[Cond]) -> bool {
    let updated = incident["lastUpdateDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    conds.iter().all(|c| match c {
        Cond::Status(s) => incident["status"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(s)),
        Cond::Time(op, t) => updated.is_some_and(|u| match op.as_str() {
            "ge" => u >= *t,
            "gt" => u > *t,
            "le" => u <= *t,
            _ => u < *t,
        }),
    })
}

async fn incidents(State(state): State<Shared>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let query = query.unwrap_or_default();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let fault = {
        let mut s = lock(&state);
        s.incident_requests += 1;
        s.requests.push(Recorded {
            method: "GET".into(),
            path: "/v1.0/security/incidents".into(),
            query: query.clone(),
            authorized: bearer.is_some(),
            prefer: headers.get("prefer").and_then(|v| v.to_str().ok()).map(str::to_owned),
        });
        s.faults.pop_front()
    };
    let normal = || page(&state, &query, bearer.as_deref()).ok().map(|(_, b)| b);
    if let Some(r) = apply(fault, normal).await {
        return r;
    }
    match page(&state, &query, bearer.as_deref()) {
        Ok((status, body)) => (status, [(header::CONTENT_TYPE, "application/json")], Body::from(body)).into_response(),
        Err(r) => r,
    }
}

/// The normal answer: a page of incidents, or the error the request deserves.
#[allow(clippy::result_large_err)]
fn page(state: &Shared, query: &str, bearer: Option<&str>) -> Result<(StatusCode, String), Response> {
    let s = lock(state);
    if !bearer.is_some_and(|b| s.tokens.contains(b)) {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        ));
    }
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let conds = match params.get("$filter") {
        Some(f) => parse_filter(f).map_err(|m| graph_error(StatusCode::BAD_REQUEST, "BadRequest", &m))?,
        None => vec![],
    };
    // The documentation states no default page size; 20 stands in for one.
    let top: usize = match params.get("$top") {
        Some(t) => t.parse().map_err(|_| graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $top."))?,
        None => 20,
    };
    if top == 0 || s.max_top.is_some_and(|m| top > m) {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("The limit of '{}' for Top query has been exceeded.", s.max_top.unwrap_or(0)),
        ));
    }
    let skip: usize = params.get("$skiptoken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let expand = params.get("$expand").is_some_and(|e| e == "alerts");
    let mut items: Vec<&Value> = s.incidents.values().filter(|i| matches(i, &conds)).collect();
    // Most recently updated first, as the documentation says.
    items.sort_by(|a, b| {
        let key = |v: &Value| v["lastUpdateDateTime"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        key(b).cmp(&key(a)).then_with(|| a["id"].to_string().cmp(&b["id"].to_string()))
    });
    let value: Vec<Value> = items
        .iter()
        .skip(skip)
        .take(top)
        .map(|i| {
            let mut i = (*i).clone();
            if !expand && let Some(o) = i.as_object_mut() {
                o.remove("alerts");
            }
            i
        })
        .collect();
    let mut body =
        json!({"@odata.context": format!("{}/v1.0/$metadata#security/incidents(alerts())", s.base), "value": value});
    if skip + top < items.len() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(k, _)| *k != "$skiptoken") {
            next.append_pair(k, v);
        }
        next.append_pair("$skiptoken", &(skip + top).to_string());
        body["@odata.nextLink"] = json!(format!("{}/v1.0/security/incidents?{}", s.base, next.finish()));
    }
    Ok((StatusCode::OK, body.to_string()))
}
