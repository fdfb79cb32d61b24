//! Signing in without a stored secret (shared/specs/entra-credentials.md), against the Graph
//! fake's token endpoint, which verifies certificate assertions with the registered certificate
//! and matches federated tokens to the app's federated credentials, and its instance metadata
//! endpoint: each credential kind through the real daemon, each refusal as one line of
//! `hindsight check` naming the source, the `roles` claim read for missing permissions, the
//! token file re-read, one token shared by sources with the same app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fakes;
mod rig;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use common::DaemonConfig;
use fakes::graph::{Credentials, FEDERATED_AUDIENCE, FakeGraph, Federated, ManagedIdentity};
use hindsight::entra::certificate::{Algorithm, Certificate};
use hindsight::entra::{App, Credential, Retry, TokenClient, TokenError};
use rig::{Rig, SECRET, creds, hook_events, ready, resolved, until};
use secrecy::ExposeSecret;

const APP_KEY: &str = include_str!("fixtures/entra/app-key.pem");
const OTHER_KEY: &str = include_str!("fixtures/entra/other-key.pem");
const ISSUER: &str = "https://oidc.aks.example.test/6b1f3e2a/";
const SUBJECT: &str = "system:serviceaccount:security:hindsight";
const GRAPH: &str = "https://graph.microsoft.com/.default";

