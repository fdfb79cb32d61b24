//! Certificate credentials (`private_key_jwt`): the app registration holds the certificate's
//! public part, Hindsight the private key, and each token request carries a fresh client
//! assertion signed with it (shared `specs/entra-credentials.md`).
//!
//! The current documentation asks for `PS256` with the `x5t#S256` header; older pages show
//! `RS256` with the SHA-1 `x5t`, which the service still accepts. `PS256` is the default,
//! `RS256` a setting for tenants or proxies that insist on the old form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long an assertion is valid: the service takes at most 10 minutes after `nbf`.
const ASSERTION_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);

/// The signature algorithm of the client assertion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PSS with SHA-256 and the `x5t#S256` header: the current documented form.
    #[default]
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and the SHA-1 `x5t` header: the older form.
    RS256,
}

/// Which file a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Certificate,
    Key,
}

/// A certificate with its private key, checked to belong together.
pub struct Certificate {
    key: RsaKeyPair,
    algorithm: Algorithm,
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    x5t_s256: String,
    /// base64url SHA-1 of the certificate's DER (`x5t`).
    x5t: String,
    /// Upper-case hex SHA-1, as the Entra admin center shows the certificate's thumbprint.
    pub thumbprint: String,
    pub subject: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never: the thumbprint says which certificate it is.
        write!(f, "Certificate({}, {:?}, key [redacted])", self.thumbprint, self.algorithm)
    }
}

impl Certificate {
    /// The certificate from `certificate_pem` (its first CERTIFICATE block) and the RSA private
    /// key from `key_pem` (PKCS#8 or PKCS#1). Errors say what is wrong with which, never the key.
    pub fn from_pem(
        certificate_pem: &[u8],
        key_pem: &[u8],
        algorithm: Algorithm,
    ) -> Result<Certificate, (Part, String)> {
        let bad_cert = |m: String| (Part::Certificate, m);
        let der = CertificateDer::pem_slice_iter(certificate_pem)
            .next()
            .ok_or_else(|| bad_cert("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()))?
            .map_err(|e| bad_cert(format!("is not a readable PEM certificate ({e})")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| bad_cert(format!("is not an X.509 certificate ({e})")))?;
        let key = private_key(key_pem).map_err(|m| (Part::Key, m))?;
        // The certificate's SubjectPublicKeyInfo holds an RSAPublicKey, as does ring's public key.
        if cert.public_key().subject_public_key.data.as_ref() != ring::signature::KeyPair::public_key(&key).as_ref() {
            return Err((Part::Key, "does not belong to the certificate (their public keys differ)".into()));
        }
        let time = |t: x509_parser::time::ASN1Time| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
        Ok(Certificate {
            x5t_s256: B64URL.encode(Sha256::digest(der.as_ref())),
            x5t: B64URL.encode(sha1.as_ref()),
            thumbprint: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            subject: cert.subject().to_string(),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            key,
            algorithm,
            rng: SystemRandom::new(),
        })
    }

    /// A signed client assertion for a token request to `audience` (the token endpoint URL) by
    /// `client_id`, valid from `now` for five minutes, with a fresh `jti`.
    pub fn assertion(&self, audience: &str, client_id: &str, now: DateTime<Utc>) -> Result<String, String> {
        let header = match self.algorithm {
            Algorithm::PS256 => serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256}),
            Algorithm::RS256 => serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t}),
        };
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": guid(),
            "nbf": now.timestamp(),
            "iat": now.timestamp(),
            "exp": (now + ASSERTION_LIFETIME).timestamp(),
        });
        let signed = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let scheme: &dyn ring::signature::RsaEncoding = match self.algorithm {
            Algorithm::PS256 => &ring::signature::RSA_PSS_SHA256,
            Algorithm::RS256 => &ring::signature::RSA_PKCS1_SHA256,
        };
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(scheme, &self.rng, signed.as_bytes(), &mut signature)
            .map_err(|_| "could not sign the client assertion with the private key".to_owned())?;
        Ok(format!("{signed}.{}", B64URL.encode(signature)))
    }

    /// Days from `now` until the certificate expires (negative once it has).
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        (self.not_after - now).num_days()
    }
}

