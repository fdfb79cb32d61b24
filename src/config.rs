//! The configuration: a TOML file, overridden by `HINDSIGHT__SECTION__KEY` environment
//! variables, with secrets read from files (`<secret>_file` keys, relative to systemd's
//! `$CREDENTIALS_DIRECTORY` when set; only the keys that hold secrets, see [`SECRET_KEYS`]).
//! Every setting has a default. Unknown keys and bad values stop start-up with the key's full
//! path in the message: a value of the wrong type stops reading at the first (serde reads the
//! file as types), and then [`Config::validate`] checks every setting and reports all it finds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::notify::Route;
pub use crate::notify::SinkKind;
pub use crate::source::SourceKind;

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
    /// Every problem validation found, one per line, each with its key.
    #[error("{}", .0.iter().map(|i| format!("configuration key {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Invalid>),
}

/// One bad setting: its key, relative to the table that checked it until [`Invalid::under`]
/// prefixes the path of that table (`url` becomes `destinations[2].url`), and what is wrong with
/// it. The message never repeats the value of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid { key: key.into(), message: message.into() }
    }

    /// The same problem seen from the enclosing table at `path`.
    pub fn under(self, path: &str) -> Invalid {
        let key = if self.key.is_empty() { path.to_owned() } else { format!("{path}.{}", self.key) };
        Invalid { key, ..self }
    }

    /// "url: must be https://; to: at least one recipient", for the errors of a sink or source
    /// built outside a configuration file (tests, tools).
    pub fn join(problems: &[Invalid]) -> String {
        problems.iter().map(Invalid::to_string).collect::<Vec<_>>().join("; ")
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem of `problems`, seen from the table at `path`.
pub fn under(problems: Vec<Invalid>, path: &str) -> impl Iterator<Item = Invalid> + '_ {
    problems.into_iter().map(move |p| p.under(path))
}

/// How often a source is polled when its table does not say (`poll_interval`).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Each section's defaults are its `Default` impl, written once: a missing key or section takes
/// the value from there (`serde(default)` on the struct), and config/hindsight.toml documents
/// them (a test holds the two together).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the store and the imported catalog live; see the CLI's `--state-dir` for the default.
    pub state_dir: Option<PathBuf>,
    pub sources: Vec<SourceConfig>,
    pub review: ReviewConfig,
    pub destinations: Vec<DestinationConfig>,
    pub delivery: DeliveryConfig,
    pub http: HttpConfig,
    pub digest: DigestConfig,
    pub daemon: DaemonConfig,
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigestConfig {
    pub enabled: bool,
    /// Cron expression: five fields (minute hour day-of-month month day-of-week) or six
    /// (seconds first).
    pub schedule: String,
    /// IANA time zone of the schedule, or "local" (the machine's).
    pub time_zone: String,
    /// The period a digest covers, up to its scheduled time; compared with the period before.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Entries per ranked list.
    pub top: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            enabled: true,
            schedule: crate::digest::schedule::DEFAULT_CRON.into(),
            time_zone: "local".into(),
            period: Duration::from_secs(7 * 86_400),
            top: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// After SIGTERM: how long in-flight polls and deliveries may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// A worker busy this long on one step counts as stuck: /readyz says so and the systemd
    /// watchdog stops being fed, so systemd restarts the daemon.
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// How often the outbox is checked for retries that came due (new notifications are sent at once).
    #[serde(with = "humantime_serde")]
    pub outbox_interval: Duration,
    /// Reviews made per store transaction batch.
    pub review_batch: usize,
    /// How long a destination may fail every delivery attempt before /readyz reports not
    /// ready (notifications are kept and retried meanwhile; this only makes the outage visible).
    #[serde(with = "humantime_serde")]
    pub delivery_grace: Duration,
    /// Free space the store's disk keeps: below it, the daemon writes nothing more and exits
    /// with an error naming the disk ("64 MiB", "1 GB", or bytes; 0 turns the check off).
    pub store_reserve: bytesize::ByteSize,
    /// The store's page cache; resident memory is about twice this above the idle daemon.
    pub store_cache: bytesize::ByteSize,
    /// This replica's share of the sources when several split them ("i/n" or "ordinal/n");
    /// none: every source is polled here.
    pub shard: Option<crate::daemon::shard::ShardSetting>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(15 * 60),
            outbox_interval: Duration::from_secs(5),
            review_batch: 100,
            delivery_grace: Duration::from_secs(10 * 60),
            store_reserve: bytesize::ByteSize(crate::store::DEFAULT_RESERVE),
            store_cache: bytesize::ByteSize(crate::store::CACHE_BYTES),
            shard: None,
        }
    }
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
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Reviews, their digest summaries and the incident snapshots they were made from, from
    /// when the review was made.
    #[serde(deserialize_with = "keep")]
    pub reviews: Option<Duration>,
    /// Delivered notifications, from their delivery.
    #[serde(deserialize_with = "keep")]
    pub notifications: Option<Duration>,
    /// Dead-lettered notifications, from when they were given up.
    #[serde(deserialize_with = "keep")]
    pub dead_letters: Option<Duration>,
    /// How often the daemon looks for what is past its keep.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            reviews: Some(Duration::from_secs(400 * 86_400)),
            notifications: Some(Duration::from_secs(30 * 86_400)),
            dead_letters: None,
            interval: Duration::from_secs(3600),
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

