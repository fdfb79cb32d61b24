//! The daemon's configuration for tests that run it, built by name instead of TOML written out
//! in each test:
//!
//! ```ignore
//! DaemonConfig::new()
//!     .listen("")
//!     .directory_source("drop", &incoming)
//!     .set("poll_interval", "1s")
//!     .webhook("soc-hook", &url)
//!     .daemon("outbox_interval", "50ms")
//!     .write_in(dir.path());
//! ```
//!
//! It writes what it is told, in the file format users write: the tests on the format itself
//! (unknown keys, bad values) keep their TOML as text, in tests/config.rs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A value as TOML writes it.
pub trait Toml {
    fn toml(&self) -> String;
}

impl Toml for str {
    fn toml(&self) -> String {
        // A JSON string is a valid TOML basic string (the same escapes).
        serde_json::to_string(self).unwrap()
    }
}
impl Toml for String {
    fn toml(&self) -> String {
        self.as_str().toml()
    }
}
impl Toml for Path {
    fn toml(&self) -> String {
        self.display().to_string().toml()
    }
}
impl Toml for PathBuf {
    fn toml(&self) -> String {
        self.as_path().toml()
    }
}
impl Toml for bool {
    fn toml(&self) -> String {
        self.to_string()
    }
}
macro_rules! integers {
    ($($t:ty),*) => {$(impl Toml for $t {
        fn toml(&self) -> String {
            self.to_string()
        }
    })*};
}
integers!(i32, i64, u16, u32, u64, usize);
impl<T: Toml> Toml for [T] {
    fn toml(&self) -> String {
        format!("[{}]", self.iter().map(Toml::toml).collect::<Vec<_>>().join(", "))
    }
}
impl<T: Toml, const N: usize> Toml for [T; N] {
    fn toml(&self) -> String {
        self[..].toml()
    }
}
/// JSON as TOML: an object becomes an inline table (`oauth = { tenant_id = "t", ... }`).
impl Toml for serde_json::Value {
    fn toml(&self) -> String {
        use serde_json::Value;
        match self {
            Value::Object(o) => {
                format!("{{ {} }}", o.iter().map(|(k, v)| format!("{k} = {}", v.toml())).collect::<Vec<_>>().join(", "))
            }
            Value::Array(a) => a[..].toml(),
            Value::Null => panic!("TOML has no null"),
            // Strings, numbers and booleans are written alike in both.
            other => other.to_string(),
        }
    }
}
impl<T: Toml + ?Sized> Toml for &T {
    fn toml(&self) -> String {
        (**self).toml()
    }
}

/// One table: its keys in the order they were set.
#[derive(Clone, Debug, Default)]
struct Table {
    keys: Vec<(String, String)>,
}

