//! Command-line definitions shared by the subcommands, one module per subcommand group
//! (the mini-redis `cmd/` pattern): the enum parses and delegates, the modules do the work.

pub mod catalog;
pub mod outbox;
pub mod review;

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
    #[arg(long, global = true, env = "HINDSIGHT_LOG", default_value = "warn", value_name = "FILTER")]
    pub log: String,
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
    /// Review incident files offline and print the reviews (no daemon, no tenant).
    Review(review::ReviewArgs),
    /// List, show, retry and purge notifications in the outbox.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
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

pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log).unwrap_or_else(|e| {
        eprintln!("hindsight: warning: invalid --log filter {:?} ({e}); using \"warn\"", global.log);
        tracing_subscriber::EnvFilter::new("warn")
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
