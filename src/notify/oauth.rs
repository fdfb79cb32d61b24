//! Entra ID bearer tokens for webhooks that want them instead of a SAS `sig` (Power Automate
//! flows that only let "any user in my tenant" or "specific users" trigger them): client
//! credentials for the flow service's audience, from the shared token client (`crate::entra`).

use secrecy::SecretString;
use serde::Deserialize;

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
}

impl OAuthConfig {
    /// The settings that may be read from a file (`client_secret_file`); see `config::SECRET_KEYS`.
    pub const SECRET_KEYS: &'static [&'static str] = &["client_secret"];
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
