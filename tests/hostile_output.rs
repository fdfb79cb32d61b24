//! What Hindsight prints to a terminal or a log when the data it prints is hostile: incident
//! titles and file names carrying terminal escapes, forged log lines; and how its commands
//! behave when their reader goes away, on a fresh or corrupted state directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// ESC with an OSC 8 link and an OSC 52 clipboard write (both ended by BEL), NUL, a
/// right-to-left override, and a newline that would start a forged emergency-priority
/// journald entry.
const EVIL: &str =
    "X\u{1b}]8;;https://evil\u{7}link\u{1b}]8;;\u{7} \u{1b}]52;c;aGk=\u{7} nul\0 rlo\u{202e}fdp.exe\n<0>forged";

/// A sample incident whose title and alert titles carry [`EVIL`].
fn evil_incident(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("examples/incidents/phishing-credential-theft.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["id"] = id.into();
    v["displayName"] = format!("Title {EVIL}").into();
    for a in v["alerts"].as_array_mut().unwrap() {
        a["title"] = format!("Alert {EVIL}").into();
        a["incidentId"] = id.into();
    }
    v
}

/// Every raw control or bidi character in `out` other than the line ends, and every line that
/// starts a journald priority the program did not mean (`<0>`..`<2>`: emergency, alert,
/// critical: Hindsight never logs at those).
fn unsafe_output(what: &str, out: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in out.lines().enumerate() {
        let bad: Vec<char> = line
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\t')
                    || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        if !bad.is_empty() {
            found.push(format!("{what} line {}: raw {bad:?} in {line:?}", n + 1));
        }
        if line.starts_with("<0>") || line.starts_with("<1>") || line.starts_with("<2>") {
            found.push(format!("{what} line {}: forged priority: {line:?}", n + 1));
        }
    }
    found
}

#[test]
fn review_text_output_escapes_control_characters_from_incident_data() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("evil.json");
    std::fs::write(&input, serde_json::to_vec(&evil_incident("666")).unwrap()).unwrap();
    let o = hindsight(dir.path(), &["review", "--input", input.to_str().unwrap(), "--format", "text"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    let mut bad = unsafe_output("stdout", &out);
    bad.extend(unsafe_output("stderr", &err));
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // Still there, visibly escaped.
    assert!(out.contains(r"\u{1b}]8;;https://evil\u{7}"), "{out}");
    assert!(out.contains(r"rlo\u{202e}fdp.exe\u{a}<0>forged"), "{out}");
}

/// Runs `hindsight run --once` with logs in `format` (every crate at trace level) on a drop
/// folder holding an incident carrying [`EVIL`] and a broken file whose name carries most of
/// it, delivering to a folder that prints its summary line; returns stdout and stderr.
fn daemon_once(format: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (drop, out, state) = (dir.path().join("drop"), dir.path().join("out"), dir.path().join("state"));
    std::fs::create_dir_all(&drop).unwrap();
    // The incident id is printed in the folder's summary line.
    std::fs::write(drop.join("evil.json"), serde_json::to_vec(&evil_incident("666\u{1b}]52;c;aGk=\u{7}")).unwrap())
        .unwrap();
    // Not an incident file: its name is logged with the reason it was refused. (A file name
    // cannot hold NUL or '/'.)
    std::fs::write(drop.join("bad \u{1b}]52;c;aGk=\u{7} rlo\u{202e}x\n<0>forged.json"), b"{\"id\": ").unwrap();
    let config = DaemonConfig::new()
        .section("http", "listen", "")
        .directory_source("drop", &drop)
        .folder("folder", &out)
        .write_in(dir.path());
    let o = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["run", "--once", "--log-format", format, "--config"])
        .arg(&config)
        .env("HINDSIGHT_STATE_DIR", &state)
        .env("HINDSIGHT_LOG", "trace")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    (stdout(&o), stderr(&o))
}

fn assert_safe(out: &str, err: &str) {
    let mut bad = unsafe_output("stdout", out);
    bad.extend(unsafe_output("stderr", err));
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(out.contains("review.created drop/666"), "the folder's summary line: {out}");
}

#[test]
fn the_daemon_with_journald_logs_writes_one_entry_per_event_and_escapes_what_it_prints() {
    let (out, err) = daemon_once("journald");
    assert_safe(&out, &err);
    for line in err.lines() {
        assert!(line.starts_with(['<']) && line[1..].starts_with(['3', '4', '5', '6', '7']), "not an entry: {line:?}");
    }
    assert!(err.contains(r"\u{a}<0>forged.json"), "the refused file is named, escaped: {err}");
}

#[test]
fn the_daemon_with_text_logs_writes_one_line_per_event() {
    let (out, err) = daemon_once("text");
    assert_safe(&out, &err);
    assert!(err.contains(r"\u{a}<0>forged.json"), "the refused file is named, escaped: {err}");
}

#[test]
fn the_daemon_with_json_logs_writes_one_object_per_line_without_raw_bidi_overrides() {
    let (out, err) = daemon_once("json");
    assert_safe(&out, &err);
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v.is_object());
    }
    assert!(err.contains(r"x\n<0>forged.json"), "{err}");
}