impl Table {
    fn set(&mut self, key: &str, value: String) {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.keys.push((key.to_owned(), value)),
        }
    }

    fn remove(&mut self, key: &str) {
        self.keys.retain(|(k, _)| k != key);
    }

    fn name(&self) -> Option<String> {
        self.keys.iter().find(|(k, _)| k == "name").and_then(|(_, v)| serde_json::from_str(v).ok())
    }

    fn write(&self, out: &mut String, header: &str) {
        let _ = writeln!(out, "\n{header}");
        for (k, v) in &self.keys {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Last {
    Source,
    Destination,
}

/// A Hindsight configuration file, built up by section.
#[derive(Clone, Debug, Default)]
pub struct DaemonConfig {
    /// `[http]`, `[daemon]`, `[delivery]`, ... by section name, in the order first used.
    sections: Vec<(String, Table)>,
    sources: Vec<Table>,
    /// Each destination with its `[destinations.route]`, if any.
    destinations: Vec<(Table, Option<Table>)>,
    last: Option<Last>,
}

impl DaemonConfig {
    /// No section at all: the daemon's defaults.
    pub fn new() -> DaemonConfig {
        DaemonConfig::default()
    }

    /// A key in a plain section (`[daemon]`, `[delivery]`, `[retention]`, `[digest]`, ...).
    pub fn section(mut self, section: &str, key: &str, value: impl Toml) -> DaemonConfig {
        let i = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_owned(), Table::default()));
                self.sections.len() - 1
            }
        };
        self.sections[i].1.set(key, value.toml());
        self
    }

    /// `http.listen`: an address, or "" for no HTTP server.
    pub fn listen(self, address: &str) -> DaemonConfig {
        self.section("http", "listen", address)
    }

    /// The port of `http.listen`, if it names one.
    pub fn http_port(&self) -> Option<u16> {
        let (_, http) = self.sections.iter().find(|(s, _)| s == "http")?;
        let (_, listen) = http.keys.iter().find(|(k, _)| k == "listen")?;
        let listen: String = serde_json::from_str(listen).ok()?;
        listen.rsplit_once(':')?.1.parse().ok()
    }

    pub fn daemon(self, key: &str, value: impl Toml) -> DaemonConfig {
        self.section("daemon", key, value)
    }

    pub fn delivery(self, key: &str, value: impl Toml) -> DaemonConfig {
        self.section("delivery", key, value)
    }

    pub fn retention(self, key: &str, value: impl Toml) -> DaemonConfig {
        self.section("retention", key, value)
    }

    fn source(mut self, kind: &str, name: &str) -> DaemonConfig {
        let mut t = Table::default();
        t.set("type", kind.toml());
        t.set("name", name.toml());
        self.sources.push(t);
        self.last = Some(Last::Source);
        self
    }

    fn destination(mut self, kind: &str, name: &str) -> DaemonConfig {
        let mut t = Table::default();
        t.set("type", kind.toml());
        t.set("name", name.toml());
        self.destinations.push((t, None));
        self.last = Some(Last::Destination);
        self
    }

    /// A directory source reading Graph incident files from `path`.
    pub fn directory_source(self, name: &str, path: &Path) -> DaemonConfig {
        self.source("directory", name).set("path", path)
    }

    /// A Graph source at `graph_url`, signing in at `login_url` (the Graph fake's two URLs,
    /// plain HTTP on loopback, which the daemon refuses unless told: `insecure_loopback`).
    pub fn graph_source(
        self,
        name: &str,
        tenant_id: &str,
        client_id: &str,
        graph_url: &str,
        login_url: &str,
    ) -> DaemonConfig {
        self.source("graph", name)
            .set("tenant_id", tenant_id)
            .set("client_id", client_id)
            .set("graph_url", graph_url)
            .set("login_url", login_url)
            .set("insecure_loopback", true)
    }

    /// A webhook destination. Test receivers listen on loopback, which the daemon refuses
    /// unless told (`insecure_loopback`).
    pub fn webhook(self, name: &str, url: &str) -> DaemonConfig {
        self.destination("webhook", name).set("url", url).set("insecure_loopback", true)
    }

    /// An e-mail destination: the fake SMTP server on 127.0.0.1:`port`, without TLS, from
    /// hindsight@example.test to soc@example.test.
    pub fn email(self, name: &str, port: u16) -> DaemonConfig {
        self.destination("email", name)
            .set("host", "127.0.0.1")
            .set("port", port)
            .set("security", "plain")
            .set("from", "Hindsight <hindsight@example.test>")
            .set("to", ["soc@example.test"])
    }

    /// A folder destination writing notifications to `path`.
    pub fn folder(self, name: &str, path: &Path) -> DaemonConfig {
        self.destination("folder", name).set("path", path)
    }

    /// A key of the source or destination added last.
    pub fn set(mut self, key: &str, value: impl Toml) -> DaemonConfig {
        let table = match self.last {
            Some(Last::Source) => self.sources.last_mut(),
            Some(Last::Destination) => self.destinations.last_mut().map(|(t, _)| t),
            None => None,
        };
        table.expect("set() follows a source or a destination").set(key, value.toml());
        self
    }

    /// A key of the source or destination called `name`.
    pub fn set_in(mut self, name: &str, key: &str, value: impl Toml) -> DaemonConfig {
        self.named(name).set(key, value.toml());
        self
    }

    fn named(&mut self, name: &str) -> &mut Table {
        self.sources
            .iter_mut()
            .chain(self.destinations.iter_mut().map(|(t, _)| t))
            .find(|t| t.name().as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no source or destination called {name:?}"))
    }

    /// Removes a key of the source or destination called `name`.
    pub fn unset_in(mut self, name: &str, key: &str) -> DaemonConfig {
        self.named(name).remove(key);
        self
    }

    /// A key of the last destination's `[destinations.route]`.
    pub fn route(mut self, key: &str, value: impl Toml) -> DaemonConfig {
        assert_eq!(self.last, Some(Last::Destination), "route() follows a destination");
        let (_, route) = self.destinations.last_mut().unwrap();
        route.get_or_insert_with(Table::default).set(key, value.toml());
        self
    }

    /// The file's text.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        for (section, t) in &self.sections {
            t.write(&mut out, &format!("[{section}]"));
        }
        for t in &self.sources {
            t.write(&mut out, "[[sources]]");
        }
        for (t, route) in &self.destinations {
            t.write(&mut out, "[[destinations]]");
            if let Some(route) = route {
                route.write(&mut out, "[destinations.route]");
            }
        }
        out
    }

    /// Writes the file to `path`; returns `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.toml()).unwrap();
        path.to_owned()
    }

    /// Writes `dir/hindsight.toml`; returns its path.
    pub fn write_in(&self, dir: &Path) -> PathBuf {
        self.write(&dir.join("hindsight.toml"))
    }
}
