//! Entra ID bearer tokens for webhooks that want them instead of a SAS `sig` (Power Automate
//! flows that only let "any user in my tenant" or "specific users" trigger them): client
//! credentials for the flow service's audience, from the shared token client (`crate::entra`).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::config::Invalid;
use crate::entra::certificate::Algorithm;
use crate::entra::{App, Credential, CredentialKind, Retry, TokenClient};

fn default_scope() -> String {
    "https://service.flow.microsoft.com//.default".into()
}
fn default_login() -> String {
    crate::entra::GLOBAL_LOGIN.into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    #[serde(default)]
    pub tenant_id: String,
    #[serde(default)]
    pub client_id: String,
    /// The sign-in keys of a Graph source, with the same meaning (`GraphConfig`).
    #[serde(default)]
    pub credential: CredentialKind,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub certificate: Option<SecretString>,
    #[serde(default)]
    pub private_key: Option<SecretString>,
    #[serde(default)]
    pub assertion_algorithm: Algorithm,
    #[serde(default)]
    pub federated_token_file: Option<PathBuf>,
    #[serde(default)]
    pub managed_identity_id: Option<String>,
    #[serde(default)]
    pub imds_url: Option<Url>,
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

crate::entra::settings::sign_in_keys!(OAuthConfig);

impl OAuthConfig {
    /// The settings that may be read from a file (`client_secret_file`, `certificate_file`,
    /// `private_key_file`); see `config::SECRET_KEYS`.
    pub const SECRET_KEYS: &'static [&'static str] = &["client_secret", "certificate", "private_key"];

    /// With a workload identity, what the pod's environment gives and the table left out.
    pub fn fill_from_environment(&mut self, env: &[(String, String)]) {
        if self.credential == CredentialKind::WorkloadIdentity {
            let authority = crate::entra::settings::fill_from_environment(
                env,
                &mut self.tenant_id,
                &mut self.client_id,
                &mut self.federated_token_file,
            );
            if let Some(a) = authority
                && self.login_url == default_login()
            {
                self.login_url = a;
            }
        }
    }

    /// Every problem with the settings, keys relative to the `oauth` table; never the secret.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if self.tenant_id.trim().is_empty() {
            out.push(Invalid::new("tenant_id", "must not be empty"));
        }
        if self.client_id.trim().is_empty() && self.credential != CredentialKind::ManagedIdentity {
            out.push(Invalid::new("client_id", "must not be empty"));
        }
        out.extend(self.sign_in().validate());
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
    pub fn new(cfg: OAuthConfig, http: reqwest::Client) -> Result<TokenSource, Invalid> {
        let credential: Credential = cfg.sign_in().credential()?;
        let app = App { login_url: cfg.login_url, tenant_id: cfg.tenant_id, client_id: cfg.client_id, credential };
        Ok(TokenSource { app, scope: cfg.scope, client: TokenClient::new(http, Retry::ONCE) })
    }

    /// A valid token; a failure is an error message without the secret.
    pub async fn token(&self) -> Result<SecretString, String> {
        self.client.token(&self.app, &self.scope).await.map_err(|e| e.to_string())
    }

    pub async fn forget(&self) {
        self.client.forget(&self.app, &self.scope).await;
    }
}
