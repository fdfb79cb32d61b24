//! Azure-Sentinel-format hunting queries (YAML with `relevantTechniques` and `query`): a site's
//! own hunts added beside the library.
//!
//! The format is the one of the Azure/Azure-Sentinel repository's `Hunting Queries/` folders:
//! `id`, `name`, `description`, `requiredDataConnectors`, `tactics`, `relevantTechniques`,
//! `query`; other keys are ignored. These queries are written for the whole workspace and do not
//! use the library's placeholders, so each becomes an estate hunt whose query is kept verbatim
//! (one text part: a `{{` in a Sentinel query is the query's own text, not a placeholder).

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::library::{HuntError, Library, Part, Scope, Template};

/// Largest hunting query file read, as for a detection inventory's files: a real one is a few
/// kilobytes.
const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// How deep `[` / `{` may nest before a file is refused unparsed: libyaml's scanner is quadratic
/// in flow nesting (see `inventory::sigma`); real hunting YAML nests a level or two.
const MAX_FLOW_DEPTH: usize = 64;

/// Reads every `*.yaml` / `*.yml` under `path` (recursively, dot-files and dot-folders skipped),
/// in path order. Returns the hunts found and the problems met (each naming its file): a file
/// that cannot be read or parsed, has no `query`, or repeats an ID is skipped, not fatal. Only a
/// folder that cannot be read at all is an error.
pub fn load_folder(path: &Path) -> Result<(Library, Vec<String>), HuntError> {
    let folder_err = |e: std::io::Error| HuntError::Folder {
        path: path.display().to_string(),
        reason: format!("cannot read the hunting query folder: {e}"),
    };
    if !std::fs::metadata(path).map_err(folder_err)?.is_dir() {
        return Err(HuntError::Folder { path: path.display().to_string(), reason: "not a folder".into() });
    }
    let mut files = Vec::new();
    crate::input::walk(path, &is_yaml, &mut files).map_err(folder_err)?;
    files.sort();
    let mut lib = Library::default();
    let mut problems = Vec::new();
    for file in files {
        let origin = file.display().to_string();
        match read_file(&file) {
            Ok((template, notes)) => {
                problems.extend(notes.into_iter().map(|n| format!("{origin}: {n}")));
                let id = template.id.clone();
                if lib.add(template).is_err() {
                    problems.push(format!("{origin}: skipped: hunt \"{id}\" is already defined in this folder"));
                }
            }
            Err(reason) => problems.push(format!("{origin}: skipped: {reason}")),
        }
    }
    Ok((lib, problems))
}

