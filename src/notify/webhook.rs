//! The generic webhook: a POST of the event as JSON, signed per Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 over
//! `id.timestamp.body` with a `whsec_` key), so receivers can check it with any Standard Webhooks
//! library. Redirects are never followed, and the URL — a Power Automate URL carries its `sig` —
//! never appears in a log line or an error.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::DeliveryError;
use crate::config::Invalid;
use crate::outbox::{OutboxEntry, Payload};

/// The shortest signing key taken, in bytes after base64 decoding (the Standard Webhooks
/// libraries generate 24 to 64).
pub const MIN_SIGNING_KEY_BYTES: usize = 24;

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The full URL, a secret when it carries a `sig` (Power Automate, Logic Apps, Teams Workflows).
    pub url: SecretString,
    /// Standard Webhooks signing key, `whsec_` + base64; unsigned without it.
    #[serde(default)]
    pub signing_secret: Option<SecretString>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Allows plain `http://` to a loopback address (local receivers, tests). Anything else must
    /// be `https://`.
    #[serde(default)]
    pub insecure_loopback: bool,
    /// Allows a receiver on a private address (10/8, 172.16/12, 192.168/16, 100.64/10,
    /// fc00::/7), written in the URL or resolved from its name: a receiver on your own network.
    /// Link-local and cloud metadata addresses (169.254/16, fe80::/10) are refused regardless.
    #[serde(default)]
    pub allow_private: bool,
    /// The body: the generic event (`schemas/webhook-event.v1.json`), or a preset for Power
    /// Automate / Logic Apps, Teams (Workflows) or Slack.
    #[serde(default)]
    pub format: Format,
    /// Send an Entra ID bearer token (flows restricted to users of a tenant) instead of, or
    /// as well as, a SAS `sig` in the URL.
    #[serde(default)]
    pub oauth: Option<super::oauth::OAuthConfig>,
    /// The hosts a Teams card or Slack message may link to as "Open in Microsoft Defender"
    /// (the incident's `incidentWebUrl`, which comes from the incident and so is not trusted):
    /// the Defender portals of the commercial and government clouds by default.
    #[serde(default = "super::presets::default_portal_hosts")]
    pub portal_hosts: Vec<String>,
}

impl WebhookConfig {
    /// The settings that may be read from a file (`url_file`, `signing_secret_file`); see
    /// `config::SECRET_KEYS`.
    pub const SECRET_KEYS: &'static [&'static str] = &["url", "signing_secret"];

    /// Every problem with the settings, without a file or the network. Errors name the setting,
    /// never its value: both the URL (its `sig`) and the signing key are secrets.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if let Err(e) = self.checked_url() {
            out.push(e);
        }
        if let Err(e) = self.signing_key() {
            out.push(e);
        }
        if let Some(o) = &self.oauth {
            out.extend(crate::config::under(o.validate(), "oauth"));
        }
        for h in &self.portal_hosts {
            // A bare host name, as the link's host is compared with it.
            let bare = !h.is_empty() && !h.contains(['/', ':', '@', '?', '#']) && !h.contains(char::is_whitespace);
            if !bare || url::Host::parse(h).is_err() {
                out.push(Invalid::new(
                    "portal_hosts",
                    format!("{h:?} is not a host name (e.g. \"security.microsoft.com\")"),
                ));
            }
        }
        out
    }

    /// What `hindsight check` should point out: a receiver or a sign-in over plain HTTP (to
    /// loopback, as allowed by `insecure_loopback`).
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.url.expose_secret().starts_with("http://") {
            out.push("url uses plain HTTP to a loopback address (insecure_loopback = true)".to_owned());
        }
        if self.oauth.as_ref().is_some_and(super::oauth::OAuthConfig::plain_http) {
            out.push(
                "oauth.login_url uses plain HTTP to a loopback address (oauth.insecure_loopback = true): the client secret and tokens go unencrypted"
                    .to_owned(),
            );
        }
        if let Some(o) = &self.oauth {
            out.extend(o.sign_in().notes(chrono::Utc::now()).into_iter().map(|n| format!("oauth: {n}")));
        }
        out
    }

    /// The sink (an HTTP client that follows no redirect, a token source with `oauth`).
    pub fn build(&self) -> Result<WebhookSink, Vec<Invalid>> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let key = self.signing_key().map_err(|e| vec![e])?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Names are resolved, checked and pinned here: see crate::net::Guard.
            .dns_resolver(crate::net::Guard(self.address_policy()))
            .user_agent(concat!("hindsight/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| vec![Invalid::new("", format!("cannot set up the HTTP client: {e}"))])?;
        let oauth = self
            .oauth
            .clone()
            .map(|o| super::oauth::TokenSource::new(o, http.clone()))
            .transpose()
            .map_err(|e| vec![e.under("oauth")])?;
        Ok(WebhookSink {
            url: self.url.clone(),
            key,
            format: self.format,
            http,
            oauth,
            portal_hosts: self.portal_hosts.clone(),
        })
    }

    fn checked_url(&self) -> Result<(), Invalid> {
        // url's parse errors describe the problem, not the input, so the secret stays out.
        let url = url::Url::parse(self.url.expose_secret())
            .map_err(|e| Invalid::new("url", format!("not a valid URL ({e})")))?;
        crate::net::https_or_loopback(&url, self.insecure_loopback).map_err(|m| Invalid::new("url", m))?;
        match url.host() {
            Some(host) => self.address_policy().check_url_host(&host).map_err(|r| Invalid::new("url", r.0)),
            None => Err(Invalid::new("url", "has no host")),
        }
    }

    /// Where this destination may be sent: public addresses, private ones with
    /// `allow_private`, loopback through a name only if the URL names `localhost` or the
    /// destination has `insecure_loopback` (so that a receiver's DNS cannot point the daemon at
    /// its own machine).
    fn address_policy(&self) -> crate::net::AddressPolicy {
        let localhost = url::Url::parse(self.url.expose_secret())
            .ok()
            .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case("localhost")))
            .unwrap_or(false);
        crate::net::AddressPolicy {
            allow_private: self.allow_private,
            allow_loopback: self.insecure_loopback || localhost,
        }
    }

    fn signing_key(&self) -> Result<Option<Vec<u8>>, Invalid> {
        let Some(s) = &self.signing_secret else { return Ok(None) };
        let b64 = s.expose_secret().strip_prefix("whsec_").unwrap_or(s.expose_secret());
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| Invalid::new("signing_secret", "expected whsec_ followed by base64"))?;
        // A key of a few bytes (or none: `whsec_`, an empty key file) can be guessed, and then
        // anyone can sign. Standard Webhooks keys are 24 to 64 random bytes.
        if key.len() < MIN_SIGNING_KEY_BYTES {
            return Err(Invalid::new(
                "signing_secret",
                format!(
                    "too short: the key must decode to at least {MIN_SIGNING_KEY_BYTES} bytes (Standard Webhooks keys are 24 to 64 random bytes, e.g. whsec_ + `openssl rand -base64 32`)"
                ),
            ));
        }
        Ok(Some(key))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Generic,
    PowerAutomate,
    Teams,
    Slack,
}

