//! Azure Resource Manager's Sentinel analytics rules in the Graph fake
//! (shared/specs/graph-hunting-rules-writeback.md §5 and §7), served under `/arm` so that a test
//! sets `arm_url = "<fake>/arm"` and the token for it has its own audience: a Graph token is
//! refused here and an ARM token by Graph, as the real services do. `GET
//! /arm/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{w}/providers/Microsoft.SecurityInsights/alertRules?api-version=…`
//! pages `{"value", "nextLink"}` (two rules a page), answers 403 without the Sentinel Reader
//! role, 404 for an unknown workspace, 400 without an api-version, and 429 with Retry-After
//! on request.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Fault, GRAPH_JSON, GraphError, Shared, lock, reply, with_retry_after};

/// The path prefix of the fake's ARM host.
pub(super) const PREFIX: &str = "/arm";
const SUFFIX: &str = "/providers/Microsoft.SecurityInsights/alertRules";
const PAGE: usize = 2;

#[derive(Default)]
pub(super) struct Arm {
    /// Rules by workspace resource ID (lower case).
    pub workspaces: std::collections::HashMap<String, Vec<Value>>,
    pub forbidden: bool,
    pub faults: std::collections::VecDeque<Fault>,
    /// Access tokens issued for the ARM scope.
    pub tokens: std::collections::HashSet<String>,
    pub requests: usize,
}

/// The workspace of an alertRules path under [`PREFIX`].
pub(super) fn workspace(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?;
    rest.strip_suffix(SUFFIX).map(|w| w.to_ascii_lowercase())
}

/// Whether a token request's scope is ARM's (`<fake>/arm/.default`).
pub(super) fn is_arm_scope(scope: &str) -> bool {
    scope.trim_end_matches("/.default").ends_with(PREFIX)
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, "application/json; charset=utf-8", json!({"error": {"code": code, "message": message}}).to_string())
}

pub(super) fn endpoint(state: &Shared, workspace: &str, query: &str, headers: &HeaderMap) -> Response {
    let mut s = lock(state);
    s.arm.requests += 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .unwrap_or_default();
    if let Err(e) = s.check_bearer(headers) {
        return e.respond(headers);
    }
    if !s.arm.tokens.contains(&token) {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource.",
        );
    }
    match s.arm.faults.pop_front() {
        Some(Fault::TooManyRequests { retry_after }) => {
            return with_retry_after(
                arm_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "The request is being throttled."),
                retry_after,
            );
        }
        Some(Fault::Status(n)) => {
            return GraphError::for_status(n).respond(headers);
        }
        Some(other) => panic!("FakeGraph: {other:?} is not a fault of ARM"),
        None => {}
    }
    if !query.split('&').any(|p| p.starts_with("api-version=")) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if s.arm.forbidden {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            "The client does not have authorization to perform action 'Microsoft.SecurityInsights/alertRules/read'.",
        );
    }
    let Some(rules) = s.arm.workspaces.get(workspace) else {
        return arm_error(StatusCode::NOT_FOUND, "ResourceNotFound", "The Resource was not found.");
    };
    let skip: usize =
        query.split('&').find_map(|p| p.strip_prefix("$skipToken=")).and_then(|v| v.parse().ok()).unwrap_or(0);
    let page: Vec<&Value> = rules.iter().skip(skip).take(PAGE).collect();
    let mut body = json!({"value": page});
    if skip + PAGE < rules.len() {
        body["nextLink"] =
            json!(format!("{}{PREFIX}{workspace}{SUFFIX}?api-version=2025-09-01&$skipToken={}", s.base, skip + PAGE));
    }
    reply(StatusCode::OK, GRAPH_JSON, body.to_string())
}