/// A certificate for `key`, valid from yesterday for `days` more days.
fn certificate(key: &str, days: i64) -> String {
    let key = rcgen::KeyPair::from_pem(key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["hindsight.contoso.com".into()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Hindsight Contoso");
    params.self_signed(&key).unwrap().pem()
}

/// A projected service-account token as the kubelet writes it (its signature is not checked
/// by the fake; its issuer, subject, audience and expiry are).
fn federated_token(subject: &str, expires_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let part = |v: serde_json::Value| B64URL.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(serde_json::json!({"alg": "RS256", "kid": "k8s"})),
        part(
            serde_json::json!({"iss": ISSUER, "sub": subject, "aud": [FEDERATED_AUDIENCE], "iat": now, "nbf": now, "exp": now + expires_in})
        ),
        B64URL.encode(b"kubelet-signature")
    )
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The registered certificate, a federated credential and a user-assigned managed identity.
fn registered() -> Credentials {
    Credentials {
        certificates: vec![certificate(APP_KEY, 365)],
        federated: vec![Federated { issuer: ISSUER.into(), subject: SUBJECT.into() }],
        managed_identity: Some(ManagedIdentity {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: Some("mi-client-1".into()),
            resource_id: None,
        }),
        ..creds()
    }
}

/// The rig's configuration with the source signing in some other way than its secret.
fn without_secret(graph: &FakeGraph, hook: &str) -> DaemonConfig {
    rig::config(graph, hook, None).unset_in("contoso", "client_secret_file")
}

/// The daemon started with `config` (and `env`) reviews one incident and delivers it.
async fn reviews_through(
    graph: &FakeGraph,
    hook: &fakes::receiver::Shared,
    rig: &Rig,
    env: &[(&str, &str)],
) -> rig::Daemon {
    let daemon = rig.start(env);
    ready(rig.http, &daemon).await;
    graph.upsert(resolved("8100"));
    until(Duration::from_secs(20), "the review at the webhook", &daemon, || hook_events(hook).0.len() == 1).await;
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_signs_in_and_the_daemon_reviews_through_it() {
    // Twenty days left: the daemon warns in its log and exports the expiry.
    let app_cert = certificate(APP_KEY, 20);
    let graph = FakeGraph::start(Credentials { certificates: vec![app_cert.clone()], ..registered() }).await;
    let (hook, url) = fakes::receiver::start().await;
    let config = without_secret(&graph, &url)
        .set_in("contoso", "credential", "certificate")
        .set_in("contoso", "certificate_file", "app-cert.pem")
        .set_in("contoso", "private_key_file", "app-key.pem");
    let rig = Rig::with(config);
    let credentials = rig.dir.path().join("credentials");
    std::fs::write(credentials.join("app-cert.pem"), &app_cert).unwrap();
    write_private(&credentials.join("app-key.pem"), APP_KEY);
    let daemon = reviews_through(&graph, &hook, &rig, &[]).await;
    assert!(graph.assertions_accepted() >= 1);
    let (_, metrics) = rig::get(rig.http, "/metrics").await;
    let expiry = Certificate::from_pem(app_cert.as_bytes(), APP_KEY.as_bytes(), Algorithm::PS256).unwrap().not_after;
    let gauge = format!("hindsight_certificate_expiry_timestamp_seconds{{source=\"contoso\"}} {}", expiry.timestamp());
    assert!(metrics.contains(&gauge), "{gauge} in:\n{metrics}");
    let log = daemon.log();
    assert!(log.contains("WARN") && log.contains("expires on") && log.contains("source=contoso"), "{log}");
    // Neither the key nor a token shows in the log.
    let key_line = APP_KEY.lines().nth(1).unwrap();
    assert!(!log.contains(key_line), "{log}");
    for token in graph.issued_tokens() {
        assert!(!log.contains(&token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_identity_signs_in_from_the_pods_environment() {
    let graph = FakeGraph::start(registered()).await;
    let (hook, url) = fakes::receiver::start().await;
    // As on AKS: tenant, client and sign-in host from the webhook's variables, not the table.
    let config = without_secret(&graph, &url)
        .unset_in("contoso", "tenant_id")
        .unset_in("contoso", "client_id")
        .unset_in("contoso", "login_url")
        .set_in("contoso", "credential", "workload_identity");
    let rig = Rig::with(config);
    let token_file = rig.dir.path().join("azure-identity-token");
    std::fs::write(&token_file, federated_token(SUBJECT, 3600)).unwrap();
    let login = graph.login_url();
    let env = [
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "app-1"),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AZURE_AUTHORITY_HOST", login.as_str()),
    ];
    let log = reviews_through(&graph, &hook, &rig, &env).await.log();
    assert!(graph.assertions_accepted() >= 1);
    assert!(!log.contains("kubelet-signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_signs_in_through_the_metadata_endpoint() {
    let graph = FakeGraph::start(registered()).await;
    let (hook, url) = fakes::receiver::start().await;
    let config = without_secret(&graph, &url)
        .unset_in("contoso", "client_id")
        .set_in("contoso", "credential", "managed_identity")
        .set_in("contoso", "managed_identity_id", "mi-client-1")
        .set_in("contoso", "imds_url", graph.base_url().as_str());
    let rig = Rig::with(config);
    reviews_through(&graph, &hook, &rig, &[]).await;
    // Only the metadata endpoint was asked for tokens: no token endpoint request at all.
    assert!(graph.requests().iter().all(|r| !r.path.ends_with("/oauth2/v2.0/token")));
    assert!(graph.requests().iter().any(|r| r.path == "/metadata/identity/oauth2/token"));
}

fn line<'a>(out: &'a str, source: &str) -> &'a str {
    let prefix = format!("source {source} ");
    out.lines()
        .find(|l| l.contains(&prefix) && (l.starts_with("ok") || l.starts_with("failed")))
        .unwrap_or_else(|| panic!("no line for {source}:\n{out}"))
}

/// A wrong certificate, an expired federated token, a missing token file and a host without a
/// metadata endpoint: four sources, four failed lines in one `hindsight check`, each naming its
/// source and what to fix, and a certificate near its end warned of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_is_one_clear_line_naming_its_source() {
    let soon_cert = certificate(APP_KEY, 10);
    let graph = FakeGraph::start(Credentials { certificates: vec![soon_cert.clone()], ..registered() }).await;
    let (_hook, url) = fakes::receiver::start().await;
    let closed = rig::free_port();
    let config = rig::config(&graph, &url, None)
        .graph_source("wrong-cert", "contoso.onmicrosoft.com", "app-1", &graph.graph_url(), &graph.login_url())
        .set("credential", "certificate")
        .set("certificate_file", "other-cert.pem")
        .graph_source("expired-token", "contoso.onmicrosoft.com", "app-1", &graph.graph_url(), &graph.login_url())
        .set("credential", "workload_identity")
        .set("federated_token_file", "expired.jwt")
        .graph_source("no-token-file", "contoso.onmicrosoft.com", "app-1", &graph.graph_url(), &graph.login_url())
        .set("credential", "workload_identity")
        .set("federated_token_file", "/var/run/secrets/azure/tokens/azure-identity-token-missing")
        .graph_source("not-azure", "contoso.onmicrosoft.com", "", &graph.graph_url(), &graph.login_url())
        .set("credential", "managed_identity")
        .set("imds_url", format!("http://127.0.0.1:{closed}").as_str())
        .graph_source("soon-expired", "contoso.onmicrosoft.com", "app-1", &graph.graph_url(), &graph.login_url())
        .set("credential", "certificate")
        .set("certificate_file", "soon-cert.pem")
        .set("private_key_file", "app-key.pem");
    let rig = Rig::with(config);
    let credentials = rig.dir.path().join("credentials");
    // The certificate and its key in one file, as `az ad sp create-for-rbac --create-cert` writes it.
    write_private(&credentials.join("other-cert.pem"), &format!("{}{OTHER_KEY}", certificate(OTHER_KEY, 365)));
    std::fs::write(credentials.join("soon-cert.pem"), &soon_cert).unwrap();
    write_private(&credentials.join("app-key.pem"), APP_KEY);
    let expired = rig.dir.path().join("expired.jwt");
    std::fs::write(&expired, federated_token(SUBJECT, -60)).unwrap();
    let config = std::fs::read_to_string(&rig.config).unwrap().replace("\"expired.jwt\"", &format!("{expired:?}"));
    std::fs::write(&rig.config, config).unwrap();

    let (status, out) = check_blocking(&rig).await;
    assert_eq!(status, Some(1), "{out}");
    let wrong = line(&out, "wrong-cert");
    assert!(
        wrong.starts_with("failed") && wrong.contains("AADSTS700027") && wrong.contains("not registered"),
        "{wrong}"
    );
    assert!(wrong.contains("app registration holds this certificate"), "{wrong}");
    let expired = line(&out, "expired-token");
    assert!(expired.starts_with("failed") && expired.contains("AADSTS700024"), "{expired}");
    let missing = line(&out, "no-token-file");
    assert!(missing.starts_with("failed") && missing.contains("azure-identity-token-missing"), "{missing}");
    assert!(missing.contains("azure.workload.identity/use"), "{missing}");
    let not_azure = line(&out, "not-azure");
    assert!(not_azure.starts_with("failed") && not_azure.contains("not an Azure VM"), "{not_azure}");
    // The good sources pass; the certificate near its end passes with a warning and its thumbprint.
    assert!(line(&out, "contoso").starts_with("ok"), "{out}");
    let soon = out.lines().filter(|l| l.contains("source soon-expired")).collect::<Vec<_>>();
    assert!(soon.iter().any(|l| l.starts_with("warning") && l.contains("expires on") && l.contains("day(s)")), "{out}");
    assert!(
        soon.iter()
            .any(|l| l.starts_with("ok") && l.contains("with certificate ") && l.contains("CN=Hindsight Contoso")),
        "{out}"
    );
    assert!(!out.contains(APP_KEY.lines().nth(1).unwrap()) && !out.contains(SECRET), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_each_missing_permission_from_the_roles_claim() {
    let graph = FakeGraph::start(creds()).await;
    graph.set_roles(Some(&["SecurityIncident.Read.All"]));
    let (_hook, url) = fakes::receiver::start().await;
    let config = rig::config(&graph, &url, None)
        .set_in("contoso", "write_back", true)
        .set_in("contoso", "hunts", true)
        .set_in("contoso", "detection_rules", true);
    let rig = Rig::with(config);
    let (status, out) = check_blocking(&rig).await;
    assert_eq!(status, Some(1), "{out}");
    let source = line(&out, "contoso");
    for needed in [
        "ThreatHunting.Read.All for retro-hunts (hunts = true)",
        "CustomDetection.Read.All for detection rules (detection_rules = true)",
        "SecurityIncident.ReadWrite.All for write-back (write_back = true)",
    ] {
        assert!(source.contains(needed), "{needed}: {source}");
    }
    assert!(source.contains("the token grants SecurityIncident.Read.All"), "{source}");
    // Consent granted: the next check passes and says what the token holds.
    graph.set_roles(None);
    let (status, out) = check_blocking(&rig).await;
    assert_eq!(status, Some(0), "{out}");
    assert!(line(&out, "contoso").contains("with client secret (roles: SecurityIncident.ReadWrite.All"), "{out}");
}

async fn check_blocking(rig: &Rig) -> (Option<i32>, String) {
    let out = rig.check().await;
    (out.status.code(), format!("{}{}", common::stdout(&out), common::stderr(&out)))
}

fn token_client(clock: Arc<dyn hindsight::clock::Clock>) -> TokenClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TokenClient::with_clock(http, Retry::ONCE, clock)
}

fn app(graph: &FakeGraph, credential: Credential) -> App {
    App {
        login_url: graph.login_url(),
        tenant_id: "contoso.onmicrosoft.com".into(),
        client_id: "app-1".into(),
        credential,
    }
}

fn cert(key: &str, algorithm: Algorithm) -> Credential {
    Credential::Certificate(Arc::new(
        Certificate::from_pem(certificate(key, 365).as_bytes(), key.as_bytes(), algorithm).unwrap(),
    ))
}

fn refusal(e: TokenError) -> String {
    match e {
        TokenError::Refused { status, detail } => format!("{status} {detail}"),
        other => panic!("not a refusal: {other:?}"),
    }
}

/// Both assertion forms are accepted; an assertion made on a clock an hour behind is out of its
/// time range, and another key's certificate is not the registered one.
#[tokio::test]
async fn certificate_assertions_in_both_forms_and_their_refusals() {
    let graph_cert = certificate(APP_KEY, 365);
    let graph = FakeGraph::start(Credentials { certificates: vec![graph_cert.clone()], ..registered() }).await;
    let tokens = token_client(Arc::new(hindsight::clock::SystemClock));
    let registered_cert = |alg| {
        Credential::Certificate(Arc::new(
            Certificate::from_pem(graph_cert.as_bytes(), APP_KEY.as_bytes(), alg).unwrap(),
        ))
    };
    for alg in [Algorithm::PS256, Algorithm::RS256] {
        let app = app(&graph, registered_cert(alg));
        // One certificate, one cached token: forgotten so that the second form is sent.
        tokens.forget(&app, GRAPH).await;
        tokens.token(&app, GRAPH).await.unwrap();
    }
    assert_eq!(graph.assertions_accepted(), 2);

    let behind = Arc::new(hindsight::clock::ManualClock::new(chrono::Utc::now() - chrono::Duration::hours(1)));
    let err = token_client(behind).token(&app(&graph, registered_cert(Algorithm::PS256)), GRAPH).await.unwrap_err();
    assert!(refusal(err).contains("AADSTS700024"));

    let err = tokens.token(&app(&graph, cert(OTHER_KEY, Algorithm::PS256)), GRAPH).await.unwrap_err();
    let said = refusal(err);
    assert!(said.starts_with("401 invalid_client: AADSTS700027"), "{said}");
}

/// The fake keeps to the contract it stands for: a replayed `jti`, an assertion for another
/// audience, one living longer than ten minutes and a forged signature are each refused.
#[tokio::test]
async fn the_fake_refuses_replays_wrong_audiences_long_lives_and_forged_signatures() {
    let pem = certificate(APP_KEY, 365);
    let graph = FakeGraph::start(Credentials { certificates: vec![pem.clone()], ..registered() }).await;
    let signer = Certificate::from_pem(pem.as_bytes(), APP_KEY.as_bytes(), Algorithm::PS256).unwrap();
    let token_url = format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/token", graph.login_url());
    let http = reqwest::Client::new();
    let post = |assertion: String| {
        let (http, url) = (http.clone(), token_url.clone());
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", "app-1"),
                ("scope", GRAPH),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion.as_str()),
            ];
            let r = http.post(&url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let now = chrono::Utc::now();
    let good = signer.assertion(&token_url, "app-1", now).unwrap();
    assert_eq!(post(good.clone()).await.0, 200);
    let (status, body) = post(good).await;
    assert_eq!(status, 401);
    assert!(body.contains("replayed jti"), "{body}");
    let (_, body) =
        post(signer.assertion("https://login.microsoftonline.com/other/oauth2/v2.0/token", "app-1", now).unwrap())
            .await;
    assert!(body.contains("audience"), "{body}");
    // Claims rewritten after signing: the signature no longer holds.
    let mut parts: Vec<String> =
        signer.assertion(&token_url, "app-1", now).unwrap().split('.').map(str::to_owned).collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&B64URL.decode(&parts[1]).unwrap()).unwrap();
    claims["exp"] = serde_json::json!(now.timestamp() + 3600);
    parts[1] = B64URL.encode(claims.to_string());
    let (_, body) = post(parts.join(".")).await;
    assert!(body.contains("lifetime is longer than 10 minutes"), "{body}");
    claims["exp"] = serde_json::json!(now.timestamp() + 240);
    parts[1] = B64URL.encode(claims.to_string());
    let (status, body) = post(parts.join(".")).await;
    assert_eq!(status, 401);
    assert!(body.contains("AADSTS700027") && body.contains("signature validation"), "{body}");
}

/// The federated token file is read again for each token request: a rotated file is used at
/// once, an expired one is refused by the service, a removed one is named.
#[tokio::test]
async fn the_token_file_is_read_again_for_each_request() {
    let graph = FakeGraph::start(registered()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let tokens = token_client(Arc::new(hindsight::clock::SystemClock));
    let app = app(&graph, Credential::WorkloadIdentity(file.clone()));

    std::fs::write(&file, federated_token(SUBJECT, 3600)).unwrap();
    tokens.token(&app, GRAPH).await.unwrap();
    // Rotated by the kubelet to a token the service no longer takes: the next request uses it.
    std::fs::write(&file, federated_token(SUBJECT, -10)).unwrap();
    tokens.forget(&app, GRAPH).await;
    assert!(refusal(tokens.token(&app, GRAPH).await.unwrap_err()).contains("AADSTS700024"));
    // Another service account's token matches no federated credential.
    std::fs::write(&file, federated_token("system:serviceaccount:default:other", 3600)).unwrap();
    assert!(refusal(tokens.token(&app, GRAPH).await.unwrap_err()).contains("AADSTS70021"));
    std::fs::write(&file, federated_token(SUBJECT, 3600)).unwrap();
    tokens.token(&app, GRAPH).await.unwrap();
    assert_eq!(graph.assertions_accepted(), 2);

    std::fs::remove_file(&file).unwrap();
    tokens.forget(&app, GRAPH).await;
    match tokens.token(&app, GRAPH).await.unwrap_err() {
        TokenError::Credential { detail } => {
            assert!(detail.contains("azure-identity-token") && detail.contains("No such file"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

/// The metadata endpoint wants `Metadata: true` and the right identity; its string
/// `expires_in` is read.
#[tokio::test]
async fn the_metadata_endpoint_is_asked_as_azure_documents_it() {
    let graph = FakeGraph::start(registered()).await;
    let r = reqwest::Client::new()
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com",
            graph.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "no Metadata header");
    let tokens = token_client(Arc::new(hindsight::clock::SystemClock));
    let identity = |id: Option<&str>| {
        let mut a =
            app(&graph, Credential::ManagedIdentity(hindsight::entra::imds::Identity::new(id, Some(graph.base_url()))));
        a.client_id = String::new();
        a
    };
    let token = tokens.token(&identity(Some("mi-client-1")), GRAPH).await.unwrap();
    let claims = hindsight::entra::claims::decode(token.expose_secret()).unwrap();
    assert_eq!(claims.tid.as_deref(), Some("contoso.onmicrosoft.com"));
    let said = refusal(tokens.token(&identity(None), GRAPH).await.unwrap_err());
    assert!(said.contains("system-assigned identity") && said.contains("Identity not found"), "{said}");
}

/// Two sources of one daemon that sign in with the same app to the same tenant ask once.
#[tokio::test]
async fn sources_with_the_same_app_share_one_token() {
    use hindsight::source::graph::GraphSource;
    let graph = FakeGraph::start(creds()).await;
    let source = |name: &str| {
        let cfg = serde_json::json!({
            "name": name, "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-1", "client_secret": SECRET,
            "graph_url": graph.graph_url(), "login_url": graph.login_url(), "insecure_loopback": true,
        });
        GraphSource::new(serde_json::from_value(cfg).unwrap()).unwrap()
    };
    let (mut a, mut b) = (source("contoso-a"), source("contoso-b"));
    a.probe(chrono::Utc::now()).await.unwrap();
    b.probe(chrono::Utc::now()).await.unwrap();
    assert_eq!(graph.token_requests(), 1);
    assert_eq!(graph.incident_requests(), 2);
}

/// A webhook's `oauth` table takes the same credentials: a Power Automate flow restricted to a
/// tenant gets its bearer token with a certificate.
#[tokio::test]
async fn a_webhook_signs_in_for_its_flow_with_a_certificate() {
    let pem = certificate(APP_KEY, 365);
    let graph = FakeGraph::start(Credentials { certificates: vec![pem.clone()], ..registered() }).await;
    let cfg: hindsight::notify::oauth::OAuthConfig = serde_json::from_value(serde_json::json!({
        "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-1", "credential": "certificate",
        "certificate": pem, "private_key": APP_KEY, "login_url": graph.login_url(), "insecure_loopback": true,
    }))
    .unwrap();
    assert!(cfg.validate().is_empty());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let source = hindsight::notify::oauth::TokenSource::new(cfg, reqwest::Client::new()).unwrap();
    let token = source.token().await.unwrap();
    let claims = hindsight::entra::claims::decode(token.expose_secret()).unwrap();
    assert_eq!(claims.aud.as_deref(), Some("https://service.flow.microsoft.com/"));
    assert_eq!(graph.assertions_accepted(), 1);
}
