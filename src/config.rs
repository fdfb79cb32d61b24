//! The configuration: a TOML file, overridden by `HINDSIGHT__SECTION__KEY` environment
//! variables, with secrets read from files (`*_file` keys, relative to systemd's
//! `$CREDENTIALS_DIRECTORY` when set). Every setting has a default; unknown keys and bad values
//! stop start-up with the key's full path in the message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::notify::Route;
use crate::notify::email::EmailConfig;
use crate::notify::folder::FolderConfig;
use crate::notify::webhook::WebhookConfig;
use crate::source::directory::DirectoryConfig;
use crate::source::graph::GraphConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Load(String),
    #[error("configuration key {key}: {message}")]
    Key { key: String, message: String },
    #[error("configuration key {key}: cannot read the secret file {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_late() -> Duration {
    Duration::from_secs(3600)
}
fn default_top() -> usize {
    10
}
fn default_concurrency() -> usize {
    16
}
fn default_budget() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_listen() -> String {
    "127.0.0.1:9187".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store and the imported catalog live; see the CLI's `--state-dir` for the default.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub digest: DigestConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
}

fn yes() -> bool {
    true
}
fn default_schedule() -> String {
    crate::digest::schedule::DEFAULT_CRON.into()
}
fn default_zone() -> String {
    "local".into()
}
fn default_period() -> Duration {
    Duration::from_secs(7 * 86_400)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Cron expression: five fields (minute hour day-of-month month day-of-week) or six
    /// (seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// IANA time zone of the schedule, or "local" (the machine's).
    #[serde(default = "default_zone")]
    pub time_zone: String,
    /// The period a digest covers, up to its scheduled time; compared with the period before.
    #[serde(default = "default_period", with = "humantime_serde")]
    pub period: Duration,
    /// Entries per ranked list.
    #[serde(default = "default_top")]
    pub top: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            enabled: true,
            schedule: default_schedule(),
            time_zone: default_zone(),
            period: default_period(),
            top: default_top(),
        }
    }
}

fn default_shutdown() -> Duration {
    Duration::from_secs(30)
}
fn default_stall() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_outbox_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_delivery_grace() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_batch() -> usize {
    100
}
fn default_store_cache() -> bytesize::ByteSize {
    bytesize::ByteSize(crate::store::CACHE_BYTES)
}
fn default_store_reserve() -> bytesize::ByteSize {
    bytesize::ByteSize(crate::store::DEFAULT_RESERVE)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// After SIGTERM: how long in-flight polls and deliveries may take to finish.
    #[serde(default = "default_shutdown", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// A worker busy this long on one step counts as stuck: /readyz says so and the systemd
    /// watchdog stops being fed, so systemd restarts the daemon.
    #[serde(default = "default_stall", with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// How often the outbox is checked for retries that came due (new notifications are sent at once).
    #[serde(default = "default_outbox_interval", with = "humantime_serde")]
    pub outbox_interval: Duration,
    /// Reviews made per store transaction batch.
    #[serde(default = "default_batch")]
    pub review_batch: usize,
    /// How long a destination may fail every delivery attempt before /readyz reports not
    /// ready (notifications are kept and retried meanwhile; this only makes the outage visible).
    #[serde(default = "default_delivery_grace", with = "humantime_serde")]
    pub delivery_grace: Duration,
    /// Free space the store's disk keeps: below it, the daemon writes nothing more and exits
    /// with an error naming the disk ("64 MiB", "1 GB", or bytes; 0 turns the check off).
    #[serde(default = "default_store_reserve")]
    pub store_reserve: bytesize::ByteSize,
    /// The store's page cache; resident memory is about twice this above the idle daemon.
    #[serde(default = "default_store_cache")]
    pub store_cache: bytesize::ByteSize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_timeout: default_shutdown(),
            stall_timeout: default_stall(),
            outbox_interval: default_outbox_interval(),
            review_batch: default_batch(),
            delivery_grace: default_delivery_grace(),
            store_reserve: default_store_reserve(),
            store_cache: default_store_cache(),
        }
    }
}

fn default_keep_reviews() -> Option<Duration> {
    Some(Duration::from_secs(400 * 86_400))
}
fn default_keep_notifications() -> Option<Duration> {
    Some(Duration::from_secs(30 * 86_400))
}
fn default_retention_interval() -> Duration {
    Duration::from_secs(3600)
}

/// A duration ("30d", "12h"), or "forever".
fn keep<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    humantime::parse_duration(s.trim())
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is neither a duration (\"30d\") nor \"forever\": {e}")))
}

