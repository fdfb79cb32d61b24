//! Credentials known exposed: where credential access was observed, how (from the technique),
//! the artefact left behind and the accounts the alerts name. It drives the reset follow-up.

use super::{Ctx, short_host, uniq};
use crate::review::model::ExposedCredential;

/// How each credential access technique exposes credentials, most specific first.
const HOW: &[(&str, &str)] = &[
    ("T1003.001", "LSASS memory dump"),
    ("T1003.002", "SAM database copy"),
    ("T1003.003", "NTDS.dit copy"),
    ("T1003.004", "LSA secrets dump"),
    ("T1003.005", "cached domain credentials dump"),
    ("T1003.006", "DCSync"),
    ("T1003.008", "/etc/passwd and /etc/shadow read"),
    ("T1003", "OS credential dumping"),
    ("T1558.001", "golden ticket"),
    ("T1558.002", "silver ticket"),
    ("T1558.003", "Kerberoasting"),
    ("T1558.004", "AS-REP roasting"),
    ("T1558", "Kerberos ticket theft or forgery"),
    ("T1528", "application access token theft"),
    ("T1539", "web session cookie theft"),
    ("T1110.001", "password guessing"),
    ("T1110.002", "password cracking"),
    ("T1110.003", "password spraying"),
    ("T1110.004", "credential stuffing"),
    ("T1110", "brute force"),
    ("T1555", "credentials from password stores"),
    ("T1552", "unsecured credentials"),
    ("T1557", "adversary-in-the-middle"),
    ("T1556", "authentication process modified"),
    ("T1606", "forged web credentials"),
    ("T1621", "MFA request flooding"),
    ("T1111", "MFA interception"),
    ("T1056", "input capture"),
    ("T1212", "exploitation for credential access"),
    ("T1187", "forced authentication"),
    ("T1040", "network sniffing"),
];

/// Artefacts that hold credentials, as they appear in file names or command lines.
const ARTEFACT_ENDINGS: &[&str] = &[".dmp", "ntds.dit", ".hiv", ".hive", ".kirbi", ".ccache"];

pub(in crate::review) fn exposed(c: &Ctx) -> Vec<ExposedCredential> {
    if !c.real {
        return vec![];
    }
    let mut out: Vec<ExposedCredential> = Vec::new();
    for t in &c.review.techniques {
        let Some(how) = how(&t.id).or_else(|| {
            t.tactics.iter().any(|x| x == "credential-access").then(|| t.name.clone().unwrap_or_else(|| t.id.clone()))
        }) else {
            continue;
        };
        let alerts: Vec<&str> = t.alerts.iter().map(String::as_str).collect();
        let hosts = uniq(c.entities(&["device"], &alerts).into_iter().map(|e| short_host(&e.name)).collect());
        let accounts = uniq(c.entities(&["user"], &alerts).into_iter().map(|e| e.name.clone()).collect());
        let artefact = artefact(c, &alerts);
        let at = alerts.iter().filter_map(|a| c.began(a)).min();
        let per_host: Vec<Option<String>> =
            if hosts.is_empty() { vec![None] } else { hosts.into_iter().map(Some).collect() };
        for host in per_host {
            out.push(ExposedCredential {
                host,
                how: how.clone(),
                technique: t.id.clone(),
                artefact: artefact.clone(),
                accounts: accounts.clone(),
                at,
                alerts: t.alerts.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.technique.cmp(&b.technique)));
    out
}

fn how(technique: &str) -> Option<String> {
    HOW.iter()
        .find(|(p, _)| {
            technique == *p || (!p.contains('.') && technique.strip_prefix(p).is_some_and(|rest| rest.starts_with('.')))
        })
        .map(|(_, h)| (*h).to_owned())
}

/// The credential artefact of the alerts: a file the evidence names, else a dump path in a
/// process's command line.
fn artefact(c: &Ctx, alerts: &[&str]) -> Option<String> {
    let looks = |s: &str| ARTEFACT_ENDINGS.iter().any(|e| s.to_lowercase().ends_with(e));
    let files = c.entities(&["file"], alerts);
    if let Some(f) = files.iter().find(|f| looks(&f.name)).or(files.first()) {
        return Some(f.ids.get("filePath").map_or_else(|| f.name.clone(), |p| format!("{p}\\{}", f.name)));
    }
    c.entities(&["process"], alerts)
        .iter()
        .flat_map(|p| p.name.split_whitespace())
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '\'' || c == ','))
        .find(|w| looks(w))
        .map(str::to_owned)
}
