//! The configuration file, environment overrides, secret files and error messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hindsight::config::{Config, SinkKind, SourceKind};
use secrecy::ExposeSecret;

fn documented() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/hindsight.toml")
}

/// A credentials directory holding the secrets config/hindsight.toml names.
fn credentials() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("graph-client-secret", "graph-secret\n"),
        ("soc-flow-url", "https://prod-01.westeurope.logic.azure.com/workflows/1?sig=abc\n"),
        ("webhook-signing-key", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"),
        ("smtp-password", "p@ss\n"),
    ] {
        std::fs::write(dir.path().join(name), value).unwrap();
    }
    dir
}

/// Loads `toml` as the configuration file. The tests here are about the file's text (unknown
/// keys, bad values, what each message names), so they keep it as text; tests that run the
/// daemon build theirs with `common::DaemonConfig`.
fn load_text(toml: &str, env: &[(String, String)]) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hindsight.toml");
    std::fs::write(&path, toml).unwrap();
    Config::load(Some(&path), env).map_err(|e| e.to_string())
}

fn env(creds: &tempfile::TempDir, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![("CREDENTIALS_DIRECTORY".to_owned(), creds.path().to_str().unwrap().to_owned())];
    v.extend(extra.iter().map(|(k, x)| ((*k).to_owned(), (*x).to_owned())));
    v
}

#[test]
fn the_documented_file_loads_with_its_secrets_from_the_credentials_directory() {
    let creds = credentials();
    let c = Config::load(Some(&documented()), &env(&creds, &[])).unwrap();
    assert_eq!(c.sources.len(), 2);
    let SourceKind::Graph(g) = &c.sources[0].kind else { panic!() };
    assert_eq!(g.client_secret.expose_secret(), "graph-secret", "read from the file, newline dropped");
    assert_eq!(g.overlap.as_secs(), 300);
    let SinkKind::Webhook(w) = &c.destinations[0].sink else { panic!() };
    assert!(w.url.expose_secret().ends_with("sig=abc"));
    assert_eq!(c.destinations[0].route.min_severity.as_deref(), Some("medium"));
    let SinkKind::Email(e) = &c.destinations[1].sink else { panic!() };
    assert_eq!(e.password.as_ref().unwrap().expose_secret(), "p@ss");
    assert_eq!(c.http.listen, "127.0.0.1:9187");
    assert_eq!(c.delivery.retry_budget.as_secs(), 86_400);
    // No secret in Debug output.
    let debug = format!("{c:?}");
    assert!(!debug.contains("graph-secret") && !debug.contains("sig=abc") && !debug.contains("p@ss"), "{debug}");
}

#[test]
fn environment_variables_override_keys() {
    let creds = credentials();
    let c = Config::load(
        Some(&documented()),
        &env(
            &creds,
            &[
                ("HINDSIGHT__HTTP__LISTEN", "0.0.0.0:9999"),
                ("HINDSIGHT__DELIVERY__CONCURRENCY", "4"),
                ("HINDSIGHT__REVIEW__LATE_DETECTION", "30m"),
                ("HINDSIGHT__DAEMON__STORE_RESERVE", "1 GiB"),
            ],
        ),
    )
    .unwrap();
    assert_eq!(c.daemon.store_reserve.as_u64(), 1 << 30);
    assert_eq!(c.http.listen, "0.0.0.0:9999");
    assert_eq!(c.delivery.concurrency, 4);
    assert_eq!(c.review.late_detection.as_secs(), 1800);
    // No file at all: every default.
    let empty = Config::load(None, &[]).unwrap();
    assert!(empty.sources.is_empty() && empty.destinations.is_empty());
}

#[test]
fn errors_name_the_key() {
    let err = |body: &str| load_text(body, &[]).unwrap_err();
    assert!(err("[http]\nlisen = \"x\"\n").contains("http"), "unknown key");
    assert!(err("[http]\nlisen = \"x\"\n").contains("unknown field `lisen`"));
    let e = err("[delivery]\nretry_budget = \"soon\"\n");
    assert!(e.starts_with("configuration key delivery.retry_budget:"), "{e}");
    let e = err(
        "[[sources]]\ntype = \"graph\"\nname = \"a\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\ncloud = \"china\"\n",
    );
    assert!(
        e.starts_with(
            "configuration key sources[0]: cloud: the Microsoft Graph security incidents API is not available"
        ),
        "{e}"
    );
    let e = err(
        "[[destinations]]\ntype = \"webhook\"\nname = \"d\"\nurl = \"https://x\"\n[destinations.route]\nmin_severity = \"urgent\"\n",
    );
    assert!(e.starts_with("configuration key destinations[0].route: min_severity"), "{e}");
    let e = err(
        "[[sources]]\ntype = \"directory\"\nname = \"x\"\npath = \"/a\"\n[[sources]]\ntype = \"directory\"\nname = \"x\"\npath = \"/b\"\n",
    );
    assert!(e.starts_with("configuration key sources[1].name: \"x\" is used twice"), "{e}");
    let e = err(
        "[[sources]]\ntype = \"graph\"\nname = \"a\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"/nonexistent/secret\"\n",
    );
    assert!(
        e.starts_with(
            "configuration key sources[0].client_secret_file: cannot read the secret file /nonexistent/secret"
        ),
        "{e}"
    );
    assert!(err("[http]\nlisten = \"everywhere\"\n").starts_with("configuration key http.listen:"));
    let e = err("[daemon]\nstore_reserve = \"lots\"\n");
    assert!(e.starts_with("configuration key daemon.store_reserve:"), "{e}");
}

