//! `hindsight outbox …`: see what waits for delivery, what was delivered and what was
//! dead-lettered; send dead letters again; clear out old entries.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Subcommand, ValueEnum};

use super::{Format, GlobalArgs, print_json};
use crate::outbox::{EntryState, OutboxEntry};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// One line per notification: id, destination, incident, attempts, state.
    List {
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One notification in full (its body included).
    Show { id: String },
    /// Send dead-lettered notifications again, with a fresh retry budget and the same id.
    Retry {
        /// Ids to retry; `--all-dead` for every dead letter.
        ids: Vec<String>,
        #[arg(long)]
        all_dead: bool,
    },
    /// Remove delivered notifications (and, with --dead, dead letters) older than a duration.
    Purge {
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        #[arg(long)]
        dead: bool,
    },
}

fn open(global: &GlobalArgs) -> anyhow::Result<Store> {
    let dir = global.state_dir()?.join("store");
    Ok(Store::open(&dir)?)
}

fn state_name(e: &OutboxEntry) -> &'static str {
    e.state.label()
}

pub fn run(global: &GlobalArgs, cmd: OutboxCommand) -> anyhow::Result<ExitCode> {
    let store = open(global)?;
    match cmd {
        OutboxCommand::List { state, format } => {
            let mut entries = store.outbox_entries()?;
            entries.retain(|e| match state {
                None => true,
                Some(StateFilter::Pending) => e.state == EntryState::Pending,
                Some(StateFilter::Delivered) => matches!(e.state, EntryState::Delivered { .. }),
                Some(StateFilter::Dead) => matches!(e.state, EntryState::Dead { .. }),
            });
            entries.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            match format {
                Format::Json => {
                    // The bodies hold whole reviews; `show` prints one.
                    let rows: Vec<serde_json::Value> = entries
                        .iter()
                        .map(|e| {
                            serde_json::json!({"id": e.id, "destination": e.destination, "event": e.event,
                                "source": e.source, "incident_id": e.incident_id, "revision": e.revision,
                                "digest": e.digest, "state": state_name(e), "attempts": e.attempts, "created_at": e.created_at,
                                "next_attempt_at": e.next_attempt_at, "last_error": e.last_error})
                        })
                        .collect();
                    print_json(&rows)?;
                }
                Format::Text => {
                    for e in &entries {
                        let detail = match &e.state {
                            EntryState::Pending => {
                                format!("next attempt {}", e.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC"))
                            }
                            EntryState::Delivered { at } => format!("delivered {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
                            EntryState::Dead { reason, .. } => reason.clone(),
                        };
                        let what = match &e.digest {
                            Some(d) => format!("digest {d} ({})", e.source),
                            None => format!("{} incident {} r{}", e.source, e.incident_id, e.revision),
                        };
                        // Incident ids and dead-letter reasons (remote error texts) come from
                        // outside: escaped, one entry a line.
                        let line = format!(
                            "{}  {:<9}  {:<16}  {what}  attempts {}  {detail}",
                            e.id,
                            state_name(e),
                            e.destination,
                            e.attempts
                        );
                        outln!("{}", crate::text::printable(&line))?;
                    }
                    if entries.is_empty() {
                        outln!("The outbox is empty.")?;
                    }
                }
            }
        }
        OutboxCommand::Show { id } => {
            let entry = store.outbox_entry(&id)?.with_context(|| format!("no notification {id} in the outbox"))?;
            print_json(&entry)?;
        }
        OutboxCommand::Retry { ids, all_dead } => {
            let mut targets: Vec<OutboxEntry> = Vec::new();
            if all_dead {
                targets
                    .extend(store.outbox_entries()?.into_iter().filter(|e| matches!(e.state, EntryState::Dead { .. })));
            }
            for id in &ids {
                let e = store.outbox_entry(id)?.with_context(|| format!("no notification {id} in the outbox"))?;
                if !matches!(e.state, EntryState::Dead { .. }) {
                    anyhow::bail!("{id} is {}, not dead-lettered; only dead letters are retried", state_name(&e));
                }
                targets.push(e);
            }
            let now = Utc::now();
            for mut e in targets.clone() {
                // Same id (receivers de-duplicate on it), a fresh budget from now.
                e.state = EntryState::Pending;
                e.created_at = now;
                e.next_attempt_at = now;
                store.update_outbox(&e)?;
            }
            store.flush()?;
            outln!("{} notification(s) queued again.", targets.len())?;
        }
        OutboxCommand::Purge { older_than, dead } => {
            let cutoff = Utc::now() - chrono::Duration::from_std(older_than).unwrap_or_default();
            let mut removed = 0;
            let states: &[&'static str] = if dead { &["delivered", "dead"] } else { &["delivered"] };
            for state in states {
                // Through the index by age: the outbox itself (every body) is not read.
                loop {
                    let (n, looked) = store.prune_settled(state, cutoff, 1000)?;
                    removed += n;
                    if looked < 1000 {
                        break;
                    }
                }
            }
            store.flush()?;
            outln!("{removed} notification(s) removed.")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
