//! The directory source: incident JSON files in Graph's format dropped in a folder, for offline
//! replay, demos and any tool that can export JSON.
//!
//! A file may hold one incident (with `alerts`), a Graph list response (`{"value": [...]}`), a
//! JSON array of incidents, or NDJSON (one incident per line). Each file is remembered by the
//! SHA-256 of its content: it is read once, and read again only if it changes. A file that cannot
//! be read as any of those is reported by name and set aside (recorded as rejected, with the
//! reason) while the other files go on; fixing it changes its hash and it is read again.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::PollReport;
use crate::clock::Clock;
use crate::model::Incident;
use crate::store::{FileOutcome, FileRecord, Observed, Store};

/// As a Graph source's `max_page_bytes`: a file is parsed whole, several times its size.
fn default_max_file_bytes() -> u64 {
    super::DEFAULT_MAX_DOCUMENT_BYTES
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    pub name: String,
    pub path: PathBuf,
    /// Larger files are refused (and reported) without being read.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot list the incident directory {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DirectoryConfig {
    /// Nothing to check without the file system: whether the folder can be listed is `probe`'s
    /// question, asked by `hindsight check` and at each poll.
    pub fn validate(&self) -> Vec<crate::config::Invalid> {
        Vec::new()
    }

    pub fn build(&self) -> Result<DirectorySource, Vec<crate::config::Invalid>> {
        Ok(DirectorySource::new(self.clone()))
    }
}

pub struct DirectorySource {
    cfg: DirectoryConfig,
}

