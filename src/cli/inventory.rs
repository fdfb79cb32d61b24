//! `hindsight inventory fetch`: the deployed Defender custom detection rules of each Graph
//! source, read from the tenant and written as inventory files (`review.inventory` reads
//! them; disabled and auto-disabled rules do not count as coverage): to look at what the daemon
//! reads with `detection_rules = true`, or to use the rules where the daemon does not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::GlobalArgs;
use crate::source::SourceKind;
use crate::text::printable;

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Read each Graph source's custom detection rules (CustomDetection.Read.All) into a folder.
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[arg(long, short, env = "HINDSIGHT_CONFIG", value_name = "FILE", default_value = super::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The folder to write `<source>.defender-detection-rules.json` into (created if missing);
    /// list it in `review.inventory`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only these Graph sources; default all.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
}

pub fn run(_global: &GlobalArgs, cmd: InventoryCommand) -> anyhow::Result<ExitCode> {
    let InventoryCommand::Fetch(args) = cmd;
    let cfg = super::load_config(&args.config)?;
    let graphs: Vec<_> = cfg
        .sources
        .iter()
        .filter_map(|s| match &s.kind {
            SourceKind::Graph(g) if args.sources.is_empty() || args.sources.contains(&g.name) => Some(g.as_ref()),
            _ => None,
        })
        .collect();
    if graphs.is_empty() {
        anyhow::bail!(
            "{}: no Graph source{}",
            args.config.display(),
            if args.sources.is_empty() { "" } else { " of that name" }
        );
    }
    std::fs::create_dir_all(&args.out).map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut failed = 0;
    for g in graphs {
        let name = printable(&g.name).into_owned();
        let result = runtime.block_on(async {
            let mut source = crate::source::graph::GraphSource::new(g.clone())?;
            source.detection_rules().await
        });
        let rules = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("source {name}: {}", printable(&e.to_string()));
                failed += 1;
                continue;
            }
        };
        let off = rules.iter().filter(|r| matches!(r["status"].as_str(), Some("disabled" | "autoDisabled"))).count();
        // The shape of Graph's own list response, with when it was read: the inventory reads it
        // as it reads an export made by hand.
        let body = serde_json::json!({"read_at": chrono::Utc::now(), "source": g.name, "value": rules});
        // The file name keeps to the source name's safe characters: a name is free text.
        let safe: String =
            g.name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let path = args.out.join(format!("{safe}.defender-detection-rules.json"));
        write_private(&path, &serde_json::to_vec_pretty(&body)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        println!("source {name}: {} custom detection rules ({off} switched off) → {}", rules.len(), path.display());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Writes `bytes` so that `path` holds the old content or all of the new, readable by this user
/// only (the temporary file's 0600 is kept): the rules' queries show what the SOC looks for.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}
