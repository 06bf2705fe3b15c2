//! # mlops-secrets
//!
//! Secret providers (Vault's role) behind [`mlops_core::secret::SecretProvider`]: environment
//! variables ([`EnvSecrets`]), one file a secret ([`FileSecrets`]), HashiCorp Vault's KV v2
//! engine over HTTP ([`VaultKv2`]), and a [`SecretChain`] of them; [`from_spec`] builds one from
//! the CLI's `--secrets` text. Values are [`SecretString`]s: they never reach logs, errors or
//! `Debug` output, and Vault's token is only ever a header. See [`mlops_core::secret`] for the
//! trait and the `secret:<name>` option form that store credentials use.
//!
//! ```
//! use mlops_core::secret::{ExposeSecret, SecretProvider};
//! use mlops_secrets::EnvSecrets;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mlops_core::Result<()> {
//! let secrets = EnvSecrets::new();
//! let path = secrets.secret("PATH").await?;
//! assert!(!path.expose_secret().is_empty());
//! assert!(!format!("{secrets:?} {path:?}").contains(path.expose_secret()));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use mlops_core::secret::{SecretProvider, SecretString};
use mlops_core::{Error, Result};

/// Secrets from environment variables: the name is the variable (after an optional prefix).
#[derive(Debug, Clone, Default)]
pub struct EnvSecrets {
    prefix: String,
}

impl EnvSecrets {
    /// Names are variable names.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name `x` reads variable `<prefix>x`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

#[async_trait]
impl SecretProvider for EnvSecrets {
    async fn secret(&self, name: &str) -> Result<SecretString> {
        let var = format!("{}{name}", self.prefix);
        match std::env::var(&var) {
            Ok(v) => Ok(SecretString::from(v)),
            Err(std::env::VarError::NotPresent) => Err(Error::not_found("secret", var)),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid(
                "secret",
                format!("environment variable {var} is not valid UTF-8"),
            )),
        }
    }
}

/// Secrets from files in a folder, one secret a file (Kubernetes and Docker mount secrets this
/// way). One trailing newline is removed. Names may not leave the folder.
#[derive(Debug, Clone)]
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    /// Secrets in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl SecretProvider for FileSecrets {
    async fn secret(&self, name: &str) -> Result<SecretString> {
        let rel = Path::new(name);
        let safe = !name.is_empty()
            && rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(Error::invalid(
                "secret",
                format!("{name:?} is not a relative file name inside the secrets folder"),
            ));
        }
        let path = self.dir.join(rel);
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let mut text = String::from_utf8(bytes).map_err(|_| {
                    Error::invalid("secret", format!("{} is not valid UTF-8", path.display()))
                })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(SecretString::from(text))
            }
            // Missing is NotFound (a chain tries the next provider); refused is PermissionDenied.
            Err(e) => Err(Error::io("secret", "read", &path, e)),
        }
    }
}

/// Secrets from HashiCorp Vault's KV version 2 engine over HTTP, with a token.
///
/// A name is `path#field` (`mlops/s3#secret_key` reads field `secret_key` of the secret at
/// `mlops/s3`); `path` alone works when the secret has a single field. `path@N#field` reads
/// version N. Requests are `GET {addr}/v1/{mount}/data/{path}` with the `X-Vault-Token` header
/// (and `X-Vault-Namespace` when set), as Vault documents.
pub struct VaultKv2 {
    addr: String,
    /// `addr` without any `user:password@`, for messages, logs and `Debug`.
    shown: String,
    mount: String,
    token: SecretString,
    namespace: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for VaultKv2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKv2")
            .field("addr", &self.shown)
            .field("mount", &self.mount)
            .field("token", &self.token)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl VaultKv2 {
    /// A client for the Vault server at `addr` (`http://127.0.0.1:8200`), the KV v2 engine
    /// mounted at `secret`, authenticating with `token`.
    pub fn new(addr: impl Into<String>, token: SecretString) -> Result<Self> {
        let addr = addr.into().trim_end_matches('/').to_string();
        let shown = without_userinfo(&addr);
        let parsed = url::Url::parse(&addr)
            .map_err(|e| Error::invalid("vault address", format!("{shown:?}")).with_source(e))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid(
                "vault address",
                format!("{shown:?} must be an http:// or https:// URL"),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::backend("reqwest", e))?;
        Ok(Self {
            addr,
            shown,
            mount: "secret".into(),
            token,
            namespace: None,
            http,
        })
    }

    /// From `VAULT_ADDR` and `VAULT_TOKEN` (and `VAULT_NAMESPACE`), as Vault's own CLI does.
    pub fn from_env() -> Result<Self> {
        let addr = std::env::var("VAULT_ADDR")
            .map_err(|_| Error::invalid("vault address", "VAULT_ADDR is not set"))?;
        let token = std::env::var("VAULT_TOKEN")
            .map_err(|_| Error::invalid("vault token", "VAULT_TOKEN is not set"))?;
        let mut v = Self::new(addr, SecretString::from(token))?;
        v.namespace = std::env::var("VAULT_NAMESPACE").ok();
        Ok(v)
    }

    /// Reads from the KV v2 engine mounted at `mount` instead of `secret`.
    pub fn with_mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_string();
        self
    }

