//! Entra ID bearer tokens for webhooks that want them instead of a SAS `sig` (Power Automate
//! flows that only let "any user in my tenant" or "specific users" trigger them): client
//! credentials for the flow service's audience, from the shared token client (`crate::entra`).

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::Invalid;
use crate::entra::{App, Credential, Retry, TokenClient};

fn default_scope() -> String {
    "https://service.flow.microsoft.com//.default".into()
}
fn default_login() -> String {
    crate::entra::GLOBAL_LOGIN.into()
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
    /// Allows `login_url` to be plain `http://` to a loopback address (tests); anything else
    /// must be `https://`, since the client secret is sent there.
    #[serde(default)]
    pub insecure_loopback: bool,
}

impl OAuthConfig {
    /// The settings that may be read from a file (`client_secret_file`); see `config::SECRET_KEYS`.
    pub const SECRET_KEYS: &'static [&'static str] = &["client_secret"];

    /// Every problem with the settings, keys relative to the `oauth` table; never the secret.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        for (key, value) in [("tenant_id", &self.tenant_id), ("client_id", &self.client_id)] {
            if value.trim().is_empty() {
                out.push(Invalid::new(key, "must not be empty"));
            }
        }
        match url::Url::parse(&self.login_url) {
            Ok(u) => {
                if let Err(m) = crate::net::https_or_loopback(&u, self.insecure_loopback) {
                    out.push(Invalid::new("login_url", m));
                }
            }
            Err(e) => out.push(Invalid::new("login_url", format!("not a valid URL ({e})"))),
        }
        out
    }

    /// Whether the client secret goes to its sign-in host unencrypted (to loopback, allowed).
    pub fn plain_http(&self) -> bool {
        self.login_url.starts_with("http://")
    }
}

/// The bearer tokens of one webhook: its app, its scope, and the shared Entra ID token client.
pub struct TokenSource {
    app: App,
    scope: String,
    client: TokenClient,
}

impl TokenSource {
    /// Tokens are asked for once per delivery attempt: a failure is the delivery's to retry on
    /// its own schedule, not the token client's.
    pub fn new(cfg: OAuthConfig, http: reqwest::Client) -> TokenSource {
        let app = App {
            login_url: cfg.login_url,
            tenant_id: cfg.tenant_id,
            client_id: cfg.client_id,
            credential: Credential::Secret(cfg.client_secret),
        };
        TokenSource { app, scope: cfg.scope, client: TokenClient::new(http, Retry::ONCE) }
    }

    /// A valid token; a failure is an error message without the secret.
    pub async fn token(&self) -> Result<SecretString, String> {
        self.client.token(&self.app, &self.scope).await.map_err(|e| e.to_string())
    }

    pub async fn forget(&self) {
        self.client.forget(&self.app, &self.scope).await;
    }
}
