//! Hunting queries: KQL for Microsoft Defender XDR advanced hunting, kept as data
//! (`data/hunts/library.toml`, embedded; a site's own folders of Azure-Sentinel hunting YAML
//! beside it), keyed by ATT&CK technique. A review fills them with its incident's entities and
//! window ([`fill`]) for the techniques it suspects in a blind stage, and sweeps the estate for
//! the incident's indicators.

pub mod fill;
pub mod library;
pub mod sentinel;

pub use fill::{Entities, Window};
pub use library::{HuntError, Library, Scope, Template};

/// How long advanced hunting keeps data: after this, a window is gone.
pub const RETENTION_DAYS: i64 = 30;

/// The platforms (ATT&CK's names) whose activity an advanced hunting table records: a hunt on
/// a table none of the incident's platforms writes to cannot find anything of it (a business
/// e-mail compromise has no device logons). `None` for a table not known here: not filtered.
pub fn table_platforms(table: &str) -> Option<&'static [&'static str]> {
    const ENDPOINT: &[&str] = &["Windows", "Linux", "macOS"];
    let t = table.trim();
    Some(if t.starts_with("Device") {
        ENDPOINT
    } else if t.starts_with("Identity") {
        // Defender for Identity: Active Directory (Windows domain controllers) and Entra ID.
        &["Windows", "Identity Provider"]
    } else if t.starts_with("AAD") || t.starts_with("EntraId") || t == "GraphApiAuditEvents" {
        &["Identity Provider"]
    } else if t.starts_with("Email") || t == "UrlClickEvents" || t.starts_with("Message") {
        &["Office Suite"]
    } else if t == "CloudAppEvents" || t == "OAuthAppInfo" {
        &["SaaS", "Office Suite", "Identity Provider"]
    } else if t == "CloudAuditEvents" || t == "AzureActivity" {
        &["IaaS"]
    } else {
        return None;
    })
}