/// The typed config of one kind of source or sink, from its table's own keys (the shared ones
/// taken out). They are deserialized out of sight of the outer path, so the message names the key.
pub(crate) fn component<T: serde::de::DeserializeOwned>(table: serde_json::Map<String, Value>) -> Result<T, String> {
    serde_path_to_error::deserialize(Value::Object(table)).map_err(|e| {
        let path = e.path().to_string();
        // serde's type errors quote the value ("invalid type: integer `12345`"): for a secret,
        // say what is wrong without it.
        if let Some(serde_path_to_error::Segment::Map { key }) = e.path().iter().next_back()
            && is_secret_key(key)
        {
            return format!("{path}: must be a string (the value is not shown: the key holds a secret)");
        }
        if path == "." { e.into_inner().to_string() } else { format!("{path}: {}", e.into_inner()) }
    })
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = serde_json::Map::deserialize(d)?;
        let (kind, mut table) = split_table::<D::Error>(table, SourceKind::KINDS)?;
        let poll_interval = match take::<String, D::Error>(&mut table, "poll_interval")? {
            Some(s) => {
                humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("poll_interval: {e}")))?
            }
            None => DEFAULT_POLL_INTERVAL,
        };
        let kind = SourceKind::from_table(&kind, table).map_err(serde::de::Error::custom)?;
        Ok(SourceConfig { kind, poll_interval })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// An alert raised this long after its activity began is a late detection.
    #[serde(with = "humantime_serde")]
    pub late_detection: Duration,
    /// At most this many attribution candidates, of those over the evidence bar.
    pub attribution_top: usize,
    /// Detection inventory: Navigator layers, Sigma or Elastic rule folders, ID lists.
    pub inventory: Vec<PathBuf>,
    /// Folders of the site's own hunting queries (Azure-Sentinel YAML), added to the embedded
    /// hunt library.
    pub hunt_folders: Vec<PathBuf>,
    /// Alerts reviewed per incident: the first ones, in the order received (the snapshot is
    /// stored whole).
    pub max_alerts: usize,
    /// Evidence items reviewed per alert.
    pub max_evidence: usize,
    /// A high-severity alert not acted on within this long is listed as unattended.
    #[serde(with = "humantime_serde")]
    pub unattended_high: Duration,
    /// A medium-severity alert not acted on within this long is listed as unattended.
    #[serde(with = "humantime_serde")]
    pub unattended_medium: Duration,
    /// Owners and due dates of follow-ups.
    pub follow_ups: FollowUpConfig,
    /// The organisation's Microsoft 365 licence tier ("E3" or "E5", any case): only the
    /// controls available at it are listed. Unset: every control, whatever its tier.
    pub licence: Option<String>,
    /// Where the full review is published (a wiki, a ticket view, a file share served over
    /// https), with `{source}`, `{incident}` and `{revision}` filled in: the "full review" link of
    /// the e-mail, the Teams card and the Slack message. Unset: no such link.
    pub link: Option<String>,
}

