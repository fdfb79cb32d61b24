//! The Graph fake (tests/fakes/graph.rs) checked against the documented contract with a plain
//! HTTP client over 127.0.0.1: other tests trust it to behave like Microsoft Graph and the
//! identity platform, so it is tested on its own first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;

use std::collections::BTreeSet;
use std::time::Duration;

use fakes::graph::{Credentials, FakeGraph, Fault};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const SECRET: &str = "s3cr3t~Value.with+and&and=";

fn creds() -> Credentials {
    Credentials {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        ..Default::default()
    }
}

fn client_with_timeout(timeout: Duration) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().timeout(timeout).build().unwrap()
}

async fn start() -> (FakeGraph, Client) {
    let fake = FakeGraph::start(creds()).await;
    (fake, client_with_timeout(Duration::from_secs(10)))
}

fn token_url(fake: &FakeGraph, tenant: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/token", fake.login_url())
}

fn token_form<'a>(secret: &'a str, scope: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", secret), ("scope", scope)]
}

fn scope(fake: &FakeGraph) -> String {
    format!("{}/.default", fake.graph_url())
}

async fn post_token(http: &Client, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = http.post(url).form(form).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn fetch_token(fake: &FakeGraph, http: &Client) -> String {
    let scope = scope(fake);
    let (status, body) = post_token(http, &token_url(fake, TENANT), &token_form(SECRET, &scope)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The incidents URL with these query options, encoded the way a form encoder does it.
fn incidents_url(fake: &FakeGraph, options: &[(&str, &str)]) -> String {
    let base = format!("{}/v1.0/security/incidents", fake.graph_url());
    url::Url::parse_with_params(&base, options).unwrap().to_string()
}

async fn get(http: &Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = http.get(url).header("Prefer", "include-unknown-enum-members");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn get_json(http: &Client, url: &str, token: &str) -> Value {
    let resp = get(http, url, Some(token)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    resp.json().await.unwrap()
}

fn incident(id: &str, status: &str, updated: &str) -> Value {
    json!({
        "id": id, "tenantId": "t", "displayName": format!("Incident {id}"), "status": status,
        "severity": "medium", "classification": "truePositive", "determination": "malware",
        "createdDateTime": "2026-11-01T00:00:00Z", "lastUpdateDateTime": updated,
        "alerts": [{"id": format!("a-{id}"), "title": "Suspicious PowerShell command line",
            "serviceSource": "microsoftDefenderForEndpoint", "mitreTechniques": ["T1059.001"], "evidence": []}]
    })
}

/// `2026-11-20T08:MM:00Z`
fn at_minute(minute: u32) -> String {
    format!("2026-11-20T08:{minute:02}:00Z")
}

fn ids(page: &Value) -> Vec<String> {
    page["value"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

/// Asserts the Graph error shape and returns the error code.
fn graph_error_code(body: &Value) -> String {
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let inner = &error["innerError"];
    for key in ["date", "request-id", "client-request-id"] {
        assert!(inner[key].as_str().is_some_and(|v| !v.is_empty()), "{key} in {body}");
    }
    error["code"].as_str().unwrap().to_owned()
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    let code = graph_error_code(&body);
    (status, code, body["error"]["message"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_issued_for_the_right_secret_and_refused_for_a_wrong_one() {
    let (fake, http) = start().await;
    let scope = scope(&fake);
    let (status, body) = post_token(&http, &token_url(&fake, TENANT), &token_form(SECRET, &scope)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_u64()), (Some("Bearer"), Some(3599)));
    assert_eq!(body["ext_expires_in"], 3599);
    // JWT-shaped, as Entra's are: the body carries the tenant and the roles granted.
    let claims = hindsight::entra::claims::decode(body["access_token"].as_str().unwrap()).expect("a JWT");
    assert_eq!(claims.tid.as_deref(), Some(TENANT));
    assert!(claims.roles.iter().any(|r| r == "SecurityIncident.ReadWrite.All"), "{:?}", claims.roles);

    let (status, body) = post_token(&http, &token_url(&fake, TENANT), &token_form("wrong", &scope)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000215: "), "{body}");
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(!body.to_string().contains("wrong"), "the secret sent is not echoed: {body}");
    assert_eq!(fake.token_requests(), 2);

    // The lifetime is configurable, and a second token does not replace the first.
    fake.set_token_lifetime(120);
    let (_, body) = post_token(&http, &token_url(&fake, TENANT), &token_form(SECRET, &scope)).await;
    assert_eq!(body["expires_in"], 120);
}

/// The good token form with one field replaced, or left out when `value` is None.
fn form_with<'a>(scope: &'a str, field: &'static str, value: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    let mut form = token_form(SECRET, scope);
    form.retain(|(name, _)| *name != field);
    form.extend(value.map(|v| (field, v)));
    form
}

/// Asserts an identity platform error: status, `error`, the AADSTS code and the other fields.
async fn expect_aad_error(http: &Client, url: &str, form: &[(&str, &str)], expected: (StatusCode, &str, u32)) {
    let (status, error, code) = expected;
    let (got, body) = post_token(http, url, form).await;
    assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{form:?}: {body}");
    assert!(body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}: ")), "{body}");
    assert_eq!(body["error_codes"], json!([code]));
    for key in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_token_requests_get_the_identity_platform_errors() {
    let (fake, http) = start().await;
    let scope = scope(&fake);
    let url = token_url(&fake, TENANT);
    let bad = StatusCode::BAD_REQUEST;
    let other_tenant = token_url(&fake, "fabrikam.onmicrosoft.com");
    expect_aad_error(&http, &other_tenant, &token_form(SECRET, &scope), (bad, "invalid_tenant", 90002)).await;
    let cases = [
        ("grant_type", Some("password"), (bad, "unsupported_grant_type", 70003)),
        ("grant_type", None, (bad, "invalid_request", 900144)),
        ("scope", None, (bad, "invalid_request", 900144)),
        ("scope", Some("https://graph.microsoft.com/SecurityIncident.Read.All"), (bad, "invalid_scope", 1002012)),
        ("scope", Some("https://graph.microsoft.com/.default openid"), (bad, "invalid_scope", 1002012)),
        ("client_id", Some("other-app"), (bad, "unauthorized_client", 700016)),
        ("client_secret", None, (StatusCode::UNAUTHORIZED, "invalid_client", 7000216)),
    ];
    for (field, value, expected) in cases {
        expect_aad_error(&http, &url, &form_with(&scope, field, value), expected).await;
    }
    // The scope of the public cloud is accepted too, and JSON is not a form.
    let (status, _) = post_token(&http, &url, &token_form(SECRET, "https://graph.microsoft.com/.default")).await;
    assert_eq!(status, StatusCode::OK);
    let resp = http.post(&url).json(&json!({"grant_type": "client_credentials"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_faults_are_consumed_in_order() {
    let (fake, http) = start().await;
    let scope = scope(&fake);
    let url = token_url(&fake, TENANT);
    fake.push_token_fault(Fault::Status(401));
    fake.push_token_fault(Fault::TooManyRequests { retry_after: Some("2.5".into()) });
    fake.push_token_fault(Fault::ExpiredToken);
    let (status, body) = post_token(&http, &url, &token_form(SECRET, &scope)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000215: "), "{body}");
    let resp = http.post(&url).form(&token_form(SECRET, &scope)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "2.5");
    let (status, body) = post_token(&http, &url, &token_form(SECRET, &scope)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000222: "), "{body}");
    let (status, _) = post_token(&http, &url, &token_form(SECRET, &scope)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.token_requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_need_a_live_token() {
    let (fake, http) = start().await;
    fake.upsert(incident("1", "resolved", &at_minute(1)));
    let url = incidents_url(&fake, &[]);

    let (status, code, message) = error_of(get(&http, &url, None).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"), "{message}");
    let (status, code, _) = error_of(get(&http, &url, Some("made-up")).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"));

    let token = fetch_token(&fake, &http).await;
    assert_eq!(ids(&get_json(&http, &url, &token).await), ["1"]);
    fake.expire_tokens();
    let (status, code, message) = error_of(get(&http, &url, Some(&token)).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"));
    assert!(message.contains("expired"), "{message}");

    // A fresh token works again; the ExpiredToken fault refuses it once, whatever its age.
    let token = fetch_token(&fake, &http).await;
    fake.push_fault(Fault::ExpiredToken);
    let (status, code, _) = error_of(get(&http, &url, Some(&token)).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"));
    assert_eq!(get(&http, &url, Some(&token)).await.status(), StatusCode::OK);

    // Tokens expire by themselves at the end of the lifetime they were issued with.
    fake.set_token_lifetime(0);
    let short = fetch_token(&fake, &http).await;
    assert_eq!(get(&http, &url, Some(&short)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fake.incident_requests(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_filter_compares_instants() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    fake.upsert(incident("old", "resolved", "2026-11-20T07:59:59.9999999Z"));
    fake.upsert(incident("edge", "resolved", "2026-11-20T08:00:00Z"));
    // The same instant as 08:30Z, written with an offset: compared as an instant, not as text.
    fake.upsert(incident("offset", "resolved", "2026-11-20T09:30:00.5+01:00"));
    fake.upsert(incident("new", "active", "2026-11-20T09:00:00.1234567Z"));

    let filtered = |filter: &str| incidents_url(&fake, &[("$filter", filter)]);
    let page = get_json(&http, &filtered("lastUpdateDateTime ge 2026-11-20T08:00:00Z"), &token).await;
    assert_eq!(ids(&page), ["new", "offset", "edge"], "newest first, 'old' left out");
    let page = get_json(&http, &filtered("lastUpdateDateTime gt 2026-11-20T08:00:00.000Z"), &token).await;
    assert_eq!(ids(&page), ["new", "offset"]);
    let page = get_json(&http, &filtered("lastUpdateDateTime le 2026-11-20T08:30:00.5Z"), &token).await;
    assert_eq!(ids(&page), ["offset", "edge", "old"]);
    let page = get_json(&http, &filtered("lastUpdateDateTime lt 2026-11-20T08:30:00.5Z"), &token).await;
    assert_eq!(ids(&page), ["edge", "old"]);
    let both = "lastUpdateDateTime ge 2026-11-20T08:00:00Z and lastUpdateDateTime lt 2026-11-20T09:00:00Z";
    assert_eq!(ids(&get_json(&http, &filtered(both), &token).await), ["offset", "edge"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_filter_combines_with_a_time_filter() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    fake.upsert(incident("1", "resolved", &at_minute(1)));
    fake.upsert(incident("2", "active", &at_minute(2)));
    fake.upsert(incident("3", "Resolved", &at_minute(3)));
    fake.upsert(incident("4", "resolved", &at_minute(4)));
    let filter = "status eq 'resolved' and lastUpdateDateTime ge 2026-11-20T08:02:00Z";
    let page = get_json(&http, &incidents_url(&fake, &[("$filter", filter)]), &token).await;
    assert_eq!(ids(&page), ["4", "3"], "enum members match whatever their case");
    let page = get_json(&http, &incidents_url(&fake, &[("$filter", "status ne 'resolved'")]), &token).await;
    assert_eq!(ids(&page), ["2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_pages_through_every_incident_once() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    for n in 0..8 {
        fake.upsert(incident(&format!("i{n}"), "resolved", &at_minute(n)));
    }
    // Two incidents share a time: ties are ordered by id.
    fake.upsert(incident("tie", "resolved", &at_minute(7)));
    fake.upsert(incident("old", "resolved", "2026-11-19T00:00:00Z"));
    let filter = "lastUpdateDateTime ge 2026-11-20T08:00:00Z";
    let mut url = incidents_url(&fake, &[("$filter", filter), ("$top", "3"), ("$expand", "alerts")]);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = get_json(&http, &url, &token).await;
        pages += 1;
        assert!(page["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#security/incidents(alerts())"));
        assert!(page["value"].as_array().unwrap().iter().all(|i| i["alerts"].is_array()));
        seen.extend(ids(&page));
        let Some(next) = page.get("@odata.nextLink") else { break };
        let next = next.as_str().unwrap().to_owned();
        assert!(next.starts_with(&format!("{}/v1.0/security/incidents?", fake.graph_url())), "{next}");
        let options: Vec<(String, String)> = url::Url::parse(&next).unwrap().query_pairs().into_owned().collect();
        let names: Vec<&str> = options.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["$filter", "$top", "$expand", "$skiptoken"], "{next}");
        assert_eq!(options[0].1, filter);
        url = next;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["i7", "tie", "i6", "i5", "i4", "i3", "i2", "i1", "i0"]);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len(), "each incident exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_is_to_be_followed_as_it_is() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    for n in 0..5 {
        fake.upsert(incident(&n.to_string(), "resolved", &at_minute(n)));
    }
    let first = get_json(&http, &incidents_url(&fake, &[("$top", "2")]), &token).await;
    let next = first["@odata.nextLink"].as_str().unwrap();
    let skiptoken =
        url::Url::parse(next).unwrap().query_pairs().find(|(k, _)| k == "$skiptoken").unwrap().1.into_owned();
    // The token rebuilt onto another query, or made up, or a repeated option: 400.
    let rebuilt = incidents_url(&fake, &[("$top", "3"), ("$skiptoken", &skiptoken)]);
    let made_up = incidents_url(&fake, &[("$top", "2"), ("$skiptoken", "2")]);
    let repeated = format!("{next}&$top=2");
    for url in [rebuilt, made_up, repeated] {
        let (status, code, _) = error_of(get(&http, &url, Some(&token)).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "BadRequest"), "{url}");
    }
    // An update between two pages shifts the rest, as on the real service: "0" moves to the
    // front, so the second page now starts with "3", seen already.
    fake.upsert(incident("0", "resolved", &at_minute(30)));
    assert_eq!(ids(&first), ["4", "3"]);
    assert_eq!(ids(&get_json(&http, next, &token).await), ["3", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_come_only_with_expand_and_the_default_page_is_20() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    for n in 0..25 {
        fake.upsert(incident(&format!("{n:02}"), "resolved", &at_minute(n)));
    }
    let page = get_json(&http, &incidents_url(&fake, &[]), &token).await;
    let value = page["value"].as_array().unwrap();
    assert_eq!(value.len(), 20);
    assert!(value.iter().all(|i| i.get("alerts").is_none() && i["lastUpdateDateTime"].is_string()), "{page}");
    assert!(page["@odata.context"].as_str().unwrap().ends_with("#security/incidents"));
    let rest = get_json(&http, page["@odata.nextLink"].as_str().unwrap(), &token).await;
    assert_eq!(rest["value"].as_array().unwrap().len(), 5);
    assert!(rest.get("@odata.nextLink").is_none());

    let page = get_json(&http, &incidents_url(&fake, &[("$expand", "alerts"), ("$top", "1")]), &token).await;
    assert_eq!(page["value"][0]["alerts"][0]["id"], "a-24");
    let (status, _, message) =
        error_of(get(&http, &incidents_url(&fake, &[("$expand", "evidence")]), Some(&token)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_enum_members_need_the_prefer_header() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    let mut waiting = incident("w", "awaitingAction", &at_minute(1));
    waiting["alerts"][0]["serviceSource"] = json!("microsoftSentinel");
    fake.upsert(waiting);
    let url = incidents_url(&fake, &[("$expand", "alerts")]);
    let page = get_json(&http, &url, &token).await;
    assert_eq!(page["value"][0]["status"], "awaitingAction");
    assert_eq!(page["value"][0]["alerts"][0]["serviceSource"], "microsoftSentinel");
    let page: Value = http.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["value"][0]["status"], "unknownFutureValue");
    assert_eq!(page["value"][0]["alerts"][0]["serviceSource"], "unknownFutureValue");

    let requests = fake.requests();
    let listed: Vec<_> = requests.iter().filter(|r| r.path == "/v1.0/security/incidents").collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].prefer.as_deref(), Some("include-unknown-enum-members"));
    assert_eq!((listed[1].prefer.as_deref(), listed[1].authorized), (None, true));
    assert_eq!(listed[0].query, "%24expand=alerts");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/contoso.onmicrosoft.com/oauth2/v2.0/token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_answers_429_with_a_fractional_retry_after() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    fake.upsert(incident("1", "resolved", &at_minute(1)));
    let url = incidents_url(&fake, &[]);
    fake.push_fault(Fault::TooManyRequests { retry_after: Some("0.2".into()) });
    fake.push_fault(Fault::TooManyRequests { retry_after: None });
    fake.push_fault(Fault::Unavailable { retry_after: Some("2.128".into()) });
    fake.push_fault(Fault::Status(403));

    let resp = get(&http, &url, Some(&token)).await;
    assert_eq!(resp.headers()["retry-after"], "0.2");
    let (status, code, _) = error_of(resp).await;
    assert_eq!((status, code.as_str()), (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"));
    let resp = get(&http, &url, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
    let resp = get(&http, &url, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "2.128");
    let (status, code, _) = error_of(get(&http, &url, Some(&token)).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "Authorization_RequestDenied"));
    // The queue is empty: normal answers resume. Faults came before the token check.
    assert_eq!(ids(&get_json(&http, &url, &token).await), ["1"]);
    fake.push_fault(Fault::Status(502));
    assert_eq!(get(&http, &url, None).await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(fake.incident_requests(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_html_bodies_are_not_json() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    for n in 0..3 {
        fake.upsert(incident(&n.to_string(), "resolved", &at_minute(n)));
    }
    let url = incidents_url(&fake, &[("$expand", "alerts")]);
    let whole = get(&http, &url, Some(&token)).await.bytes().await.unwrap();
    fake.push_fault(Fault::TruncatedBody);
    fake.push_fault(Fault::Malformed);

    let resp = get(&http, &url, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let length = resp.content_length();
    let cut = resp.bytes().await.unwrap();
    assert_eq!(length, Some(cut.len() as u64));
    assert_eq!(cut.len(), whole.len() / 2);
    assert!(serde_json::from_slice::<Value>(&cut).is_err());

    let resp = get(&http, &url, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.starts_with("<html>") && serde_json::from_str::<Value>(&html).is_err());
    assert!(serde_json::from_slice::<Value>(&get(&http, &url, Some(&token)).await.bytes().await.unwrap()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_outlasts_a_short_client_timeout() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    fake.upsert(incident("1", "resolved", &at_minute(1)));
    let url = incidents_url(&fake, &[]);
    fake.push_fault(Fault::Delay(Duration::from_secs(3)));
    let impatient = client_with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = impatient.get(&url).bearer_auth(&token).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A short delay answers normally, late.
    fake.push_fault(Fault::Delay(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    assert_eq!(ids(&get_json(&http, &url, &token).await), ["1"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_above_the_maximum_is_refused() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    for n in 0..12 {
        fake.upsert(incident(&n.to_string(), "resolved", &at_minute(n)));
    }
    fake.set_max_top(Some(10));
    let (status, code, message) =
        error_of(get(&http, &incidents_url(&fake, &[("$top", "11")]), Some(&token)).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "BadRequest"));
    assert!(message.contains("'10'"), "{message}");
    let page = get_json(&http, &incidents_url(&fake, &[("$top", "10")]), &token).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    // Without $top the service's own page size stays under its maximum.
    let page = get_json(&http, &incidents_url(&fake, &[]), &token).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    for bad in ["-1", "ten"] {
        let (status, _, _) = error_of(get(&http, &incidents_url(&fake, &[("$top", bad)]), Some(&token)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "$top={bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_filter_is_a_bad_request() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    let filters = [
        ("lastUpdateDateTime ge", "syntax"),
        ("lastUpdateDateTime after 2026-11-20T08:00:00Z", "operator"),
        ("lastUpdateDateTime ge '2026-11-20T08:00:00Z'", "incompatible"),
        ("lastUpdateDateTime ge 2026-11-20", "DateTimeOffset"),
        ("lastUpdateDateTime ge 2026-11-20T25:00:00Z", "DateTimeOffset"),
        ("updated ge 2026-11-20T08:00:00Z", "property"),
        ("status eq resolved", "quoted"),
        ("status eq 'resolved", "unterminated"),
        ("status eq 'resolved' and", "syntax"),
        ("status eq 'resolved' or status eq 'active'", "'and'"),
        ("", "empty"),
    ];
    for (filter, hint) in filters {
        let resp = get(&http, &incidents_url(&fake, &[("$filter", filter)]), Some(&token)).await;
        let (status, code, message) = error_of(resp).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "BadRequest"), "{filter}: {message}");
        assert!(message.contains(hint), "{filter}: {message}");
    }
    let (status, _, message) =
        error_of(get(&http, &incidents_url(&fake, &[("$search", "x")]), Some(&token)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_and_methods_are_refused_and_recorded() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    let (status, code, _) =
        error_of(get(&http, &format!("{}/v1.0/security/alerts", fake.graph_url()), Some(&token)).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "BadRequest"));
    let resp = http.post(incidents_url(&fake, &[])).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = http.get(token_url(&fake, TENANT)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!((fake.requests().len(), fake.token_requests(), fake.incident_requests()), (4, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_replaces_and_remove_deletes() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    fake.upsert(incident("1", "active", &at_minute(1)));
    fake.upsert(incident("1", "resolved", &at_minute(2)));
    fake.upsert(incident("2", "active", &at_minute(3)));
    assert_eq!(fake.incident_count(), 2);
    fake.remove("2");
    let page = get_json(&http, &incidents_url(&fake, &[]), &token).await;
    assert_eq!((ids(&page), page["value"][0]["status"].as_str()), (vec!["1".to_owned()], Some("resolved")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_fake_stops_the_server() {
    let (fake, http) = start().await;
    let token = fetch_token(&fake, &http).await;
    let url = incidents_url(&fake, &[]);
    assert_eq!(get(&http, &url, Some(&token)).await.status(), StatusCode::OK);
    drop(fake);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Neither the pooled keep-alive connection nor a new one is answered any more.
    let err = http.get(&url).bearer_auth(&token).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
}
