//! The incident write endpoints of the Graph fake (shared/specs/graph-hunting-rules-writeback.md
//! §3 and §7): `GET /v1.0/security/incidents/{id}`, `POST .../{id}/comments` (200 with the
//! whole comment list) and `PATCH .../{id}` (a partial update in which `customTags` replaces
//! the list), with `lastUpdateDateTime` bumped on every write unless switched off, 404 for an
//! unknown incident, 403 for an app without SecurityIncident.ReadWrite.All, an optional comment
//! length limit, and another writer's tags slipped in after the next single-incident read.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{GRAPH_JSON, GraphError, Shared, lock, present, reply, wants_unknown_enum_members};

/// Settings and records of the write endpoints.
#[derive(Default)]
pub(super) struct Writes {
    /// Whether the app holds SecurityIncident.ReadWrite.All (default: yes).
    pub forbidden: bool,
    /// Whether a write leaves `lastUpdateDateTime` as it was (default: it is bumped; the docs
    /// do not say, so tests must pass both ways).
    pub no_bump: bool,
    /// Longest comment accepted (400 beyond it), if any.
    pub max_comment: Option<usize>,
    /// Tags another writer sets right after the next single-incident read (then cleared).
    pub interleave_tags: Option<Vec<String>>,
    /// Every write accepted: (method, incident id).
    pub log: Vec<(String, String)>,
    /// Faults for the next writes (429 with or without Retry-After, any status), one each.
    pub faults: std::collections::VecDeque<super::Fault>,
    /// The next write is applied and then answered 504, as when the answer is lost on the way.
    pub lose_answer: bool,
}

/// The path of a single incident (`Some((id, false))`) or of its comments (`Some((id, true))`).
pub(super) fn incident_path(path: &str) -> Option<(String, bool)> {
    let rest = path.strip_prefix(super::INCIDENTS_PATH)?.strip_prefix('/')?;
    let (id, comments) = match rest.strip_suffix("/comments") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let id = percent_decode(id)?;
    (!id.is_empty() && !id.contains('/')).then_some((id, comments))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn not_found(id: &str, headers: &HeaderMap) -> Response {
    GraphError::new(StatusCode::NOT_FOUND, "NotFound", format!("Incident {id} was not found.")).respond(headers)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn endpoint(
    state: &Shared,
    method: &Method,
    id: &str,
    comments: bool,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut s = lock(state);
    if let Err(e) = s.check_bearer(headers) {
        return e.respond(headers);
    }
    let Some(incident) = s.incidents.get(id).cloned() else {
        return not_found(id, headers);
    };
    let writing = *method != Method::GET;
    if writing && s.writes.forbidden {
        return GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
        .respond(headers);
    }
    if writing && let Some(fault) = s.writes.faults.pop_front() {
        return match fault {
            super::Fault::TooManyRequests { retry_after } => super::with_retry_after(
                GraphError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.")
                    .respond(headers),
                retry_after,
            ),
            super::Fault::Status(n) => GraphError::for_status(n).respond(headers),
            other => panic!("FakeGraph: {other:?} is not a fault of the write endpoints"),
        };
    }
    let lose = writing && std::mem::take(&mut s.writes.lose_answer);
    let parsed: Value = if writing {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return GraphError::bad_request("The request body is not a JSON object.").respond(headers),
        }
    } else {
        Value::Null
    };
    match (method.clone(), comments) {
        (Method::GET, false) => {
            let answer = present(&incident, false, wants_unknown_enum_members(headers));
            if let Some(tags) = s.writes.interleave_tags.take() {
                let stored = s.incidents.get_mut(id).expect("read above");
                stored["customTags"] = json!(tags);
                stored["lastUpdateDateTime"] = json!(now_text());
            }
            reply(StatusCode::OK, GRAPH_JSON, answer.to_string())
        }
        (Method::POST, true) => {
            let Some(text) = parsed.get("comment").and_then(Value::as_str) else {
                return GraphError::bad_request("The property 'comment' is required.").respond(headers);
            };
            if s.writes.max_comment.is_some_and(|max| text.chars().count() > max) {
                return GraphError::bad_request("The comment is too long.").respond(headers);
            }
            let bump = !s.writes.no_bump;
            s.writes.log.push(("POST".into(), id.to_owned()));
            let stored = s.incidents.get_mut(id).expect("read above");
            let entry =
                json!({"comment": text, "createdByDisplayName": "Hindsight (app)", "createdDateTime": now_text()});
            match stored.get_mut("comments").and_then(Value::as_array_mut) {
                Some(list) => list.push(entry),
                None => stored["comments"] = json!([entry]),
            }
            if bump {
                stored["lastUpdateDateTime"] = json!(now_text());
            }
            let list = stored["comments"].clone();
            let context = format!("{}/v1.0/$metadata#security/incidents('{id}')/comments", s.base);
            if lose {
                return GraphError::for_status(504).respond(headers);
            }
            reply(StatusCode::OK, GRAPH_JSON, json!({"@odata.context": context, "value": list}).to_string())
        }
        (Method::PATCH, false) => {
            const WRITABLE: [&str; 5] = ["assignedTo", "classification", "determination", "status", "customTags"];
            let fields = parsed.as_object().expect("checked above");
            if let Some(bad) = fields.keys().find(|k| !WRITABLE.contains(&k.as_str())) {
                return GraphError::bad_request(format!("The property '{bad}' cannot be updated.")).respond(headers);
            }
            if fields.get("customTags").is_some_and(|t| !t.is_array()) {
                return GraphError::bad_request("customTags must be a collection of strings.").respond(headers);
            }
            let bump = !s.writes.no_bump;
            s.writes.log.push(("PATCH".into(), id.to_owned()));
            let stored = s.incidents.get_mut(id).expect("read above");
            for (k, v) in fields {
                stored[k.as_str()] = v.clone();
            }
            if bump {
                stored["lastUpdateDateTime"] = json!(now_text());
            }
            let answer = present(stored, false, wants_unknown_enum_members(headers));
            if lose {
                return GraphError::for_status(504).respond(headers);
            }
            reply(StatusCode::OK, GRAPH_JSON, answer.to_string())
        }
        _ => GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed on this resource."),
        )
        .respond(headers),
    }
}
