//! The directory source: incident JSON files in Graph's format dropped in a folder, for offline
//! replay, demos and any tool that can export JSON.
//!
//! A file may hold one incident (with `alerts`), a Graph list response (`{"value": [...]}`), a
//! JSON array of incidents, or NDJSON (one incident per line). Each file is remembered by the
//! SHA-256 of its content: it is read once, and read again only if it changes. A file that cannot
//! be read as any of those is reported by name and set aside (recorded as rejected, with the
//! reason) while the other files go on; fixing it changes its hash and it is read again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::PollReport;
use crate::clock::Clock;
use crate::model::Incident;
use crate::store::{FileOutcome, FileRecord, Observed, Store};

/// As a Graph source's `max_page_bytes`: a file is held whole while its incidents are read.
fn default_max_file_bytes() -> u64 {
    super::DEFAULT_MAX_DOCUMENT_BYTES
}

/// How long listing the folder, or opening and reading one file, may take. The work runs on
/// tokio's blocking pool, never on a runtime worker, so /healthz, the watchdog and SIGTERM are
/// served meanwhile; past this the pass goes on without it (a hung network mount, a FUSE file
/// system that never answers). 16 MiB from a local disk takes well under a second.
const FS_TIMEOUT: Duration = Duration::from_secs(30);

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
    #[error(
        "listing the incident directory {path} took longer than {}; it is tried again once that listing ends",
        humantime::format_duration(FS_TIMEOUT)
    )]
    ListTimeout { path: PathBuf },
}

/// A directory entry with an incident file's name, as listed (its own type: a link is not
/// followed by the listing).
#[derive(Debug, Clone)]
struct Candidate {
    path: PathBuf,
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    File,
    Link,
    /// Anything else (a directory, a named pipe, a socket, a device): refused unread.
    Other(&'static str),
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
    /// Files refused without being read (not a regular file, a link out of the folder, too
    /// large, unreadable), by name, with the reason last reported. Such a file has no content
    /// hash to remember it by; it is reported when first refused and again only if the reason
    /// changes, not on every pass. Kept in memory: reported again once after a restart.
    refused: HashMap<String, String>,
    /// File-system work (the listing, by the empty name, or a file, by its name) still running on
    /// the blocking pool, possibly after its pass gave up waiting: not started a second time
    /// until it ends, so a file that hangs in the kernel holds at most one thread.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// Marks `key` as in flight until dropped (when the blocking work ends, however it ends).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl InFlight {
    /// `None` if the same work is still running from an earlier pass.
    fn start(set: &Arc<Mutex<HashSet<String>>>, key: &str) -> Option<InFlight> {
        let mut s = set.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.insert(key.to_owned()).then(|| InFlight { set: set.clone(), key: key.to_owned() })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.key);
    }
}

