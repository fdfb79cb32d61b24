//! Oversized incident files for the memory benchmark: one resolved incident in Graph's JSON
//! (`GET /security/incidents/{id}?$expand=alerts`) with a great many alerts, written straight to
//! a file so that the generator itself never holds the document.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// The incident's own fields: resolved, true positive, with the alerts to follow.
fn head(id: &str) -> Value {
    json!({
        "id": id, "tenantId": "2f5b6c1e-8a3d-4c52-9e1a-7d4b0c9e3a11", "status": "resolved",
        "incidentWebUrl": format!("https://security.microsoft.com/incident2/{id}/overview"),
        "displayName": "Mass alerting on many endpoints", "createdDateTime": "2026-10-20T22:27:00Z",
        "lastUpdateDateTime": "2026-10-22T22:05:00Z", "assignedTo": "ir.oncall@contoso.com",
        "classification": "truePositive", "determination": "malware", "severity": "high",
        "customTags": ["Load"], "systemTags": [], "comments": []
    })
}

/// Writes `head` with `alerts` alerts from `alert(n)`, compact, one incident object.
fn write(path: &Path, id: &str, alerts: usize, mut alert: impl FnMut(usize) -> Value) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let head = serde_json::to_string(&head(id))?;
    // `{...,"comments":[]}` becomes `{...,"comments":[],"alerts":[...]}`.
    out.write_all(&head.as_bytes()[..head.len() - 1])?;
    out.write_all(b",\"alerts\":[")?;
    for n in 0..alerts {
        if n > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, &alert(n))?;
    }
    out.write_all(b"]}")?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// `alerts` small alerts (106 bytes each: 150,000 make a 15.9 MB file, just under the directory
/// source's default `max_file_bytes` of 16 MiB): an ID, a title, a category and one technique;
/// no evidence.
pub fn small(path: &Path, alerts: usize) -> std::io::Result<u64> {
    const TECHNIQUES: [&str; 8] =
        ["T1059.001", "T1003.001", "T1021.002", "T1078.002", "T1566.001", "T1053.005", "T1547.001", "T1562.001"];
    write(path, "900001", alerts, |n| {
        json!({
            "id": format!("da{n:06}"), "title": "Suspicious process ran", "category": "Execution",
            "mitreTechniques": [TECHNIQUES[n % TECHNIQUES.len()]]
        })
    })
}

/// `alerts` alerts as Defender exports them: every field of the alerts of
/// examples/incidents/human-operated-ransomware.json (2 to 3 evidence items each: device,
/// user, process, IP, file), cycled with fresh IDs.
pub fn realistic(path: &Path, alerts: usize) -> std::io::Result<u64> {
    let sample: Value = serde_json::from_str(include_str!("../../examples/incidents/human-operated-ransomware.json"))?;
    let pattern: Vec<Value> = sample["alerts"].as_array().cloned().unwrap_or_default();
    assert!(!pattern.is_empty(), "the sample has alerts");
    write(path, "900002", alerts, |n| {
        let mut a = pattern[n % pattern.len()].clone();
        let id = format!("da{n:08}-c3f1-4d2a-9b7e-0e1f00107701");
        a["alertWebUrl"] = json!(format!("https://security.microsoft.com/alerts/{id}"));
        a["providerAlertId"] = json!(id[2..].to_owned());
        a["incidentId"] = json!("900002");
        a["id"] = json!(id);
        a
    })
}
