//! The identity platform's credentials other than a client secret, in the Graph fake (shared
//! `specs/entra-credentials.md`):
//!
//! - **Certificate** (`client_assertion` whose `iss` is the client ID): the assertion's signature
//!   is verified with the registered certificate named by its header (`PS256` with `x5t#S256`,
//!   or `RS256` with `x5t`); `aud` must be this endpoint's URL, `iss` = `sub` = the client ID,
//!   `exp` in the future and at most 10 minutes after `nbf`, and a `jti` is accepted once.
//! - **Federated** (any other `iss`): the token must match a registered federated credential
//!   (issuer and subject), with audience `api://AzureADTokenExchange`, unexpired. Its signature
//!   is not checked (that needs the issuer's OIDC discovery); its claims are.
//! - **Managed identity**: `GET /metadata/identity/oauth2/token` as on an Azure VM's instance
//!   metadata endpoint: `Metadata: true` required, `api-version` and `resource`; `client_id` or
//!   `msi_res_id` select the user-assigned identity; `expires_in` is a string, as there.
//!
//! Refusals come in Entra's error shape: AADSTS700027 (signature, unknown certificate),
//! AADSTS700024 (outside its time range), AADSTS70021 (no federated credential matches).

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::Digest;

use super::{AAD_JSON, AadError, FakeState, Shared, lock, reply};

pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub(super) const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// The audience a federated token must carry for Entra ID.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A federated identity credential on the app: the cluster's OIDC issuer and the service
/// account (`system:serviceaccount:<namespace>:<name>`).
#[derive(Clone, Debug)]
pub struct Federated {
    pub issuer: String,
    pub subject: String,
}

/// The VM's managed identity: its tenant, and the user-assigned identity's client ID and
/// resource ID (none: system-assigned).
#[derive(Clone, Debug, Default)]
pub struct ManagedIdentity {
    pub tenant: String,
    pub client_id: Option<String>,
    pub resource_id: Option<String>,
}

#[derive(Default)]
pub(super) struct SignIn {
    /// `jti`s already seen, refused the second time.
    pub jtis: std::collections::HashSet<String>,
    pub assertions_accepted: usize,
}

fn invalid_client(code: u32, description: impl Into<String>) -> AadError {
    AadError::new(StatusCode::UNAUTHORIZED, "invalid_client", code, description)
}

fn decode_part(part: Option<&str>) -> Option<Value> {
    serde_json::from_slice(&B64URL.decode(part?).ok()?).ok()
}