pub struct WebhookSink {
    url: SecretString,
    key: Option<Vec<u8>>,
    format: Format,
    http: reqwest::Client,
    oauth: Option<super::oauth::TokenSource>,
    portal_hosts: Vec<String>,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("url", &"[redacted]").finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// [`WebhookConfig::build`], its errors on one line ("url: must be https://").
    pub fn new(cfg: &WebhookConfig) -> Result<WebhookSink, String> {
        cfg.build().map_err(|e| Invalid::join(&e))
    }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// A HEAD request (no body: a flow trigger does not run on it) and, with OAuth, a token:
    /// DNS, TCP, TLS and the receiver's answer, without delivering anything. Any HTTP answer
    /// counts as reachable; only the host is named, never the URL (it may carry a `sig`).
    pub async fn probe(&self) -> Result<String, String> {
        let host = url::Url::parse(self.url.expose_secret())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "the receiver".into());
        if let Some(oauth) = &self.oauth {
            oauth.token().await.map_err(|e| format!("bearer token for {host}: {e}"))?;
        }
        match self.http.head(self.url.expose_secret()).send().await {
            Ok(resp) => {
                Ok(format!("{host} reachable over {} (HTTP {} to HEAD)", self.scheme(), resp.status().as_u16()))
            }
            Err(e) => Err(format!("{host}: {}", error_chain(&e.without_url()))),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.url.expose_secret().starts_with("https://") { "TLS" } else { "plain HTTP" }
    }

    pub(super) async fn deliver(
        &self,
        entry: &OutboxEntry,
        payload: &Payload,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&body(self.format, entry, payload, &self.portal_hosts))
            .map_err(|e| DeliveryError::Permanent { reason: format!("cannot serialize the event: {e}") })?;
        let timestamp = now.timestamp();
        let mut req = self
            .http
            .post(self.url.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &entry.id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = &self.key {
            req = req.header("webhook-signature", Self::signature(key, &entry.id, timestamp, &body));
        }
        if let Some(oauth) = &self.oauth {
            let token = oauth.token().await.map_err(|reason| DeliveryError::Retry { after: None, reason })?;
            req = req.bearer_auth(token.expose_secret());
        }
        let resp = req.body(body).send().await.map_err(|e| match crate::net::refused(&e) {
            // The receiver's name resolves to an address this destination may not reach (a
            // metadata service, a private network without allow_private): a matter of DNS or
            // configuration, not of waiting, so the notification is dead-lettered at once with
            // the reason, and can be retried by hand once fixed (hindsight outbox retry).
            Some(why) => DeliveryError::Permanent { reason: format!("destination refused: {why}") },
            None => DeliveryError::Retry {
                after: None,
                // without_url: the URL may carry the SAS signature.
                reason: error_chain(&e.without_url()),
            },
        })?;
        let outcome = classify(resp.status(), resp.headers(), now);
        if resp.status() == StatusCode::UNAUTHORIZED
            && let Some(oauth) = &self.oauth
        {
            // A refused token may just have been revoked: the next attempt gets a fresh one. A
            // second refusal means the app lacks access, which retrying will not change.
            oauth.forget().await;
            if entry.attempts == 0 {
                return Err(DeliveryError::Retry {
                    after: None,
                    reason: "HTTP 401: the bearer token was refused".into(),
                });
            }
        }
        outcome
    }
}