/// How long the store keeps what is done with (see `store::retention`). The defaults keep a
/// year and more of reviews, a month of delivered notifications, and dead letters until
/// someone retries or purges them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Reviews, their digest summaries and the incident snapshots they were made from, from
    /// when the review was made.
    #[serde(default = "default_keep_reviews", deserialize_with = "keep")]
    pub reviews: Option<Duration>,
    /// Delivered notifications, from their delivery.
    #[serde(default = "default_keep_notifications", deserialize_with = "keep")]
    pub notifications: Option<Duration>,
    /// Dead-lettered notifications, from when they were given up.
    #[serde(default, deserialize_with = "keep")]
    pub dead_letters: Option<Duration>,
    /// How often the daemon looks for what is past its keep.
    #[serde(default = "default_retention_interval", with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            reviews: default_keep_reviews(),
            notifications: default_keep_notifications(),
            dead_letters: None,
            interval: default_retention_interval(),
        }
    }
}

impl RetentionConfig {
    pub fn policy(&self) -> crate::store::Retention {
        crate::store::Retention {
            reviews: self.reviews,
            notifications: self.notifications,
            dead_letters: self.dead_letters,
        }
    }
}

#[derive(Debug, Clone)]
pub enum SourceKind {
    Graph(Box<GraphConfig>),
    Directory(DirectoryConfig),
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// How often the source is polled (`poll_interval`, default 60 s).
    pub poll_interval: Duration,
}

/// A `[[sources]]` or `[[destinations]]` table: the keys every kind shares are taken out, and the
/// rest goes to the kind's own config, which rejects unknown keys. (serde's `flatten` cannot be
/// combined with `deny_unknown_fields`, and a misspelt key must not pass silently.)
fn split_table<E: serde::de::Error>(
    mut table: serde_json::Map<String, Value>,
    kinds: &[&str],
) -> Result<(String, serde_json::Map<String, Value>), E> {
    let kind = match table.remove("type") {
        Some(Value::String(t)) if kinds.contains(&t.as_str()) => t,
        Some(other) => return Err(E::custom(format!("type: {other} is not one of {}", kinds.join(", ")))),
        None => return Err(E::custom(format!("type: missing (one of {})", kinds.join(", ")))),
    };
    Ok((kind, table))
}

fn take<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    table: &mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<T>, E> {
    table.remove(key).map(|v| serde_json::from_value(v).map_err(|e| E::custom(format!("{key}: {e}")))).transpose()
}

fn rest<T: serde::de::DeserializeOwned, E: serde::de::Error>(table: serde_json::Map<String, Value>) -> Result<T, E> {
    // The kind's own keys are deserialized here, out of sight of the outer path: name the key.
    serde_path_to_error::deserialize(Value::Object(table)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." { E::custom(e.into_inner()) } else { E::custom(format!("{path}: {}", e.into_inner())) }
    })
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = serde_json::Map::deserialize(d)?;
        let (kind, mut table) = split_table::<D::Error>(table, &["graph", "directory"])?;
        let poll_interval = match take::<String, D::Error>(&mut table, "poll_interval")? {
            Some(s) => {
                humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("poll_interval: {e}")))?
            }
            None => default_poll_interval(),
        };
        let kind = match kind.as_str() {
            "graph" => SourceKind::Graph(Box::new(rest(table)?)),
            _ => SourceKind::Directory(rest(table)?),
        };
        Ok(SourceConfig { kind, poll_interval })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// An alert raised this long after its activity began is a late detection.
    #[serde(default = "default_late", with = "humantime_serde")]
    pub late_detection: Duration,
    #[serde(default = "default_top")]
    pub attribution_top: usize,
    /// Detection inventory: Navigator layers, Sigma or Elastic rule folders, ID lists.
    #[serde(default)]
    pub inventory: Vec<PathBuf>,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig { late_detection: default_late(), attribution_top: default_top(), inventory: vec![] }
    }
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    Webhook(WebhookConfig),
    Email(EmailConfig),
    Folder(FolderConfig),
}

#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub sink: SinkKind,
    pub route: Route,
}

impl<'de> Deserialize<'de> for DestinationConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = serde_json::Map::deserialize(d)?;
        let (kind, mut table) = split_table::<D::Error>(table, &["webhook", "email", "folder"])?;
        let name =
            take::<String, D::Error>(&mut table, "name")?.ok_or_else(|| serde::de::Error::custom("name: missing"))?;
        let route = take::<Route, D::Error>(&mut table, "route")?.unwrap_or_default();
        let sink = match kind.as_str() {
            "webhook" => SinkKind::Webhook(rest(table)?),
            "email" => SinkKind::Email(rest(table)?),
            _ => SinkKind::Folder(rest(table)?),
        };
        Ok(DestinationConfig { name, sink, route })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How long a notification is retried before it is dead-lettered.
    #[serde(default = "default_budget", with = "humantime_serde")]
    pub retry_budget: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { concurrency: default_concurrency(), retry_budget: default_budget() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of /healthz, /readyz and /metrics; loopback by default; "" turns the listener off.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Connections served at once; one over the cap is closed as soon as it is accepted. Each
    /// holds a file descriptor, which polling, delivery and the store need too: the daemon
    /// lowers the cap to a quarter of its open-file limit if it is set higher.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may wait for its next request, before the connection is closed.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
}

fn default_max_connections() -> usize {
    512
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
        }
    }
}

