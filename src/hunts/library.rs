//! The hunt library: templates read from TOML (the format in `data/hunts/README.md`), each
//! checked when it loads — known placeholders only, the scope's rules — so that a bad template
//! is refused with its name and the reason, never half-filled in a review.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::fill::Placeholder;

/// The library Hindsight ships with.
const EMBEDDED: &str = include_str!("../../data/hunts/library.toml");

#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error("{origin}: not a hunt library: {reason}")]
    Format { origin: String, reason: String },
    #[error("{origin}: hunt \"{id}\": {reason}")]
    Template { origin: String, id: String, reason: String },
    /// A folder of a site's own hunting queries that cannot be read at all.
    #[error("{path}: {reason}")]
    Folder { path: String, reason: String },
}

/// Where a hunt looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This incident's entities and window.
    Incident,
    /// Every device and account, the last 30 days.
    Estate,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Incident => "incident",
            Scope::Estate => "estate",
        }
    }
}

/// One hunting query, parsed.
#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    /// Canonical ATT&CK IDs (upper case); empty for an indicator sweep.
    pub techniques: Vec<String>,
    pub title: String,
    pub table: String,
    pub scope: Scope,
    /// The query as written, placeholders included.
    pub kql: String,
    /// "library" for the embedded library, else the file it came from.
    pub origin: String,
    /// The query cut at its placeholders: text, then a placeholder, then text, …
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    Hole(Placeholder),
}

impl Template {
    /// The placeholders the query uses, each once.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut out: Vec<Placeholder> = Vec::new();
        for p in &self.parts {
            if let Part::Hole(h) = p
                && !out.contains(h)
            {
                out.push(*h);
            }
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: u32,
    #[serde(default)]
    hunt: Vec<Raw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: String,
    #[serde(default)]
    techniques: Vec<String>,
    title: String,
    table: String,
    scope: Scope,
    kql: String,
}

/// Every template, with an index by technique.
#[derive(Debug, Default)]
pub struct Library {
    templates: Vec<Template>,
    by_technique: HashMap<String, Vec<usize>>,
}

impl Library {
    /// The embedded library, parsed once per process.
    pub fn embedded() -> Arc<Library> {
        static LIB: OnceLock<Arc<Library>> = OnceLock::new();
        LIB.get_or_init(|| {
            // The embedded file is checked by the test suite: failing here is a build defect.
            #[allow(clippy::expect_used)]
            Arc::new(Library::from_toml(EMBEDDED, "library").expect("the embedded hunt library is valid"))
        })
        .clone()
    }

    /// Reads a library in the TOML format; `origin` names it in errors and in each template.
    pub fn from_toml(text: &str, origin: &str) -> Result<Library, HuntError> {
        let file: File =
            toml::from_str(text).map_err(|e| HuntError::Format { origin: origin.to_owned(), reason: e.to_string() })?;
        if file.format != 1 {
            return Err(HuntError::Format {
                origin: origin.to_owned(),
                reason: format!("format {} is not one this version reads (1)", file.format),
            });
        }
        let mut lib = Library::default();
        for raw in file.hunt {
            let t = template(raw, origin)?;
            lib.add(t).map_err(|reason| HuntError::Format { origin: origin.to_owned(), reason })?;
        }
        Ok(lib)
    }

    /// Adds a template; its ID must be new.
    pub fn add(&mut self, t: Template) -> Result<(), String> {
        if self.templates.iter().any(|x| x.id == t.id) {
            return Err(format!("hunt \"{}\" is defined twice", t.id));
        }
        let ix = self.templates.len();
        for id in &t.techniques {
            self.by_technique.entry(id.clone()).or_default().push(ix);
        }
        self.templates.push(t);
        Ok(())
    }

    /// Adds every template of `other` whose ID is new; returns the IDs skipped.
    pub fn merge(&mut self, other: Library) -> Vec<String> {
        let mut skipped = Vec::new();
        for t in other.templates {
            let id = t.id.clone();
            if self.add(t).is_err() {
                skipped.push(id);
            }
        }
        skipped
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The templates for a technique (a canonical ID), library order.
    pub fn for_technique<'l>(&'l self, technique: &str) -> impl Iterator<Item = &'l Template> + 'l {
        self.by_technique.get(technique).into_iter().flatten().map(|&i| &self.templates[i])
    }

    /// Indicator sweeps: estate hunts that name no technique.
    pub fn sweeps(&self) -> impl Iterator<Item = &Template> {
        self.templates.iter().filter(|t| t.techniques.is_empty() && t.scope == Scope::Estate)
    }