/// `[review.follow_ups]`: who owns a follow-up, by its area, and when it is due.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowUpConfig {
    /// Area (`identity`, `endpoint`, `email`, `cloud`, `detection`, `soc`, `legal`) or
    /// `default` → a team name or an address.
    pub owners: std::collections::BTreeMap<String, String>,
    /// Days from the incident's resolution to the due date, by priority.
    pub due_days_high: u32,
    pub due_days_medium: u32,
    pub due_days_low: u32,
}

impl Default for FollowUpConfig {
    fn default() -> Self {
        FollowUpConfig { owners: Default::default(), due_days_high: 7, due_days_medium: 30, due_days_low: 90 }
    }
}

/// The areas follow-ups are sorted into, and `default`.
pub const FOLLOW_UP_AREAS: [&str; 8] =
    ["identity", "endpoint", "email", "cloud", "detection", "soc", "legal", "default"];

impl Default for ReviewConfig {
    fn default() -> Self {
        let limits = crate::model::Limits::DEFAULT;
        ReviewConfig {
            late_detection: Duration::from_secs(3600),
            attribution_top: 5,
            inventory: vec![],
            hunt_folders: vec![],
            max_alerts: limits.max_alerts,
            max_evidence: limits.max_evidence,
            unattended_high: Duration::from_secs(3600),
            unattended_medium: Duration::from_secs(4 * 3600),
            follow_ups: FollowUpConfig::default(),
            licence: None,
            link: None,
        }
    }
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
        let (kind, mut table) = split_table::<D::Error>(table, SinkKind::KINDS)?;
        let name =
            take::<String, D::Error>(&mut table, "name")?.ok_or_else(|| serde::de::Error::custom("name: missing"))?;
        let route = take::<Route, D::Error>(&mut table, "route")?.unwrap_or_default();
        let sink = SinkKind::from_table(&kind, table).map_err(serde::de::Error::custom)?;
        Ok(DestinationConfig { name, sink, route })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub concurrency: usize,
    /// How long a notification is retried before it is dead-lettered.
    #[serde(with = "humantime_serde")]
    pub retry_budget: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { concurrency: 16, retry_budget: crate::outbox::RetryPolicy::default().budget }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of /healthz, /readyz and /metrics; loopback by default; "" turns the listener off.
    pub listen: String,
    /// Connections served at once; one over the cap is closed as soon as it is accepted. Each
    /// holds a file descriptor, which polling, delivery and the store need too: the daemon
    /// lowers the cap to a quarter of its open-file limit if it is set higher.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may wait for its next request, before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Who sees the details of /readyz (store path, error texts of sources and destinations):
    /// `loopback` (default: clients on this host), `all`, or `none`. Everyone gets the status
    /// code and each check's name and verdict; /readyz has no authentication and the container
    /// and Kubernetes set-ups listen on 0.0.0.0.
    pub readyz_details: ReadyzDetails,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyzDetails {
    #[default]
    Loopback,
    All,
    None,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9187".into(),
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            readyz_details: ReadyzDetails::Loopback,
        }
    }
}

