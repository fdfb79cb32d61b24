//! The configuration file, environment overrides, secret files and error messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::DaemonConfig;

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
    assert_eq!(
        g.client_secret.as_ref().unwrap().expose_secret(),
        "graph-secret",
        "read from the file, newline dropped"
    );
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
            "configuration key sources[0].cloud: the Microsoft Graph security incidents API is not available"
        ),
        "{e}"
    );
    let e = err(
        "[[destinations]]\ntype = \"webhook\"\nname = \"d\"\nurl = \"https://x\"\n[destinations.route]\nmin_severity = \"urgent\"\n",
    );
    assert!(e.starts_with("configuration key destinations[0].route.min_severity:"), "{e}");
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
    let e = err("[daemon]\nshard = \"2/2\"\n");
    assert!(e.starts_with("configuration key daemon.shard:") && e.contains("from 0 to 1"), "{e}");
    let e = err("[daemon]\nshard = \"half\"\n");
    assert!(e.starts_with("configuration key daemon.shard:") && e.contains("\"i/n\""), "{e}");
    let ok = load_text("[daemon]\nshard = \"ordinal/3\"\n", &[]).unwrap();
    assert!(ok.daemon.shard.is_some());
}

#[test]
fn the_documented_digest_daemon_and_folder_keys_load() {
    let creds = credentials();
    let c = Config::load(Some(&documented()), &env(&creds, &[])).unwrap();
    assert_eq!((c.digest.schedule.as_str(), c.digest.time_zone.as_str()), ("0 8 * * Mon", "local"));
    assert_eq!(c.digest.period.as_secs(), 7 * 86_400);
    assert_eq!(c.daemon.shutdown_timeout.as_secs(), 30);
    assert_eq!(c.daemon.store_reserve.as_u64(), 64 << 20);
    assert_eq!(c.daemon.store_cache.as_u64(), 2 << 20);
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
    // The workload identity component's ConfigMap, with what the AKS webhook injects.
    let yaml = std::fs::read_to_string(repo.join("deploy/kubernetes/workload-identity/configmap-patch.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let toml = doc["data"]["hindsight.toml"].as_str().expect("data.hindsight.toml");
    let injected = [
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000"),
        ("AZURE_TENANT_ID", "11111111-1111-1111-1111-111111111111"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ];
    let c = load_text(toml, &env(&creds, &injected)).unwrap();
    let hindsight::source::SourceKind::Graph(g) = &c.sources[0].kind else { panic!("a Graph source") };
    assert_eq!((g.tenant_id.as_str(), g.client_id.as_str()), (injected[1].1, injected[0].1));
    assert_eq!(g.federated_token_file.as_deref(), Some(std::path::Path::new(injected[2].1)));
    assert!(load_text(toml, &env(&creds, &[])).unwrap_err().contains("AZURE_FEDERATED_TOKEN_FILE"));

    // The shards component: its shard count is its replica count, and its variable loads.
    let yaml = std::fs::read_to_string(repo.join("deploy/kubernetes/shards/statefulset-patch.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let replicas = doc["spec"]["replicas"].as_u64().expect("spec.replicas");
    let var = &doc["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(var["name"].as_str(), Some("HINDSIGHT__DAEMON__SHARD"));
    let shard = var["value"].as_str().unwrap();
    assert_eq!(shard, format!("ordinal/{replicas}"));
    let c = Config::load(
        Some(&repo.join("deploy/compose/hindsight.toml")),
        &env(&creds, &[(var["name"].as_str().unwrap(), shard)]),
    )
    .unwrap();
    let pod = format!("hindsight-{}", replicas - 1);
    assert_eq!(
        c.daemon.shard.unwrap().resolve(Some(&pod)).unwrap().to_string(),
        format!("{}/{replicas}", replicas - 1)
    );
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

/// Every key config/hindsight.toml documents, commented out or not, can be set: the sample is
/// loaded with each `# key = value` line (and the commented `# [table]` header of the optional
/// OAuth block) uncommented. A key the documentation shows but the loader refuses fails here.
#[test]
fn the_documented_file_loads_with_every_commented_key_set() {
    let sample = std::fs::read_to_string(documented()).unwrap();
    let mut uncommented = Vec::new();
    let text: String = sample
        .lines()
        .map(|line| match commented_key(line) {
            Some((key, setting)) => {
                uncommented.push(key);
                setting
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    // The keys shown commented out today; a new one joins this list when it is documented.
    for key in [
        "state_dir",
        "dead_letters",
        "graph_url",
        "login_url",
        "[destinations.oauth]",
        "client_secret_file",
        "port",
        "ca_file",
        "templates_dir",
        "insecure_loopback",
    ] {
        assert!(
            uncommented.iter().any(|k| k == key),
            "{key} is no longer commented out in the sample: {uncommented:?}"
        );
    }
    let creds = credentials();
    // All the documented keys can be set together (none excludes another); the only addition
    // is the secret file the OAuth block names.
    std::fs::write(creds.path().join("flow-caller-secret"), "flow-secret\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hindsight.toml");
    std::fs::write(&path, &text).unwrap();
    let c = Config::load(Some(&path), &env(&creds, &[])).unwrap_or_else(|e| panic!("{e}\n--- loaded:\n{text}"));
    assert_eq!(c.state_dir.as_deref(), Some(std::path::Path::new("/var/lib/hindsight")));
    assert_eq!(c.retention.dead_letters.map(|d| d.as_secs()), Some(90 * 86_400));
    let SinkKind::Webhook(w) = &c.destinations[0].sink else { panic!("the first destination is the webhook") };
    assert_eq!(w.oauth.as_ref().unwrap().client_secret.as_ref().unwrap().expose_secret(), "flow-secret");
    let SinkKind::Email(e) = &c.destinations[1].sink else { panic!("the second destination is e-mail") };
    assert_eq!(e.port, Some(587));
    assert_eq!(e.ca_file.as_deref(), Some(std::path::Path::new("/etc/hindsight/relay-ca.pem")), "a path, not a secret");
}

/// `# key = value  # remark` or `# [table]  # remark` at the start of a line: the key and the
/// line without its leading `# `. Prose comments ("# Where the store ...") are left alone.
fn commented_key(line: &str) -> Option<(String, String)> {
    let body = line.strip_prefix('#')?.trim_start();
    let key: String = body.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
    if !key.is_empty() && body[key.len()..].trim_start().starts_with('=') {
        return Some((key, body.to_owned()));
    }
    let table = body.split_whitespace().next()?;
    (table.starts_with('[')
        && table.ends_with(']')
        && table[1..table.len() - 1].chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'))
    .then(|| (table.to_owned(), body.to_owned()))
}

/// Three settings wrong in three places (a source, a destination, a section) and a secret that
/// is not what it should be: one load reports every problem, each with its full key, and the
/// secret's value appears in none.
const THREE_MISTAKES: &str = r#"
[delivery]
concurrency = 0

[[sources]]
type = "graph"
name = "contoso"
tenant_id = "t"
client_id = "c"
client_secret = "graph-secret-Xq7"
page_size = 0

[[destinations]]
type = "webhook"
name = "soc-flow"
url = "http://example.com/hook?sig=Sas5ignatureValue"
signing_secret = "whsec_not*base64*Kv9"
"#;

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.toml");
    std::fs::write(&path, THREE_MISTAKES).unwrap();
    let err = Config::load(Some(&path), &[]).unwrap_err();
    let hindsight::config::ConfigError::Invalid(problems) = &err else { panic!("{err}") };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["sources[0].page_size", "destinations[0].url", "destinations[0].signing_secret", "delivery.concurrency"],
        "{err}"
    );
    let text = err.to_string();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.lines().all(|l| l.starts_with("configuration key ")), "{text}");
    for secret in ["graph-secret-Xq7", "Sas5ignatureValue", "not*base64*Kv9"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// `hindsight check` and `hindsight run` print every problem, not the first.
#[test]
fn check_and_run_print_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.toml");
    std::fs::write(&path, THREE_MISTAKES).unwrap();
    let hindsight = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hindsight"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("HINDSIGHT_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap()
    };
    let check = hindsight(&["check", "--offline"]);
    assert!(!check.status.success());
    let stdout = String::from_utf8_lossy(&check.stdout);
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("failed  configuration")).collect();
    assert_eq!(failed.len(), 4, "{stdout}");
    for key in ["sources[0].page_size", "destinations[0].url", "destinations[0].signing_secret", "delivery.concurrency"]
    {
        assert!(failed.iter().any(|l| l.contains(&format!("configuration key {key}: "))), "{key}: {stdout}");
    }
    let run = hindsight(&["run", "--once"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    for key in ["sources[0].page_size", "destinations[0].url", "destinations[0].signing_secret", "delivery.concurrency"]
    {
        assert!(stderr.contains(&format!("configuration key {key}: ")), "{key}: {stderr}");
    }
    assert!(!stderr.contains("Sas5ignatureValue") && !stdout.contains("Sas5ignatureValue"));
}

/// config/hindsight.toml shows each section's keys with their defaults: the sample's sections
/// read the same as the defaults the code defines, so the two cannot drift apart. (The sources
/// and destinations tables carry example values and are compared where they show defaults.)
#[test]
fn the_documented_defaults_are_the_defaults() {
    let creds = credentials();
    let sample = Config::load(Some(&documented()), &env(&creds, &[])).unwrap();
    let defaults = Config::load(None, &[]).unwrap();
    assert_eq!(format!("{:?}", sample.digest), format!("{:?}", defaults.digest));
    assert_eq!(format!("{:?}", sample.daemon), format!("{:?}", defaults.daemon));
    assert_eq!(format!("{:?}", sample.retention), format!("{:?}", defaults.retention));
    assert_eq!(format!("{:?}", sample.review), format!("{:?}", defaults.review));
    assert_eq!(format!("{:?}", sample.delivery), format!("{:?}", defaults.delivery));
    assert_eq!(format!("{:?}", sample.http), format!("{:?}", defaults.http));
    // The Graph source shows every optional key with its default.
    let dir = tempfile::tempdir().unwrap();
    let minimal = dir.path().join("h.toml");
    std::fs::write(
        &minimal,
        "[[sources]]\ntype = \"graph\"\nname = \"contoso\"\ntenant_id = \"contoso.onmicrosoft.com\"\n\
         client_id = \"00000000-0000-0000-0000-000000000000\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let minimal = Config::load(Some(&minimal), &[]).unwrap();
    assert_eq!(format!("{:?}", sample.sources[0]), format!("{:?}", minimal.sources[0]));
}

/// Loads a configuration built with the test builder.
fn load_built(c: &DaemonConfig) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    Config::load(Some(&c.write_in(dir.path())), &[]).map_err(|e| e.to_string())
}

fn graph(graph_url: &str, login_url: &str) -> DaemonConfig {
    DaemonConfig::new().graph_source("contoso", "t", "c", graph_url, login_url).set("client_secret", "graph-Secret-77")
}

/// The Graph client secret and a webhook's OAuth secret go to their sign-in hosts over TLS;
/// plain HTTP only to loopback, and only when the table says so.
#[test]
fn sign_in_and_graph_urls_refuse_plain_http() {
    let e = load_built(&graph("http://graph.example.com", "https://login.microsoftonline.com")).unwrap_err();
    assert!(e.contains("configuration key sources[0].graph_url: must be https://"), "{e}");
    let e = load_built(&graph("https://graph.microsoft.com", "http://login.example.com")).unwrap_err();
    assert!(e.contains("configuration key sources[0].login_url: must be https://"), "{e}");
    let loopback = graph("http://127.0.0.1:9", "http://localhost:9");
    let e = load_built(&loopback.clone().set("insecure_loopback", false)).unwrap_err();
    assert!(e.contains("sources[0].graph_url") && e.contains("insecure_loopback"), "{e}");
    assert!(e.contains("sources[0].login_url") && !e.contains("graph-Secret-77"), "{e}");
    load_built(&loopback.set("insecure_loopback", true)).unwrap();

    let oauth = |login_url: &str, insecure: bool| {
        DaemonConfig::new().webhook("flow", "https://prod-01.westeurope.logic.azure.com/x").set(
            "oauth",
            serde_json::json!({"tenant_id": "t", "client_id": "c", "client_secret": "flow-Secret-88",
                "login_url": login_url, "insecure_loopback": insecure}),
        )
    };
    let e = load_built(&oauth("http://login.example.com", true)).unwrap_err();
    assert!(e.contains("configuration key destinations[0].oauth.login_url: must be https://"), "{e}");
    let e = load_built(&oauth("http://127.0.0.1:9", false)).unwrap_err();
    assert!(e.contains("destinations[0].oauth.login_url") && e.contains("insecure_loopback"), "{e}");
    assert!(!e.contains("flow-Secret-88"), "{e}");
    let e = load_built(&oauth("not a url", false)).unwrap_err();
    assert!(e.contains("destinations[0].oauth.login_url"), "{e}");
    load_built(&oauth("http://127.0.0.1:9", true)).unwrap();
    load_built(&oauth("https://login.microsoftonline.us", false)).unwrap();
}

/// `hindsight check` says which sign-ins go unencrypted to a loopback address.
#[test]
fn check_names_plain_http_sign_in_to_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let path = graph("http://127.0.0.1:9", "http://127.0.0.1:9")
        .set("insecure_loopback", true)
        .listen("")
        .webhook("flow", "https://prod-01.westeurope.logic.azure.com/x")
        .set(
            "oauth",
            serde_json::json!({"tenant_id": "t", "client_id": "c", "client_secret": "s",
                "login_url": "http://127.0.0.1:9", "insecure_loopback": true}),
        )
        .write_in(dir.path());
    let out = common::hindsight(&dir.path().join("state"), &["check", "--offline", "--config", path.to_str().unwrap()]);
    let stdout = common::stdout(&out);
    let line = |what: &str| stdout.lines().find(|l| l.contains(what) && l.contains("plain HTTP")).map(str::to_owned);
    assert!(line("source contoso").is_some_and(|l| l.contains("graph_url") && l.contains("login_url")), "{stdout}");
    assert!(line("destination flow").is_some_and(|l| l.contains("oauth.login_url")), "{stdout}");
}

/// A Standard Webhooks key of zero or one byte lets anyone sign; 24 bytes is the least taken.
#[test]
fn short_signing_keys_are_refused() {
    let hook = |key: &str| DaemonConfig::new().webhook("hook", "https://example.com/h").set("signing_secret", key);
    for key in ["whsec_", "whsec_AA==", "whsec_c2hvcnQtYnV0LXZhbGlkLWtleQ=="] {
        let e = load_built(&hook(key)).unwrap_err();
        assert!(
            e.contains("configuration key destinations[0].signing_secret:") && e.contains("24 bytes"),
            "{key}: {e}"
        );
        let shown = key.trim_start_matches("whsec_");
        assert!(shown.len() < 4 || !e.contains(shown), "{e}");
    }
    load_built(&hook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
    // An empty key file, as left by a provisioning step that failed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "\n").unwrap();
    let path = DaemonConfig::new()
        .listen("")
        .webhook("hook", "https://example.com/h")
        .set("signing_secret_file", dir.path().join("key"))
        .write_in(dir.path());
    let e = Config::load(Some(&path), &[]).unwrap_err().to_string();
    assert!(e.contains("destinations[0].signing_secret:"), "{e}");
    let out = common::hindsight(&dir.path().join("state"), &["check", "--offline", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(common::stdout(&out).contains("failed  configuration"), "{}", common::stdout(&out));
}

/// A syntax error on the line of a secret, and a secret of the wrong type: neither the error
/// nor `hindsight check` shows the value.
#[test]
fn configuration_errors_never_show_a_secret() {
    let graph_table = "[[sources]]\ntype = \"graph\"\nname = \"a\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";
    let cases = [
        (format!("{graph_table}client_secret = \"s3cr3t-value-Zq9x\" oops\n"), "s3cr3t-value-Zq9x"),
        (format!("{graph_table}client_secret = \"s3cr3t-value-Zq9x\n"), "s3cr3t-value-Zq9x"),
        (format!("{graph_table}client_secret = 'lit3ral-s3cr3t-Wv8' = 1\n"), "lit3ral-s3cr3t-Wv8"),
        (format!("{graph_table}client_secret = 123456789\n"), "123456789"),
        (format!("{graph_table}client_secret = 1234.5678\n"), "1234.5678"),
        (
            format!("{graph_table}credential = \"certificate\"\ncertificate = \"no cert\"\nprivate_key = \"PRIVKEY-Zk3yBody\"\n"),
            "PRIVKEY-Zk3yBody",
        ),
        (format!("{graph_table}credential = \"certificate\"\ncertificate = \"c\"\nprivate_key = 24681357\n"), "24681357"),
        (
            "[[destinations]]\ntype = \"email\"\nname = \"m\"\nhost = \"h\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\nusername = \"u\"\npassword = 97531864\n".into(),
            "97531864",
        ),
        (
            "[[destinations]]\ntype = \"webhook\"\nname = \"w\"\nurl = \"https://x/y\"\noauth = { tenant_id = \"t\", client_id = \"c\", client_secret = 86420864 }\n".into(),
            "86420864",
        ),
        (
            "[[destinations]]\ntype = \"webhook\"\nname = \"w\"\nurl = \"https://x/y?sig=Sig5ecretValue\" ]\n".into(),
            "Sig5ecretValue",
        ),
    ];
    for (toml, secret) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hindsight.toml");
        std::fs::write(&path, &toml).unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(!e.contains(secret), "{secret} in:\n{e}");
        let out =
            common::hindsight(&dir.path().join("state"), &["check", "--offline", "--config", path.to_str().unwrap()]);
        assert!(!out.status.success());
        let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
        assert!(stdout.contains("failed  configuration"), "{stdout}{stderr}");
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} in:\n{stdout}{stderr}");
        // What `hindsight run` logs (the journal, under systemd).
        let run = common::hindsight(&dir.path().join("state"), &["run", "--once", "--config", path.to_str().unwrap()]);
        assert!(!run.status.success());
        let logged = format!("{}{}", common::stdout(&run), common::stderr(&run));
        assert!(logged.contains("configuration") && !logged.contains(secret), "{secret} in:\n{logged}");
    }
}

/// The hosts a Teams or Slack message may link to are the Defender portals, or those a
/// destination names.
#[test]
fn portal_hosts_are_host_names() {
    let hook = |hosts: &[&str]| {
        DaemonConfig::new().webhook("hook", "https://example.com/h").set("format", "teams").set("portal_hosts", hosts)
    };
    load_built(&hook(&["security.microsoft.com", "defender.contoso.example"])).unwrap();
    let e = load_built(&hook(&["https://evil.example/"])).unwrap_err();
    assert!(e.contains("configuration key destinations[0].portal_hosts:"), "{e}");
}
/// Webhooks never go to link-local or cloud metadata addresses, and to private ranges only when
/// the destination says so.
#[test]
fn webhooks_to_metadata_and_private_addresses_are_refused() {
    let hook = |url: &str, allow_private: bool| {
        DaemonConfig::new()
            .webhook("hook", &format!("{url}?sig=Sig5ecretValue"))
            .set("insecure_loopback", false)
            .set("allow_private", allow_private)
    };
    for url in [
        "https://169.254.169.254/latest/meta-data",
        "https://169.254.10.1/x",
        "https://[fe80::1]/x",
        "https://[::ffff:169.254.169.254]/x",
        "https://metadata.google.internal/computeMetadata/v1",
        "https://0.0.0.0/x",
        "https://[::]/x",
    ] {
        for allow_private in [false, true] {
            let e = load_built(&hook(url, allow_private)).unwrap_err();
            assert!(e.contains("configuration key destinations[0].url:"), "{url}: {e}");
            assert!(!e.contains("Sig5ecretValue"), "{e}");
        }
    }
    for url in ["https://10.0.0.5/x", "https://172.16.3.4/x", "https://192.168.1.10/x", "https://[fd12:3456::1]/x"] {
        let e = load_built(&hook(url, false)).unwrap_err();
        assert!(e.contains("destinations[0].url:") && e.contains("allow_private"), "{url}: {e}");
        load_built(&hook(url, true)).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    for url in ["https://203.0.113.10/x", "https://127.0.0.1:9/x", "https://hooks.example.com/x"] {
        load_built(&hook(url, false)).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // Plain HTTP stays for loopback, behind insecure_loopback; never to a private address.
    load_built(&DaemonConfig::new().webhook("hook", "http://localhost:9/x")).unwrap();
    let e =
        load_built(&DaemonConfig::new().webhook("hook", "http://10.0.0.5/x").set("allow_private", true)).unwrap_err();
    assert!(e.contains("destinations[0].url: must be https://"), "{e}");
}

/// The sign-in keys: what each credential kind needs, keys of another kind, and a private key
/// file that others can read, each refused with its key.
#[test]
fn sign_in_keys_are_checked_with_their_keys() {
    use std::os::unix::fs::PermissionsExt;
    let graph_table = "[[sources]]\ntype = \"graph\"\nname = \"a\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";
    let load = |extra: &str, env: &[(String, String)]| load_text(&format!("{graph_table}{extra}"), env);
    let e = load("", &[]).unwrap_err();
    assert!(e.contains("sources[0].client_secret: must be set for credential = \"secret\""), "{e}");
    let e = load("credential = \"certificate\"\nclient_secret = \"s\"\n", &[]).unwrap_err();
    assert!(e.contains("sources[0].client_secret: is not used with credential = \"certificate\""), "{e}");
    assert!(e.contains("sources[0].certificate_file: must be set"), "{e}");
    let e = load("credential = \"workload_identity\"\n", &[]).unwrap_err();
    assert!(e.contains("sources[0].federated_token_file") && e.contains("AZURE_FEDERATED_TOKEN_FILE"), "{e}");
    let env = vec![(
        "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
        "/var/run/secrets/azure/tokens/azure-identity-token".to_owned(),
    )];
    load("credential = \"workload_identity\"\n", &env).unwrap();
    let e = load("credential = \"managed_identity\"\nimds_url = \"http://169.254.169.254\"\n", &[]).unwrap_err();
    assert!(e.contains("sources[0].imds_url: is for tests only"), "{e}");
    let e = load("credential = \"password\"\n", &[]).unwrap_err();
    assert!(e.contains("credential") && e.contains("certificate"), "{e}");

    // A key file others can read is refused before anything is signed with it.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app-key.pem");
    std::fs::write(&key, include_str!("fixtures/entra/app-key.pem")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let table = format!(
        "credential = \"certificate\"\ncertificate_file = \"{0}\"\nprivate_key_file = \"{0}\"\n",
        key.display()
    );
    let e = load(&table, &[]).unwrap_err();
    // Both keys name the file; the first read is the one refused.
    assert!(e.contains("_file: ") && e.contains("readable by others (mode 644)"), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = load(&table, &[]).unwrap_err();
    assert!(e.contains("sources[0].certificate_file: holds no PEM certificate"), "{e}");
}
