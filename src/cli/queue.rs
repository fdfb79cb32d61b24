//! `hindsight queue …`: the review queue — resolutions waiting for their review, and those that
//! could not be reviewed (kept with why, out of the queue so that it moves on).

use std::process::ExitCode;

use clap::Subcommand;

use super::{Format, GlobalArgs, print_json};
use crate::store::{ResolutionKey, Store};

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// One line per queued resolution (source/incident/revision); with --failed, those that
    /// could not be reviewed, with why.
    List {
        #[arg(long)]
        failed: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Put resolutions that could not be reviewed back in the queue (after an upgrade that
    /// fixes why), by `source/incident/revision` or all of them.
    Retry {
        keys: Vec<String>,
        #[arg(long)]
        all_failed: bool,
    },
}

pub fn run(global: &GlobalArgs, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let store = Store::open(&global.state_dir()?.join("store"))?;
    match cmd {
        QueueCommand::List { failed: false, format } => {
            let keys: Vec<ResolutionKey> = store.pending().collect::<Result<_, _>>()?;
            match format {
                Format::Json => print_json(&keys.iter().map(ResolutionKey::display).collect::<Vec<_>>())?,
                Format::Text if keys.is_empty() => outln!("The review queue is empty.")?,
                Format::Text => {
                    for k in &keys {
                        outln!("{}", crate::text::printable(&k.display()))?;
                    }
                }
            }
        }
        QueueCommand::List { failed: true, format } => {
            let failed = store.failed_reviews()?;
            match format {
                Format::Json => {
                    let rows: Vec<serde_json::Value> = failed
                        .iter()
                        .map(|(k, f)| {
                            serde_json::json!({"resolution": k.display(), "source": f.source,
                            "incident_id": f.incident_id, "revision": f.revision, "reason": f.reason, "at": f.at})
                        })
                        .collect();
                    print_json(&rows)?;
                }
                Format::Text if failed.is_empty() => outln!("No incident failed its review.")?,
                Format::Text => {
                    for (k, f) in &failed {
                        let line = format!("{}  {}  {}", k.display(), f.at.format("%Y-%m-%d %H:%M:%S UTC"), f.reason);
                        outln!("{}", crate::text::printable(&line))?;
                    }
                }
            }
        }
        QueueCommand::Retry { keys, all_failed } => {
            let failed = store.failed_reviews()?;
            let chosen: Vec<&ResolutionKey> = failed
                .iter()
                .map(|(k, _)| k)
                .filter(|k| all_failed || keys.iter().any(|want| *want == k.display()))
                .collect();
            for want in &keys {
                if !failed.iter().any(|(k, _)| k.display() == *want) {
                    anyhow::bail!(
                        "{want} is not among the resolutions that failed their review (hindsight queue list --failed)"
                    );
                }
            }
            for k in &chosen {
                store.requeue_failed(k)?;
            }
            store.flush()?;
            outln!("{} resolution(s) queued for review again.", chosen.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