/// Runs `args` with stdout a pipe whose read end is closed before the command writes: every
/// write it makes fails with EPIPE (Rust ignores SIGPIPE, so the process is not killed).
/// Returns the exit code and stderr.
fn with_reader_gone(state: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(args)
        .env("HINDSIGHT_STATE_DIR", state)
        .env_remove("HINDSIGHT_LOG")
        .env_remove("STATE_DIRECTORY")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    (o.status.code(), stderr(&o))
}

#[test]
fn commands_exit_quietly_when_their_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let config = DaemonConfig::new()
        .section("http", "listen", "")
        .directory_source("drop", &drop)
        .folder("folder", &dir.path().join("out"))
        .write_in(dir.path());
    let config = config.to_str().unwrap();
    let sample = repo().join("examples/incidents/phishing-credential-theft.json");
    let commands: [&[&str]; 6] = [
        &["outbox", "list"],
        &["check", "--offline", "--config", config],
        &["catalog", "lookup", "T1059", "T1566"],
        &["catalog", "info"],
        &["review", "--input", sample.to_str().unwrap()],
        &["completions", "bash"],
    ];
    for args in commands {
        let (code, err) = with_reader_gone(&state, args);
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "hindsight {args:?}: {err}");
        assert!(err.is_empty(), "hindsight {args:?} printed on stderr: {err}");
        assert_eq!(code, Some(0), "hindsight {args:?}: {err}");
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_fresh_state_directory_and_store_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    ok(&state, &["outbox", "list"]);
    assert_eq!(mode(&state), 0o700, "state directory");
    let store = state.join("store");
    assert_eq!(mode(&store), 0o700, "store directory");
    for entry in std::fs::read_dir(&store).unwrap() {
        let p = entry.unwrap().path();
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
}

#[test]
fn a_configuration_readable_by_others_with_an_inline_secret_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let config = DaemonConfig::new()
        .section("http", "listen", "")
        .directory_source("drop", &drop)
        .webhook("hook", "https://hooks.example.test/T000/B000/XXXXSECRETXXXX")
        .set("signing_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .write_in(dir.path());
    let check = |config: &Path| {
        hindsight(&dir.path().join("state"), &["check", "--offline", "--config", config.to_str().unwrap()])
    };
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = check(&config);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(out.contains("warning configuration") && out.contains("readable by others"), "{out}");
    assert!(out.contains("destinations[0].signing_secret"), "names the key: {out}");
    assert!(err.contains("WARN") && err.contains("readable by others"), "and logs it: {err}");
    assert!(!out.contains("whsec_") && !err.contains("whsec_"), "never the secret");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = check(&config);
    assert!(!stdout(&o).contains("readable by others") && !stderr(&o).contains("readable by others"));
    // Readable by others but with every secret in a file: nothing to say.
    let secret = dir.path().join("signing_secret");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("url = ", "url_file = ")
        .replace("https://hooks.example.test/T000/B000/XXXXSECRETXXXX", secret.to_str().unwrap())
        .replace(
            "signing_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
            &format!("signing_secret_file = {secret:?}"),
        );
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = check(&config);
    assert!(!stdout(&o).contains("readable by others"), "{}", stdout(&o));
}

