//! Shutdown on SIGTERM or SIGINT. The first signal cancels the daemon's token: workers finish
//! the step they are on (a poll pass, a review batch, the deliveries in flight) and stop; the
//! daemon waits for them up to `daemon.shutdown_timeout`, flushes the store and exits. A second
//! signal exits at once — safe too, since every stage hands work on only through the store.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit status after a second signal (128 + SIGINT, as shells report it).
pub const FORCED_EXIT: i32 = 130;

/// Watches for the signals; cancels `token` on the first, exits the process on the second.
pub fn listen(token: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: shutting down (a second signal exits at once)");
        token.cancel();
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::warn!("{name} again: exiting now; unfinished work is picked up at the next start");
        std::process::exit(FORCED_EXIT);
    });
    Ok(())
}
