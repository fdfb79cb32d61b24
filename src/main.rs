//! The `hindsight` command line: parses arguments and hands over to the library. Each
//! subcommand group lives in its own module under `src/cli/`.

use std::process::ExitCode;

use clap::Parser;
use hindsight::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    hindsight::install_crypto_provider();
    hindsight::cli::init_logging(&cli.global);
    let result = match cli.command {
        Command::Catalog(cmd) => hindsight::cli::catalog::run(&cli.global, cmd),
        Command::Review(args) => hindsight::cli::review::run(&cli.global, args),
        Command::Outbox(cmd) => hindsight::cli::outbox::run(&cli.global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what we were doing: why".
            eprintln!("hindsight: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
