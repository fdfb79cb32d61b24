//! Advanced hunting in the Graph fake (shared/specs/graph-hunting-rules-writeback.md §1 and §7):
//! `POST /v1.0/security/runHuntingQuery` (and the namespace-qualified alias the SDKs call), the
//! body's keys in either case, answers from results registered by a piece of query text, the
//! schema spelled `name`/`type` or `Name`/`Type`, 403 without ThreatHunting.Read.All, a
//! per-minute request cap and a CPU allowance that answer 429 as the service words them, and
//! queued faults (429 with or without Retry-After, 500, 504, a slow answer).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Fault, GRAPH_JSON, GraphError, Shared, lock, reply, with_retry_after};

pub(super) const PATHS: [&str; 3] = [
    "/v1.0/security/runHuntingQuery",
    "/v1.0/security/microsoft.graph.security.runHuntingQuery",
    "/beta/security/runHuntingQuery",
];

/// Rows answered to queries containing a text: (text, columns as (name, type), rows).
type Registered = (String, Vec<(String, String)>, Vec<Value>);

/// Settings and records of the hunting endpoint.
pub(super) struct Hunting {
    pub forbidden: bool,
    /// Rows for queries containing a text, first match wins: (text, columns, rows).
    pub results: Vec<Registered>,
    /// Answer the schema as `Name`/`Type`.
    pub capital_schema: bool,
    pub faults: VecDeque<Fault>,
    /// The next query finds the CPU allowance spent; the text is the "again in" duration.
    pub cpu_spent: Option<String>,
    /// Queries accepted per minute (the service: at least 45).
    pub per_minute: usize,
    minute: Vec<Instant>,
    /// Every request: (query, timespan) as sent.
    pub calls: Vec<(String, Option<String>)>,
    /// How long every query takes to answer.
    pub latency: Option<Duration>,
}

impl Default for Hunting {
    fn default() -> Hunting {
        Hunting {
            forbidden: false,
            results: vec![],
            capital_schema: false,
            faults: VecDeque::new(),
            cpu_spent: None,
            per_minute: 45,
            minute: vec![],
            calls: vec![],
            latency: None,
        }
    }
}

fn too_many(message: &str, headers: &HeaderMap) -> Response {
    GraphError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message.to_owned()).respond(headers)
}

pub(super) async fn endpoint(state: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let (query, fault, latency) = {
        let mut s = lock(state);
        if let Err(e) = s.check_bearer(headers) {
            return e.respond(headers);
        }
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return GraphError::bad_request("The request body is not a JSON object.").respond(headers),
        };
        let key = |name: &str| {
            parsed
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.clone())
        };
        let Some(query) = key("query").and_then(|q| q.as_str().map(str::to_owned)) else {
            return GraphError::bad_request("The Query parameter is required.").respond(headers);
        };
        let timespan = key("timespan").and_then(|t| t.as_str().map(str::to_owned));
        s.hunting.calls.push((query.clone(), timespan));
        (query, s.hunting.faults.pop_front(), s.hunting.latency)
    };
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    match fault {
        Some(Fault::TooManyRequests { retry_after }) => {
            return with_retry_after(too_many("Too many requests. Retry later.", headers), retry_after);
        }
        Some(Fault::Status(n)) => {
            let mut e = GraphError::for_status(n);
            if n == 500 {
                // As seen in the wild (microsoft-graph-docs#19084): no message at all.
                e = GraphError::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", "");
            }
            return e.respond(headers);
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(other) => panic!("FakeGraph: {other:?} is not a fault of runHuntingQuery"),
        None => {}
    }
    let mut s = lock(state);
    if s.hunting.forbidden {
        return GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
        .respond(headers);
    }
    if let Some(again) = s.hunting.cpu_spent.take() {
        return too_many(
            &format!(
                "You have exceeded processing resources allocated to this tenant. You can run queries again in {again}."
            ),
            headers,
        );
    }
    let now = Instant::now();
    s.hunting.minute.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
    if s.hunting.minute.len() >= s.hunting.per_minute {
        return with_retry_after(
            too_many("Too many requests: the tenant's hunting request limit.", headers),
            Some("30".into()),
        );
    }
    s.hunting.minute.push(now);
    if query.contains("| syntax-error") {
        return GraphError::bad_request("A recognition error occurred.").respond(headers);
    }
    let (columns, rows) = s
        .hunting
        .results
        .iter()
        .find(|(text, _, _)| query.contains(text.as_str()))
        .map(|(_, c, r)| (c.clone(), r.clone()))
        .unwrap_or_else(|| (vec![("Timestamp".into(), "DateTime".into())], vec![]));
    let (n, t) = if s.hunting.capital_schema { ("Name", "Type") } else { ("name", "type") };
    let schema: Vec<Value> = columns.iter().map(|(c, ty)| json!({n: c, t: ty})).collect();
    let context = format!("{}/v1.0/$metadata#microsoft.graph.security.huntingQueryResults", s.base);
    reply(StatusCode::OK, GRAPH_JSON, json!({"@odata.context": context, "schema": schema, "results": rows}).to_string())
}