impl Library {
    /// A copy of this library with the hunts of each folder added ([`load_folder`]); a hunt whose
    /// ID is already taken (by the library or an earlier folder) is skipped and reported.
    pub fn with_folders(&self, folders: &[PathBuf]) -> Result<(Library, Vec<String>), HuntError> {
        let mut lib = Library::default();
        for t in self.templates() {
            // IDs are unique in `self`, so none is refused here.
            let _ = lib.add(t.clone());
        }
        let mut problems = Vec::new();
        for folder in folders {
            let (found, notes) = load_folder(folder)?;
            problems.extend(notes);
            for t in found.templates() {
                if lib.add(t.clone()).is_err() {
                    problems.push(format!("{}: skipped: hunt \"{}\" is already defined", t.origin, t.id));
                }
            }
        }
        Ok((lib, problems))
    }
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// One hunting query file: the hunt and notes on what was left out of it.
fn read_file(path: &Path) -> Result<(Template, Vec<String>), String> {
    let bytes = crate::input::read_limited(path, MAX_FILE_BYTES, None)?;
    let text = String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    parse(&text, &stem, &path.display().to_string())
}

/// Parses one Sentinel hunting query; `stem` is the ID when the file has none, `origin` names the
/// file in the template.
fn parse(text: &str, stem: &str, origin: &str) -> Result<(Template, Vec<String>), String> {
    if let Some(line) = crate::input::flow_depth_over(text, MAX_FLOW_DEPTH) {
        return Err(format!(
            "not valid YAML: '[' and '{{' nested more than {MAX_FLOW_DEPTH} levels deep at line {line}"
        ));
    }
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    if !v.is_mapping() {
        return Err("not a hunting query (expected a YAML mapping with a query)".into());
    }
    let string = |key: &str| v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let query = string("query").ok_or("no query")?;
    let id = string("id").unwrap_or(stem).to_owned();
    if id.is_empty() {
        return Err("no id".into());
    }
    let mut notes = Vec::new();
    let mut techniques: Vec<String> = Vec::new();
    for raw in v.get("relevantTechniques").and_then(Value::as_sequence).into_iter().flatten() {
        let written = raw.as_str().map_or_else(|| format!("{raw:?}"), str::to_owned);
        match crate::attack::resolve::normalize(&written) {
            Some(t) if !techniques.contains(&t) => techniques.push(t),
            Some(_) => {}
            None => notes.push(format!("hunt \"{id}\": \"{written}\" is not an ATT&CK technique ID; left out")),
        }
    }
    let template = Template {
        title: string("name").unwrap_or(&id).to_owned(),
        table: first_table(query),
        scope: Scope::Estate,
        kql: query.to_owned(),
        origin: origin.to_owned(),
        parts: vec![Part::Text(query.to_owned())],
        techniques,
        id,
    };
    Ok((template, notes))
}

/// The table a query reads first: the first identifier of its first statement that is not a
/// `let` (nor a `//` comment). A best effort — empty when that statement starts with something
/// else, or with a name a `let` bound (a view of some table, not a table).
fn first_table(query: &str) -> String {
    let mut bound: Vec<&str> = Vec::new();
    let mut in_let = false;
    for line in query.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if in_let || line.starts_with("let ") {
            if let Some(rest) = line.strip_prefix("let ") {
                bound.push(identifier(rest.trim_start()));
            }
            in_let = !line.ends_with(';');
            continue;
        }
        let mut name = identifier(line);
        if name == "union" {
            // `union withsource=T kind=outer isfuzzy=true A, B`: the first operand.
            name =
                line.split([' ', ',', '(']).skip(1).find(|w| !w.is_empty() && !w.contains('=')).map_or("", identifier);
        }
        if bound.contains(&name) {
            return String::new();
        }
        return name.to_owned();
    }
    String::new()
}

