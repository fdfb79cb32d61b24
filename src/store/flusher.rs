//! Flushes for async callers, one at a time, each covering every request made before it.
//!
//! Every source's pass ends with a flush (the cursor must not get ahead of what is on disk), and
//! a daemon with a thousand tenants ends hundreds of passes together. sled 0.34's own
//! `flush_async` runs each flush on sled's thread pool, where the flush waits for log writes that
//! are queued on that same pool; the pool does not grow past its first seven threads (its count
//! of idle threads is decremented twice per task and wraps), so seven flushes at once can wait
//! for ever, and every transaction then waits behind them: the daemon stops (sled issues #1241,
//! #1308; `tests/store_flush.rs` reproduces it). Here one thread outside sled's pool
//! runs `Db::flush` in rounds: a round covers every request made before it started, so a
//! thousand requests cost a few fsyncs rather than a thousand, and sled's pool stays free for the
//! writes the flush waits on (docs/decisions/0003).

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What the latest finished round covered: requests up to `through`, with its outcome.
#[derive(Clone)]
struct Round {
    through: u64,
    result: Result<(), sled::Error>,
}

#[derive(Default)]
struct Requests {
    /// Tickets handed out so far.
    issued: u64,
    /// A round runs or is about to: new requests only take a ticket.
    running: bool,
}

pub(crate) struct Flusher {
    db: sled::Db,
    /// Synced before each round's sled flush: a review's pointer must not be durable first.
    log: Arc<super::review_log::ReviewLog>,
    requests: Mutex<Requests>,
    rounds: watch::Sender<Round>,
}

impl Flusher {
    pub(crate) fn new(db: sled::Db, log: Arc<super::review_log::ReviewLog>) -> Arc<Flusher> {
        let (rounds, _) = watch::channel(Round { through: 0, result: Ok(()) });
        Arc::new(Flusher { db, log, requests: Mutex::new(Requests::default()), rounds })
    }

    /// Returns once a flush that started after this call has finished, with its outcome (or
    /// that of a later round, which covers this request as well).
    pub(crate) async fn flush(self: &Arc<Self>) -> Result<(), sled::Error> {
        let mut rounds = self.rounds.subscribe();
        let ticket = {
            let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            r.issued += 1;
            if !r.running {
                // A thread of its own rather than tokio's blocking pool: a task spawned there
                // while a runtime shuts down never runs, and `running` would then stay set for
                // the next runtime that uses this store (a restart in the same process).
                let me = Arc::clone(self);
                let spawned = std::thread::Builder::new().name("hindsight-flush".into()).spawn(move || me.run_rounds());
                match spawned {
                    Ok(_) => r.running = true,
                    Err(e) => {
                        let error =
                            sled::Error::Io(std::io::Error::new(e.kind(), format!("cannot start a flush thread: {e}")));
                        return Err(error);
                    }
                }
            }
            r.issued
        };
        // `wait_for` looks at the current value first: a round that finished before this line
        // is not missed. The sender lives as long as `self`, so the channel cannot close here.
        match rounds.wait_for(|round| round.through >= ticket).await {
            Ok(round) => round.result.clone(),
            Err(_) => Err(sled::Error::ReportableBug("the store's flusher stopped".into())),
        }
    }

    /// Flushes until no request is left uncovered, on a thread of its own.
    fn run_rounds(&self) {
        loop {
            let through = {
                let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
                if r.issued == self.rounds.borrow().through {
                    r.running = false;
                    return;
                }
                r.issued
            };
            // A panic in sled must not leave the waiters waiting: it becomes this round's error.
            let flush = || self.log.sync().map_err(sled::Error::Io).and_then(|()| self.db.flush());
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(flush))
                .unwrap_or_else(|_| Err(sled::Error::ReportableBug("sled panicked while flushing".into())))
                .map(|_| ());
            self.rounds.send_replace(Round { through, result });
        }
    }
}