    /// Sends `X-Vault-Namespace` (Vault Enterprise / HCP).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}

#[derive(serde::Deserialize)]
struct KvResponse {
    data: KvData,
}

#[derive(serde::Deserialize)]
struct KvData {
    data: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(serde::Deserialize, Default)]
struct VaultErrors {
    #[serde(default)]
    errors: Vec<String>,
}

#[async_trait]
impl SecretProvider for VaultKv2 {
    async fn secret(&self, name: &str) -> Result<SecretString> {
        use secrecy::ExposeSecret;
        let (path, field) = match name.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (name, None),
        };
        let (path, version) = match path.rsplit_once('@') {
            Some((p, v)) => {
                let v: u64 = v.parse().map_err(|_| {
                    Error::invalid("secret", format!("{name:?}: version {v:?} is not a number"))
                })?;
                (p, Some(v))
            }
            None => (path, None),
        };
        let path = path.trim_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(Error::invalid(
                "secret",
                format!("{name:?} is not a Vault path like app/db#password"),
            ));
        }
        let url = format!("{}/v1/{}/data/{path}", self.addr, self.mount);
        // What messages and logs show: never the address's credentials.
        let shown = format!("{}/v1/{}/data/{path}", self.shown, self.mount);
        let mut request = self
            .http
            .get(&url)
            .header("X-Vault-Token", self.token.expose_secret());
        if let Some(v) = version {
            request = request.query(&[("version", v)]);
        }
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        tracing::debug!(url = %shown, ?version, "reading a Vault KV v2 secret");
        let response = request.send().await.map_err(|e| {
            Error::unavailable(format!("vault: GET {shown}")).with_source(e.without_url())
        })?;
        let status = response.status();
        tracing::debug!(url = %shown, status = status.as_u16(), "Vault answered");
        let body = response.bytes().await.map_err(|e| {
            Error::unavailable(format!("vault: GET {shown}")).with_source(e.without_url())
        })?;
        if !status.is_success() {
            let errors = serde_json::from_slice::<VaultErrors>(&body)
                .unwrap_or_default()
                .errors
                .join("; ");
            return Err(match status.as_u16() {
                404 => Error::not_found("secret", name),
                401 | 403 => Error::permission_denied(
                    "secret",
                    path,
                    format!(
                        "vault answered {status}{}",
                        if errors.is_empty() {
                            String::new()
                        } else {
                            format!(": {errors}")
                        }
                    ),
                ),
                _ => Error::unavailable(format!("vault: GET {shown}: {status} {errors}")),
            });
        }
        let parsed: KvResponse = serde_json::from_slice(&body).map_err(|e| {
            Error::invalid(
                "vault response",
                format!("{shown}: not a KV v2 read response"),
            )
            .with_source(e)
        })?;
        // A deleted or destroyed version reads with data: null.
        let Some(data) = parsed.data.data else {
            return Err(Error::not_found("secret", name));
        };
        let fields = || data.keys().cloned().collect::<Vec<_>>().join(", ");
        let value = match field {
            Some(f) => data.get(f).ok_or_else(|| {
                Error::not_found("secret", format!("{name} (fields: {})", fields()))
            })?,
            None if data.len() == 1 => data
                .values()
                .next()
                .ok_or_else(|| Error::not_found("secret", name))?,
            None => {
                return Err(Error::invalid(
                    "secret",
                    format!(
                        "{name:?} has several fields ({}); name one with #field",
                        fields()
                    ),
                ));
            }
        };
        match value {
            serde_json::Value::String(s) => Ok(SecretString::from(s.clone())),
            serde_json::Value::Null => Err(Error::not_found("secret", name)),
            other => Ok(SecretString::from(other.to_string())),
        }
    }
}

/// Tries providers in order; the first that knows the name answers. Errors other than
/// [`Error::NotFound`] stop the search.
#[derive(Debug, Clone, Default)]
pub struct SecretChain {
    providers: Vec<Arc<dyn SecretProvider>>,
}

impl SecretChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider.
    pub fn with(mut self, provider: Arc<dyn SecretProvider>) -> Self {
        self.providers.push(provider);
        self
    }
}

#[async_trait]
impl SecretProvider for SecretChain {
    async fn secret(&self, name: &str) -> Result<SecretString> {
        for p in &self.providers {
            match p.secret(name).await {
                Err(e) if e.is_not_found() => continue,
                other => return other,
            }
        }
        Err(Error::not_found("secret", name))
    }
}

/// A provider from a short spec, as the CLI's `--secrets` takes it: `env`, `env:PREFIX_`,
/// `file:DIR`, `vault` (from `VAULT_ADDR`/`VAULT_TOKEN`) or `vault:MOUNT`.
pub fn from_spec(spec: &str) -> Result<Arc<dyn SecretProvider>> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "env" => Ok(Arc::new(EnvSecrets::with_prefix(arg))),
        "file" if !arg.is_empty() => Ok(Arc::new(FileSecrets::new(arg))),
        "vault" => {
            let v = VaultKv2::from_env()?;
            Ok(Arc::new(if arg.is_empty() { v } else { v.with_mount(arg) }))
        }
        _ => Err(Error::invalid(
            "secrets",
            format!("{spec:?}: use env, env:PREFIX, file:DIR, vault or vault:MOUNT"),
        )),
    }
}

/// `addr` without the `user:password@` part of its authority.
fn without_userinfo(addr: &str) -> String {
    match addr.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => addr.to_owned(),
    }
}