fn private_key(pem: &[u8]) -> Result<RsaKeyPair, String> {
    if memchr::memmem::find(pem, b"ENCRYPTED PRIVATE KEY").is_some() {
        return Err("holds an encrypted private key: Hindsight reads an unencrypted key from a file only it can read \
                    (`openssl pkey -in key.pem -out plain.pem`, then `chmod 600`)"
            .into());
    }
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => "holds no PEM private key (-----BEGIN PRIVATE KEY-----)".into(),
        other => format!("is not a readable PEM private key ({other})"),
    })?;
    let parsed = match &key {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(_) => {
            return Err("holds an EC key: Entra ID certificate credentials need an RSA key".into());
        }
        _ => return Err("holds a key of a kind Entra ID certificate credentials do not take".into()),
    };
    // ring's reason names what it refused (too short, not RSA); never the key's bytes.
    parsed.map_err(|e| format!("holds no usable RSA key ({e})"))
}

/// A random (version 4) GUID, for `jti`.
pub(crate) fn guid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEY: &str = include_str!("../../tests/fixtures/entra/app-key.pem");
    const OTHER_KEY_PKCS1: &str = include_str!("../../tests/fixtures/entra/other-key-pkcs1.pem");
    const EC_KEY: &str = include_str!("../../tests/fixtures/entra/ec-key.pem");

    fn certificate_for(key_pem: &str) -> String {
        let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
        let params = rcgen::CertificateParams::new(vec!["hindsight.contoso.com".into()]).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn part(jwt: &str, n: usize) -> serde_json::Value {
        serde_json::from_slice(&B64URL.decode(jwt.split('.').nth(n).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn assertions_are_signed_with_fresh_ids_in_both_forms() {
        let pem = certificate_for(APP_KEY);
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        for alg in [Algorithm::PS256, Algorithm::RS256] {
            let cert = Certificate::from_pem(pem.as_bytes(), APP_KEY.as_bytes(), alg).unwrap();
            let a = cert.assertion("https://login/t/oauth2/v2.0/token", "app-id", now).unwrap();
            let b = cert.assertion("https://login/t/oauth2/v2.0/token", "app-id", now).unwrap();
            let (header, claims) = (part(&a, 0), part(&a, 1));
            assert_eq!(header["alg"], format!("{alg:?}"));
            match alg {
                Algorithm::PS256 => assert_eq!(header["x5t#S256"].as_str().unwrap().len(), 43),
                Algorithm::RS256 => assert_eq!(header["x5t"].as_str().unwrap().len(), 27),
            }
            assert_eq!(claims["iss"], "app-id");
            assert_eq!(claims["sub"], "app-id");
            assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
            assert_eq!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(), 300);
            assert_ne!(claims["jti"], part(&b, 1)["jti"], "a new jti for each assertion");
            assert_eq!(cert.thumbprint.len(), 40);
            assert!(!format!("{cert:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn wrong_keys_and_files_are_named() {
        let pem = certificate_for(APP_KEY);
        let err = |cert: &str, key: &str| {
            Certificate::from_pem(cert.as_bytes(), key.as_bytes(), Algorithm::PS256).map(|_| ()).unwrap_err()
        };
        assert_eq!(
            err(&pem, OTHER_KEY_PKCS1),
            (Part::Key, "does not belong to the certificate (their public keys differ)".into())
        );
        assert!(err(&pem, EC_KEY).1.contains("EC key"), "{:?}", err(&pem, EC_KEY));
        assert_eq!(err(APP_KEY, APP_KEY).0, Part::Certificate);
        assert!(err(APP_KEY, APP_KEY).1.contains("no PEM certificate"));
        assert!(err(&pem, &pem).1.contains("no PEM private key"));
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(err(&pem, encrypted).1.contains("encrypted"));
        // A PKCS#1 key with its own certificate is fine.
        let other = certificate_for(include_str!("../../tests/fixtures/entra/other-key.pem"));
        assert!(Certificate::from_pem(other.as_bytes(), OTHER_KEY_PKCS1.as_bytes(), Algorithm::RS256).is_ok());
    }

    #[test]
    fn guids_are_version_4() {
        let g = guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_ne!(g, guid());
    }
}
