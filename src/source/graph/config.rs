//! Settings of one Microsoft Graph source (one tenant), validated before anything is built.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::config::Invalid;
use crate::entra::CredentialKind;
use crate::entra::certificate::Algorithm;

/// Microsoft's clouds, each with its own sign-in and Graph hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Commercial and GCC (moderate) tenants.
    #[default]
    Global,
    /// US Government GCC High (L4).
    UsGov,
    /// US Government DoD (L5).
    UsGovDod,
    /// China, operated by 21Vianet: the incidents API is not offered there.
    China,
}

impl Cloud {
    /// The cloud's sign-in and Graph hosts. The sign-in host is also the default of a webhook's
    /// OAuth `login_url`.
    pub(crate) fn hosts(self) -> (&'static str, &'static str) {
        match self {
            Cloud::Global => ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
            Cloud::UsGov => ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
            Cloud::UsGovDod => ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
            Cloud::China => ("https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn"),
        }
    }
}

fn default_page_size() -> u32 {
    50
}
fn default_overlap() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_attempts() -> u32 {
    6
}
fn default_retry_base() -> Duration {
    Duration::from_secs(1)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
/// A page is parsed whole: see [`crate::source::DEFAULT_MAX_DOCUMENT_BYTES`].
fn default_max_page_bytes() -> u64 {
    crate::source::DEFAULT_MAX_DOCUMENT_BYTES
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// Unique name of the source; it keys the cursor and the incidents in the store.
    pub name: String,
    /// Directory (tenant) ID or verified domain.
    #[serde(default)]
    pub tenant_id: String,
    /// Application (client) ID of the app registration with SecurityIncident.Read.All. With
    /// `credential = "workload_identity"` it may be left to `$AZURE_CLIENT_ID` (and `tenant_id`
    /// to `$AZURE_TENANT_ID`).
    #[serde(default)]
    pub client_id: String,
    /// How the app signs in: `secret` (default), `certificate`, `workload_identity` or
    /// `managed_identity` (docs/connect-a-tenant.md).
    #[serde(default)]
    pub credential: CredentialKind,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// PEM certificate registered on the app (`certificate_file`); it may hold the key too.
    #[serde(default)]
    pub certificate: Option<SecretString>,
    /// PEM RSA private key of the certificate (`private_key_file`, readable by Hindsight only).
    #[serde(default)]
    pub private_key: Option<SecretString>,
    /// `PS256` (default, the documented form) or `RS256` (the older form).
    #[serde(default)]
    pub assertion_algorithm: Algorithm,
    /// The projected service-account token; `$AZURE_FEDERATED_TOKEN_FILE` by default.
    #[serde(default)]
    pub federated_token_file: Option<PathBuf>,
    /// A user-assigned managed identity's client ID or resource ID; none = the system-assigned one.
    #[serde(default)]
    pub managed_identity_id: Option<String>,
    /// The instance metadata endpoint, for tests only (loopback).
    #[serde(default)]
    pub imds_url: Option<Url>,
    #[serde(default)]
    pub cloud: Cloud,
    /// Overrides the cloud's Graph host (mirrors, tests).
    #[serde(default)]
    pub graph_url: Option<Url>,
    /// Overrides the cloud's sign-in host (mirrors, tests).
    #[serde(default)]
    pub login_url: Option<Url>,
    /// Allows `graph_url` and `login_url` to be plain `http://` to a loopback address (a local
    /// mirror, tests). Anything else must be `https://`: the client secret and the bearer
    /// tokens travel to these hosts.
    #[serde(default)]
    pub insecure_loopback: bool,
    /// `$top` of each page. The documentation states no maximum; a 400 halves it.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// How far each pass reads back before the cursor, to catch updates that show up late.
    #[serde(default = "default_overlap", with = "humantime_serde")]
    pub overlap: Duration,
    /// How far back the very first pass reads. Default: nothing before the first start.
    #[serde(default, with = "humantime_serde")]
    pub backfill: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Attempts per request before the pass gives up (it is tried again at the next poll).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First back-off delay after a failed attempt; doubled each time, with jitter.
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest wait between attempts, `Retry-After` included.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// Largest response body accepted for one page.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: u64,
    /// Read the tenant's Defender custom detection rules (application permission
    /// `CustomDetection.Read.All`) and review this source's incidents against them, layered over
    /// `review.inventory`. Off by default.
    #[serde(default)]
    pub detection_rules: bool,
    /// How often the rules are read again (and at every start).
    #[serde(default = "default_rules_refresh", with = "humantime_serde")]
    pub detection_rules_refresh: Duration,
    /// Write each review back onto its incident: a comment (summary, blind stages, first
    /// follow-ups, link) and `hindsight:` tags merged into `customTags`. Application permission
    /// `SecurityIncident.ReadWrite.All`. Off by default.
    #[serde(default)]
    pub write_back: bool,
    /// After each review of a real incident, run its blind stages' incident-scoped hunts in the
    /// tenant through advanced hunting (application permission `ThreatHunting.Read.All`) and
    /// amend the review with what they found (event `review.hunted`). Off by default.
    #[serde(default)]
    pub hunts: bool,
    /// Hunts run per review at most.
    #[serde(default = "default_hunts_per_incident")]
    pub hunts_per_incident: usize,
    /// Hunts run per hour at most, for this source (the tenant's quota is shared with its
    /// analysts: about 45 queries a minute and a CPU allowance).
    #[serde(default = "default_hunts_per_hour")]
    pub hunts_per_hour: usize,
    /// How long one hunt may take (the service stops a query after 3 minutes).
    #[serde(default = "default_hunt_timeout", with = "humantime_serde")]
    pub hunt_timeout: Duration,
    /// Microsoft Sentinel workspaces whose analytics rules are read with the Defender rules
    /// (same refresh) and count as this source's deployed inventory: each the workspace's ARM
    /// resource ID, `/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.OperationalInsights/workspaces/<name>`.
    /// The app needs the Microsoft Sentinel Reader role on each; its token is for Azure Resource
    /// Manager, not Graph.
    #[serde(default)]
    pub sentinel_workspaces: Vec<String>,
    /// Overrides the cloud's Azure Resource Manager host (mirrors, tests).
    #[serde(default)]
    pub arm_url: Option<Url>,
}

fn default_hunts_per_incident() -> usize {
    6
}
fn default_hunts_per_hour() -> usize {
    30
}
fn default_hunt_timeout() -> Duration {
    Duration::from_secs(200)
}

fn default_rules_refresh() -> Duration {
    Duration::from_secs(24 * 3600)
}

crate::entra::settings::sign_in_keys!(GraphConfig);

impl GraphConfig {
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
            if self.login_url.is_none() {
                self.login_url = authority.and_then(|a| Url::parse(&a).ok());
            }
        }
    }

    /// Every problem that can be found without a network; errors name the setting (never the
    /// client secret's value).
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        // With a workload identity the pod's environment may give the tenant and the client.
        let or_env = |var: &str| match self.credential {
            CredentialKind::WorkloadIdentity => {
                format!("must be set, or ${var} (set by the AKS workload identity webhook)")
            }
            _ => "must not be empty".to_owned(),
        };
        if self.name.trim().is_empty() {
            out.push(Invalid::new("name", "must not be empty"));
        }
        if self.tenant_id.trim().is_empty() {
            out.push(Invalid::new("tenant_id", or_env(crate::entra::settings::AZURE_TENANT_ID)));
        }
        // A system-assigned managed identity has no client ID to give.
        if self.client_id.trim().is_empty() && self.credential != CredentialKind::ManagedIdentity {
            out.push(Invalid::new("client_id", or_env(crate::entra::settings::AZURE_CLIENT_ID)));
        }
        out.extend(self.sign_in().validate());
        if self.cloud == Cloud::China && self.graph_url.is_none() {
            out.push(Invalid::new(
                "cloud",
                "the Microsoft Graph security incidents API is not available in the China (21Vianet) cloud",
            ));
        }
        if self.tenant_id.contains(['/', '?', '#']) {
            out.push(Invalid::new("tenant_id", "must be a tenant ID or domain, not a URL"));
        }
        if self.hunts {
            for (key, n) in [("hunts_per_incident", self.hunts_per_incident), ("hunts_per_hour", self.hunts_per_hour)] {
                if n == 0 {
                    out.push(Invalid::new(key, "must be at least 1 (or set hunts = false)"));
                }
            }
            if self.hunt_timeout.is_zero() {
                out.push(Invalid::new("hunt_timeout", "must be longer than 0s"));
            }
        }
        if !(1..=1000).contains(&self.page_size) {
            out.push(Invalid::new("page_size", format!("{} is outside 1..=1000", self.page_size)));
        }
        if self.max_attempts == 0 {
            out.push(Invalid::new("max_attempts", "must be at least 1"));
        }
        for (i, w) in self.sentinel_workspaces.iter().enumerate() {
            if let Err(m) = check_workspace(w) {
                out.push(Invalid::new(format!("sentinel_workspaces[{i}]"), m));
            }
        }
        for (key, url) in [("graph_url", &self.graph_url), ("login_url", &self.login_url), ("arm_url", &self.arm_url)] {
            if let Some(u) = url
                && let Err(m) = crate::net::https_or_loopback(u, self.insecure_loopback)
            {
                out.push(Invalid::new(key, m));
            }
        }
        out
    }

    /// What `hindsight check` should point out about settings that are allowed but weaker than
    /// the default: sign-in or Graph over plain HTTP (to loopback).
    pub fn notes(&self) -> Vec<String> {
        // A certificate about to expire, or expired.
        let mut out = self.sign_in().notes(chrono::Utc::now());
        let plain: Vec<&str> = [("graph_url", &self.graph_url), ("login_url", &self.login_url)]
            .into_iter()
            .filter(|(_, u)| u.as_ref().is_some_and(|u| u.scheme() == "http"))
            .map(|(k, _)| k)
            .collect();
        if !plain.is_empty() {
            out.push(format!(
                "{} plain HTTP to a loopback address (insecure_loopback = true): the credential and tokens go unencrypted",
                if plain.len() == 2 { "graph_url and login_url use".to_owned() } else { format!("{} uses", plain[0]) }
            ));
        }
        out
    }

    pub fn login_base(&self) -> String {
        self.login_url.as_ref().map_or(self.cloud.hosts().0.to_owned(), |u| u.as_str().trim_end_matches('/').to_owned())
    }

    pub fn graph_base(&self) -> String {
        self.graph_url.as_ref().map_or(self.cloud.hosts().1.to_owned(), |u| u.as_str().trim_end_matches('/').to_owned())
    }

    /// The cloud's Azure Resource Manager host, where Sentinel's analytics rules are listed.
    pub fn arm_base(&self) -> String {
        let host = match self.cloud {
            Cloud::Global => "https://management.azure.com",
            Cloud::UsGov | Cloud::UsGovDod => "https://management.usgovcloudapi.net",
            Cloud::China => "https://management.chinacloudapi.cn",
        };
        self.arm_url.as_ref().map_or(host.to_owned(), |u| u.as_str().trim_end_matches('/').to_owned())
    }

    /// Whether any deployed rules are read from the tenant (Defender's, Sentinel's).
    pub fn reads_deployed_rules(&self) -> bool {
        self.detection_rules || !self.sentinel_workspaces.is_empty()
    }
}

