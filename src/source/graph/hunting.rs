//! Advanced hunting through Graph (`POST /v1.0/security/runHuntingQuery`, application
//! permission `ThreatHunting.Read.All`) for one source (one tenant): one query at a time, each
//! answer read whatever the docs' samples spell its schema (`name`/`type` or `Name`/`Type`),
//! and every way a query can fail turned into a reason a reader understands — never into
//! "no rows".
//!
//! The tenant's hunting budget is shared with its analysts (about 45 queries a minute and a
//! CPU allowance checked every 15 minutes): a 429 pauses this source's hunts until the time the
//! service names (its `Retry-After`, or "You can run queries again in 00:09:12" in the body),
//! else 15 minutes for the CPU allowance and one minute for the request count.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::client::Client;
use super::{GraphConfig, GraphError};

/// What one query came to.
#[derive(Debug, Clone, PartialEq)]
pub enum HuntAnswer {
    Rows {
        columns: Vec<String>,
        rows: Vec<Value>,
    },
    /// It did not run (or did not finish): `reason` is one of the review's words (`quota`,
    /// `timeout`, `rejected`, `permission`, `failed`), `retry_after` set for a quota.
    NotRun {
        reason: &'static str,
        detail: String,
        retry_after: Option<Duration>,
    },
}

pub struct HuntRunner {
    source: String,
    url: String,
    client: Mutex<Client>,
}

impl HuntRunner {
    /// A runner whose requests may take `timeout` (the service stops a query after 3 minutes).
    pub fn new(cfg: &GraphConfig, timeout: Duration) -> Result<HuntRunner, GraphError> {
        let mut cfg = cfg.clone();
        cfg.request_timeout = timeout;
        Ok(HuntRunner {
            source: cfg.name.clone(),
            url: format!("{}/v1.0/security/runHuntingQuery", cfg.graph_base()),
            client: Mutex::new(Client::new(&cfg)?),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs `query` over `timespan` (ISO 8601 `start/end`). A 500 or 504 is tried once more;
    /// anything else is answered as it came.
    pub async fn run(&self, query: &str, timespan: &str) -> HuntAnswer {
        let body = json!({"Query": query, "Timespan": timespan});
        let mut client = self.client.lock().await;
        let mut answer = client.send_json(reqwest::Method::POST, &self.url, &body).await;
        if matches!(answer, Err(GraphError::Transient { status: Some(500 | 502 | 503 | 504), .. })) {
            answer = client.send_json(reqwest::Method::POST, &self.url, &body).await;
        }
        match answer {
            Ok(v) => parse(&v),
            Err(e) => not_run(e),
        }
    }
}

/// The columns and rows of a `huntingQueryResults`.
fn parse(v: &Value) -> HuntAnswer {
    let field = |o: &Value, name: &str| -> Option<Value> {
        o.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let Some(Value::Array(rows)) = field(v, "results") else {
        return HuntAnswer::NotRun {
            reason: "failed",
            detail: "the answer has no \"results\" list".into(),
            retry_after: None,
        };
    };
    let columns = match field(v, "schema") {
        Some(Value::Array(s)) => {
            s.iter().filter_map(|c| field(c, "name").and_then(|n| n.as_str().map(str::to_owned))).collect()
        }
        _ => rows.first().and_then(Value::as_object).map(|r| r.keys().cloned().collect()).unwrap_or_default(),
    };
    HuntAnswer::Rows { columns, rows }
}

fn not_run(e: GraphError) -> HuntAnswer {
    let detail = e.to_string();
    match e {
        GraphError::Transient { status: Some(429), after, detail: body } => {
            let cpu = body.contains("processing resources") || body.to_ascii_lowercase().contains("cpu");
            let after = after.or_else(|| again_in(&body)).unwrap_or(if cpu {
                Duration::from_secs(15 * 60)
            } else {
                Duration::from_secs(60)
            });
            let which =
                if cpu { "the tenant's CPU allowance for hunting" } else { "the tenant's hunting request count" };
            HuntAnswer::NotRun {
                reason: "quota",
                detail: format!("{which} is spent: {body}"),
                retry_after: Some(after),
            }
        }
        GraphError::Transient { status: None, detail: d, .. } if d.starts_with("timed out") => {
            HuntAnswer::NotRun { reason: "timeout", detail: d, retry_after: None }
        }
        GraphError::BadRequest { detail } => HuntAnswer::NotRun { reason: "rejected", detail, retry_after: None },
        GraphError::Forbidden { detail } => HuntAnswer::NotRun {
            reason: "permission",
            detail: format!(
                "Graph denied advanced hunting (HTTP 403): {detail}. The app needs the application permission ThreatHunting.Read.All with admin consent"
            ),
            retry_after: None,
        },
        _ => HuntAnswer::NotRun { reason: "failed", detail, retry_after: None },
    }
}

/// "… You can run queries again in 00:09:12." as a duration.
fn again_in(body: &str) -> Option<Duration> {
    let rest = &body[body.find("again in ")? + "again in ".len()..];
    let text: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ':').collect();
    let parts: Vec<u64> = text.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let secs = parts.iter().fold(0u64, |acc, p| acc * 60 + p);
    (secs > 0 || !parts.is_empty()).then(|| Duration::from_secs(secs.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_schema_are_read() {
        let lower = json!({"schema": [{"name": "Timestamp", "type": "DateTime"}], "results": [{"Timestamp": "x"}]});
        let upper = json!({"Schema": [{"Name": "Timestamp", "Type": "DateTime"}], "Results": [{"Timestamp": "x"}]});
        for v in [lower, upper] {
            assert_eq!(
                parse(&v),
                HuntAnswer::Rows { columns: vec!["Timestamp".into()], rows: vec![json!({"Timestamp": "x"})] }
            );
        }
    }

    #[test]
    fn the_quota_message_says_when_to_come_back() {
        let body =
            "You have exceeded processing resources allocated to this tenant. You can run queries again in 00:09:12.";
        assert_eq!(again_in(body), Some(Duration::from_secs(9 * 60 + 12)));
        let HuntAnswer::NotRun { reason, retry_after, detail } =
            not_run(GraphError::Transient { after: None, status: Some(429), detail: body.into() })
        else {
            panic!()
        };
        assert_eq!((reason, retry_after), ("quota", Some(Duration::from_secs(552))));
        assert!(detail.contains("CPU"), "{detail}");
        let HuntAnswer::NotRun { retry_after, .. } =
            not_run(GraphError::Transient { after: None, status: Some(429), detail: "Too many requests".into() })
        else {
            panic!()
        };
        assert_eq!(retry_after, Some(Duration::from_secs(60)));
    }
}