impl DirectorySource {
    pub fn new(cfg: DirectoryConfig) -> DirectorySource {
        DirectorySource { cfg, refused: HashMap::new(), in_flight: Arc::default() }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Whether the folder can be listed (`hindsight check`).
    pub fn probe(&self) -> Result<String, String> {
        list(&self.cfg.path)
            .map(|(_, f)| format!("{}: {} incident file(s)", self.cfg.path.display(), f.len()))
            .map_err(|e| e.to_string())
    }

    /// The folder's candidates, listed on the blocking pool within [`FS_TIMEOUT`].
    async fn candidates(&self) -> Result<(PathBuf, Vec<Candidate>), DirectoryError> {
        let path = self.cfg.path.clone();
        let timeout = || DirectoryError::ListTimeout { path: path.clone() };
        let guard = InFlight::start(&self.in_flight, "").ok_or_else(timeout)?;
        let folder = path.clone();
        let work = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            list(&folder)
        });
        match tokio::time::timeout(FS_TIMEOUT, work).await {
            Ok(Ok(listed)) => listed,
            Ok(Err(join)) => Err(DirectoryError::List { path, source: std::io::Error::other(join) }),
            Err(_) => Err(timeout()),
        }
    }

    /// Opens and reads one candidate on the blocking pool within [`FS_TIMEOUT`].
    async fn read(&self, folder: &Path, c: &Candidate) -> Result<Vec<u8>, String> {
        let Some(guard) = InFlight::start(&self.in_flight, &c.name) else {
            return Err(format!(
                "still being read by an earlier pass, which gave up after {}; refused until that read ends",
                humantime::format_duration(FS_TIMEOUT)
            ));
        };
        let (folder, c2, limit) = (folder.to_owned(), c.clone(), self.cfg.max_file_bytes);
        let work = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            read_candidate(&folder, &c2, limit)
        });
        match tokio::time::timeout(FS_TIMEOUT, work).await {
            Ok(Ok(read)) => read,
            Ok(Err(join)) => Err(format!("cannot read: {join}")),
            Err(_) => Err(format!(
                "not read within {}; refused (a file on a mount that does not answer?)",
                humantime::format_duration(FS_TIMEOUT)
            )),
        }
    }

    pub async fn poll(&mut self, store: &Store, clock: &dyn Clock) -> Result<PollReport, super::SourceError> {
        let now = clock.now();
        let mut report = PollReport { source: self.cfg.name.clone(), ..Default::default() };
        let (folder, candidates) = self.candidates().await?;
        let mut refused_now = HashSet::new();
        for c in candidates {
            let file_name = c.name.clone();
            let bytes = match self.read(&folder, &c).await {
                Ok(b) => b,
                Err(reason) => {
                    refused_now.insert(file_name.clone());
                    if self.refused.get(&file_name) != Some(&reason) {
                        tracing::error!(source = %self.cfg.name, file = %file_name, "{reason}");
                        report.rejected.push(format!("{file_name}: {reason}"));
                        self.refused.insert(file_name, reason);
                    }
                    continue;
                }
            };
            let hash = hex(&Sha256::digest(&bytes));
            if store.file(&self.cfg.name, &hash)?.is_some() {
                continue;
            }
            report.requests += 1;
            let (s, source) = (store.clone(), self.cfg.name.clone());
            let out =
                super::off_the_runtime(store, move || store_file(&s, &source, &hash, file_name, &bytes, now)).await?;
            report.fetched += out.fetched;
            report.stored += out.stored;
            report.unchanged += out.unchanged;
            report.resolutions += out.resolutions;
            report.rejected.extend(out.rejected);
        }
        // A file no longer refused (fixed, removed) is reported afresh if it is refused again.
        self.refused.retain(|name, _| refused_now.contains(name));
        store.flush_async().await?;
        Ok(report)
    }
}

/// What storing one file did.
#[derive(Debug, Default)]
struct StoredFile {
    fetched: usize,
    stored: usize,
    unchanged: usize,
    resolutions: usize,
    rejected: Vec<String>,
}

