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

/// mimalloc's option `purge_delay` (the 16th in `mi_option_e`, mimalloc.h of v3, the version the
/// `mimalloc` crate builds): how long freed memory stays resident before it goes back to the
/// system. The `libmimalloc-sys` bindings do not name it; a unit test checks the number.
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once instead of after mimalloc's default second: a
/// daemon that reviews an incident every few seconds otherwise always holds the last second's
/// garbage on top of what it uses (5 to 7 MiB of the soak's RSS, BENCHMARKS.md). An operator's
/// own `MIMALLOC_PURGE_DELAY` wins.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` only stores the value in mimalloc's option table (an atomic
        // store); mimalloc reads the option each time it decides to purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

fn main() -> ExitCode {
    // No transparent huge pages for this process: mimalloc asks for them on its arenas, and a
    // 2 MiB page is resident as a whole however little of it is used. With a thousand sources
    // the idle daemon held 92 MiB with them and 51 MiB without (docs/decisions/0002).
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    #[cfg(feature = "mimalloc")]
    return_freed_memory_at_once();
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

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_named() {
        // mimalloc v3 documents purge_delay's default as 1000 ms; no other option has it. If a
        // new mimalloc renumbers its options, this fails instead of `main` setting another one.
        // SAFETY: reads mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        let expected = std::env::var("MIMALLOC_PURGE_DELAY").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        assert_eq!(delay, expected);
    }
}