    /// Technique IDs with at least one template, sorted.
    pub fn techniques(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_technique.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub fn get(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.id == id)
    }
}

fn template(raw: Raw, origin: &str) -> Result<Template, HuntError> {
    let err = |reason: String| HuntError::Template { origin: origin.to_owned(), id: raw.id.clone(), reason };
    if raw.id.trim().is_empty() {
        return Err(HuntError::Format { origin: origin.to_owned(), reason: "a hunt without an id".into() });
    }
    let parts = parse(&raw.kql).map_err(&err)?;
    let mut techniques = Vec::with_capacity(raw.techniques.len());
    for t in &raw.techniques {
        techniques.push(
            crate::attack::resolve::normalize(t)
                .ok_or_else(|| err(format!("\"{t}\" is not an ATT&CK technique ID")))?,
        );
    }
    let t = Template {
        id: raw.id.clone(),
        techniques,
        title: raw.title.trim().to_owned(),
        table: raw.table.trim().to_owned(),
        scope: raw.scope,
        kql: raw.kql.trim().to_owned(),
        origin: origin.to_owned(),
        parts,
    };
    check_scope(&t).map_err(err)?;
    Ok(t)
}

/// The scope's rules (data/hunts/README.md): an incident hunt is bounded by the window and
/// filters on at least one entity list; an estate hunt has no window of the incident.
fn check_scope(t: &Template) -> Result<(), String> {
    let used = t.placeholders();
    let window = used.iter().any(|p| matches!(p, Placeholder::Start | Placeholder::End));
    match t.scope {
        Scope::Incident => {
            if !(used.contains(&Placeholder::Start) && used.contains(&Placeholder::End)) {
                return Err("an incident hunt must use {{start}} and {{end}}".into());
            }
            if !used.iter().any(|p| p.is_list()) {
                return Err("an incident hunt must filter on one of the incident's entity lists".into());
            }
        }
        Scope::Estate if window => return Err("an estate hunt looks back 30 days, not at the incident's window".into()),
        Scope::Estate => {}
    }
    Ok(())
}

/// Cuts a query at its `{{placeholders}}`.
pub(crate) fn parse(kql: &str) -> Result<Vec<Part>, String> {
    let kql = kql.trim();
    let mut parts = Vec::new();
    let mut rest = kql;
    while let Some(open) = rest.find("{{") {
        let close = rest[open..].find("}}").ok_or_else(|| format!("unclosed placeholder at \"{}\"", &rest[open..]))?;
        let name = rest[open + 2..open + close].trim();
        let hole = Placeholder::named(name).ok_or_else(|| format!("unknown placeholder {{{{{name}}}}}"))?;
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_owned()));
        }
        parts.push(Part::Hole(hole));
        rest = &rest[open + close + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(hunts: &str) -> Result<Library, HuntError> {
        Library::from_toml(&format!("format = 1\n{hunts}"), "test.toml")
    }

    #[test]
    fn a_template_is_cut_at_its_placeholders() {
        let l = lib(r#"
[[hunt]]
id = "a"
techniques = ["t1053.005"]
title = "Tasks"
table = "DeviceProcessEvents"
scope = "incident"
kql = "DeviceProcessEvents | where Timestamp between ({{start}} .. {{ end }}) | where DeviceId in ({{device_ids}}) | take 10"
"#)
        .unwrap();
        let t = &l.templates()[0];
        assert_eq!(t.techniques, ["T1053.005"], "IDs are canonical");
        assert_eq!(t.placeholders(), [Placeholder::Start, Placeholder::End, Placeholder::DeviceIds]);
        assert_eq!(l.for_technique("T1053.005").count(), 1);
    }

    #[test]
    fn bad_templates_are_refused_with_their_name_and_reason() {
        let one = |scope: &str, kql: &str| {
            lib(&format!(
                "[[hunt]]\nid = \"x\"\ntitle = \"t\"\ntable = \"T\"\nscope = \"{scope}\"\nkql = '''{kql}'''\n"
            ))
            .unwrap_err()
            .to_string()
        };
        assert!(one("incident", "T | where A in ({{hosts}})").contains("unknown placeholder {{hosts}}"));
        assert!(one("incident", "T | where A in ({{ips}}) | take 1").contains("must use {{start}} and {{end}}"));
        assert!(
            one("incident", "T | where Timestamp between ({{start}} .. {{end}}) | take 1").contains("entity lists")
        );
        assert!(one("estate", "T | where Timestamp between ({{start}} .. {{end}})").contains("30 days"));
        assert!(one("incident", "T | where A in ({{ips}").contains("unclosed"));
        let e = lib("[[hunt]]\nid = \"x\"\ntitle = \"t\"\ntable = \"T\"\nscope = \"everywhere\"\nkql = \"T\"\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("test.toml: not a hunt library"), "{e}");
        let twice = "[[hunt]]\nid = \"x\"\ntitle = \"t\"\ntable = \"T\"\nscope = \"estate\"\nkql = \"T | take 1\"\n";
        assert!(lib(&format!("{twice}{twice}")).unwrap_err().to_string().contains("defined twice"));
    }
}
