//! The sign-in keys a Graph source and a webhook's `oauth` table share: which credential
//! (`credential = "secret" | "certificate" | "workload_identity" | "managed_identity"`) and the
//! keys of that kind, validated without a network and turned into a [`Credential`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::Credential;
use super::certificate::{Algorithm, Certificate, Part};
use crate::config::Invalid;

/// What the AKS workload identity webhook injects into a pod (and what Azure's SDKs read).
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";

/// How the app proves who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `client_secret` (or `client_secret_file`).
    #[default]
    Secret,
    /// `certificate_file` and `private_key_file`: a signed client assertion per token request.
    Certificate,
    /// Kubernetes workload identity federation: the projected service-account token in
    /// `federated_token_file` (`$AZURE_FEDERATED_TOKEN_FILE`), re-read for each request.
    WorkloadIdentity,
    /// The Azure VM's managed identity, from the instance metadata endpoint.
    ManagedIdentity,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Secret => "secret",
            CredentialKind::Certificate => "certificate",
            CredentialKind::WorkloadIdentity => "workload_identity",
            CredentialKind::ManagedIdentity => "managed_identity",
        }
    }

    /// What to check when the identity platform refuses the sign-in.
    pub fn hint(self) -> &'static str {
        match self {
            CredentialKind::Secret => "Check tenant_id, client_id and the client secret",
            CredentialKind::Certificate => {
                "Check tenant_id, client_id and that the app registration holds this certificate (thumbprint in `hindsight check`)"
            }
            CredentialKind::WorkloadIdentity => {
                "Check tenant_id, client_id and the app's federated credential (issuer, subject system:serviceaccount:<namespace>:<name>, audience api://AzureADTokenExchange)"
            }
            CredentialKind::ManagedIdentity => {
                "Check that the VM has this managed identity and that its service principal holds the permissions"
            }
        }
    }
}

/// `fn sign_in(&self) -> SignIn` for a configuration table that has the sign-in keys
/// (`credential`, `client_id`, `client_secret`, `certificate`, `private_key`,
/// `assertion_algorithm`, `federated_token_file`, `managed_identity_id`, `imds_url`): a Graph
/// source and a webhook's `oauth` table declare the same keys, each in its own struct, since
/// `deny_unknown_fields` rules out a flattened one.
macro_rules! sign_in_keys {
    ($config:ty) => {
        impl $config {
            /// The sign-in keys, for the token client and their validation.
            pub fn sign_in(&self) -> $crate::entra::SignIn<'_> {
                $crate::entra::SignIn {
                    kind: self.credential,
                    client_id: &self.client_id,
                    client_secret: self.client_secret.as_ref(),
                    certificate: self.certificate.as_ref(),
                    private_key: self.private_key.as_ref(),
                    algorithm: self.assertion_algorithm,
                    federated_token_file: self.federated_token_file.as_deref(),
                    managed_identity_id: self.managed_identity_id.as_deref(),
                    imds_url: self.imds_url.as_ref(),
                }
            }
        }
    };
}
pub(crate) use sign_in_keys;

/// The sign-in keys of one table, borrowed from its configuration.
pub struct SignIn<'a> {
    pub kind: CredentialKind,
    pub client_id: &'a str,
    pub client_secret: Option<&'a SecretString>,
    /// PEM text of the certificate (from `certificate_file`), possibly with its key.
    pub certificate: Option<&'a SecretString>,
    /// PEM text of the private key (from `private_key_file`).
    pub private_key: Option<&'a SecretString>,
    pub algorithm: Algorithm,
    pub federated_token_file: Option<&'a Path>,
    /// A user-assigned identity: its client ID, or its resource ID (`/subscriptions/…`).
    pub managed_identity_id: Option<&'a str>,
    /// The instance metadata endpoint, for tests: loopback only.
    pub imds_url: Option<&'a Url>,
}

