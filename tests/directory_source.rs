//! The directory source with real files and a real sled store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hindsight::clock::ManualClock;
use hindsight::source::Source;
use hindsight::source::directory::{DirectoryConfig, DirectorySource};
use hindsight::store::{FileOutcome, Store};
use serde_json::json;

fn source(path: &std::path::Path) -> Source {
    Source::Directory(DirectorySource::new(DirectoryConfig {
        name: "drop".into(),
        path: path.to_owned(),
        max_file_bytes: 1 << 20,
    }))
}

fn incident(id: &str, status: &str, updated: &str) -> serde_json::Value {
    json!({"id": id, "status": status, "displayName": format!("Incident {id}"), "lastUpdateDateTime": updated, "alerts": []})
}

#[tokio::test]
async fn each_file_once_broken_ones_set_aside_the_rest_go_on() {
    let inbox = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    let p = inbox.path();
    std::fs::write(p.join("a-single.json"), incident("1", "resolved", "2026-11-24T10:00:00Z").to_string()).unwrap();
    std::fs::write(
        p.join("b-list.json"),
        json!({"value": [incident("2", "resolved", "2026-11-24T10:00:00Z"), incident("3", "active", "2026-11-24T10:00:00Z")]})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        p.join("c-export.ndjson"),
        format!(
            "{}\n{}\n",
            incident("4", "resolved", "2026-11-24T10:00:00Z"),
            incident("5", "resolved", "2026-11-24T10:00:00Z")
        ),
    )
    .unwrap();
    std::fs::write(p.join("d-broken.json"), b"{\"id\": \"6\", \"status\": ").unwrap();
    std::fs::write(p.join("notes.txt"), b"not an incident").unwrap();
    std::fs::write(p.join(".hidden.json"), b"garbage").unwrap();

    let mut src = source(p);
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!((r.fetched, r.resolutions), (5, 4), "{r:?}");
    assert_eq!(r.rejected.len(), 1);
    assert!(r.rejected[0].starts_with("d-broken.json: not valid JSON: EOF while parsing"), "{:?}", r.rejected);

    // Nothing is read twice; the broken file is not reported again while it is unchanged.
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!((r.requests, r.fetched, r.rejected.len()), (0, 0, 0));

    // Fixing the file changes its hash: it is read again.
    std::fs::write(p.join("d-broken.json"), incident("6", "resolved", "2026-11-24T11:00:00Z").to_string()).unwrap();
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!((r.requests, r.resolutions), (1, 1));

    // A copy of a file already read is skipped by its hash; the same incident in a different
    // file (a re-export, pretty-printed) is read but is not a new resolution.
    std::fs::copy(p.join("a-single.json"), p.join("a-copy.json")).unwrap();
    assert_eq!(src.poll(&store, &clock).await.unwrap().requests, 0);
    let pretty = serde_json::to_string_pretty(&incident("1", "resolved", "2026-11-24T10:00:00Z")).unwrap();
    std::fs::write(p.join("e-again.json"), pretty).unwrap();
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!((r.fetched, r.unchanged, r.resolutions), (1, 1, 0));
    assert_eq!(store.pending_count(), 5);
}

#[tokio::test]
async fn records_rejections_with_their_reason_and_refuses_oversized_files() {
    let inbox = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    let bad = b"[{\"status\": \"resolved\"}]";
    std::fs::write(inbox.path().join("no-id.json"), bad).unwrap();
    let big = inbox.path().join("huge.json");
    std::fs::File::create(&big).unwrap().set_len(2 << 20).unwrap();

    let mut src = source(inbox.path());
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!(r.rejected.len(), 2, "{:?}", r.rejected);
    assert!(r.rejected.iter().any(|m| m.contains("huge.json: 2097152 bytes, over the limit")));
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(bad).iter().map(|b| format!("{b:02x}")).collect();
    let rec = store.file("drop", &hash).unwrap().unwrap();
    assert_eq!(rec.outcome, FileOutcome::Rejected { reason: "incident 0: incident without an \"id\"".into() });
}

#[tokio::test]
async fn a_missing_directory_is_an_error_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    let mut src = source(std::path::Path::new("/nonexistent/incidents"));
    let err = src.poll(&store, &clock).await.unwrap_err().to_string();
    assert!(err.contains("cannot list the incident directory /nonexistent/incidents"), "{err}");
}

#[tokio::test]
async fn a_50_mb_incident_file_is_refused_by_the_default_limit_without_being_read() {
    let inbox = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    // A sparse file: 50 MB as the directory lists it, nothing on the disk.
    std::fs::File::create(inbox.path().join("export.json")).unwrap().set_len(50_000_000).unwrap();
    std::fs::write(inbox.path().join("small.json"), incident("7", "resolved", "2026-11-24T12:30:00Z").to_string())
        .unwrap();
    let cfg: DirectoryConfig =
        serde_json::from_value(serde_json::json!({"name": "drop", "path": inbox.path()})).unwrap();
    let mut src = Source::Directory(DirectorySource::new(cfg));
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!(r.resolutions, 1, "the other file is read: {r:?}");
    assert_eq!(r.rejected, ["export.json: 50000000 bytes, over the limit of 16777216 bytes (max_file_bytes)"]);
}

