//! Entra ID bearer tokens for webhooks that want them instead of a SAS `sig` (Power Automate
//! flows that only let "any user in my tenant" or "specific users" trigger them): client
//! credentials for the flow service's audience, cached until shortly before they expire.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

fn default_scope() -> String {
    "https://service.flow.microsoft.com//.default".into()
}
fn default_login() -> String {
    crate::source::graph::Cloud::Global.hosts().0.into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The token's audience plus `/.default`; Power Automate's flow service by default.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Sign-in host: the global cloud by default; US Gov, China or a test server otherwise.
    #[serde(default = "default_login")]
    pub login_url: String,
}

impl OAuthConfig {
    /// The settings that may be read from a file (`client_secret_file`); see `config::SECRET_KEYS`.
    pub const SECRET_KEYS: &'static [&'static str] = &["client_secret"];
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: Option<u64>,
}

pub struct TokenSource {
    cfg: OAuthConfig,
    http: reqwest::Client,
    cached: Mutex<Option<(SecretString, Instant)>>,
}

impl TokenSource {
    pub fn new(cfg: OAuthConfig, http: reqwest::Client) -> TokenSource {
        TokenSource { cfg, http, cached: Mutex::new(None) }
    }

    /// A valid token; a failure is an error message without the secret.
    pub async fn token(&self) -> Result<SecretString, String> {
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() + Duration::from_secs(300) < *until
        {
            return Ok(t.clone());
        }
        let url = format!("{}/{}/oauth2/v2.0/token", self.cfg.login_url.trim_end_matches('/'), self.cfg.tenant_id);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", self.cfg.client_secret.expose_secret()),
            ("scope", self.cfg.scope.as_str()),
        ];
        let resp =
            self.http.post(&url).form(&form).send().await.map_err(|e| format!("token request: {}", e.without_url()))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| format!("token request: {}", e.without_url()))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Err {
                error: Option<String>,
                error_description: Option<String>,
            }
            let detail = serde_json::from_slice::<Err>(&body)
                .map(|e| {
                    let d = e.error_description.unwrap_or_default();
                    format!("{}: {}", e.error.unwrap_or_default(), d.lines().next().unwrap_or_default())
                })
                .unwrap_or_default();
            return Err(format!("token request refused (HTTP {status}): {detail}"));
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| format!("unreadable token response: {e}"))?;
        let until = Instant::now() + Duration::from_secs(t.expires_in.unwrap_or(3600));
        *cached = Some((t.access_token.clone(), until));
        Ok(t.access_token)
    }

    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}