#[test]
fn the_documented_digest_daemon_and_folder_keys_load() {
    let creds = credentials();
    let c = Config::load(Some(&documented()), &env(&creds, &[])).unwrap();
    assert_eq!((c.digest.schedule.as_str(), c.digest.time_zone.as_str()), ("0 8 * * Mon", "local"));
    assert_eq!(c.digest.period.as_secs(), 7 * 86_400);
    assert_eq!(c.daemon.shutdown_timeout.as_secs(), 30);
    assert_eq!(c.daemon.store_reserve.as_u64(), 64 << 20);
    assert_eq!(c.daemon.store_cache.as_u64(), 8 << 20);
    let bytes = load_text("[daemon]\nstore_reserve = 1000000\n", &[]).unwrap();
    assert_eq!(bytes.daemon.store_reserve.as_u64(), 1_000_000);
    let SinkKind::Folder(f) = &c.destinations[2].sink else { panic!("the third destination is the folder") };
    assert_eq!(f.path, PathBuf::from("/var/lib/hindsight/sent"));
}

#[test]
fn digest_settings_are_checked_with_their_keys() {
    let load = |toml: &str| load_text(toml, &[]).map(|_| ()).unwrap_err();
    let e = load("[digest]\ntime_zone = \"Europe/Atlantis\"\n");
    assert!(e.contains("digest.time_zone") && e.contains("IANA"), "{e}");
    let e = load("[digest]\nschedule = \"0 8 * *\"\n");
    assert!(e.contains("digest.schedule"), "{e}");
    let e = load("[digest]\nperiod = \"0s\"\n");
    assert!(e.contains("digest.period"), "{e}");
    let e = load("[[destinations]]\ntype = \"folder\"\nname = \"x\"\npath = \"/tmp/x\"\nformat = \"xml\"\n");
    assert!(e.contains("format") && e.contains("xml"), "{e}");
    let e = load(
        "[[destinations]]\ntype = \"webhook\"\nname = \"x\"\nurl = \"https://example.com\"\n[destinations.route]\nevents = [\"digest.daily\"]\n",
    );
    assert!(e.contains("destinations[0].route") && e.contains("digest.weekly"), "{e}");
}

/// The configurations shipped for compose and Kubernetes load as they are.
#[test]
fn the_deployment_configurations_load() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let creds = credentials();
    Config::load(Some(&repo.join("deploy/compose/hindsight.toml")), &env(&creds, &[])).unwrap();
    // The ConfigMap carries its TOML as a YAML block scalar.
    let yaml = std::fs::read_to_string(repo.join("deploy/kubernetes/configmap.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let toml = doc["data"]["hindsight.toml"].as_str().expect("data.hindsight.toml");
    let c = load_text(toml, &env(&creds, &[])).unwrap();
    assert_eq!(c.digest.time_zone, "Europe/Berlin");
}

#[test]
fn retention_takes_durations_or_forever_and_refuses_a_keep_that_would_lose_work() {
    let load = |toml: &str| load_text(toml, &[]);
    let c = load("").unwrap();
    assert_eq!(c.retention.reviews.unwrap().as_secs(), 400 * 86_400);
    assert_eq!(c.retention.notifications.unwrap().as_secs(), 30 * 86_400);
    assert_eq!(c.retention.dead_letters, None, "dead letters wait for a person by default");
    let c = load("[retention]\nreviews = \"forever\"\nnotifications = \"7d\"\ndead_letters = \"90d\"\n").unwrap();
    assert_eq!((c.retention.reviews, c.retention.dead_letters.map(|d| d.as_secs())), (None, Some(90 * 86_400)));

    let err = load("[retention]\nnotifications = \"soon\"\n").unwrap_err();
    assert!(err.contains("retention.notifications") && err.contains("\"soon\""), "{err}");
    let err = load("[retention]\nreviews = \"1d\"\n").unwrap_err();
    assert!(err.contains("retention.reviews") && err.contains("delivery.retry_budget"), "{err}");
    let err = load("[retention]\nreviews = \"10d\"\n").unwrap_err();
    assert!(err.contains("retention.reviews") && err.contains("two digest periods"), "{err}");
    // Without a digest, only the retry budget bounds it.
    load("[digest]\nenabled = false\n[retention]\nreviews = \"2d\"\n").unwrap();
}