/// The body a receiver of `format` gets for `entry` carrying `payload`: the whole event for
/// the generic format, a preset's summary for the others (Teams and Slack linking to the
/// incident only on one of `portal_hosts`).
pub fn body<S: AsRef<str>>(
    format: Format,
    entry: &OutboxEntry,
    payload: &Payload,
    portal_hosts: &[S],
) -> serde_json::Value {
    match format {
        Format::Generic => payload.event(entry),
        Format::PowerAutomate => super::presets::power_automate(&entry.body, payload),
        Format::Teams => super::presets::teams(&entry.body, payload, portal_hosts),
        Format::Slack => super::presets::slack(&entry.body, payload, portal_hosts),
    }
}

/// "error sending request: connection refused", not just the outermost message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s += &format!(": {inner}");
        cur = inner.source();
    }
    s
}

#[cold]
fn unreachable_hmac() -> Hmac<Sha256> {
    // Hmac::new_from_slice only fails for fixed-key-size MACs; SHA-256 HMAC takes any key.
    panic!("HMAC-SHA256 rejected a key")
}

/// Any 2xx is delivered; 408, 429 and 5xx are tried again (honouring `Retry-After`); 410 means
/// "stop"; a redirect and other 4xx are permanent: the receiver or the configuration must change.
fn classify(status: StatusCode, headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let after = crate::net::retry_after_header(headers, now);
    match status.as_u16() {
        408 | 429 | 500..=599 => Err(DeliveryError::Retry { after, reason: format!("HTTP {status}") }),
        410 => Err(DeliveryError::Permanent { reason: "HTTP 410 Gone: the receiver wants no more deliveries".into() }),
        300..=399 => Err(DeliveryError::Permanent { reason: format!("HTTP {status}: redirects are not followed") }),
        _ => Err(DeliveryError::Permanent { reason: format!("HTTP {status}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_into_retry_and_permanent() {
        let h = reqwest::header::HeaderMap::new();
        let now = Utc::now();
        assert!(classify(StatusCode::ACCEPTED, &h, now).is_ok());
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(StatusCode::from_u16(s).unwrap(), &h, now), Err(DeliveryError::Retry { .. })),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 404, 410, 413] {
            assert!(
                matches!(classify(StatusCode::from_u16(s).unwrap(), &h, now), Err(DeliveryError::Permanent { .. })),
                "{s}"
            );
        }
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2.5".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, now),
            Err(DeliveryError::Retry {
                after: Some(Duration::from_millis(2500)),
                reason: "HTTP 429 Too Many Requests".into()
            })
        );
    }

    #[test]
    fn refuses_unsafe_destinations() {
        let cfg = |url: &str, loopback: bool| WebhookConfig {
            url: url.to_owned().into(),
            signing_secret: None,
            timeout: Duration::from_secs(1),
            insecure_loopback: loopback,
            allow_private: false,
            format: Format::Generic,
            oauth: None,
            portal_hosts: crate::notify::presets::default_portal_hosts(),
        };
        assert!(WebhookSink::new(&cfg("https://prod-01.westeurope.logic.azure.com/x?sig=abc", false)).is_ok());
        assert_eq!(WebhookSink::new(&cfg("http://example.com/hook", true)).unwrap_err(), "url: must be https://");
        assert!(WebhookSink::new(&cfg("http://127.0.0.1:9/hook", false)).unwrap_err().contains("insecure_loopback"));
        assert!(WebhookSink::new(&cfg("http://127.0.0.1:9/hook", true)).is_ok());
        let e = WebhookSink::new(&cfg("not a url?sig=SECRETVALUE", false)).unwrap_err();
        assert!(!e.contains("SECRETVALUE"), "{e}");
    }

    #[test]
    fn signing_keys_under_24_bytes_are_refused() {
        let with_key = |key: &str| WebhookConfig {
            url: "https://example.com/h".to_owned().into(),
            signing_secret: Some(key.to_owned().into()),
            timeout: Duration::from_secs(1),
            insecure_loopback: false,
            allow_private: false,
            format: Format::Generic,
            oauth: None,
            portal_hosts: crate::notify::presets::default_portal_hosts(),
        };
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        for n in [0, 1, 23] {
            let e = Invalid::join(&with_key(&format!("whsec_{}", b64(n))).validate());
            assert!(e.starts_with("signing_secret: too short"), "{n}: {e}");
        }
        assert!(with_key(&format!("whsec_{}", b64(24))).validate().is_empty());
        assert!(with_key(&b64(64)).validate().is_empty(), "the whsec_ prefix is optional");
    }
}
