//! E-mail over SMTP with lettre: STARTTLS by default, implicit TLS, or plain text only to a
//! loopback relay or when the configuration says so explicitly — never a silent fall-back to
//! plain text. Each review is a multipart message (plain text and HTML from the templates in
//! `templates/`, everything from the incident escaped) with the Navigator layer attached, and a
//! Message-ID derived from the notification's idempotency key, so a repeated delivery is
//! recognisable as the same message.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::DeliveryError;
use super::templates::Templates;
use crate::config::Invalid;
use crate::outbox::{OutboxEntry, Payload};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only to a loopback relay, or with `allow_plain = true`.
    Plain,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Defaults from `security`: 587, 465 or 25.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    /// Allows `security = "plain"` to a host that is not loopback.
    #[serde(default)]
    pub allow_plain: bool,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    pub from: String,
    pub to: Vec<String>,
    /// The longest one delivery may take, from the connection to the server's last reply.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// PEM certificate of a private CA to trust, besides the built-in roots (internal relays).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A folder whose `review.subject.j2`, `review.txt.j2` or `review.html.j2` replace the
    /// built-in templates.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
}

impl EmailConfig {
    /// The settings that may be read from a file (`password_file`); see `config::SECRET_KEYS`.
    /// Not `ca_file`: that is the path of a certificate, read when the sink is built.
    pub const SECRET_KEYS: &'static [&'static str] = &["password"];

    /// Every problem with the settings, without a file or the network; never the password.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Composer::addresses(&self.from, &self.to).err().unwrap_or_default();
        if self.security == Security::Plain && !crate::net::is_loopback(&self.host) && !self.allow_plain {
            out.push(Invalid::new(
                "security",
                format!(
                    "plain SMTP to {} would send reviews (and any password) unencrypted; use starttls or tls, or set allow_plain = true",
                    self.host
                ),
            ));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => out.push(Invalid::new("password", "missing: username is set; set both or neither")),
            (None, Some(_)) => out.push(Invalid::new("username", "missing: password is set; set both or neither")),
            _ => {}
        }
        out
    }

    /// The sink: reads `ca_file` and `templates_dir`, and sets up (without connecting) the
    /// SMTP transport.
    pub fn build(&self) -> Result<EmailSink, Vec<Invalid>> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let composer = Composer::new(&self.from, &self.to, self.templates_dir.as_ref())?;
        let one = |key: &str, message: String| vec![Invalid::new(key, message)];
        let ca = match &self.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| one("ca_file", format!("{}: {e}", path.display())))?;
                Some(Certificate::from_pem(&pem).map_err(|e| one("ca_file", format!("{}: {e}", path.display())))?)
            }
            None => None,
        };
        let tls = || {
            let mut b = TlsParameters::builder(self.host.clone());
            if let Some(c) = ca.clone() {
                b = b.add_root_certificate(c);
            }
            b.build().map_err(|e| one("host", e.to_string()))
        };
        // The port's default follows from `security`: 587 for STARTTLS, 465 for TLS, 25 plain.
        let (tls, port) = match self.security {
            Security::Starttls => (Tls::Required(tls()?), 587),
            Security::Tls => (Tls::Wrapper(tls()?), 465),
            Security::Plain => (Tls::None, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(self.timeout));
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()));
        }
        Ok(EmailSink {
            transport: builder.build(),
            composer,
            host: self.host.clone(),
            timeout: self.timeout,
            security: self.security,
        })
    }
}

pub struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    composer: Composer,
    host: String,
    timeout: Duration,
    security: Security,
}

/// Turns outbox entries into e-mail messages: the sender, the recipients and the templates.
/// The SMTP sink sends them; the folder sink writes them as .eml files.
pub struct Composer {
    from: Mailbox,
    to: Vec<Mailbox>,
    templates: Templates,
}

pub use super::templates::SUBJECT_MAX_CHARS;

impl Composer {
    /// The sender and recipients, and the templates (built-in, or read from `templates_dir`).
    pub fn new(from: &str, to: &[String], templates_dir: Option<&PathBuf>) -> Result<Composer, Vec<Invalid>> {
        let (from, to) = Self::addresses(from, to)?;
        Ok(Composer { from, to, templates: Templates::load(templates_dir.map(PathBuf::as_path)).map_err(|e| vec![e])? })
    }

    /// The `from` and `to` settings parsed, or every problem with them (pure: for `validate`).
    pub fn addresses(from: &str, to: &[String]) -> Result<(Mailbox, Vec<Mailbox>), Vec<Invalid>> {
        let mut problems = Vec::new();
        let from = from.parse::<Mailbox>().map_err(|e| problems.push(Invalid::new("from", e.to_string()))).ok();
        if to.is_empty() {
            problems.push(Invalid::new("to", "at least one recipient"));
        }
        let to: Vec<Mailbox> = to
            .iter()
            .filter_map(|t| t.parse().map_err(|e| problems.push(Invalid::new("to", format!("{t:?}: {e}")))).ok())
            .collect();
        match from {
            Some(from) if problems.is_empty() => Ok((from, to)),
            _ => Err(problems),
        }
    }