/// One pass on a thread of its own, bounded at 5 s: a pass blocked in the kernel (a FIFO's
/// `open(2)`) cannot be cancelled by a tokio timeout on its own runtime, so the test would hang
/// instead of failing.
fn poll_within_5s(mut src: Source, store: &Store) -> (Source, hindsight::source::PollReport) {
    let (tx, rx) = std::sync::mpsc::channel();
    let store = store.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
        let r = rt.block_on(async { src.poll(&store, &clock).await.unwrap() });
        let _ = tx.send((src, r));
    });
    rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the poll returns within 5 s")
}

/// A named pipe (or a link to one) in the drop folder once blocked the poll in `open(2)` for
/// good, on a runtime worker thread: nothing a file does may hold the pass up.
#[cfg(unix)]
#[test]
fn fifos_links_out_of_the_folder_and_directories_are_refused_by_name_without_blocking() {
    let inbox = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let p = inbox.path();
    let mkfifo = |path: &std::path::Path| {
        let ok = std::process::Command::new("mkfifo").arg(path).status().unwrap().success();
        assert!(ok, "mkfifo {}", path.display());
    };
    mkfifo(&p.join("pipe.json"));
    // The pipe the link points at is itself not a candidate (its name is not *.json).
    mkfifo(&p.join("pipe"));
    std::os::unix::fs::symlink(p.join("pipe"), p.join("link-to-pipe.json")).unwrap();
    // A link to an incident outside the folder is refused even though the file is valid.
    std::fs::write(outside.path().join("secret.json"), incident("9", "resolved", "2026-11-24T10:00:00Z").to_string())
        .unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.json"), p.join("link-outside.json")).unwrap();
    std::fs::create_dir(p.join("folder.json")).unwrap();
    // A link inside the folder to a regular file inside it is read (its content once, by hash).
    std::fs::write(p.join("good.json"), incident("1", "resolved", "2026-11-24T10:00:00Z").to_string()).unwrap();
    std::os::unix::fs::symlink("good.json", p.join("latest.json")).unwrap();

    let (src, r) = poll_within_5s(source(p), &store);
    assert_eq!((r.fetched, r.resolutions), (1, 1), "{r:?}");
    assert_eq!(store.pending_count(), 1);
    let refused = |name: &str| {
        r.rejected
            .iter()
            .find(|m| m.starts_with(&format!("{name}: ")))
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not refused: {:?}", r.rejected))
    };
    let pipe = refused("pipe.json");
    assert!(pipe.contains("named pipe"), "{pipe}");
    let link = refused("link-to-pipe.json");
    assert!(link.contains("named pipe"), "{link}");
    let out = refused("link-outside.json");
    assert!(out.contains("outside the folder"), "{out}");
    let dir = refused("folder.json");
    assert!(dir.contains("directory"), "{dir}");
    assert_eq!(r.rejected.len(), 4, "{:?}", r.rejected);

    // Reported once: the next pass neither reports them again nor blocks.
    let (_, r) = poll_within_5s(src, &store);
    assert_eq!((r.fetched, r.rejected.len()), (0, 0), "{r:?}");
}

#[tokio::test]
async fn an_incident_over_the_alert_cap_is_stored_whole_and_reviewed_with_its_first_alerts_and_the_count_of_the_rest() {
    let inbox = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let clock = ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap());
    let alerts: Vec<_> = (0..25)
        .map(|n| json!({"id": format!("a{n}"), "evidence": [{"ipAddress": "10.0.0.1"}, {"ipAddress": "10.0.0.2"}]}))
        .collect();
    let mut big = incident("1", "resolved", "2026-11-24T10:00:00Z");
    big["alerts"] = json!(alerts);
    let list = json!({"value": [big, incident("2", "resolved", "2026-11-24T10:00:00Z")]});
    std::fs::write(inbox.path().join("export.json"), serde_json::to_string_pretty(&list).unwrap()).unwrap();
    let mut src = Source::Directory(DirectorySource::new(DirectoryConfig {
        name: "drop".into(),
        path: inbox.path().to_owned(),
        max_file_bytes: 1 << 20,
    }));
    let r = src.poll(&store, &clock).await.unwrap();
    assert_eq!((r.fetched, r.stored, r.resolutions), (2, 2, 2), "{r:?}");
    let resolution = store.resolutions().next().unwrap().unwrap();
    // The store keeps the incident's own fields beside the text; the review stage reads the
    // alerts within the daemon's `[review]` limits.
    assert!(resolution.header.alerts.is_empty() && resolution.header.id == "1");
    let i = &resolution.incident(&hindsight::model::Limits { max_alerts: 10, max_evidence: 1 }).unwrap();
    assert_eq!((i.id.as_str(), i.alerts.len(), i.alerts_omitted, i.evidence_omitted), ("1", 10, 15, 10));
    // The raw snapshot is the incident as the file has it, every alert included.
    let raw: serde_json::Value = serde_json::from_str(resolution.raw.get()).unwrap();
    assert_eq!(raw["alerts"].as_array().unwrap().len(), 25);
    assert_eq!(raw, list["value"][0]);
}