/// Parses a file and stores its incidents, or records it as set aside; on tokio's blocking
/// pool (`off_the_runtime`): an export of thousands of incidents takes seconds.
fn store_file(
    store: &Store,
    source: &str,
    hash: &str,
    file_name: String,
    bytes: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<StoredFile, crate::store::StoreError> {
    let mut out = StoredFile::default();
    let file = match read_file(bytes) {
        Ok(file) => file,
        Err(reason) => {
            tracing::error!(source = %source, file = %file_name, "set aside: {reason}");
            out.rejected.push(format!("{file_name}: {reason}"));
            let record = FileRecord { name: file_name, at: now, outcome: FileOutcome::Rejected { reason } };
            store.record_file(source, hash, &record)?;
            return Ok(out);
        }
    };
    for p in &file.problems {
        tracing::error!(source = %source, file = %file_name, "{p}");
        out.rejected.push(format!("{file_name}: {p}"));
    }
    out.fetched = file.len();
    let record = FileRecord { name: file_name, at: now, outcome: FileOutcome::Ingested { incidents: file.len() } };
    // One incident per transaction, so that one copy of an incident's text is held at a time,
    // not a whole export's. The file is recorded as read with the last one: after a crash
    // half-way it is read again, and what was stored already comes back unchanged.
    let mut incidents = file.oldest_first().peekable();
    if incidents.peek().is_none() {
        store.ingest(source, &[], None, Some((hash, &record)), now)?;
    }
    while let Some(observed) = incidents.next() {
        let last = incidents.peek().is_none().then_some((hash, &record));
        let stored = store.ingest(source, std::slice::from_ref(&observed), None, last, now)?;
        out.stored += stored.stored;
        out.unchanged += stored.unchanged;
        out.resolutions += stored.resolutions.len();
    }
    Ok(out)
}

/// The folder (canonical, to tell where links lead) and the entries with an incident file's
/// name, in name order: JSON and NDJSON, not hidden, not half-written temporaries. Entries are
/// typed as listed, without following links; what is not a file or a link is listed too, so that
/// it is refused by name instead of skipped in silence.
fn list(path: &Path) -> Result<(PathBuf, Vec<Candidate>), DirectoryError> {
    let list_err = |source| DirectoryError::List { path: path.to_owned(), source };
    let folder = std::fs::canonicalize(path).map_err(list_err)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&folder).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = [".json", ".ndjson", ".jsonl"].iter().any(|e| name.ends_with(e)) && !name.starts_with('.');
        if !wanted {
            continue;
        }
        let kind = match entry.file_type() {
            Ok(t) if t.is_file() => Kind::File,
            Ok(t) if t.is_symlink() => Kind::Link,
            Ok(t) => Kind::Other(describe(t)),
            // The entry vanished between the listing and its type: nothing to read.
            Err(_) => continue,
        };
        files.push(Candidate { path: entry.path(), name, kind });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((folder, files))
}

fn describe(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "of an unknown type"
    }
}

/// Opens and reads one entry: blocking, so run on the blocking pool.
///
/// Only regular files are read. Opening a named pipe for reading waits for a writer — for ever,
/// on the thread that opens it — and a device or socket is no incident export either.
///
/// Links: a link in the folder to a regular file inside the folder (a `latest.json` an export
/// tool keeps pointing at its newest file) is read. A link that leads out of the folder is
/// refused: the folder is often writable by other tools or people than the daemon's account,
/// and following it would let them make the daemon read any file it can read (its credentials,
/// other tenants' exports) and report on it.
fn read_candidate(folder: &Path, c: &Candidate, limit: u64) -> Result<Vec<u8>, String> {
    let target = match c.kind {
        Kind::Other(what) => return Err(format!("{what}, not a regular file; refused")),
        Kind::File => c.path.clone(),
        Kind::Link => {
            let target =
                std::fs::canonicalize(&c.path).map_err(|e| format!("a symbolic link that cannot be followed: {e}"))?;
            if !target.starts_with(folder) {
                return Err(format!(
                    "a symbolic link to {}, outside the folder; refused (links are followed only to files inside it)",
                    target.display()
                ));
            }
            // stat, not open: nothing is opened before it is known to be a regular file.
            let t = std::fs::metadata(&target).map_err(|e| format!("cannot read: {e}"))?.file_type();
            if !t.is_file() {
                return Err(format!("a symbolic link to {}, not a regular file; refused", describe(t)));
            }
            target
        }
    };
    // The entry may have been replaced since it was listed (by a pipe, or a link): O_NONBLOCK
    // makes opening a pipe return at once, O_NOFOLLOW refuses a link put in its place (the
    // target is canonical, so no link is expected), and the type is checked again on the open
    // descriptor, the file actually read.
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NOFOLLOW;
    let fd = rustix::fs::open(&target, flags, Mode::empty()).map_err(|e| format!("cannot read: {e}"))?;
    let file = std::fs::File::from(fd);
    // fstat(2) of the descriptor.
    let t = file.metadata().map_err(|e| format!("cannot read: {e}"))?.file_type();
    if !t.is_file() {
        return Err(format!("{}, not a regular file; refused", describe(t)));
    }
    crate::input::read_limited_from(file, limit, Some("max_file_bytes"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a file into observations (in the file's order), plus problems with individual
/// incidents (which are skipped while the others are kept). An error means nothing in the file
/// could be used.
pub fn parse_file(bytes: &[u8]) -> Result<(Vec<Observed>, Vec<String>), String> {
    let file = read_file(bytes)?;
    let observed = file.in_file_order().collect();
    Ok((observed, file.problems))
}

/// The incidents of a file, as slices of its text with the incidents' own fields (no alerts,
/// [`Observed`]): a file of many incidents is never held normalized, nor as a JSON tree.
pub struct FileIncidents<'a> {
    /// Each usable incident's header and text, in the file's order.
    items: Vec<(Incident, &'a RawValue)>,
    /// Why single incidents were skipped.
    pub problems: Vec<String>,
}

impl FileIncidents<'_> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn observe((header, raw): &(Incident, &RawValue)) -> Observed {
        Observed { raw: (*raw).to_owned(), header: header.clone() }
    }

    /// Each incident in the file's order.
    pub fn in_file_order(&self) -> impl Iterator<Item = Observed> + '_ {
        self.items.iter().map(Self::observe)
    }

    /// Each incident, least recently updated first (the file's order among equals), as
    /// [`Store::ingest`] orders a batch: an incident that is in the file twice moves through its
    /// states in order.
    pub fn oldest_first(&self) -> impl Iterator<Item = Observed> + '_ {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        order.sort_by_key(|&i| self.items[i].0.last_update);
        order.into_iter().map(|i| Self::observe(&self.items[i]))
    }
}