/// A Log Analytics workspace's ARM resource ID, as the Azure portal's JSON view shows it.
fn check_workspace(w: &str) -> Result<(), String> {
    let parts: Vec<&str> = w.trim_matches('/').split('/').collect();
    let shape = parts.len() == 8
        && parts[0].eq_ignore_ascii_case("subscriptions")
        && parts[2].eq_ignore_ascii_case("resourceGroups")
        && parts[4].eq_ignore_ascii_case("providers")
        && parts[5].eq_ignore_ascii_case("Microsoft.OperationalInsights")
        && parts[6].eq_ignore_ascii_case("workspaces");
    let clean = parts.iter().all(|p| !p.is_empty() && !p.contains(['?', '#', '%', ' ']));
    if shape && clean && w.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{w:?} is not a workspace's resource ID (/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.OperationalInsights/workspaces/<name>)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: serde_json::Value) -> GraphConfig {
        let mut v = serde_json::json!({"name": "contoso", "tenant_id": "t", "client_id": "c", "client_secret": "s"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn clouds_and_overrides_give_the_hosts() {
        let c = cfg(serde_json::json!({}));
        assert_eq!(
            (c.login_base(), c.graph_base()),
            ("https://login.microsoftonline.com".into(), "https://graph.microsoft.com".into())
        );
        let c = cfg(serde_json::json!({"cloud": "us-gov-dod"}));
        assert_eq!(c.graph_base(), "https://dod-graph.microsoft.us");
        assert_eq!(c.login_base(), "https://login.microsoftonline.us");
        let c = cfg(serde_json::json!({"graph_url": "http://127.0.0.1:8080/", "overlap": "2m", "backfill": "7d"}));
        assert_eq!(c.graph_base(), "http://127.0.0.1:8080");
        assert_eq!((c.overlap.as_secs(), c.backfill.as_secs()), (120, 7 * 86_400));
    }

    #[test]
    fn validation_names_the_setting() {
        let keys = |extra| cfg(extra).validate().into_iter().map(|i| i.key).collect::<Vec<_>>();
        let china = Invalid::join(&cfg(serde_json::json!({"cloud": "china"})).validate());
        assert!(china.starts_with("cloud: the Microsoft Graph security incidents API is not available"), "{china}");
        assert_eq!(keys(serde_json::json!({"page_size": 0})), ["page_size"]);
        assert_eq!(keys(serde_json::json!({"tenant_id": "https://x/y"})), ["tenant_id"]);
        assert_eq!(keys(serde_json::json!({"graph_url": "ftp://x"})), ["graph_url"]);
        assert_eq!(keys(serde_json::json!({"graph_url": "http://graph.example.com"})), ["graph_url"]);
        assert_eq!(keys(serde_json::json!({"login_url": "http://127.0.0.1:9"})), ["login_url"]);
        assert!(keys(serde_json::json!({"login_url": "http://127.0.0.1:9", "insecure_loopback": true})).is_empty());
        // Every problem at once, not the first.
        assert_eq!(
            keys(serde_json::json!({"name": " ", "page_size": 0, "max_attempts": 0})),
            ["name", "page_size", "max_attempts"]
        );
        let unknown = serde_json::from_value::<GraphConfig>(
            serde_json::json!({"name": "n", "tenant_id": "t", "client_id": "c", "client_secret": "s", "pagesize": 5}),
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field `pagesize`"));
        // The secret never shows in Debug output.
        let c = cfg(serde_json::json!({"client_secret": "hunter2-very-secret"}));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
