//! ATT&CK software named by what Defender and the evidence call it: "CobaltStrike", "Cobalt
//! Strike", "Behavior:Win32/CobaltStrike.A!dha" and `cobaltstrike.exe` all name S0154. The
//! first step of attribution by software (issue 24): which known software the incident shows,
//! and so which groups and campaigns use it.

use std::collections::HashMap;

use super::Catalog;
use super::model::SoftwareKind;

/// Names shorter than this match only exactly as a whole Defender family or file name: "at",
/// "net" or "cmd" inside a longer word name nothing.
const MIN_NAME: usize = 3;

/// Programs that come with Windows or Linux (and ATT&CK lists as tools): not evidence of a
/// group when they appear as a file or process name.
const NATIVE: &[&str] = &[
    "schtasks",
    "nltest",
    "wevtutil",
    "netsh",
    "reg",
    "cmd",
    "ipconfig",
    "systeminfo",
    "tasklist",
    "whoami",
    "netstat",
    "ping",
    "certutil",
    "bitsadmin",
    "wmic",
    "powershell",
    "pwsh",
    "cscript",
    "wscript",
    "rundll32",
    "regsvr32",
    "mshta",
    "vssadmin",
    "esentutl",
    "ntdsutil",
    "dsquery",
    "route",
    "arp",
    "ftp",
    "expand",
    "xcopy",
    "robocopy",
    "forfiles",
    "query",
    "tscon",
    "msiexec",
    "nbtstat",
    "attrib",
    "icacls",
    "takeown",
    "fsutil",
    "cacls",
    "findstr",
    "tar",
    "curl",
    "ssh",
    "net1",
    "wmiprvse",
    "sc",
    "at",
    "net",
    "taskkill",
    "diskshadow",
    "wbadmin",
    "bcdedit",
    "mstsc",
    "nslookup",
    "quser",
    "qwinsta",
    "klist",
    "cmdkey",
    "ssh-keygen",
    "crontab",
    "sudo",
    "wget",
    "python",
    "python3",
    "bash",
];

/// One software name or alias that matched, and the text it matched in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareMatch {
    /// The software's ATT&CK ID (S0154).
    pub id: String,
    pub name: String,
    pub kind: SoftwareKind,
    /// The text as the alert or evidence had it.
    pub matched: String,
}

/// Every active software's name and aliases, normalised (letters and digits, lower case).
#[derive(Debug, Default)]
pub struct SoftwareIndex {
    by_name: HashMap<String, usize>,
}

/// Letters and digits, lower case: "Cobalt Strike" and "CobaltStrike" are one key.
pub fn key(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The family in a Defender threat name: `Behavior:Win32/CobaltStrike.A!dha` → `CobaltStrike`,
/// `Ransom:Win64/BlackBasta.MK!MTB` → `BlackBasta`, `HackTool:Win32/Mimikatz` → `Mimikatz`;
/// any other text as it is.
pub fn family(threat: &str) -> &str {
    let t = threat.trim();
    let after_type = t.split_once(':').map_or(t, |(_, rest)| rest);
    let after_platform = after_type.split_once('/').map_or(after_type, |(_, rest)| rest);
    let name = after_platform.split(['!', '.']).next().unwrap_or(after_platform);
    if name.is_empty() { t } else { name }
}

/// A file or process name without its folder and extension: `C:\tmp\mimikatz.exe` → `mimikatz`.
pub fn file_stem(name: &str) -> &str {
    let base = name.rsplit(['\\', '/']).next().unwrap_or(name);
    match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 4 => stem,
        _ => base,
    }
}

/// Whether a program (name or file stem) comes with the operating system: `schtasks`,
/// `netsh.exe`, `cipher`. Defender does not name these as threats, and they name no one.
pub fn is_native(name: &str) -> bool {
    let k = key(file_stem(name));
    NATIVE.contains(&k.as_str()) || NATIVE_MORE.contains(&k.as_str())
}

/// More operating-system programs ATT&CK lists as software.
const NATIVE_MORE: &[&str] = &["cipher", "pcalua", "auditpol", "gpresult", "dism"];

impl SoftwareIndex {
    pub fn new(catalog: &Catalog) -> SoftwareIndex {
        let mut by_name = HashMap::new();
        for (i, s) in catalog.data().software.iter().enumerate().filter(|(_, s)| s.lifecycle.is_active()) {
            for n in std::iter::once(&s.name).chain(&s.aliases) {
                let k = key(n);
                if k.len() >= 2 {
                    by_name.entry(k).or_insert(i);
                }
            }
        }
        SoftwareIndex { by_name }
    }

    /// The software a Defender threat name (`threatFamilyName`, `threatDisplayName`) names.
    pub fn threat(&self, catalog: &Catalog, text: &str) -> Option<SoftwareMatch> {
        self.exact(catalog, family(text), text)
    }

    /// The software an evidence file or process name is (`mimikatz.exe`, `AdFind.exe`). The
    /// operating system's own programs (schtasks, nltest, wevtutil, …) are ATT&CK "tools" too,
    /// but every attacker and every administrator runs them: they name no one.
    pub fn file(&self, catalog: &Catalog, name: &str) -> Option<SoftwareMatch> {
        let stem = file_stem(name);
        // A file named like a three-letter tool ("net.exe", "at.exe") is the system's own.
        if key(stem).len() < MIN_NAME + 1 || is_native(stem) {
            return None;
        }
        self.exact(catalog, stem, name)
    }

    fn exact(&self, catalog: &Catalog, name: &str, matched: &str) -> Option<SoftwareMatch> {
        let &i = self.by_name.get(&key(name))?;
        let s = &catalog.data().software[i];
        Some(SoftwareMatch { id: s.id.clone(), name: s.name.clone(), kind: s.kind, matched: matched.trim().to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defender_threat_names_evidence_files_and_plain_names_find_the_same_software() {
        let catalog = crate::attack::store::embedded().unwrap();
        let idx = SoftwareIndex::new(&catalog);
        for text in
            ["CobaltStrike", "Cobalt Strike", "Behavior:Win32/CobaltStrike.A!dha", "Trojan:Win64/CobaltStrike.MK!MTB"]
        {
            assert_eq!(idx.threat(&catalog, text).map(|m| m.id), Some("S0154".to_owned()), "{text}");
        }
        let m = idx.file(&catalog, r"C:\ProgramData\mimikatz.exe").unwrap();
        assert_eq!((m.id.as_str(), m.matched.as_str()), ("S0002", r"C:\ProgramData\mimikatz.exe"));
        assert_eq!(idx.threat(&catalog, "HackTool:Win32/Mimikatz").unwrap().id, "S0002");
        // The system's own short tools are not evidence of anyone.
        assert!(idx.file(&catalog, "net.exe").is_none() && idx.file(&catalog, "at.exe").is_none());
        assert!(idx.file(&catalog, "schtasks.exe").is_none() && idx.file(&catalog, "nltest.exe").is_none());
        assert_eq!(idx.file(&catalog, "AdFind.exe").unwrap().id, "S0552");
        assert!(idx.threat(&catalog, "Trojan:Win32/Wacatac.B!ml").is_none(), "a generic detection names no software");
    }

    #[test]
    fn families_and_stems() {
        assert_eq!(family("Ransom:Win64/BlackBasta.MK!MTB"), "BlackBasta");
        assert_eq!(family("Qakbot"), "Qakbot");
        assert_eq!(file_stem("/usr/bin/chisel"), "chisel");
        assert_eq!(file_stem("AdFind.exe"), "AdFind");
    }
}
