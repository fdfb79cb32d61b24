//! Technique IDs as they arrive (from alerts, inventories, people) → the current technique.
//!
//! Defender and hand-kept inventories carry IDs from whatever ATT&CK release was current when
//! the rule was written: `T1086` (revoked in 2020 for `T1059.001`), lower case, stray spaces. A
//! review must neither drop such an ID nor pretend it is current, so every query gets a status:
//! active, revoked (followed to its replacement, chains included), deprecated (kept, flagged) or
//! unknown (kept, flagged).

use serde::Serialize;

use super::catalog::Catalog;
use super::model::{Lifecycle, Technique};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Revoked,
    Deprecated,
    Unknown,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Deprecated => "deprecated",
            Status::Unknown => "unknown",
        })
    }
}

/// The outcome of resolving one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The query as given.
    pub query: String,
    /// The query in canonical form (`T1059.001`), when it looks like a technique ID at all.
    pub normalized: Option<String>,
    pub status: Status,
    /// Index of the technique the query resolves to: itself, or the end of its revocation chain.
    /// `None` for unknown IDs and for revoked ones whose chain leads nowhere.
    pub technique: Option<usize>,
    /// Revoked IDs passed through, in order, starting with the query's own.
    pub revoked_chain: Vec<String>,
    /// Why the status is what it is, when that is not obvious (e.g. an unknown sub-technique of
    /// a known parent, or a revocation chain that ends in a deprecated technique).
    pub note: Option<String>,
}

/// Longest revocation chain followed; real chains are at most three long, a longer one is a loop.
const MAX_CHAIN: usize = 16;

/// `" t1059/001 "` → `T1059.001`. Returns `None` for anything that is not shaped like a
/// technique ID (`T` + 4 digits, optionally `.` + 3 digits).
pub fn normalize(query: &str) -> Option<String> {
    let s: String = query.trim().chars().filter(|c| !c.is_whitespace()).collect();
    let s = s.to_ascii_uppercase().replace(['/', '_'], ".");
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let ok = match b.len() {
        5 => b[0] == b'T' && digits(1..5),
        9 => b[0] == b'T' && digits(1..5) && b[5] == b'.' && digits(6..9),
        _ => false,
    };
    ok.then_some(s)
}

impl Catalog {
    /// Resolves one technique ID as it was received.
    pub fn resolve(&self, query: &str) -> Resolution {
        // Fast path: most alerts carry current IDs exactly as the catalog spells them.
        if let Some(ix) = self.technique_ix(query).filter(|&i| self.techniques()[i].lifecycle == Lifecycle::Active) {
            return Resolution {
                query: query.to_owned(),
                normalized: Some(query.to_owned()),
                status: Status::Active,
                technique: Some(ix),
                revoked_chain: Vec::new(),
                note: None,
            };
        }
        let mut r = Resolution {
            query: query.to_owned(),
            normalized: normalize(query),
            status: Status::Unknown,
            technique: None,
            revoked_chain: Vec::new(),
            note: None,
        };
        let Some(id) = r.normalized.clone() else {
            r.note = Some("not an ATT&CK technique ID (expected T#### or T####.###)".into());
            return r;
        };
        let Some(mut ix) = self.technique_ix(&id) else {
            r.note = self.unknown_note(&id);
            return r;
        };
        let first = &self.techniques()[ix];
        match first.lifecycle {
            Lifecycle::Active => {
                r.status = Status::Active;
                r.technique = Some(ix);
            }
            Lifecycle::Deprecated => {
                r.status = Status::Deprecated;
                r.technique = Some(ix);
                r.note = Some("deprecated by MITRE: kept as received, with no replacement".into());
            }
            Lifecycle::Revoked => {
                r.status = Status::Revoked;
                loop {
                    let t = &self.techniques()[ix];
                    if t.lifecycle != Lifecycle::Revoked {
                        r.technique = Some(ix);
                        if t.lifecycle == Lifecycle::Deprecated {
                            r.note = Some(format!("replaced by {}, which is itself deprecated", t.id));
                        }
                        break;
                    }
                    r.revoked_chain.push(t.id.clone());
                    let next = t.revoked_by.as_deref().and_then(|n| self.technique_ix(n));
                    match next {
                        Some(n)
                            if r.revoked_chain.len() < MAX_CHAIN
                                && !r.revoked_chain.contains(&self.techniques()[n].id) =>
                        {
                            ix = n
                        }
                        _ => {
                            r.note = Some(format!("{} is revoked and the catalog names no current replacement", t.id));
                            break;
                        }
                    }
                }
            }
        }
        r
    }

    /// Resolves and returns the technique directly; the usual call for code that only needs the
    /// current technique.
    pub fn resolve_technique(&self, query: &str) -> Option<&Technique> {
        self.resolve(query).technique.map(|i| &self.techniques()[i])
    }

    fn unknown_note(&self, id: &str) -> Option<String> {
        let release = format!(
            "ATT&CK {} {}",
            self.meta().domain,
            self.meta().attack_version.as_deref().unwrap_or("(version not stated)")
        );
        let parent = id.split_once('.').and_then(|(p, _)| self.technique(p));
        Some(match parent {
            Some(p) => format!("not in {release}; its parent {} ({}) is", p.id, p.name),
            None => format!("not in {release}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_what_alerts_and_people_write() {
        assert_eq!(normalize("T1059").as_deref(), Some("T1059"));
        assert_eq!(normalize("t1059.001").as_deref(), Some("T1059.001"));
        assert_eq!(normalize(" T1566.001 ").as_deref(), Some("T1566.001"));
        assert_eq!(normalize("T1059/001").as_deref(), Some("T1059.001"));
        assert_eq!(normalize("T 1059.001").as_deref(), Some("T1059.001"));
    }

    #[test]
    fn rejects_what_is_not_a_technique_id() {
        for q in ["", "T", "T105", "T10590", "T1059.01", "T1059.0011", "TA0001", "G0016", "1059", "T1059.", "T١٠٥٩"]
        {
            assert_eq!(normalize(q), None, "{q:?}");
        }
    }
}
