//! The folder sink: each notification written to a folder — the e-mail as an `.eml` file (the
//! message an e-mail destination would send, openable in any mail client) and the webhook body
//! as `.json` — with a one-line summary on standard output. For the demo, for trying templates
//! and presets without a server, and for air-gapped set-ups that pick files up.
//!
//! A file's name is derived from the notification's idempotency key, so a repeated delivery
//! replaces the file instead of adding one; files are written to a temporary name and renamed.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::DeliveryError;
use super::email::Composer;
use super::webhook::Format;
use crate::config::Invalid;
use crate::outbox::{OutboxEntry, Payload};
use crate::text::printable;

fn default_write() -> Vec<FileKind> {
    vec![FileKind::Eml, FileKind::Json]
}
fn default_from() -> String {
    "Hindsight <hindsight@localhost>".into()
}
fn default_to() -> Vec<String> {
    vec!["soc@localhost".into()]
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Eml,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// Created if missing.
    pub path: PathBuf,
    /// Which files to write for each notification.
    #[serde(default = "default_write")]
    pub write: Vec<FileKind>,
    /// The body of the .json file: generic | power-automate | teams | slack.
    #[serde(default)]
    pub format: Format,
    #[serde(default = "default_from")]
    pub from: String,
    #[serde(default = "default_to")]
    pub to: Vec<String>,
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
    /// Print a line per notification on standard output.
    #[serde(default = "yes")]
    pub print: bool,
}

pub struct FolderSink {
    cfg: FolderConfig,
    composer: Composer,
}

impl FolderConfig {
    /// Every problem with the settings, without a file: whether the folder can be written is
    /// `probe`'s question (and it is created at the first delivery).
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if self.write.is_empty() {
            out.push(Invalid::new("write", "name at least one of \"eml\", \"json\""));
        }
        out.extend(Composer::addresses(&self.from, &self.to).err().unwrap_or_default());
        out
    }

    /// The sink, with its templates read.
    pub fn build(&self) -> Result<FolderSink, Vec<Invalid>> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let composer = Composer::new(&self.from, &self.to, self.templates_dir.as_ref())?;
        Ok(FolderSink { cfg: self.clone(), composer })
    }
}

impl FolderSink {
    /// [`FolderConfig::build`], its errors on one line.
    pub fn new(cfg: &FolderConfig) -> Result<FolderSink, String> {
        cfg.build().map_err(|e| Invalid::join(&e))
    }

    pub fn probe(&self) -> Result<String, String> {
        std::fs::create_dir_all(&self.cfg.path).map_err(|e| format!("{}: {e}", self.cfg.path.display()))?;
        let probe = self.cfg.path.join(".hindsight-probe");
        std::fs::write(&probe, b"")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| format!("{}: not writable: {e}", self.cfg.path.display()))?;
        Ok(format!("{} is writable", self.cfg.path.display()))
    }

    fn stem(entry: &OutboxEntry) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
                .take(64)
                .collect()
        };
        if entry.digest.is_some() {
            format!("digest-{}", entry.id)
        } else {
            format!("review-{}-{}-r{}-{}", clean(&entry.source), clean(&entry.incident_id), entry.revision, entry.id)
        }
    }

    pub(super) async fn deliver(
        &self,
        entry: &OutboxEntry,
        payload: &Payload,
        _now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let retry =
            |what: &str, e: std::io::Error| DeliveryError::Retry { after: None, reason: format!("{what}: {e}") };
        tokio::fs::create_dir_all(&self.cfg.path).await.map_err(|e| retry(&self.cfg.path.display().to_string(), e))?;
        let stem = Self::stem(entry);
        let mut written = Vec::new();
        for kind in &self.cfg.write {
            let (ext, bytes) = match kind {
                FileKind::Eml => {
                    let message =
                        self.composer.message(entry, payload).map_err(|reason| DeliveryError::Permanent { reason })?;
                    ("eml", message.formatted())
                }
                FileKind::Json => {
                    let body =
                        super::webhook::body(self.cfg.format, entry, payload, super::presets::DEFAULT_PORTAL_HOSTS);
                    let bytes = serde_json::to_vec_pretty(&body)
                        .map_err(|e| DeliveryError::Permanent { reason: format!("cannot serialize the event: {e}") })?;
                    ("json", bytes)
                }
            };
            let path = self.cfg.path.join(format!("{stem}.{ext}"));
            write_replacing(&path, &bytes).await.map_err(|e| retry(&path.display().to_string(), e))?;
            written.push(path);
        }
        if self.cfg.print {
            let line = format!(
                "{} {}",
                summary_line(entry, payload),
                written.iter().map(|p| printable(&p.display().to_string()).into_owned()).collect::<Vec<_>>().join(" ")
            );
            // The files are written: a stdout nobody reads any more (a closed pipe) must not fail
            // the delivery, nor panic the delivery task as `println!` would.
            use std::io::Write;
            if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
                tracing::debug!("folder {}: cannot print the summary line: {e}", self.cfg.path.display());
            }
        }
        Ok(())
    }
}

/// `review.created examples/1130 r1 high "Title" →` or `digest.weekly * 12 incident(s) →`.
fn summary_line(entry: &OutboxEntry, payload: &Payload) -> String {
    match payload {
        Payload::Digest(d) => format!(
            "{} {} {} to {}: {} incident(s), {} follow-up(s) →",
            entry.event,
            printable(&entry.source),
            d.period.start.format("%Y-%m-%d"),
            d.period.end.format("%Y-%m-%d"),
            d.incidents.total,
            d.follow_ups.len()
        ),
        Payload::Review(r) => {
            let i = &r.incident;
            // The line is printed on a terminal or into a log: what comes from the incident is
            // escaped (printable), the title shortened and quoted.
            let title: String = i.title.chars().take(80).collect();
            format!(
                "{} {}/{} r{} {} \"{}\": {} follow-up(s) →",
                entry.event,
                printable(&entry.source),
                printable(&entry.incident_id),
                entry.revision,
                printable(&i.severity),
                printable(&title.replace('"', "\\\"")),
                r.follow_ups.len()
            )
        }
    }
}

async fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
