//! What an access token says about itself: the application permissions granted (`roles`), the
//! tenant that issued it (`tid`). Read for `hindsight check`, never validated: the token is for
//! Microsoft's APIs, which validate it.

use base64::Engine;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub roles: Vec<String>,
    pub tid: Option<String>,
    pub aud: Option<String>,
}

/// The claims of a JWT access token, or `None` when it is not one (an opaque token).
pub fn decode(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A feature of a Graph source and the application permissions that let it work (any one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub setting: &'static str,
    pub permissions: &'static [&'static str],
}

pub const INCIDENTS: Feature = Feature {
    name: "incidents",
    setting: "every Graph source",
    permissions: &["SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"],
};
pub const HUNTS: Feature =
    Feature { name: "retro-hunts", setting: "hunts = true", permissions: &["ThreatHunting.Read.All"] };
pub const DETECTION_RULES: Feature = Feature {
    name: "detection rules",
    setting: "detection_rules = true",
    permissions: &["CustomDetection.Read.All", "CustomDetection.ReadWrite.All"],
};
pub const WRITE_BACK: Feature =
    Feature { name: "write-back", setting: "write_back = true", permissions: &["SecurityIncident.ReadWrite.All"] };

/// The features of `wanted` that no role of `roles` allows, each with the permission to grant.
pub fn missing<'a>(roles: &[String], wanted: &'a [Feature]) -> Vec<&'a Feature> {
    wanted.iter().filter(|f| !f.permissions.iter().any(|p| roles.iter().any(|r| r == p))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: serde_json::Value) -> String {
        let e = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", e(&serde_json::json!({"typ": "JWT", "alg": "RS256"})), e(&claims))
    }

    #[test]
    fn roles_name_what_is_missing() {
        let t = token(
            serde_json::json!({"roles": ["SecurityIncident.ReadWrite.All", "CustomDetection.Read.All"], "tid": "t1"}),
        );
        let c = decode(&t).unwrap();
        assert_eq!(c.tid.as_deref(), Some("t1"));
        let missing = missing(&c.roles, &[INCIDENTS, HUNTS, DETECTION_RULES, WRITE_BACK]);
        assert_eq!(missing.iter().map(|f| f.permissions[0]).collect::<Vec<_>>(), ["ThreatHunting.Read.All"]);
        assert!(decode("opaque-token").is_none());
        assert!(decode(&token(serde_json::json!({"tid": "t"}))).unwrap().roles.is_empty());
    }
}