/// The identifier `s` starts with (letters, digits, `_`), possibly empty.
fn identifier(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hunting query as the Azure-Sentinel repository writes them.
    const LSASS: &str = r#"id: 2c7ad5f1-3a2e-4f41-9a9e-1b0d7c3a9f10
name: LSASS memory read by an unusual process
description: |
  'Finds processes other than the usual ones opening lsass.exe, as credential dumpers do.'
requiredDataConnectors:
  - connectorId: MicrosoftThreatProtection
    dataTypes:
      - DeviceProcessEvents
tactics:
  - CredentialAccess
relevantTechniques:
  - T1003.001
  - t1003
  - Credential Dumping
query: |
  // Processes that dump LSASS with comsvcs or procdump
  let allowed = dynamic(["MsMpEng.exe", "csrss.exe"]);
  DeviceProcessEvents
  | where Timestamp > ago(14d)
  | where ProcessCommandLine has_any ("comsvcs.dll", "MiniDump") or (FileName =~ "procdump.exe" and ProcessCommandLine has "lsass")
  | where InitiatingProcessFileName !in~ (allowed)
  | summarize count() by DeviceName, AccountName, ProcessCommandLine
version: 1.0.1
kind: Scheduled
"#;

    fn folder() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_sentinel_hunting_query_becomes_an_estate_hunt_kept_verbatim() {
        let dir = folder();
        let file = dir.path().join("LsassAccess.yaml");
        std::fs::write(&file, LSASS).unwrap();
        let (lib, problems) = load_folder(dir.path()).unwrap();
        assert_eq!(lib.templates().len(), 1);
        let t = &lib.templates()[0];
        assert_eq!(t.id, "2c7ad5f1-3a2e-4f41-9a9e-1b0d7c3a9f10");
        assert_eq!(t.title, "LSASS memory read by an unusual process");
        assert_eq!(t.techniques, ["T1003.001", "T1003"]);
        assert_eq!(t.scope, Scope::Estate);
        assert_eq!(t.table, "DeviceProcessEvents", "the let and the comment are not tables");
        assert_eq!(t.origin, file.display().to_string());
        assert!(t.kql.starts_with("// Processes that dump LSASS") && t.kql.ends_with("ProcessCommandLine"));
        assert!(t.placeholders().is_empty());
        assert_eq!(t.parts, [Part::Text(t.kql.clone())]);
        assert_eq!(lib.for_technique("T1003.001").count(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("\"Credential Dumping\" is not an ATT&CK technique ID"), "{problems:?}");
        assert!(problems[0].starts_with(&file.display().to_string()), "{problems:?}");
    }

    #[test]
    fn braces_in_a_sentinel_query_are_its_own_text() {
        let yaml = "name: Odd\nrelevantTechniques: [T1059]\nquery: |\n  SecurityEvent\n  | extend x = \"{{not_ours}}\"\n  | take 10\n";
        let (t, notes) = parse(yaml, "odd-one", "x/odd-one.yml").unwrap();
        assert!(notes.is_empty());
        assert_eq!(t.id, "odd-one", "no id: the file stem");
        assert!(t.kql.contains("{{not_ours}}"));
        assert!(t.placeholders().is_empty());
    }

    #[test]
    fn files_that_are_not_hunts_are_skipped_and_reported() {
        let dir = folder();
        let sub = dir.path().join("Credential Access");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("good.yml"), LSASS).unwrap();
        std::fs::write(dir.path().join("again.yaml"), LSASS).unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "name: [unclosed\nquery: x\n").unwrap();
        std::fs::write(dir.path().join("noquery.yaml"), "id: abc\nname: Only a name\n").unwrap();
        std::fs::write(dir.path().join("list.yaml"), "- a\n- b\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "not read").unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/hidden.yaml"), LSASS.replace("2c7ad5f1", "ffffffff")).unwrap();
        let (lib, problems) = load_folder(dir.path()).unwrap();
        let origins: Vec<&str> = lib.templates().iter().map(|t| t.origin.as_str()).collect();
        // Path order (bytes): "Credential Access/good.yml" comes before "again.yaml".
        assert_eq!(origins, [sub.join("good.yml").display().to_string()]);
        let has = |file: &str, what: &str| {
            problems.iter().any(|p| p.starts_with(&dir.path().join(file).display().to_string()) && p.contains(what))
        };
        assert!(has("again.yaml", "already defined in this folder"), "{problems:?}");
        assert!(has("broken.yaml", "skipped: not valid YAML"), "{problems:?}");
        assert!(has("noquery.yaml", "skipped: no query"), "{problems:?}");
        assert!(has("list.yaml", "not a hunting query"), "{problems:?}");
        assert!(!problems.iter().any(|p| p.contains(".git") || p.contains("README")), "{problems:?}");
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let dir = folder();
        let missing = dir.path().join("nope");
        let e = load_folder(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&missing.display().to_string()) && e.contains("cannot read"), "{e}");
        let file = dir.path().join("one.yaml");
        std::fs::write(&file, LSASS).unwrap();
        assert!(load_folder(&file).unwrap_err().to_string().contains("not a folder"));
    }

    #[test]
    fn folders_are_added_to_a_copy_of_the_library_and_taken_ids_are_reported() {
        let base = Library::embedded();
        let builtin = base.templates()[0].id.clone();
        let dir = folder();
        std::fs::write(dir.path().join("a.yaml"), LSASS).unwrap();
        std::fs::write(dir.path().join("b.yaml"), LSASS.replace("2c7ad5f1-3a2e-4f41-9a9e-1b0d7c3a9f10", &builtin))
            .unwrap();
        let (lib, problems) = base.with_folders(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(lib.templates().len(), base.templates().len() + 1);
        assert_eq!(lib.get(&builtin).unwrap().origin, "library", "the library's own hunt is kept");
        assert!(problems.iter().any(|p| p.contains("b.yaml") && p.contains("already defined")), "{problems:?}");
        let (again, _) = base.with_folders(&[dir.path().to_path_buf(), dir.path().to_path_buf()]).unwrap();
        assert_eq!(again.templates().len(), lib.templates().len(), "a folder given twice adds nothing twice");
        assert!(base.with_folders(&[dir.path().join("missing")]).is_err());
    }

    #[test]
    fn the_first_table_is_a_best_effort() {
        assert_eq!(first_table("SigninLogs\n| where ResultType == 0"), "SigninLogs");
        assert_eq!(first_table("let a = 1;\nlet b = dynamic([\n  \"x\"\n]);\nDeviceEvents | take 1"), "DeviceEvents");
        assert_eq!(first_table("union isfuzzy=true DeviceEvents, DeviceFileEvents | take 1"), "DeviceEvents");
        assert_eq!(first_table("let procs = DeviceProcessEvents | take 5;\nprocs | take 1"), "", "a let-bound name");
        assert_eq!(first_table("(DeviceEvents | take 1)"), "");
    }
}