impl Config {
    /// Reads `path` (if given), applies `HINDSIGHT__…` variables from `env`, resolves
    /// `<secret>_file` keys, and validates. `env` is passed in so tests need not touch the process's.
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
        let raw: Value = builder.build().and_then(|c| c.try_deserialize()).map_err(|e| {
            // A syntax error quotes the offending line, which may be `client_secret = "…"`.
            let text = path.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
            ConfigError::Load(redact(&e.to_string(), &secrets_in_text(&text)))
        })?;
        let credentials = env.iter().find(|(k, _)| k == "CREDENTIALS_DIRECTORY").map(|(_, v)| PathBuf::from(v));
        let resolved = resolve_secret_files(raw, "", credentials.as_deref())?;
        // Every secret value as written, so that no message below can repeat one (a value of
        // the wrong type is quoted by serde; a future check might quote one by mistake).
        let mut secrets = Vec::new();
        secret_values(&resolved, &mut secrets);
        let mut config: Config = serde_path_to_error::deserialize(resolved).map_err(|e| ConfigError::Key {
            key: e.path().to_string(),
            message: redact(&e.into_inner().to_string(), &secrets),
        })?;
        config.fill_from_environment(env);
        config.validate().map_err(|e| match e {
            ConfigError::Invalid(problems) => ConfigError::Invalid(
                problems.into_iter().map(|p| Invalid { message: redact(&p.message, &secrets), ..p }).collect(),
            ),
            other => other,
        })?;
        Ok(config)
    }

    /// What a Kubernetes workload identity's pod was given (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`) where a `workload_identity` table
    /// left it out.
    fn fill_from_environment(&mut self, env: &[(String, String)]) {
        for s in &mut self.sources {
            if let crate::source::SourceKind::Graph(g) = &mut s.kind {
                g.fill_from_environment(env);
            }
        }
        for d in &mut self.destinations {
            d.sink.fill_from_environment(env);
        }
    }

    /// Every problem with the settings, found in one pass and each with its full key. Pure: no
    /// file is read and no network reached (a sink's `ca_file` or a source's folder are looked
    /// at when the pipeline is built, and by `hindsight check`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }

    fn problems(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            out.extend(under(s.kind.validate(), &at));
            let name = s.kind.name();
            if !names.insert(name) {
                out.push(Invalid::new(
                    format!("{at}.name"),
                    format!("{name:?} is used twice; each source needs its own"),
                ));
            }
            if s.poll_interval.is_zero() {
                out.push(Invalid::new(format!("{at}.poll_interval"), "must be longer than 0s"));
            }
        }
        let mut dests = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let at = format!("destinations[{i}]");
            if !dests.insert(d.name.as_str()) {
                out.push(Invalid::new(format!("{at}.name"), format!("{:?} is used twice", d.name)));
            }
            if d.name.starts_with(crate::notify::defender::PREFIX) {
                out.push(Invalid::new(
                    format!("{at}.name"),
                    format!(
                        "{:?}: names starting with {:?} are the write-backs of Graph sources (write_back = true)",
                        d.name,
                        crate::notify::defender::PREFIX
                    ),
                ));
            }
            out.extend(under(d.sink.validate(), &at));
            out.extend(under(d.route.validate(), &format!("{at}.route")));
        }
        if self.delivery.concurrency == 0 {
            out.push(Invalid::new("delivery.concurrency", "must be at least 1"));
        }
        if !self.http.listen.is_empty()
            && let Err(e) = self.http.listen.parse::<std::net::SocketAddr>()
        {
            out.push(Invalid::new("http.listen", format!("{:?}: {e}", self.http.listen)));
        }
        if let Err(m) = crate::digest::schedule::Zone::parse(&self.digest.time_zone) {
            out.push(Invalid::new("digest.time_zone", m));
        }
        if let Err(m) = crate::digest::schedule::Schedule::parse(&self.digest.schedule, "UTC") {
            out.push(Invalid::new("digest.schedule", m));
        }
        if self.http.max_connections == 0 {
            out.push(Invalid::new("http.max_connections", "must be at least 1"));
        }
        if self.http.header_timeout.is_zero() {
            out.push(Invalid::new("http.header_timeout", "must be longer than 0s"));
        }
        if self.digest.period.is_zero() {
            out.push(Invalid::new("digest.period", "must be longer than 0s"));
        }
        if self.review.max_alerts == 0 {
            out.push(Invalid::new("review.max_alerts", "must be at least 1"));
        }
        // At 0s every alert not acted on in the same second would be listed: a typo, not a target.
        for (key, d) in [
            ("review.unattended_high", self.review.unattended_high),
            ("review.unattended_medium", self.review.unattended_medium),
        ] {
            if d.is_zero() {
                out.push(Invalid::new(key, "must be longer than 0s"));
            }
        }
        for area in self.review.follow_ups.owners.keys() {
            if !FOLLOW_UP_AREAS.contains(&area.as_str()) {
                out.push(Invalid::new(
                    format!("review.follow_ups.owners.{area}"),
                    format!("not an area; the areas are {}", FOLLOW_UP_AREAS.join(", ")),
                ));
            }
        }
        if let Some(Err(m)) = self.review.licence.as_deref().map(crate::controls::Licence::parse) {
            out.push(Invalid::new("review.licence", m));
        }
        if let Some(Err(m)) = self.review.link.as_deref().map(crate::review::ReviewLink::parse) {
            out.push(Invalid::new("review.link", m));
        }
        if self.daemon.review_batch == 0 {
            out.push(Invalid::new("daemon.review_batch", "must be at least 1"));
        }
        out.extend(self.retention_problems());
        out
    }

    fn retention_problems(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if let Some(reviews) = self.retention.reviews {
            let human = |d: Duration| humantime::format_duration(d).to_string();
            // A notification being retried, or the digest's two periods, read their reviews:
            // a shorter keep would dead-letter the one and empty the other.
            if reviews <= self.delivery.retry_budget {
                out.push(Invalid::new(
                    "retention.reviews",
                    format!(
                        "{} is not longer than delivery.retry_budget ({}): a notification still being retried would lose its review",
                        human(reviews),
                        human(self.delivery.retry_budget)
                    ),
                ));
            }
            if self.digest.enabled && reviews < self.digest.period * 2 {
                out.push(Invalid::new(
                    "retention.reviews",
                    format!(
                        "{} is shorter than two digest periods ({}): the digest compares each period with the one before",
                        human(reviews),
                        human(self.digest.period * 2)
                    ),
                ));
            }
        }
        if self.retention.interval.is_zero() {
            out.push(Invalid::new("retention.interval", "must be longer than 0s"));
        }
        out
    }
}

