//! The `hindsight` command line: parses arguments and hands over to the library. Each
//! subcommand group lives in its own module under `src/cli/`.

use std::process::ExitCode;

use clap::Parser;
use hindsight::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: a review allocates hundreds of small strings, and glibc
/// spent a third of the review's time in malloc and free (docs/decisions/0002).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before anything is allocated to speak of.
    hindsight::memory::configure();
    let cli = Cli::parse();
    hindsight::install_crypto_provider();
    let default_log = if matches!(cli.command, Command::Run(_)) { "info" } else { "warn" };
    hindsight::cli::init_logging(&cli.global, default_log);
    let result = match cli.command {
        Command::Catalog(cmd) => hindsight::cli::catalog::run(&cli.global, cmd),
        Command::Hunts(cmd) => hindsight::cli::hunts::run(cmd),
        Command::Review(args) => hindsight::cli::review::run(&cli.global, args),
        Command::Attribute(args) => hindsight::cli::attribute::run(&cli.global, args),
        Command::Outbox(cmd) => hindsight::cli::outbox::run(&cli.global, cmd),
        Command::Queue(cmd) => hindsight::cli::queue::run(&cli.global, cmd),
        Command::Run(args) => hindsight::cli::run::run_daemon(&cli.global, args),
        Command::Check(args) => hindsight::cli::check::run(&cli.global, args),
        Command::Inventory(cmd) => hindsight::cli::inventory::run(&cli.global, cmd),
        Command::Digest(args) => hindsight::cli::digest::run(&cli.global, args),
        Command::Completions(args) => hindsight::cli::completions(&args),
    };
    match result {
        Ok(code) => code,
        // The reader of our output went away (`| head`): what it wanted it has; like a
        // command killed by SIGPIPE, nothing to say, but not a failure of ours either.
        Err(err) if hindsight::cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what we were doing: why". It
            // can name files and quote incident data: escaped, so it stays one line.
            eprintln!("hindsight: error: {}", hindsight::text::printable(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}
