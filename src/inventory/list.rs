//! Plain lists of technique IDs (.txt or .csv): any cell of any line that is a technique ID
//! counts, so a one-ID-per-line file and a spreadsheet export with a header both work; `#`
//! starts a comment.

use super::{Found, State, technique_like};

pub(crate) fn read(text: &str, file: &str) -> Result<(Vec<Found>, Vec<String>), String> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let ids: Vec<String> =
            line.split([',', ';', '\t']).map(|c| c.trim().trim_matches('"')).filter_map(technique_like).collect();
        if !ids.is_empty() {
            found.push(Found { rule: format!("{base}:{}", n + 1), ids, state: State::Enabled });
        }
    }
    Ok((found, vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_are_ids() {
        let csv = "technique,name,owner\n# covered by EDR\nT1059.001,PowerShell,soc\n\"t1003\",\"OS Credential Dumping\",soc\nnot,an,id\nT1566.001 # phishing\n";
        let (found, _) = read(csv, "dir/coverage.csv").unwrap();
        let ids: Vec<&str> = found.iter().flat_map(|f| f.ids.iter().map(String::as_str)).collect();
        assert_eq!(ids, ["T1059.001", "T1003", "T1566.001"]);
        assert_eq!(found[0].rule, "coverage.csv:3");
    }
}