/// The keys that hold secrets, gathered from the components that declare them. Only these take
/// the `<key>_file = "path"` form: other keys that end in `_file` (`ca_file`) are paths the
/// component reads itself, not secrets to inline.
pub const SECRET_KEYS: [&[&[&str]]; 2] = [SourceKind::SECRET_KEYS, SinkKind::SECRET_KEYS];

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().copied().flatten().any(|keys| keys.contains(&key))
}

/// Secrets shorter than this are not searched for in messages: replacing every "1" or "ab"
/// would garble the message and hide little. Such values are kept out structurally instead
/// (type errors on secret keys never quote the value, see [`component`]).
const MIN_REDACTED_LEN: usize = 4;

/// The values of every secret key in the tree, as text (a number written for a secret too).
fn secret_values(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if is_secret_key(k) => out.push(s.clone()),
                    Value::Number(_) | Value::Bool(_) if is_secret_key(k) => out.push(v.to_string()),
                    _ => secret_values(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| secret_values(v, out)),
        _ => {}
    }
}

/// Where a secret key is assigned on `line` (`client_secret = `, `password=`, also inside an
/// inline table or quoted): the byte offset just after its `=`.
fn secret_assignment(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    for name in SECRET_KEYS.iter().copied().flatten().flat_map(|keys| keys.iter()) {
        let mut from = 0;
        while let Some(i) = line[from..].find(name).map(|i| i + from) {
            from = i + name.len();
            // A whole key (`url`, not `graph_url` or `url_file`), possibly quoted.
            let before_ok =
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'-');
            let rest = line[from..].trim_start_matches(['"', '\'']).trim_start();
            if before_ok && rest.starts_with('=') && !rest.starts_with("==") {
                return Some(line.len() - rest.len() + 1);
            }
        }
    }
    None
}