/// Reads what a file holds: its incidents' texts and their own fields, without the alerts
/// (which the review reads from the text). An incident that cannot be used is found here.
pub fn read_file(bytes: &[u8]) -> Result<FileIncidents<'_>, String> {
    let texts = split_file(bytes)?;
    let mut items = Vec::with_capacity(texts.len());
    let mut problems = Vec::new();
    for (i, raw) in texts.into_iter().enumerate() {
        match Incident::header_from_graph_str(raw.get()) {
            Ok(header) => items.push((header, raw)),
            Err(e) => problems.push(format!("incident {i}: {e}")),
        }
    }
    if items.is_empty() && !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(FileIncidents { items, problems })
}

/// The text of each incident of a file (one incident, a Graph list response, a JSON array or
/// NDJSON), cut out of the file without parsing the incidents into trees.
fn split_file(bytes: &[u8]) -> Result<Vec<&RawValue>, String> {
    // Windows PowerShell's `Out-File -Encoding utf8` starts a file with a byte order mark, which
    // a JSON reader may ignore (RFC 8259, 8.1) and serde_json does not.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let whole = match checked(bytes) {
        Ok(whole) => whole,
        Err(whole) => {
            return parse_ndjson(bytes).map_err(|line_err| {
                // Report the likelier cause: a one-line file was meant as JSON, several lines as NDJSON.
                if bytes.iter().filter(|&&b| b == b'\n').count() > 1 {
                    line_err
                } else {
                    format!("not valid JSON: {whole}")
                }
            });
        }
    };
    let text = whole.get();
    if text.starts_with('{') {
        // The document's own keys, each value left as text: `value` is a list response's.
        let fields: BTreeMap<String, &RawValue> =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        match fields.get("value") {
            Some(v) if v.get().starts_with('[') => json_list(v.get()),
            Some(_) => Err("\"value\" is not an array of incidents".into()),
            None => Ok(vec![whole]),
        }
    } else if text.starts_with('[') {
        json_list(text)
    } else {
        Err("not an incident, a list of incidents or NDJSON".into())
    }
}

/// The document's text, checked as parsing it into a tree would check it, with the same errors:
/// nesting depth (serde_json's recursion limit), numbers in range, strings and their escapes.
/// Cutting values out as text alone checks none of that.
fn checked(bytes: &[u8]) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_slice::<Checked>(bytes)?;
    serde_json::from_slice(bytes)
}

/// Any JSON value, visited as a tree would be built from it, and dropped.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

fn json_list(text: &str) -> Result<Vec<&RawValue>, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

fn parse_ndjson(bytes: &[u8]) -> Result<Vec<&RawValue>, String> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(checked(line).map_err(|e| format!("line {}: not valid JSON: {e}", n + 1))?);
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
