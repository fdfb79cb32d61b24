//! Notifications: routing (which destination gets which event) and the sinks that deliver one
//! notification each.
//!
//! What a notification is while it waits lives in [`crate::outbox`]; the deliver stage
//! ([`crate::stages::deliver`]) takes what is due from the store and hands each to its sink.
//! A sink only delivers and says whether a failure is worth another attempt
//! ([`DeliveryError`]); retries and dead letters are the stage's.
//!
//! One module per sink, each with its own typed config; [`Sink`] names them.

pub mod email;
pub mod folder;
pub mod oauth;
pub mod presets;
pub mod route;
pub mod webhook;

pub use route::{Route, Subscription, entries_for, entries_for_digest};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outbox::OutboxEntry;

/// A configured destination: a name (what the outbox stores, never the URL, which may be a
/// credential) and the sink that delivers to it.
#[derive(Clone)]
pub struct Destination {
    pub name: String,
    pub sink: Arc<Sink>,
}

pub enum Sink {
    Webhook(Box<webhook::WebhookSink>),
    Email(Box<email::EmailSink>),
    Folder(Box<folder::FolderSink>),
}

impl Sink {
    pub async fn deliver(&self, entry: &OutboxEntry, now: DateTime<Utc>) -> Result<(), DeliveryError> {
        match self {
            Sink::Webhook(w) => w.deliver(entry, now).await,
            Sink::Email(e) => e.deliver(entry, now).await,
            Sink::Folder(f) => f.deliver(entry, now).await,
        }
    }

    /// Tries to reach the destination without delivering anything (`hindsight check`).
    pub async fn probe(&self) -> Result<String, String> {
        match self {
            Sink::Webhook(w) => w.probe().await,
            Sink::Email(e) => e.probe().await,
            Sink::Folder(f) => f.probe(),
        }
    }
}

/// Why an attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth another attempt, after `after` if the receiver said so.
    Retry { after: Option<Duration>, reason: String },
    /// The receiver will not take it (4xx other than 408/429, 410 Gone, a redirect).
    Permanent { reason: String },
}