/// The values of secret keys in a configuration file that may not parse: what follows each
/// secret's `=` on its line, and the words in it.
fn secrets_in_text(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(at) = secret_assignment(line) {
            let value = line[at..].trim();
            out.push(value.to_owned());
            out.extend(
                value
                    .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '{' | '}' | '[' | ']'))
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// The keys of the configuration file at `path` that hold a secret inline (not as
/// `<key>_file`), as full keys (`destinations[0].signing_secret`); never their values.
pub fn inline_secret_keys(path: &Path) -> Vec<String> {
    fn walk(v: &toml::Value, at: &str, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                    let is_secret = SECRET_KEYS.iter().copied().flatten().any(|keys| keys.contains(&k.as_str()));
                    if is_secret && v.as_str().is_some_and(|s| !s.is_empty()) {
                        out.push(here);
                    } else {
                        walk(v, &here, out);
                    }
                }
            }
            toml::Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{at}[{i}]"), out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(v) = std::fs::read_to_string(path).ok().and_then(|t| t.parse::<toml::Table>().ok()) {
        walk(&toml::Value::Table(v), "", &mut out);
    }
    out
}

/// `message` with every line that assigns a secret key cut after its `=`, and every value of
/// `secrets` (at least [`MIN_REDACTED_LEN`] long) replaced by `[redacted]`.
fn redact(message: &str, secrets: &[String]) -> String {
    let mut out: String = message
        .split_inclusive('\n')
        .map(|line| match secret_assignment(line) {
            Some(at) => {
                let end = if line.ends_with('\n') { "\n" } else { "" };
                format!("{} [redacted]{end}", &line[..at])
            }
            None => line.to_owned(),
        })
        .collect();
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| s.chars().count() >= MIN_REDACTED_LEN).collect();
    // Longest first, so a value is replaced whole before any word of it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(s.as_str(), "[redacted]");
    }
    out
}

/// A warning when the configuration file at `path` can be read by its group or by others and
/// holds a secret inline: anyone on the machine could read the tenant's or the receiver's
/// credentials. None when it is private, or holds no secret inline.
pub fn exposed_secrets(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o044 == 0 {
        return None;
    }
    let keys = inline_secret_keys(path);
    if keys.is_empty() {
        return None;
    }
    let who = if mode & 0o004 != 0 { "readable by others" } else { "readable by its group" };
    Some(format!(
        "{} is {who} (mode {:o}) and holds secrets inline ({}): `chmod 600` it, or move them to `<key>_file` files or systemd credentials",
        path.display(),
        mode & 0o777,
        keys.join(", ")
    ))
}

/// A private key file readable or writable by others is refused: anyone on the machine could
/// sign in as the app and read every incident of the tenant.
fn key_file_private(path: &Path, key: &str) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o007 != 0 {
                return Err(ConfigError::Invalid(vec![Invalid::new(
                    key,
                    format!(
                        "{} holds a private key and is readable by others (mode {mode:o}): `chmod 600` it (on Kubernetes, defaultMode: 0400 on the secret volume)",
                        path.display()
                    ),
                )]));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, key);
    Ok(())
}

fn secret_key(file_key: &str) -> Option<&str> {
    let name = file_key.strip_suffix("_file")?;
    SECRET_KEYS.iter().copied().flatten().any(|keys| keys.contains(&name)).then_some(name)
}

