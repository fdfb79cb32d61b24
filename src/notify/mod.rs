//! Notifications: routing (which destination gets which event) and the sinks that deliver one
//! notification each.
//!
//! What a notification is while it waits lives in [`crate::outbox`]; the deliver stage
//! ([`crate::stages::deliver`]) takes what is due from the store and hands each to its sink.
//! A sink only delivers and says whether a failure is worth another attempt
//! ([`DeliveryError`]); retries and dead letters are the stage's.
//!
//! One module per sink, each with its own typed config; [`Sink`] and [`SinkKind`] (in `sink.rs`)
//! name them and delegate.

pub mod defender;
pub mod email;
pub mod folder;
pub mod oauth;
pub mod presets;
pub mod route;
mod sink;
pub mod templates;
pub mod webhook;

pub use route::{Route, Subscription, entries_for, entries_for_digest, entries_for_hunted};
pub use sink::{DeliveryError, Destination, Sink, SinkKind};
