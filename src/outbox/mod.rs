//! The outbox: what a notification is while it waits to be delivered, independent of where it
//! goes and of where it is kept.
//!
//! A review's (or a digest's) notifications are [`OutboxEntry`]s written to the store in the
//! same transaction as what they carry; the deliver stage ([`crate::stages::deliver`]) sends
//! what is due through the sinks ([`crate::notify`]) and only then records the outcome, so a
//! crash between the two repeats a delivery (with the same idempotency key), never loses one.
//! [`RetryPolicy`] says when a failed attempt is tried again and when an entry dies.
//!
//! Both `store` and `notify` use these types; neither owns them.

mod entry;
mod retry;

pub use entry::{
    DIGEST_EVENT, EVENT_SCHEMA_VERSION, EntryState, OutboxEntry, Payload, REVIEW_CREATED, REVIEW_HUNTED,
    REVIEW_REVISED, entry_id, review_event, with_digest, with_review,
};
pub use retry::RetryPolicy;