#[test]
fn a_corrupted_store_is_named_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    ok(&state, &["outbox", "list"]);
    let store = state.join("store");
    // Two bytes of sled's configuration file changed: its checksum no longer matches.
    let conf = store.join("conf");
    let mut bytes = std::fs::read(&conf).unwrap();
    bytes[20] ^= 0xff;
    bytes[21] ^= 0xff;
    std::fs::write(&conf, &bytes).unwrap();
    let err = fails(&state, &["outbox", "list"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    let reasons = err.matches("Read corrupted data").count() + err.matches("sled version earlier than 0.29").count();
    assert_eq!(reasons, 1, "sled's reason once: {err}");
    assert!(err.contains(&format!("the store at {} is damaged", store.display())), "{err}");
    assert!(err.contains("Restore that directory from a backup"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
    assert!(err.contains("lost"), "says what a fresh store loses: {err}");
    // Garbage instead of the configuration file: sled calls it a store of an old version.
    std::fs::write(&conf, [0xa5u8; 64]).unwrap();
    let err = fails(&state, &["outbox", "list"]);
    assert_eq!(err.matches("sled version earlier than 0.29").count(), 1, "{err}");
    assert!(err.contains("is damaged") && err.contains("move it aside"), "{err}");
}

#[test]
fn a_sigma_rule_nested_past_the_flow_depth_guard_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = repo().join("examples/incidents/phishing-credential-theft.json");
    let rule = |depth: usize| {
        format!(
            "title: deep\ntags: [attack.t1566.002]\ndetection:\n  sel: {}1{}\n  condition: sel\n",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let review = |depth: usize| {
        let path = dir.path().join(format!("deep{depth}.yml"));
        std::fs::write(&path, rule(depth)).unwrap();
        hindsight(
            dir.path(),
            &["review", "--input", input.to_str().unwrap(), "--format", "json", "--inventory", path.to_str().unwrap()],
        )
    };
    let at_limit = review(64);
    assert!(at_limit.status.success(), "64 levels are read: {}", stderr(&at_limit));
    let over = review(65);
    assert!(!over.status.success());
    assert!(
        stderr(&over).contains("deep65.yml") && stderr(&over).contains("nested more than 64 levels deep at line 4"),
        "{}",
        stderr(&over)
    );
}

/// `HINDSIGHT_MAX_CATALOG_BYTES` lowers the one limit on the stored catalog, so that a small
/// bundle stands for one whose compact form would be over 64 MiB.
#[test]
fn an_import_too_large_to_store_is_refused_and_the_catalog_in_use_stays() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], limit: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hindsight"));
        c.args(args).env("HINDSIGHT_STATE_DIR", dir.path()).env_remove("HINDSIGHT_LOG").env_remove("STATE_DIRECTORY");
        match limit {
            Some(l) => c.env("HINDSIGHT_MAX_CATALOG_BYTES", l),
            None => c.env_remove("HINDSIGHT_MAX_CATALOG_BYTES"),
        };
        c.output().unwrap()
    };
    let v17 = fixture("attack/enterprise-attack-17.1-mini.json");
    let v18 = fixture("attack/enterprise-attack-18.1-mini.json");
    let o = run(&["catalog", "import", v17.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    // Stored compact, 17.1-mini is 12,942 bytes, 18.1-mini 188,345.
    let o = run(&["catalog", "import", v18.to_str().unwrap()], Some("100000"));
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("enterprise-attack-18.1-mini.json") && err.contains("over the limit of 100000 bytes"),
        "{err}"
    );
    assert!(err.contains("the catalog in use is unchanged"), "{err}");
    // Every command still works, with the catalog imported before, under the same limit.
    for limit in [None, Some("100000")] {
        let o = run(&["catalog", "info", "--format", "json"], limit);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(json(&stdout(&o))["attack_version"], "17.1", "{}", stdout(&o));
    }
    // A dry run says the same.
    let o = run(&["catalog", "import", "--dry-run", v18.to_str().unwrap()], Some("100000"));
    assert!(!o.status.success() && stderr(&o).contains("over the limit"), "{}", stderr(&o));
}

/// `GET /readyz` to `addr` (the connection comes from the address the route to it leaves
/// from: loopback for 127.0.0.1, the machine's own address for that address): status line and
/// body.
fn readyz(addr: std::net::SocketAddr) -> Option<(String, serde_json::Value)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), serde_json::from_str(body).ok()?))
}

/// A non-loopback IPv4 address of this machine, if it has one (the one a route to a private
/// address would leave from; nothing is sent).
fn own_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.254:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the daemon on `listen` (with `http.readyz_details` if given), waits for /readyz to answer 200 from
/// loopback, runs `f`, stops it.
fn with_daemon(listen: &str, details: Option<&str>, f: impl FnOnce(u16)) {
    let dir = tempfile::tempdir().unwrap();
    let drop_dir = dir.path().join("drop");
    std::fs::create_dir_all(&drop_dir).unwrap();
    let port = free_port();
    let mut cfg = DaemonConfig::new().section("http", "listen", format!("{listen}:{port}").as_str());
    if let Some(d) = details {
        cfg = cfg.section("http", "readyz_details", d);
    }
    let config = cfg.directory_source("drop", &drop_dir).folder("folder", &dir.path().join("out")).write_in(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["run", "--config"])
        .arg(&config)
        .env("HINDSIGHT_STATE_DIR", dir.path().join("state"))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let started = std::time::Instant::now();
    while readyz(loopback).is_none_or(|(s, _)| !s.contains(" 200 ")) {
        assert!(started.elapsed().as_secs() < 30, "the daemon did not become ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    f(port);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn readyz_is_honest_about_the_store_and_shows_details_to_loopback_only() {
    with_daemon("0.0.0.0", None, |port| {
        let (status, body) = readyz(([127, 0, 0, 1], port).into()).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let store = body["checks"].as_array().unwrap().iter().find(|c| c["name"] == "store").unwrap().clone();
        let detail = store["detail"].as_str().unwrap();
        assert!(!detail.contains("writable") && detail.contains("readable"), "{detail}");
        assert!(detail.contains("free"), "the reserve check is part of it: {detail}");
        match own_address() {
            Some(ip) => {
                let (status, body) = readyz((ip, port).into()).unwrap();
                assert!(status.contains(" 200 "), "{status}");
                for c in body["checks"].as_array().unwrap() {
                    assert!(c["name"].is_string() && c["ok"].is_boolean(), "{c}");
                    assert!(c.get("detail").is_none(), "no details to {ip}: {body}");
                }
            }
            None => eprintln!("no non-loopback address: the remote half is not checked"),
        }
    });
    with_daemon("127.0.0.1", Some("none"), |port| {
        let (_, body) = readyz(([127, 0, 0, 1], port).into()).unwrap();
        assert!(body["checks"].as_array().unwrap().iter().all(|c| c.get("detail").is_none()), "{body}");
    });
}
