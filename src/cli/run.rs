//! `hindsight run`: the daemon. Loads the configuration, then hands over to [`crate::daemon`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::GlobalArgs;
use crate::daemon::{Options, run};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (see config/hindsight.toml); HINDSIGHT__SECTION__KEY variables
    /// override its keys.
    #[arg(long, short, env = "HINDSIGHT_CONFIG", value_name = "FILE", default_value = super::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// One pass of everything — poll every source, review, send what is due — then exit.
    #[arg(long)]
    pub once: bool,
}

pub fn run_daemon(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(&args.config)?;
    let state_dir = super::state_dir_for(global, &cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut opts = Options::new(Arc::new(crate::clock::SystemClock));
    opts.once = args.once;
    runtime.block_on(run(cfg, &state_dir, opts))?;
    // Workers blocked in a system call (a stuck fsync) must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}
