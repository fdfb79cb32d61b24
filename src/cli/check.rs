//! `hindsight check`: validates the configuration and tries every endpoint — signs in to each
//! Graph tenant and reads one incident, opens each SMTP session up to authentication, reaches
//! each webhook receiver with a HEAD request — without storing or delivering anything. One line
//! per item, `ok` or `failed` with the reason; exit status 1 if anything failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;
use crate::config::ConfigError;
use crate::daemon::pipeline::Pipeline;
use crate::text::printable;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long, short, env = "HINDSIGHT_CONFIG", value_name = "FILE", default_value = super::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Validate only; do not contact any endpoint.
    #[arg(long)]
    pub offline: bool,
}

struct Report {
    failed: usize,
    /// The first failed write to stdout (a reader gone: `check | head`); later lines are not
    /// written and [`Report::done`] returns it.
    broken: Option<std::io::Error>,
}

impl Report {
    fn line(&mut self, what: &str, result: Result<String, String>) {
        // Details and reasons quote remote services and file names: escaped, one item a line.
        let line = match result {
            Ok(detail) => format!("ok      {what:<28} {}", printable(&detail)),
            Err(reason) => {
                self.failed += 1;
                format!("failed  {what:<28} {}", printable(&reason))
            }
        };
        self.write(&line);
    }

    fn write(&mut self, line: &str) {
        if self.broken.is_none()
            && let Err(e) = outln!("{line}")
        {
            self.broken = Some(e);
        }
    }

    fn done(self) -> anyhow::Result<ExitCode> {
        match self.broken {
            Some(e) => Err(e.into()),
            None => Ok(if self.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
        }
    }
}

/// Up to `max` names, and how many more.
fn first_names(names: &[&str], max: usize) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let shown = names[..names.len().min(max)].join(", ");
    match names.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

pub fn run(global: &GlobalArgs, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report { failed: 0, broken: None };
    let cfg = match super::load_config(&args.config) {
        Ok(c) => c,
        Err(e) => {
            // Every problem validation found, a line each.
            match e.downcast_ref::<ConfigError>() {
                Some(ConfigError::Invalid(problems)) => {
                    for p in problems {
                        report.line("configuration", Err(format!("configuration key {p}")));
                    }
                }
                _ => report.line("configuration", Err(format!("{e:#}"))),
            }
            return report.done();
        }
    };
    report.line(
        "configuration",
        Ok(format!(
            "{} ({} source(s), {} destination(s))",
            args.config.display(),
            cfg.sources.len(),
            cfg.destinations.len()
        )),
    );
    // Allowed but weaker than the default (plain HTTP to loopback): said even offline.
    for s in &cfg.sources {
        for note in s.kind.notes() {
            report.write(&format!("warning {:<28} {}", format!("source {}", s.kind.name()), printable(&note)));
        }
    }
    for d in &cfg.destinations {
        for note in d.sink.notes() {
            report.write(&format!(
                "warning {:<28} {}",
                format!("destination {}", printable(&d.name)),
                printable(&note)
            ));
        }
    }
    if let Some(w) = crate::config::exposed_secrets(&args.config) {
        report.write(&format!("warning {:<28} {}", "configuration", printable(&w)));
    }
    let state_dir = super::state_dir_for(global, &cfg)?;
    let pipeline = match Pipeline::build(&cfg, &state_dir) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors.0 {
                report.line("configuration", Err(e));
            }
            return report.done();
        }
    };
    for w in &pipeline.warnings {
        report.write(&format!("warning {:<28} {}", "review", printable(w)));
    }
    if let Some(shard) = pipeline.shard {
        let here: Vec<&str> = pipeline.sources.iter().map(|(s, _)| s.name()).collect();
        report.line(
            "shard",
            Ok(format!(
                "{shard}: this replica polls {} of {} sources ({}); the others are checked on their replicas",
                here.len(),
                cfg.sources.len(),
                printable(&first_names(&here, 10))
            )),
        );
    }
    let meta = pipeline.catalog.meta();
    report.line(
        "catalog",
        Ok(format!("{} {}", meta.domain, meta.attack_version.as_deref().unwrap_or("(version unknown)"))),
    );
    report.line(
        "inventory",
        Ok(match &pipeline.engine.inventory {
            Some(i) => format!("{} source(s), {} technique(s) covered", i.source_count(), i.technique_count()),
            None => "none configured: coverage by your own rules is not assessed (Microsoft's detections are)".into(),
        }),
    );
    let hunts = pipeline.engine.hunts();
    let own = hunts.templates().iter().filter(|t| t.origin != "library").count();
    report.line(
        "hunts",
        Ok(format!(
            "{} hunt(s) for {} technique(s): {} from the library, {own} from review.hunt_folders",
            hunts.templates().len(),
            hunts.techniques().len(),
            hunts.templates().len() - own
        )),
    );
    let store_path = crate::daemon::store_path(&state_dir);
    report.line(
        "store",
        match crate::store::Store::open(&store_path) {
            Ok(s) => Ok(format!("{} ({} review(s); {})", store_path.display(), s.review_count(), on_disk(&store_path))),
            Err(crate::store::StoreError::Locked { .. }) => {
                Ok(format!("{} (in use by a running Hindsight; {})", store_path.display(), on_disk(&store_path)))
            }
            Err(e) => Err(e.to_string()),
        },
    );
    if let Some(s) = &pipeline.schedule {
        let next = s.next_after(chrono::Utc::now());
        report.line(
            "digest",
            Ok(format!(
                "{:?} in {}; next {}",
                s.expression,
                cfg.digest.time_zone,
                next.map_or("never".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            )),
        );
    }
    if args.offline {
        return report.done();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        for (mut source, _) in pipeline.sources {
            let what = format!("source {}", source.name());
            report.line(&what, source.probe(chrono::Utc::now()).await);
        }
        for d in &pipeline.destinations {
            report.line(&format!("destination {}", d.name), d.sink.probe().await);
        }
    });
    report.done()
}

/// The store's size on disk by part, for the `store` line.
fn on_disk(path: &std::path::Path) -> String {
    use bytesize::ByteSize;
    match crate::store::disk_usage_at(path) {
        Ok(u) => format!(
            "{} on disk: trees {}, review log {} of which {} packed",
            ByteSize(u.total()),
            ByteSize(u.trees),
            ByteSize(u.segments + u.packs),
            ByteSize(u.packs)
        ),
        Err(e) => format!("its size on disk cannot be read: {e}"),
    }
}
