#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Secret providers: environment, files, a chain, and Vault KV v2 against a fake Vault on
//! 127.0.0.1 that answers with Vault's documented response shapes. Secret values never show in
//! `Debug`, errors or log output.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use mlops_core::secret::{ExposeSecret, SecretProvider, SecretString, resolve_options};
use mlops_secrets::{EnvSecrets, FileSecrets, SecretChain, VaultKv2};
use serde_json::json;

const TOKEN: &str = "hvs.root-token-for-tests";
const PASSWORD: &str = "pa55-w0rd-XYZ";
const OLD_PASSWORD: &str = "old-pa55-ABC";

/// A fake Vault: KV v2 reads at /v1/secret/data/<path>, per Vault's API docs.
async fn fake_vault() -> String {
    async fn read(
        Path(path): Path<String>,
        Query(q): Query<HashMap<String, String>>,
        headers: HeaderMap,
    ) -> (StatusCode, Json<serde_json::Value>) {
        if headers.get("x-vault-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"errors": ["permission denied"]})),
            );
        }
        let version = q.get("version").map(String::as_str);
        let data = match (path.as_str(), version) {
            ("app/db", None | Some("2")) => json!({"username": "svc", "password": PASSWORD}),
            ("app/db", Some("1")) => json!({"username": "svc", "password": OLD_PASSWORD}),
            ("app/single", None) => json!({"token": "only-field-value"}),
            ("app/deleted", None) => serde_json::Value::Null,
            _ => return (StatusCode::NOT_FOUND, Json(json!({"errors": []}))),
        };
        (
            StatusCode::OK,
            Json(json!({
                "request_id": "8a2b", "lease_id": "", "renewable": false, "lease_duration": 0,
                "data": {"data": data, "metadata": {"created_time": "2026-11-27T00:00:00Z",
                    "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": 2}},
                "wrap_info": null, "warnings": null, "auth": null
            })),
        )
    }
    let app = Router::new().route("/v1/secret/data/{*path}", get(read));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Captures every tracing event at debug level and above.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn vault_kv2_reads_fields_and_versions_without_leaking() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = fake_vault().await;
    let vault = VaultKv2::new(&addr, SecretString::from(TOKEN)).unwrap();
    assert_eq!(
        vault
            .secret("app/db#password")
            .await
            .unwrap()
            .expose_secret(),
        PASSWORD
    );
    assert_eq!(
        vault
            .secret("app/db@1#password")
            .await
            .unwrap()
            .expose_secret(),
        OLD_PASSWORD
    );
    assert_eq!(
        vault.secret("app/single").await.unwrap().expose_secret(),
        "only-field-value"
    );

    let mut errors = Vec::new();
    for (name, check) in [
        ("app/missing#x", "not found"),
        ("app/deleted", "not found"),
        ("app/db#nope", "fields: password, username"),
        ("app/db", "several fields"),
        ("app/../db", "not a Vault path"),
        ("app/db@x#password", "not a number"),
    ] {
        let err = vault.secret(name).await.unwrap_err();
        assert!(err.to_string().contains(check), "{name}: {err}");
        errors.push(format!("{err} {err:?}"));
    }
    let wrong = VaultKv2::new(&addr, SecretString::from("wrong-token-123")).unwrap();
    let err = wrong.secret("app/db#password").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert!(err.to_string().contains("permission denied"), "{err}");
    errors.push(format!("{err} {err:?}"));
    let down = VaultKv2::new("http://127.0.0.1:9", SecretString::from(TOKEN)).unwrap();
    let err = down.secret("app/db#password").await.unwrap_err();
    errors.push(format!("{err} {err:?}"));

    let debug = format!(
        "{vault:?} {wrong:?} {:?}",
        vault.secret("app/db#password").await.unwrap()
    );
    assert!(debug.contains("REDACTED"), "{debug}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("Vault answered"),
        "the client logs: {logged}"
    );
    for text in errors.iter().chain([&debug, &logged]) {
        for secret in [TOKEN, PASSWORD, OLD_PASSWORD, "wrong-token-123"] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
    }
}

#[tokio::test]
async fn env_file_and_chain_providers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db-password"), "from-file\n").unwrap();
    let files = FileSecrets::new(dir.path());
    assert_eq!(
        files.secret("db-password").await.unwrap().expose_secret(),
        "from-file"
    );
    assert!(files.secret("absent").await.unwrap_err().is_not_found());
    for bad in ["../etc/passwd", "/etc/passwd", ""] {
        assert!(
            files.secret(bad).await.unwrap_err().is_invalid_argument(),
            "{bad}"
        );
    }
    let env = EnvSecrets::with_prefix("MLOPS_TEST_SECRET_");
    assert!(env.secret("NOPE_42").await.unwrap_err().is_not_found());
    let chain = SecretChain::new()
        .with(Arc::new(EnvSecrets::with_prefix("MLOPS_TEST_SECRET_")))
        .with(Arc::new(files));
    assert_eq!(
        chain.secret("db-password").await.unwrap().expose_secret(),
        "from-file"
    );
    let err = chain.secret("nowhere").await.unwrap_err();
    assert!(err.is_not_found());

    // Store options name secrets; plain values pass through.
    let options = vec![
        (
            "aws_secret_access_key".to_string(),
            "secret:db-password".to_string(),
        ),
        ("aws_region".to_string(), "us-east-1".to_string()),
    ];
    let resolved = resolve_options(&options, &chain).await.unwrap();
    assert_eq!(resolved[0].1, "from-file");
    assert_eq!(resolved[1].1, "us-east-1");
    let missing = vec![("k".to_string(), "secret:nowhere".to_string())];
    assert!(
        resolve_options(&missing, &chain)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// Credentials in `VAULT_ADDR` (`http://user:pass@host`) never reach an error, a log or `Debug`.
#[tokio::test]
async fn vault_address_credentials_are_never_shown() {
    let vault = VaultKv2::new(
        "http://admin:hunter2@127.0.0.1:9",
        SecretString::from("token".to_owned()),
    )
    .unwrap();
    assert!(!format!("{vault:?}").contains("hunter2"));
    let err = vault.secret("db/password").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("admin"),
        "{shown}"
    );
    assert!(
        shown.contains("http://127.0.0.1:9/v1/secret/data/db/password"),
        "{shown}"
    );
    let err = VaultKv2::new(
        "ftp://admin:hunter2@host",
        SecretString::from("t".to_owned()),
    )
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