/// Replaces every `<secret>_file = "path"` with `<secret> = <the file's content>` (trailing
/// newline removed), anywhere in the tree, for the keys of [`SECRET_KEYS`]. Relative paths are
/// read from `credentials` (systemd's `LoadCredential=` directory) when it is set.
fn resolve_secret_files(v: Value, at: &str, credentials: Option<&Path>) -> Result<Value, ConfigError> {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (secret_key(&k), &v) {
                    (Some(name), Value::String(p)) => {
                        let path = match credentials {
                            Some(dir) if Path::new(p).is_relative() => dir.join(p),
                            _ => PathBuf::from(p),
                        };
                        let content = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                            key: here.clone(),
                            path: path.clone(),
                            source,
                        })?;
                        if name == "private_key" || (name == "certificate" && content.contains("PRIVATE KEY")) {
                            key_file_private(&path, &here)?;
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lines_and_values_are_redacted() {
        assert_eq!(secret_assignment("client_secret = \"x\""), Some(15));
        assert_eq!(secret_assignment("oauth = { tenant_id = \"t\", client_secret = 5 }"), Some(42));
        assert_eq!(secret_assignment("\"password\"=1"), Some(11));
        assert_eq!(secret_assignment("graph_url = \"http://x\""), None);
        assert_eq!(secret_assignment("url_file = \"soc-flow-url\""), None);
        assert_eq!(secret_assignment("client_secret_file = \"name\""), None);
        let msg = "TOML parse error at line 6\n6 | client_secret = \"hunter2-xyz\" oops\n  |  ^\nin file";
        let r = redact(msg, &secrets_in_text("client_secret = \"hunter2-xyz\" oops\n"));
        assert_eq!(r, "TOML parse error at line 6\n6 | client_secret = [redacted]\n  |  ^\nin file");
        assert_eq!(redact("integer `123456789`", &["123456789".into()]), "integer `[redacted]`");
        assert_eq!(redact("sources[1]", &["1".into()]), "sources[1]", "too short to look for");
    }

    #[test]
    fn the_licence_is_read_case_insensitively_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[review]\nlicence = \"e3\"\n").unwrap();
        let c = Config::load(Some(&path), &[]).unwrap();
        assert_eq!(
            c.review.licence.as_deref().map(crate::controls::Licence::parse),
            Some(Ok(crate::controls::Licence::E3))
        );
        std::fs::write(&path, "[review]\nlicence = \"E7\"\n").unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(e.contains("review.licence") && e.contains("E3, E5"), "{e}");
    }

    #[test]
    fn unattended_thresholds_read_as_durations_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(&path, "[review]\nunattended_high = \"30m\"\nunattended_medium = \"2h 30m\"\n").unwrap();
        let c = Config::load(Some(&path), &[]).unwrap();
        assert_eq!((c.review.unattended_high.as_secs(), c.review.unattended_medium.as_secs()), (1800, 9000));
        let defaults = Config::load(None, &[]).unwrap();
        assert_eq!(
            (defaults.review.unattended_high.as_secs(), defaults.review.unattended_medium.as_secs()),
            (3600, 14_400)
        );
        std::fs::write(&path, "[review]\nunattended_high = \"0s\"\n").unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(e.contains("review.unattended_high: must be longer than 0s"), "{e}");
        std::fs::write(&path, "[review]\nunattended_medium = \"soon\"\n").unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(e.contains("review.unattended_medium"), "{e}");
    }

    #[test]
    fn follow_up_owners_and_due_days_are_read_and_areas_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(
            &path,
            "[review.follow_ups]\nowners = { identity = \"iam@contoso.com\", default = \"soc@contoso.com\" }\ndue_days_high = 3\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &[]).unwrap();
        assert_eq!(c.review.follow_ups.owners["identity"], "iam@contoso.com");
        assert_eq!((c.review.follow_ups.due_days_high, c.review.follow_ups.due_days_medium), (3, 30));
        std::fs::write(&path, "[review.follow_ups]\nowners = { identiy = \"iam@contoso.com\" }\n").unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(e.contains("review.follow_ups.owners.identiy: not an area"), "{e}");
    }
}
