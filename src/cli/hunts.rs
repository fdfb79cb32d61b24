//! `hindsight hunts …`: the hunt library (embedded, plus a site's folders of Azure-Sentinel
//! hunting YAML) as a review would use it.
//!
//! The JSON forms printed here are documented in docs/cli-json.md and are a contract for
//! scripts: fields are added, never renamed or removed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use super::{Format, print_json};
use crate::hunts::{Library, Template};
use crate::text::printable;

#[derive(Debug, Subcommand)]
pub enum HuntsCommand {
    /// Every hunt: its ID, techniques, scope, table, title and where it comes from.
    List {
        /// Also read this folder of hunting queries (Azure-Sentinel YAML). Repeat for several.
        #[arg(long = "hunts", value_name = "DIR")]
        folders: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The hunts for an ATT&CK technique, or one hunt by its ID, with the full query
    /// (placeholders as written).
    Show {
        #[arg(value_name = "TECHNIQUE|HUNT-ID")]
        what: String,
        /// Also read this folder of hunting queries (Azure-Sentinel YAML). Repeat for several.
        #[arg(long = "hunts", value_name = "DIR")]
        folders: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(cmd: HuntsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        HuntsCommand::List { folders, format } => {
            let lib = load(&folders)?;
            let mut views: Vec<HuntView> = lib.templates().iter().map(|t| HuntView::of(t, false)).collect();
            views.sort_by(|a, b| {
                // Indicator sweeps (no technique) last.
                let key = |v: &HuntView| (v.techniques.is_empty(), v.techniques.first().cloned(), v.id.clone());
                key(a).cmp(&key(b))
            });
            match format {
                Format::Json => print_json(&views)?,
                Format::Text => out!("{}", list_text(&views, lib.techniques().len()))?,
            }
        }
        HuntsCommand::Show { what, folders, format } => {
            let lib = load(&folders)?;
            let found = select(&lib, &what)?;
            let views: Vec<HuntView> = found.into_iter().map(|t| HuntView::of(t, true)).collect();
            match format {
                Format::Json => print_json(&views)?,
                Format::Text => out!("{}", show_text(&views))?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded library with `folders` added; what was skipped in them is printed as warnings.
/// A folder that cannot be read is an error.
pub fn load(folders: &[PathBuf]) -> anyhow::Result<Arc<Library>> {
    let embedded = Library::embedded();
    if folders.is_empty() {
        return Ok(embedded);
    }
    let (lib, problems) = embedded.with_folders(folders).context("--hunts")?;
    for p in &problems {
        eprintln!("hindsight: warning: hunts: {}", printable(p));
    }
    Ok(Arc::new(lib))
}

/// A hunt ID names that hunt; else a technique ID (any case) names its hunts. Nothing found is
/// an error that says what there is nearby.
fn select<'l>(lib: &'l Library, what: &str) -> anyhow::Result<Vec<&'l Template>> {
    if let Some(t) = lib.get(what.trim()) {
        return Ok(vec![t]);
    }
    let Some(technique) = crate::attack::resolve::normalize(what) else {
        anyhow::bail!("{:?} is neither a hunt ID in the library nor an ATT&CK technique ID", what);
    };
    let found: Vec<&Template> = lib.for_technique(&technique).collect();
    if !found.is_empty() {
        return Ok(found);
    }
    anyhow::bail!("{}", nothing_for(lib, &technique))
}

/// "no hunt for T1234.001 in the library", and what its parent or sub-techniques have.
fn nothing_for(lib: &Library, technique: &str) -> String {
    let mut msg = format!("no hunt for {technique} in the library");
    if let Some((parent, _)) = technique.split_once('.') {
        let n = lib.for_technique(parent).count();
        if n > 0 {
            msg.push_str(&format!("; its parent {parent} has {n}"));
        }
    } else {
        let prefix = format!("{technique}.");
        let subs: Vec<&str> = lib.techniques().into_iter().filter(|t| t.starts_with(&prefix)).collect();
        if !subs.is_empty() {
            let n: usize = subs.iter().map(|s| lib.for_technique(s).count()).sum();
            msg.push_str(&format!("; its sub-techniques have {n} ({})", subs.join(", ")));
        }
    }
    msg
}

/// One hunt as printed (docs/cli-json.md).
#[derive(Debug, Serialize)]
struct HuntView {
    id: String,
    techniques: Vec<String>,
    scope: &'static str,
    /// Empty when the query's first table is not known (a site's query that starts otherwise).
    table: String,
    title: String,
    /// "library", or the file the hunt was read from.
    origin: String,
    /// `show` only: the placeholders the query uses and the query as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    placeholders: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kql: Option<String>,
}

impl HuntView {
    fn of(t: &Template, full: bool) -> HuntView {
        HuntView {
            id: t.id.clone(),
            techniques: t.techniques.clone(),
            scope: t.scope.as_str(),
            table: t.table.clone(),
            title: t.title.clone(),
            origin: t.origin.clone(),
            placeholders: full.then(|| t.placeholders().into_iter().map(|p| p.name()).collect()),
            kql: full.then(|| t.kql.clone()),
        }
    }

    fn techniques_text(&self) -> String {
        if self.techniques.is_empty() { "-".to_owned() } else { self.techniques.join(",") }
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// An aligned table, then "N hunts for M techniques (library: X, folders: Y)".
fn list_text(views: &[HuntView], techniques: usize) -> String {
    let header = ["ID", "TECHNIQUES", "SCOPE", "TABLE", "TITLE", "ORIGIN"];
    let rows: Vec<[String; 6]> = views
        .iter()
        .map(|v| {
            [
                printable(&v.id).into_owned(),
                v.techniques_text(),
                v.scope.to_owned(),
                printable(or_dash(&v.table)).into_owned(),
                printable(&v.title).into_owned(),
                printable(&v.origin).into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let from_library = views.iter().filter(|v| v.origin == "library").count();
    out.push_str(&format!(
        "{} for {} (library: {from_library}, folders: {})\n",
        plural(views.len(), "hunt"),
        plural(techniques, "technique"),
        views.len() - from_library
    ));
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

/// Each hunt's fields, then its query as written, a blank line between hunts.
fn show_text(views: &[HuntView]) -> String {
    let mut out = String::new();
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} — {}\n", printable(&v.id), printable(&v.title)));
        out.push_str(&format!("techniques:   {}\n", v.techniques_text()));
        out.push_str(&format!("scope:        {}\n", v.scope));
        out.push_str(&format!("table:        {}\n", printable(or_dash(&v.table))));
        out.push_str(&format!("origin:       {}\n", printable(&v.origin)));
        let holes = v.placeholders.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "placeholders: {}\n\n",
            if holes.is_empty() { "-".to_owned() } else { holes.join(", ") }
        ));
        // Line by line, so the query keeps its lines and nothing else in it reaches the terminal.
        for l in v.kql.as_deref().unwrap_or_default().lines() {
            out.push_str(&printable(l.trim_end_matches('\r')));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_technique_without_hunts_says_what_its_parent_or_subtechniques_have() {
        let lib = Library::from_toml(
            r#"format = 1
[[hunt]]
id = "a"
techniques = ["T1053"]
title = "A"
table = "DeviceEvents"
scope = "estate"
kql = "DeviceEvents | take 1"
[[hunt]]
id = "b"
techniques = ["T1053", "T1059.001"]
title = "B"
table = "DeviceEvents"
scope = "estate"
kql = "DeviceEvents | take 1"
"#,
            "test.toml",
        )
        .unwrap();
        assert_eq!(nothing_for(&lib, "T1053.005"), "no hunt for T1053.005 in the library; its parent T1053 has 2");
        assert_eq!(
            nothing_for(&lib, "T1059"),
            "no hunt for T1059 in the library; its sub-techniques have 1 (T1059.001)"
        );
        assert_eq!(nothing_for(&lib, "T9999"), "no hunt for T9999 in the library");
        assert_eq!(select(&lib, "t1053").unwrap().len(), 2);
        assert_eq!(select(&lib, "b").unwrap()[0].id, "b");
        assert!(select(&lib, "nothing").unwrap_err().to_string().contains("neither a hunt ID"));
    }
}
