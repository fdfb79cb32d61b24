//! Hindsight: automatic post-incident review of Microsoft Defender XDR incidents against
//! MITRE ATT&CK.
//!
//! The pipeline (see ARCHITECTURE.md): sources → store → review → store → notify. Each stage
//! of it is one file in [`stages`]; [`daemon`] wires them. This crate is
//! the library; `src/main.rs` only parses the command line and calls into it.

pub mod attack;
pub mod cli;
pub mod clock;
pub mod config;
pub mod controls;
pub mod daemon;
pub mod digest;
pub mod entra;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod hunts;
pub mod input;
pub mod inventory;
pub mod memory;
pub mod model;
pub mod net;
pub mod notify;
pub mod outbox;
pub mod review;
pub mod source;
pub mod stages;
pub mod store;
pub mod text;

/// Makes ring the process's rustls crypto provider. reqwest is built without a default provider
/// (pure-Rust TLS, no C crypto), and building a client before one is installed panics; every
/// place that builds one calls this first. Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