impl SignIn<'_> {
    /// Every problem found without a network: the keys the kind needs, the keys of other kinds
    /// (a sign of a half-finished change), a certificate and key that do not go together.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        let kind = self.kind.as_str();
        let set = |present: bool, key: &str, out: &mut Vec<Invalid>, wanted: &[CredentialKind]| {
            if present && !wanted.contains(&self.kind) {
                out.push(Invalid::new(
                    key,
                    format!("is not used with credential = {kind:?}; remove it or change credential"),
                ));
            }
        };
        set(self.client_secret.is_some(), "client_secret", &mut out, &[CredentialKind::Secret]);
        set(self.certificate.is_some(), "certificate_file", &mut out, &[CredentialKind::Certificate]);
        set(self.private_key.is_some(), "private_key_file", &mut out, &[CredentialKind::Certificate]);
        set(self.federated_token_file.is_some(), "federated_token_file", &mut out, &[CredentialKind::WorkloadIdentity]);
        set(self.managed_identity_id.is_some(), "managed_identity_id", &mut out, &[CredentialKind::ManagedIdentity]);
        set(self.imds_url.is_some(), "imds_url", &mut out, &[CredentialKind::ManagedIdentity]);
        match self.kind {
            CredentialKind::Secret if self.client_secret.is_none() => out.push(Invalid::new(
                "client_secret",
                "must be set for credential = \"secret\" (client_secret_file, or a certificate, workload or managed identity instead: see docs/connect-a-tenant.md)",
            )),
            CredentialKind::Certificate => match self.certificate {
                None => out.push(Invalid::new("certificate_file", "must be set for credential = \"certificate\"")),
                Some(_) => {
                    if let Err(e) = self.load_certificate() {
                        out.push(e);
                    }
                }
            },
            CredentialKind::WorkloadIdentity if self.federated_token_file.is_none() => out.push(Invalid::new(
                "federated_token_file",
                format!(
                    "must be set for credential = \"workload_identity\", or ${AZURE_FEDERATED_TOKEN_FILE} (set by the AKS workload identity webhook on pods labelled azure.workload.identity/use: \"true\")"
                ),
            )),
            _ => {}
        }
        if let Some(u) = self.imds_url
            && !(u.scheme() == "http" && u.host_str().is_some_and(crate::net::is_loopback))
        {
            out.push(Invalid::new(
                "imds_url",
                "is for tests only and must be http:// to a loopback address; on Azure leave it out (169.254.169.254)",
            ));
        }
        out
    }

    fn load_certificate(&self) -> Result<Certificate, Invalid> {
        let cert = self.certificate.map(|c| c.expose_secret().as_bytes()).unwrap_or_default();
        // The key may sit in the certificate's own PEM file.
        let (key, key_name) = match self.private_key {
            Some(k) => (k.expose_secret().as_bytes(), "private_key_file"),
            None => (cert, "certificate_file"),
        };
        Certificate::from_pem(cert, key, self.algorithm).map_err(|(part, e)| match part {
            Part::Certificate => Invalid::new("certificate_file", e),
            Part::Key => Invalid::new(key_name, e),
        })
    }

    /// The credential, ready for token requests.
    pub fn credential(&self) -> Result<Credential, Invalid> {
        Ok(match self.kind {
            CredentialKind::Secret => Credential::Secret(
                self.client_secret.cloned().ok_or_else(|| Invalid::new("client_secret", "must be set"))?,
            ),
            CredentialKind::Certificate => Credential::Certificate(Arc::new(self.load_certificate()?)),
            CredentialKind::WorkloadIdentity => Credential::WorkloadIdentity(
                self.federated_token_file
                    .map(Path::to_path_buf)
                    .ok_or_else(|| Invalid::new("federated_token_file", "must be set"))?,
            ),
            CredentialKind::ManagedIdentity => Credential::ManagedIdentity(super::imds::Identity::new(
                self.managed_identity_id,
                self.imds_url.map(|u| u.as_str().trim_end_matches('/').to_owned()),
            )),
        })
    }
}

/// Warn this long before a certificate expires.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

impl SignIn<'_> {
    /// For `hindsight check` and the start-up log: a certificate that expires within
    /// [`EXPIRY_WARNING_DAYS`] or has expired.
    pub fn notes(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let Some(cert) = (self.kind == CredentialKind::Certificate).then(|| self.load_certificate().ok()).flatten()
        else {
            return vec![];
        };
        let days = cert.days_left(now);
        let until = cert.not_after.format("%Y-%m-%d %H:%M UTC");
        if cert.not_after <= now {
            vec![format!(
                "certificate {} expired on {until}: Entra ID refuses it. Add a new certificate to the app registration and point certificate_file at it (docs/connect-a-tenant.md, rotation)",
                cert.thumbprint
            )]
        } else if days < EXPIRY_WARNING_DAYS {
            vec![format!(
                "certificate {} expires on {until}, in {days} day(s): add its successor to the app registration now, then switch certificate_file (docs/connect-a-tenant.md, rotation)",
                cert.thumbprint
            )]
        } else {
            vec![]
        }
    }

    /// When the certificate expires, for a `certificate` credential that loads.
    pub fn certificate_expiry(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        (self.kind == CredentialKind::Certificate).then(|| self.load_certificate().ok().map(|c| c.not_after)).flatten()
    }

    /// One line on the credential for `hindsight check`: its kind and, for a certificate, its
    /// thumbprint, subject and validity. Never the secret or key.
    pub fn describe(&self) -> String {
        match self.kind {
            CredentialKind::Certificate => match self.load_certificate() {
                Ok(c) => format!(
                    "certificate {} ({}, {:?}), valid {} to {}",
                    c.thumbprint,
                    c.subject,
                    self.algorithm,
                    c.not_before.format("%Y-%m-%d"),
                    c.not_after.format("%Y-%m-%d")
                ),
                Err(e) => format!("certificate (unusable: {e})"),
            },
            CredentialKind::WorkloadIdentity => format!(
                "workload identity (token file {})",
                self.federated_token_file.map_or("unset".into(), |p| p.display().to_string())
            ),
            CredentialKind::ManagedIdentity => match self.managed_identity_id {
                Some(id) => format!("user-assigned managed identity {id}"),
                None => "system-assigned managed identity".into(),
            },
            CredentialKind::Secret => "client secret".into(),
        }
    }
}

/// Fills what a workload identity's pod was given and the configuration left out: the tenant,
/// client ID, token file and sign-in host, from the variables of `env`.
pub fn fill_from_environment(
    env: &[(String, String)],
    tenant_id: &mut String,
    client_id: &mut String,
    token_file: &mut Option<PathBuf>,
) -> Option<String> {
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    if tenant_id.trim().is_empty() {
        *tenant_id = var(AZURE_TENANT_ID).unwrap_or_default();
    }
    if client_id.trim().is_empty() {
        *client_id = var(AZURE_CLIENT_ID).unwrap_or_default();
    }
    if token_file.is_none() {
        *token_file = var(AZURE_FEDERATED_TOKEN_FILE).map(PathBuf::from);
    }
    var(AZURE_AUTHORITY_HOST)
}