impl DirectorySource {
    pub fn new(cfg: DirectoryConfig) -> DirectorySource {
        DirectorySource { cfg }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Whether the folder can be listed (`hindsight check`).
    pub fn probe(&self) -> Result<String, String> {
        self.candidates()
            .map(|f| format!("{}: {} incident file(s)", self.cfg.path.display(), f.len()))
            .map_err(|e| e.to_string())
    }

    /// Files to consider, in name order: JSON and NDJSON, not hidden, not half-written temporaries.
    fn candidates(&self) -> Result<Vec<PathBuf>, DirectoryError> {
        let list_err = |source| DirectoryError::List { path: self.cfg.path.clone(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.cfg.path).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let wanted = [".json", ".ndjson", ".jsonl"].iter().any(|e| name.ends_with(e)) && !name.starts_with('.');
            if wanted && entry.file_type().map(|t| t.is_file() || t.is_symlink()).unwrap_or(false) {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    pub async fn poll(&mut self, store: &Store, clock: &dyn Clock) -> Result<PollReport, super::SourceError> {
        let now = clock.now();
        let mut report = PollReport { source: self.cfg.name.clone(), ..Default::default() };
        for path in self.candidates()? {
            let file_name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let bytes = match crate::input::read_limited(&path, self.cfg.max_file_bytes, Some("max_file_bytes")) {
                Ok(b) => b,
                Err(reason) => {
                    // Unreadable now (permissions, vanished, too large): reported each pass, since
                    // there is no content hash to remember it by.
                    tracing::error!(source = %self.cfg.name, file = %file_name, "{reason}");
                    report.rejected.push(format!("{file_name}: {reason}"));
                    continue;
                }
            };
            let hash = hex(&Sha256::digest(&bytes));
            if store.file(&self.cfg.name, &hash)?.is_some() {
                continue;
            }
            report.requests += 1;
            let (observed, problems) = match parse_file(&bytes) {
                Ok(parsed) => parsed,
                Err(reason) => {
                    tracing::error!(source = %self.cfg.name, file = %file_name, "set aside: {reason}");
                    report.rejected.push(format!("{file_name}: {reason}"));
                    let record = FileRecord { name: file_name, at: now, outcome: FileOutcome::Rejected { reason } };
                    store.record_file(&self.cfg.name, &hash, &record)?;
                    continue;
                }
            };
            for p in &problems {
                tracing::error!(source = %self.cfg.name, file = %file_name, "{p}");
                report.rejected.push(format!("{file_name}: {p}"));
            }
            report.fetched += observed.len();
            let record =
                FileRecord { name: file_name, at: now, outcome: FileOutcome::Ingested { incidents: observed.len() } };
            let out = store.ingest(&self.cfg.name, &observed, None, Some((&hash, &record)), now)?;
            report.stored += out.stored;
            report.unchanged += out.unchanged;
            report.resolutions += out.resolutions.len();
        }
        store.flush_async().await?;
        Ok(report)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a file into observations, plus problems with individual incidents (which are skipped
/// while the others are kept). An error means nothing in the file could be used.
pub fn parse_file(bytes: &[u8]) -> Result<(Vec<Observed>, Vec<String>), String> {
    // Windows PowerShell's `Out-File -Encoding utf8` starts a file with a byte order mark, which
    // a JSON reader may ignore (RFC 8259, 8.1) and serde_json does not.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let items: Vec<Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut o)) => match o.remove("value") {
            Some(Value::Array(list)) => list,
            Some(_) => return Err("\"value\" is not an array of incidents".into()),
            None => vec![Value::Object(o)],
        },
        Ok(Value::Array(list)) => list,
        Ok(_) => return Err("not an incident, a list of incidents or NDJSON".into()),
        Err(whole) => parse_ndjson(bytes).map_err(|line_err| {
            // Report the likelier cause: a one-line file was meant as JSON, several lines as NDJSON.
            if bytes.iter().filter(|&&b| b == b'\n').count() > 1 {
                line_err
            } else {
                format!("not valid JSON: {whole}")
            }
        })?,
    };
    let mut observed = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in items.into_iter().enumerate() {
        match Incident::from_graph(&raw) {
            Ok(incident) => observed.push(Observed { raw, incident }),
            Err(e) => problems.push(format!("incident {i}: {e}")),
        }
    }
    if observed.is_empty() && !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok((observed, problems))
}

fn parse_ndjson(bytes: &[u8]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(serde_json::from_slice(line).map_err(|e| format!("line {}: not valid JSON: {e}", n + 1))?);
    }
    if out.is_empty() {
        return Err("the file is empty".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_accepted_shape() {
        let one = br#"{"id":"1","status":"resolved","lastUpdateDateTime":"2026-11-01T10:00:00Z","alerts":[]}"#;
        assert_eq!(parse_file(one).unwrap().0.len(), 1);
        let list = br#"{"@odata.context":"x","value":[{"id":"1","lastUpdateDateTime":"2026-11-01T10:00:00Z"},{"id":"2","lastUpdateDateTime":"2026-11-01T10:00:00Z"}]}"#;
        assert_eq!(parse_file(list).unwrap().0.len(), 2);
        let array = br#"[{"id":"1","lastUpdateDateTime":"2026-11-01T10:00:00Z"}]"#;
        assert_eq!(parse_file(array).unwrap().0.len(), 1);
        let nd = b"{\"id\":\"1\",\"lastUpdateDateTime\":\"2026-11-01T10:00:00Z\"}\n\n{\"id\":\"2\",\"lastUpdateDateTime\":\"2026-11-01T10:00:00Z\"}\n";
        assert_eq!(parse_file(nd).unwrap().0.len(), 2);
    }

    #[test]
    fn says_what_is_wrong() {
        let e = parse_file(b"{\"id\": \"1\", ").unwrap_err();
        assert!(e.starts_with("not valid JSON: EOF while parsing"), "{e}");
        let e =
            parse_file(b"{\"id\":\"1\",\"lastUpdateDateTime\":\"2026-11-01T10:00:00Z\"}\n{\"id\": 2,\n").unwrap_err();
        assert!(e.starts_with("line 2: not valid JSON"), "{e}");
        assert_eq!(parse_file(b"42").unwrap_err(), "not an incident, a list of incidents or NDJSON");
        assert_eq!(parse_file(br#"{"value": 3}"#).unwrap_err(), "\"value\" is not an array of incidents");
        assert_eq!(parse_file(br#"[{"status":"resolved"}]"#).unwrap_err(), "incident 0: incident without an \"id\"");
        let (ok, problems) =
            parse_file(br#"[{"status":"resolved"},{"id":"2","lastUpdateDateTime":"2026-11-01T10:00:00Z"}]"#).unwrap();
        assert_eq!((ok.len(), problems.len()), (1, 1));
    }
}
