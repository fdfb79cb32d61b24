//! The sinks as the rest of the daemon sees them: [`SinkKind`], the typed settings of a
//! `[[destinations]]` table, and [`Sink`], the sink built from them. Each kind lives in its own
//! module (`webhook.rs`, `email.rs`, `folder.rs`) and owns its config with a pure `validate()`
//! (no file, no network), a `build()` (which may read files such as `ca_file` or templates),
//! and, on the built sink, `deliver()` and `probe()`. The enums here only name the kinds and
//! delegate (the mini-redis `Command` pattern): a new kind is a new module and one arm in each
//! match below.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{defender, email, folder, oauth, webhook};
use crate::config::Invalid;
use crate::outbox::{OutboxEntry, Payload};

/// A configured destination: a name (what the outbox stores, never the URL, which may be a
/// credential) and the sink that delivers to it.
#[derive(Clone)]
pub struct Destination {
    pub name: String,
    pub sink: Arc<Sink>,
}

/// Why an attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth another attempt, after `after` if the receiver said so.
    Retry { after: Option<Duration>, reason: String },
    /// The receiver will not take it (4xx other than 408/429, 410 Gone, a redirect).
    Permanent { reason: String },
}

/// The settings of one destination's sink, by its `type`.
#[derive(Debug, Clone)]
pub enum SinkKind {
    Webhook(webhook::WebhookConfig),
    Email(email::EmailConfig),
    Folder(folder::FolderConfig),
}

impl SinkKind {
    /// The `type` of each kind, as a `[[destinations]]` table names it.
    pub const KINDS: &'static [&'static str] = &["webhook", "email", "folder"];

    /// The keys of every kind that hold secrets (and so may be given as `<key>_file`).
    pub const SECRET_KEYS: &'static [&'static [&'static str]] =
        &[webhook::WebhookConfig::SECRET_KEYS, oauth::OAuthConfig::SECRET_KEYS, email::EmailConfig::SECRET_KEYS];

    /// The kind's settings from the rest of its table (`type`, `name` and `route` taken out).
    pub fn from_table(kind: &str, table: serde_json::Map<String, Value>) -> Result<SinkKind, String> {
        use crate::config::component;
        match kind {
            "webhook" => component(table).map(SinkKind::Webhook),
            "email" => component(table).map(SinkKind::Email),
            "folder" => component(table).map(SinkKind::Folder),
            other => Err(format!("type: {other:?} is not one of {}", Self::KINDS.join(", "))),
        }
    }

    /// Every problem with the settings, keys relative to the destination's table.
    pub fn validate(&self) -> Vec<Invalid> {
        match self {
            SinkKind::Webhook(c) => c.validate(),
            SinkKind::Email(c) => c.validate(),
            SinkKind::Folder(c) => c.validate(),
        }
    }

    /// A webhook's `oauth` table signing in with a workload identity takes what the pod's
    /// environment gives (`crate::entra::settings`).
    pub fn fill_from_environment(&mut self, env: &[(String, String)]) {
        if let SinkKind::Webhook(c) = self
            && let Some(o) = &mut c.oauth
        {
            o.fill_from_environment(env);
        }
    }

    /// Settings that are allowed but weaker than the default, for `hindsight check` to say.
    pub fn notes(&self) -> Vec<String> {
        match self {
            SinkKind::Webhook(c) => c.notes(),
            SinkKind::Email(_) | SinkKind::Folder(_) => vec![],
        }
    }

    /// The sink, ready to deliver; errors as [`SinkKind::validate`]'s, plus what only building
    /// finds (an unreadable `ca_file` or template).
    pub fn build(&self) -> Result<Sink, Vec<Invalid>> {
        Ok(match self {
            SinkKind::Webhook(c) => Sink::Webhook(Box::new(c.build()?)),
            SinkKind::Email(c) => Sink::Email(Box::new(c.build()?)),
            SinkKind::Folder(c) => Sink::Folder(Box::new(c.build()?)),
        })
    }
}

pub enum Sink {
    Webhook(Box<webhook::WebhookSink>),
    Email(Box<email::EmailSink>),
    Folder(Box<folder::FolderSink>),
    /// Not a `[[destinations]]` kind: a Graph source's `write_back` brings it.
    Defender(Box<defender::DefenderSink>),
}

impl Sink {
    /// Delivers one outbox entry whose body holds what it carries.
    /// Delivers one notification: `entry` (its envelope, id and destination) carrying `payload`.
    pub async fn deliver(
        &self,
        entry: &OutboxEntry,
        payload: &Payload,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        match self {
            Sink::Webhook(w) => w.deliver(entry, payload, now).await,
            Sink::Email(e) => e.deliver(entry, payload, now).await,
            Sink::Folder(f) => f.deliver(entry, payload, now).await,
            Sink::Defender(d) => d.deliver(entry, payload, now).await,
        }
    }

    /// Tries to reach the destination without delivering anything (`hindsight check`).
    pub async fn probe(&self) -> Result<String, String> {
        match self {
            Sink::Webhook(w) => w.probe().await,
            Sink::Email(e) => e.probe().await,
            Sink::Folder(f) => f.probe(),
            Sink::Defender(d) => d.probe(),
        }
    }
}
