//! The incident's platforms, as ATT&CK names them (`x_mitre_platforms`): which products raised
//! its alerts and what its evidence is. A technique suggested for a blind stage must run on one
//! of them — a cloud-only business e-mail compromise is not told to hunt Windows scheduled tasks.

use std::collections::BTreeSet;

use crate::model::Incident;

/// The platforms, sorted; empty when nothing in the incident says (then nothing is filtered).
pub(crate) fn infer(incident: &Incident) -> Vec<String> {
    let mut out: BTreeSet<&'static str> = BTreeSet::new();
    for a in &incident.alerts {
        let source = a.service_source.as_deref().unwrap_or_default().to_ascii_lowercase();
        match source.as_str() {
            // Defender for Identity watches domain controllers: Active Directory on Windows.
            "microsoftdefenderforidentity" => {
                out.extend(["Windows", "Identity Provider"]);
            }
            "azureadidentityprotection" | "microsoftentraidprotection" => {
                out.insert("Identity Provider");
            }
            "microsoftdefenderforoffice365" | "datalossprevention" => {
                out.insert("Office Suite");
            }
            "microsoftdefenderforcloudapps" | "microsoftappgovernance" => {
                out.extend(["SaaS", "Office Suite", "Identity Provider"]);
            }
            "microsoftdefenderforcloud" => {
                out.insert("IaaS");
            }
            _ => {}
        }
        for e in &a.evidence {
            match e.kind.as_str() {
                "deviceEvidence" => {
                    out.extend(device_platforms(e.props.get("osPlatform").map(String::as_str)));
                }
                // Only Windows has a registry.
                "registryKeyEvidence" | "registryValueEvidence" => {
                    out.insert("Windows");
                }
                "mailboxEvidence"
                | "analyzedMessageEvidence"
                | "mailClusterEvidence"
                | "mailboxConfigurationEvidence" => {
                    out.insert("Office Suite");
                }
                "cloudApplicationEvidence" | "oauthApplicationEvidence" => {
                    out.extend(["SaaS", "Identity Provider"]);
                }
                "userEvidence" if is_cloud_account(e) => {
                    out.insert("Identity Provider");
                }
                k if k.starts_with("azure") || k.starts_with("amazon") || k.starts_with("google") => {
                    out.insert("IaaS");
                }
                k if k.starts_with("kubernetes") || k.starts_with("container") => {
                    out.insert("Containers");
                }
                _ => {}
            }
        }
    }
    // Endpoint alerts without device evidence still ran on an endpoint; its OS is unknown.
    let endpoint = incident
        .alerts
        .iter()
        .any(|a| a.service_source.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("microsoftDefenderForEndpoint")));
    if endpoint && !out.iter().any(|p| matches!(*p, "Windows" | "Linux" | "macOS")) {
        out.extend(["Windows", "Linux", "macOS"]);
    }
    out.into_iter().map(str::to_owned).collect()
}

/// A device's platform from Defender's `osPlatform` ("Windows11", "WindowsServer2022", "Linux",
/// "macOS", "Ubuntu", …); all three endpoint platforms when it is not recorded.
fn device_platforms(os: Option<&str>) -> Vec<&'static str> {
    let os = os.unwrap_or_default().to_ascii_lowercase();
    if os.starts_with("windows") {
        vec!["Windows"]
    } else if os.starts_with("mac") || os.starts_with("os x") || os.starts_with("osx") {
        vec!["macOS"]
    } else if ["linux", "ubuntu", "debian", "redhat", "rhel", "centos", "suse", "oracle"]
        .iter()
        .any(|l| os.starts_with(l))
    {
        vec!["Linux"]
    } else {
        vec!["Windows", "Linux", "macOS"]
    }
}

/// A user known to Entra ID: the identity provider is part of the incident.
fn is_cloud_account(e: &crate::model::Evidence) -> bool {
    e.props.contains_key("azureAdUserId") || e.props.contains_key("userObjectId")
}

/// Whether a technique that runs on `platforms` (ATT&CK's) fits the incident's. "Office 365"
/// is the name releases before 16 gave "Office Suite".
pub(crate) fn fits(incident_platforms: &[String], technique_platforms: &[String]) -> bool {
    incident_platforms.is_empty()
        || technique_platforms.iter().any(|p| {
            let p = if p == "Office 365" { "Office Suite" } else { p.as_str() };
            incident_platforms.iter().any(|i| i == p)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Incident;
    use serde_json::json;

    fn incident(alerts: serde_json::Value) -> Incident {
        Incident::from_graph(&json!({"id": "1", "lastUpdateDateTime": "2026-11-01T10:00:00Z", "alerts": alerts}))
            .unwrap()
    }

    #[test]
    fn a_cloud_only_incident_has_no_endpoint_platform() {
        let i = incident(json!([
            {"id": "a", "serviceSource": "azureAdIdentityProtection",
             "evidence": [{"@odata.type": "#microsoft.graph.security.userEvidence",
                           "userAccount": {"userPrincipalName": "kim@contoso.com", "azureAdUserId": "9f1c"}}]},
            {"id": "b", "serviceSource": "microsoftDefenderForOffice365",
             "evidence": [{"@odata.type": "#microsoft.graph.security.mailboxEvidence", "primaryAddress": "kim@contoso.com"}]}
        ]));
        assert_eq!(infer(&i), ["Identity Provider", "Office Suite"]);
    }

    #[test]
    fn devices_by_their_recorded_os_and_all_endpoints_when_unknown() {
        let i = incident(json!([
            {"id": "a", "serviceSource": "microsoftDefenderForEndpoint",
             "evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "fs-02", "osPlatform": "WindowsServer2022"}]}
        ]));
        assert_eq!(infer(&i), ["Windows"]);
        let i = incident(json!([{"id": "a", "serviceSource": "microsoftDefenderForEndpoint", "evidence": []}]));
        assert_eq!(infer(&i), ["Linux", "Windows", "macOS"]);
        assert!(infer(&incident(json!([{"id": "a"}]))).is_empty(), "nothing says: nothing is filtered");
    }

    #[test]
    fn a_technique_fits_when_it_runs_on_one_of_the_platforms() {
        let cloud = vec!["Identity Provider".to_owned(), "Office Suite".to_owned()];
        assert!(!fits(&cloud, &["Windows".to_owned()]));
        assert!(fits(&cloud, &["Office 365".to_owned(), "SaaS".to_owned()]));
        assert!(fits(&[], &["Windows".to_owned()]));
    }
}