impl FakeState {
    /// A `client_assertion`, checked as the identity platform does.
    pub(super) fn check_assertion(&mut self, form: &HashMap<String, String>, tenant: &str) -> Result<(), AadError> {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                700023,
                "Client assertion type is invalid. Expected 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            ));
        }
        let jwt = form.get("client_assertion").cloned().unwrap_or_default();
        let mut parts = jwt.split('.');
        let (Some(header), Some(claims)) = (decode_part(parts.next()), decode_part(parts.next())) else {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            ));
        };
        let client_id = self.creds.client_id.clone();
        let now = chrono::Utc::now().timestamp();
        let (nbf, exp) = (claims["nbf"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
        if exp <= now || nbf > now + 300 {
            return Err(invalid_client(
                700024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}."
                ),
            ));
        }
        if claims["iss"].as_str() != Some(client_id.as_str()) {
            return self.check_federated(&claims);
        }
        // A certificate assertion.
        if claims["sub"].as_str() != Some(client_id.as_str()) {
            return Err(invalid_client(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ));
        }
        let audience = format!("{}/{tenant}/oauth2/v2.0/token", self.base);
        if claims["aud"].as_str() != Some(audience.as_str()) {
            return Err(invalid_client(
                700027,
                format!(
                    "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials . Expected {audience}."
                ),
            ));
        }
        if exp - nbf > 600 {
            return Err(invalid_client(700024, "Client assertion lifetime is longer than 10 minutes."));
        }
        let signed = jwt.rsplit_once('.').map(|(s, _)| s).unwrap_or_default();
        let signature = parts.next().and_then(|s| B64URL.decode(s).ok()).unwrap_or_default();
        self.verify_signature(&header, signed.as_bytes(), &signature)?;
        let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
        if jti.is_empty() || !self.sign_in.jtis.insert(jti.clone()) {
            return Err(invalid_client(700027, format!("Client assertion contains a replayed jti '{jti}'.")));
        }
        self.sign_in.assertions_accepted += 1;
        Ok(())
    }

    /// The signature, with the registered certificate the header's thumbprint names.
    fn verify_signature(&self, header: &Value, signed: &[u8], signature: &[u8]) -> Result<(), AadError> {
        let (alg, named) = match header["alg"].as_str() {
            Some("PS256") => ("PS256", header["x5t#S256"].as_str()),
            Some("RS256") => ("RS256", header["x5t"].as_str()),
            other => {
                return Err(invalid_client(700027, format!("Client assertion algorithm {other:?} is not supported.")));
            }
        };
        let registered = self.creds.certificates.iter().find_map(|pem| {
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
            let thumb = match alg {
                "PS256" => B64URL.encode(sha2::Sha256::digest(der.as_ref())),
                _ => B64URL.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref())),
            };
            (Some(thumb.as_str()) == named).then_some(der)
        });
        let Some(der) = registered else {
            return Err(invalid_client(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                    named
                        .and_then(|t| B64URL.decode(t).ok())
                        .unwrap_or_default()
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect::<String>(),
                    self.creds.client_id
                ),
            ));
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("a registered certificate parses");
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
            "PS256" => &ring::signature::RSA_PSS_2048_8192_SHA256,
            _ => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        };
        ring::signature::UnparsedPublicKey::new(algorithm, cert.public_key().subject_public_key.data.as_ref())
            .verify(signed, signature)
            .map_err(|_| invalid_client(700027, "Client assertion failed signature validation."))
    }

    fn check_federated(&mut self, claims: &Value) -> Result<(), AadError> {
        let (iss, sub) = (claims["iss"].as_str().unwrap_or_default(), claims["sub"].as_str().unwrap_or_default());
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == FEDERATED_AUDIENCE,
            Value::Array(a) => a.iter().any(|a| a == FEDERATED_AUDIENCE),
            _ => false,
        };
        let matched = self.creds.federated.iter().any(|f| f.issuer == iss && f.subject == sub);
        if !matched || !aud_ok {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                70021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
                    claims["aud"]
                ),
            ));
        }
        self.sign_in.assertions_accepted += 1;
        Ok(())
    }
}

/// The instance metadata endpoint's token answer.
pub(super) fn imds_endpoint(state: &Shared, query: &str, headers: &HeaderMap) -> Response {
    let bad = |description: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            AAD_JSON,
            json!({"error": "invalid_request", "error_description": description}).to_string(),
        )
    };
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return bad("Required metadata header not specified");
    }
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    if !q.contains_key("api-version") {
        return bad("Required query variable 'api-version' is missing");
    }
    let Some(resource) = q.get("resource").cloned() else {
        return bad("Required query variable 'resource' is missing");
    };
    let mut s = lock(state);
    s.token_requests += 1;
    let Some(mi) = s.creds.managed_identity.clone() else {
        return bad("Identity not found");
    };
    let selected = match (q.get("client_id"), q.get("msi_res_id")) {
        (Some(id), _) => mi.client_id.as_ref() == Some(id),
        (None, Some(id)) => mi.resource_id.as_ref() == Some(id),
        (None, None) => mi.client_id.is_none(),
    };
    if !selected {
        return bad("Identity not found");
    }
    let mut token = s.new_token(&format!("{resource}/.default"), &mi.tenant);
    // IMDS writes the numbers as strings.
    for k in ["expires_in", "ext_expires_in"] {
        token[k] = Value::String(token[k].to_string());
    }
    token["resource"] = Value::String(resource);
    reply(StatusCode::OK, "application/json; charset=utf-8", token.to_string())
}

/// A JWT-shaped access token (not signed: clients never validate it) carrying the tenant and
/// the application permissions granted.
pub(super) fn access_token(serial: usize, audience: &str, tenant: &str, roles: &[String], lifetime: u64) -> String {
    let now = chrono::Utc::now().timestamp();
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "fake"});
    let claims = json!({
        "aud": audience, "iss": format!("https://sts.windows.net/{tenant}/"), "tid": tenant,
        "iat": now, "nbf": now, "exp": now + lifetime as i64, "roles": roles, "serial": serial,
    });
    format!("{}.{}.{}", B64URL.encode(claims_bytes(&header)), B64URL.encode(claims_bytes(&claims)), super::opaque(43))
}

fn claims_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}
