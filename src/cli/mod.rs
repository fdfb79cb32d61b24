//! Command-line definitions shared by the subcommands, one module per subcommand group
//! (the mini-redis `cmd/` pattern): the enum parses and delegates, the modules do the work.

/// `print!` that returns the write's `io::Result` (see [`write_out`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}

/// `println!` that returns the write's `io::Result` (see [`write_out`]).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

pub mod attribute;
pub mod catalog;
pub mod check;
pub mod digest;
pub mod hunts;
pub mod inventory;
pub mod outbox;
pub mod queue;
pub mod review;
pub mod run;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hindsight",
    version,
    about = "Automatic post-incident review of Defender XDR incidents against MITRE ATT&CK"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory for Hindsight's state (store, imported catalog). Defaults to systemd's
    /// $STATE_DIRECTORY, else $XDG_STATE_HOME/hindsight, else ~/.local/state/hindsight.
    #[arg(long, global = true, env = "HINDSIGHT_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log filter (tracing syntax, e.g. `info` or `hindsight=debug`); logs go to stderr.
    /// Default: `info` for `run`, `warn` for the other commands.
    #[arg(long, global = true, env = "HINDSIGHT_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Log format: `auto` (journald's under systemd, else text), `text`, `json` (one object
    /// per line) or `journald` (syslog priority prefixes, no timestamps: journald adds its own).
    #[arg(long, global = true, env = "HINDSIGHT_LOG_FORMAT", value_enum, default_value_t, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Auto,
    Text,
    Json,
    Journald,
}

impl GlobalArgs {
    pub fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        let env_dir = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        // systemd may pass several directories separated by ':'; the first is ours.
        if let Some(dirs) = std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
            let first = dirs.to_string_lossy().split(':').next().unwrap_or_default().to_owned();
            return Ok(PathBuf::from(first));
        }
        if let Some(xdg) = env_dir("XDG_STATE_HOME") {
            return Ok(xdg.join("hindsight"));
        }
        match env_dir("HOME") {
            Some(home) => Ok(home.join(".local/state/hindsight")),
            None => {
                anyhow::bail!("no state directory: pass --state-dir or set HINDSIGHT_STATE_DIR")
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, look up, import and compare MITRE ATT&CK catalogs.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// List the hunting queries a review can propose, and show them by technique or ID.
    #[command(subcommand)]
    Hunts(hunts::HuntsCommand),
    /// Review incident files offline and print the reviews (no daemon, no tenant).
    Review(review::ReviewArgs),
    /// Rank the groups and campaigns an incident file resembles: the full ranking, without the
    /// review's evidence bar.
    Attribute(attribute::AttributeArgs),
    /// List, show, retry and purge notifications in the outbox.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// List the review queue, and the incidents that could not be reviewed; queue them again.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Run the daemon: poll the sources, review resolved incidents, send reviews and digests.
    Run(run::RunArgs),
    /// Read the tenant's deployed detection rules into inventory files.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// Validate the configuration and try every endpoint without sending anything.
    Check(check::CheckArgs),
    /// Print the digest of a period from the stored reviews, or send it.
    Digest(digest::DigestArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) or the man page.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// A shell, or `man` for the man page (roff).
    #[arg(value_name = "SHELL|man")]
    pub target: String,
}

/// Prints completions for a shell, or the man page.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<std::process::ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Written to a buffer first: clap_complete panics when its writer fails (a closed pipe).
    let mut out = Vec::new();
    if args.target == "man" {
        clap_mangen::Man::new(cmd).render(&mut out)?;
    } else {
        let shell: clap_complete::Shell = args.target.parse().map_err(|_| {
            anyhow::anyhow!("{:?}: not a shell (bash, zsh, fish, elvish, powershell) or \"man\"", args.target)
        })?;
        clap_complete::generate(shell, &mut cmd, "hindsight", &mut out);
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(&out)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Where `run` and `check` look for the configuration without `--config` or `HINDSIGHT_CONFIG`.
pub const DEFAULT_CONFIG: &str = "/etc/hindsight/hindsight.toml";

/// Loads the configuration with the process's environment (overrides, credentials directory).
pub fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    if !path.is_file() {
        anyhow::bail!("no configuration file at {} (pass --config FILE or set HINDSIGHT_CONFIG)", path.display());
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = crate::config::Config::load(Some(path), &env)?;
    if let Some(warning) = crate::config::exposed_secrets(path) {
        tracing::warn!("{}", crate::text::printable(&warning));
    }
    Ok(config)
}

/// `--state-dir` (or `HINDSIGHT_STATE_DIR`) first, then the configuration's `state_dir`, then
/// the defaults of [`GlobalArgs::state_dir`].
pub fn state_dir_for(global: &GlobalArgs, cfg: &crate::config::Config) -> anyhow::Result<PathBuf> {
    match (&global.state_dir, &cfg.state_dir) {
        (Some(d), _) | (None, Some(d)) => Ok(d.clone()),
        (None, None) => global.state_dir(),
    }
}

/// Output format of the commands that print something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable by a person; may change between versions.
    #[default]
    Text,
    /// Stable, documented fields (docs/cli-json.md) for scripts.
    Json,
}

/// Logs to stderr. `default` is the filter when `--log` is not given.
pub fn init_logging(global: &GlobalArgs, default: &str) {
    let wanted = global.log.as_deref().unwrap_or(default);
    let filter = tracing_subscriber::EnvFilter::try_new(wanted).unwrap_or_else(|e| {
        eprintln!("hindsight: warning: invalid --log filter {wanted:?} ({e}); using \"{default}\"");
        tracing_subscriber::EnvFilter::new(default)
    });
    let format = match global.log_format {
        // systemd connects stderr to the journal and says so in $JOURNAL_STREAM.
        LogFormat::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    };
    use std::io::IsTerminal;
    let colour = format == LogFormat::Text && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour);
    // Logged text comes from outside (file names, incident data, remote error texts): every
    // format keeps one event on one line with no raw control or bidi character (log_fields).
    match format {
        LogFormat::Json => builder
            .with_writer(log_fields::BidiEscaping(std::io::stderr))
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Journald => builder
            .with_writer(std::io::stderr)
            .fmt_fields(log_fields::EscapedFields)
            .event_format(journald::Journald)
            .init(),
        _ => builder.with_writer(std::io::stderr).fmt_fields(log_fields::EscapedFields).init(),
    }
}

mod journald;
mod log_fields;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Writes to stdout and returns the error instead of panicking as `print!` does. A reader that
/// went away (`hindsight outbox list | head`) gives `BrokenPipe`, which `main` turns into a quiet
/// exit: every command prints through here ([`out!`], [`outln!`]).
pub fn write_out(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write;
    std::io::stdout().lock().write_fmt(args)
}

/// Whether `err` is, or was caused by, a write to a pipe whose reader has gone.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}
