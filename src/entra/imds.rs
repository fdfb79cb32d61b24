//! Managed identity on an Azure VM or scale set: tokens from the instance metadata endpoint
//! (IMDS), `GET /metadata/identity/oauth2/token` with `Metadata: true`, never through a proxy.
//! No secret exists anywhere. The identity lives in the VM's own tenant.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{Attempt, TokenError};

/// Azure's instance metadata endpoint: the one link-local address Hindsight contacts, by design.
pub const IMDS: &str = "http://169.254.169.254";

/// How long to wait for the endpoint to accept a connection: on Azure it answers at once, so a
/// longer silence means this is not an Azure VM.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which managed identity: the system-assigned one, or a user-assigned one by client or
/// resource ID; and where its endpoint is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `("client_id", id)` or `("msi_res_id", resource ID)`; none for the system-assigned one.
    pub selector: Option<(&'static str, String)>,
    pub base: String,
}

impl Identity {
    /// `id` is a user-assigned identity's client ID, or its resource ID (`/subscriptions/…`).
    pub fn new(id: Option<&str>, base: Option<String>) -> Identity {
        let selector =
            id.map(|id| if id.starts_with('/') { ("msi_res_id", id.to_owned()) } else { ("client_id", id.to_owned()) });
        Identity { selector, base: base.unwrap_or_else(|| IMDS.to_owned()) }
    }

    /// How the cache tells identities apart.
    pub fn id(&self) -> String {
        match &self.selector {
            Some((k, v)) => format!("managed:{}:{k}={v}", self.base),
            None => format!("managed:{}:system", self.base),
        }
    }

    /// `https://graph.microsoft.com/.default` → `https://graph.microsoft.com`: IMDS takes a
    /// resource, not a scope.
    fn resource(scope: &str) -> &str {
        scope.strip_suffix("/.default").unwrap_or(scope)
    }

    /// One token request. A connection that fails is final (not Azure, or no metadata endpoint
    /// reachable); the statuses the IMDS documentation asks to retry (404, 410, 429, 5xx) are
    /// retried; any other refusal is final with the endpoint's reason.
    pub(super) async fn attempt(&self, http: &reqwest::Client, scope: &str) -> Result<Attempt, TokenError> {
        let mut query = vec![("api-version", "2018-02-01"), ("resource", Self::resource(scope))];
        if let Some((k, v)) = &self.selector {
            query.push((k, v.as_str()));
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish();
        let url = format!("{}/metadata/identity/oauth2/token?{query}", self.base);
        let resp = match http.get(&url).header("Metadata", "true").send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() || (e.is_timeout() && !e.is_body()) => {
                return Err(TokenError::Credential {
                    detail: format!(
                        "managed identity: the instance metadata endpoint {} did not answer ({}): this host is not an Azure VM or scale set, or cannot reach the endpoint. Off Azure, use credential = \"certificate\" or \"workload_identity\"",
                        self.base,
                        crate::net::transport_error(e)
                    ),
                });
            }
            Err(e) => return Ok(Attempt::Retry { after: None, why: crate::net::transport_error(e) }),
        };
        let status = resp.status().as_u16();
        if matches!(status, 404 | 410 | 429) || (500..600).contains(&status) {
            return Ok(Attempt::Retry {
                after: None,
                why: format!("instance metadata endpoint answered HTTP {status}"),
            });
        }
        let body = match crate::net::read_limited(resp, 1 << 20).await {
            Ok(b) => b,
            Err(why) => return Ok(Attempt::Retry { after: None, why: why.to_string() }),
        };
        if status != 200 {
            let what = match &self.selector {
                Some((k, v)) => format!("the user-assigned identity {k}={v}"),
                None => "the system-assigned identity".into(),
            };
            return Err(TokenError::Refused {
                status,
                detail: format!("managed identity ({what}): {}", super::aad_error(&body)),
            });
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: SecretString,
            /// IMDS writes it as a string ("3599").
            expires_in: Option<serde_json::Value>,
        }
        match serde_json::from_slice::<Answer>(&body) {
            Ok(a) => {
                let secs = match a.expires_in {
                    Some(serde_json::Value::String(s)) => s.parse().ok(),
                    Some(serde_json::Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                Ok(Attempt::Done(a.access_token, Duration::from_secs(secs.unwrap_or(3600))))
            }
            Err(e) => Ok(Attempt::Retry { after: None, why: format!("unreadable managed identity token: {e}") }),
        }
    }
}