impl Config {
    /// Reads `path` (if given), applies `HINDSIGHT__…` variables from `env`, resolves `*_file`
    /// secrets, and validates. `env` is passed in so tests need not touch the process's.
    pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(p) = path {
            builder = builder.add_source(config::File::from(p).format(config::FileFormat::Toml).required(true));
        }
        let vars: config::Map<String, String> = env.iter().cloned().collect();
        builder = builder.add_source(
            config::Environment::with_prefix("HINDSIGHT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let raw: Value =
            builder.build().and_then(|c| c.try_deserialize()).map_err(|e| ConfigError::Load(e.to_string()))?;
        let credentials = env.iter().find(|(k, _)| k == "CREDENTIALS_DIRECTORY").map(|(_, v)| PathBuf::from(v));
        let resolved = resolve_secret_files(raw, "", credentials.as_deref())?;
        let config: Config = serde_path_to_error::deserialize(resolved)
            .map_err(|e| ConfigError::Key { key: e.path().to_string(), message: e.into_inner().to_string() })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: String, message: String| ConfigError::Key { key: k, message };
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let name = match &s.kind {
                SourceKind::Graph(g) => {
                    g.validate().map_err(|m| key(format!("sources[{i}]"), m))?;
                    &g.name
                }
                SourceKind::Directory(d) => &d.name,
            };
            if !names.insert(name.clone()) {
                return Err(key(
                    format!("sources[{i}].name"),
                    format!("{name:?} is used twice; each source needs its own"),
                ));
            }
        }
        let mut dests = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            if !dests.insert(d.name.clone()) {
                return Err(key(format!("destinations[{i}].name"), format!("{:?} is used twice", d.name)));
            }
            d.route.validate().map_err(|m| key(format!("destinations[{i}].route"), m))?;
        }
        if self.delivery.concurrency == 0 {
            return Err(key("delivery.concurrency".into(), "must be at least 1".into()));
        }
        if !self.http.listen.is_empty() {
            self.http
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| key("http.listen".into(), format!("{:?}: {e}", self.http.listen)))?;
        }
        if self.http.max_connections == 0 {
            return Err(key("http.max_connections".into(), "must be at least 1".into()));
        }
        if self.http.header_timeout.is_zero() {
            return Err(key("http.header_timeout".into(), "must be longer than 0s".into()));
        }
        crate::digest::schedule::Zone::parse(&self.digest.time_zone).map_err(|m| key("digest.time_zone".into(), m))?;
        crate::digest::schedule::Schedule::parse(&self.digest.schedule, "UTC")
            .map_err(|m| key("digest.schedule".into(), m))?;
        if self.digest.period.is_zero() {
            return Err(key("digest.period".into(), "must be longer than 0s".into()));
        }
        for (i, s) in self.sources.iter().enumerate() {
            if s.poll_interval.is_zero() {
                return Err(key(format!("sources[{i}].poll_interval"), "must be longer than 0s".into()));
            }
        }
        if self.daemon.review_batch == 0 {
            return Err(key("daemon.review_batch".into(), "must be at least 1".into()));
        }
        if let Some(reviews) = self.retention.reviews {
            let human = |d: Duration| humantime::format_duration(d).to_string();
            // A notification being retried, or the digest's two periods, read their reviews:
            // a shorter keep would dead-letter the one and empty the other.
            if reviews <= self.delivery.retry_budget {
                return Err(key(
                    "retention.reviews".into(),
                    format!(
                        "{} is not longer than delivery.retry_budget ({}): a notification still being retried would lose its review",
                        human(reviews),
                        human(self.delivery.retry_budget)
                    ),
                ));
            }
            if self.digest.enabled && reviews < self.digest.period * 2 {
                return Err(key(
                    "retention.reviews".into(),
                    format!(
                        "{} is shorter than two digest periods ({}): the digest compares each period with the one before",
                        human(reviews),
                        human(self.digest.period * 2)
                    ),
                ));
            }
        }
        if self.retention.interval.is_zero() {
            return Err(key("retention.interval".into(), "must be longer than 0s".into()));
        }
        Ok(())
    }
}

/// Replaces every `name_file = "path"` with `name = <the file's content>` (trailing newline
/// removed), anywhere in the tree. Relative paths are read from `credentials` (systemd's
/// `LoadCredential=` directory) when it is set.
fn resolve_secret_files(v: Value, at: &str, credentials: Option<&Path>) -> Result<Value, ConfigError> {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (k.strip_suffix("_file"), &v) {
                    (Some(name), Value::String(p)) if !name.is_empty() => {
                        let path = match credentials {
                            Some(dir) if Path::new(p).is_relative() => dir.join(p),
                            _ => PathBuf::from(p),
                        };
                        let content = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                            key: here,
                            path,
                            source,
                        })?;
                        out.insert(name.to_owned(), Value::String(content.trim_end_matches(['\n', '\r']).to_owned()));
                    }
                    _ => {
                        out.insert(k, resolve_secret_files(v, &here, credentials)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| resolve_secret_files(v, &format!("{at}[{i}]"), credentials))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other),
    }
}