    /// The message for `entry` carrying `payload`.
    pub fn message(&self, entry: &OutboxEntry, payload: &Payload) -> Result<Message, String> {
        // Each template sees `review` or `digest` (the published JSON), `view` (what the HTML
        // lays out), `id`, and `body` (the rendered text or HTML of the whole document).
        let (rendered, attachments) = match payload {
            Payload::Digest(digest) => {
                let layer = serde_json::to_vec_pretty(&digest.layer).map_err(|e| e.to_string())?;
                (self.templates.digest(digest, &entry.id)?, vec![("layer.json", layer)])
            }
            Payload::Review(review) => {
                let layer = serde_json::to_vec_pretty(&review.layer).map_err(|e| e.to_string())?;
                // The whole review travels with the message: what the e-mail leaves out (every
                // timeline entry, the entities, the queries) is in it.
                let json = serde_json::to_vec_pretty(review).map_err(|e| e.to_string())?;
                (self.templates.review(review, &entry.id)?, vec![("layer.json", layer), ("review.json", json)])
            }
        };
        let domain = self.from.email.domain().to_owned();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(rendered.subject)
            .message_id(Some(format!("<{}@{domain}>", entry.id)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let part = |ct: ContentType, body: String| {
            SinglePart::builder().header(ct).header(ContentTransferEncoding::Base64).body(body)
        };
        let mut mixed = MultiPart::mixed().multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, rendered.text))
                .singlepart(part(ContentType::TEXT_HTML, rendered.html)),
        );
        for (name, bytes) in attachments {
            mixed = mixed.singlepart(
                Attachment::new(name.into()).body(
                    Body::new_with_encoding(bytes, ContentTransferEncoding::Base64)
                        .map_err(|_| format!("cannot encode {name}"))?,
                    ContentType::parse("application/json").map_err(|e| e.to_string())?,
                ),
            );
        }
        builder.multipart(mixed).map_err(|e| format!("cannot build the message: {e}"))
    }
}

impl EmailSink {
    /// [`EmailConfig::build`], its errors on one line ("to: at least one recipient").
    pub fn new(cfg: &EmailConfig) -> Result<EmailSink, String> {
        cfg.build().map_err(|e| Invalid::join(&e))
    }

    /// The message for `entry` carrying `payload` (public for tests and previews).
    pub fn message(&self, entry: &OutboxEntry, payload: &Payload) -> Result<Message, String> {
        self.composer.message(entry, payload)
    }

    /// Connects, says EHLO, upgrades to TLS and authenticates as a delivery would, then quits.
    pub async fn probe(&self) -> Result<String, String> {
        let answered = tokio::time::timeout(self.timeout, self.transport.test_connection()).await;
        let Ok(answered) = answered else {
            return Err(format!("SMTP server {} did not answer within {:?} (timeout)", self.host, self.timeout));
        };
        match answered {
            Ok(true) => Ok(format!(
                "SMTP server {} reachable; {}",
                self.host,
                match self.security {
                    Security::Starttls => "STARTTLS and sign-in as configured",
                    Security::Tls => "TLS and sign-in as configured",
                    Security::Plain => "plain SMTP, unencrypted (no TLS): reviews and any password go in clear",
                }
            )),
            Ok(false) => Err(format!("SMTP server {} did not answer NOOP", self.host)),
            Err(e) => Err(format!("SMTP server {}: {e}", self.host)),
        }
    }

    pub(super) async fn deliver(
        &self,
        entry: &OutboxEntry,
        payload: &Payload,
        _now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let message = self.message(entry, payload).map_err(|reason| DeliveryError::Permanent { reason })?;
        // lettre's async transport applies its timeout to the TCP connect only: a server that
        // stops answering after DATA would hold this delivery (and its permit) for good. The
        // whole exchange gets the configured timeout; past it the message may have been taken,
        // so it is sent again later with the same Message-ID.
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await.map_err(|_| {
            DeliveryError::Retry {
                after: None,
                reason: format!("SMTP: {} did not finish the exchange within {:?} (timeout)", self.host, self.timeout),
            }
        })?;
        match sent {
            Ok(_) => Ok(()),
            // 5xx: the server refuses this message for good; anything else may pass later.
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent { reason: format!("SMTP: {e}") }),
            Err(e) => Err(DeliveryError::Retry { after: None, reason: format!("SMTP: {e}") }),
        }
    }
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("from", &self.composer.from)
            .field("to", &self.composer.to)
            .finish_non_exhaustive()
    }
}
