//! # mlops-k8s
//!
//! The Kubernetes building blocks every mlops export shares — a training run as a `batch/v1`
//! Job (mlops-train), a pipeline as an Argo Workflow or Jobs (mlops-pipeline), a model as a
//! KServe `InferenceService` (mlops-serve) — so that names, containers, resources and the
//! write-then-read-back check are made one way:
//!
//! - [`check_dns_label`] / [`dns_label`]: RFC 1123 labels, checked or made from a step or model
//!   name.
//! - [`check_quantity`]: resource quantities (`2`, `500m`, `8Gi`).
//! - [`ContainerSpec`]: a container running our binary against a store reachable from pods
//!   (`$MLOPS_STORE`), with plain or Secret-backed environment variables and resources
//!   (`cpu`, `memory`, `nvidia.com/gpu`), built as k8s-openapi's own `Container`.
//! - [`to_checked_yaml`]: a manifest as YAML, parsed back into its type and compared, so what
//!   we write is what Kubernetes will read.
//!
//! It depends only on mlops-core and the Kubernetes types; it is a support crate (like
//! mlops-testkit), not an implementation of a core trait.
//!
//! ```
//! use mlops_k8s::{ContainerSpec, EnvValue, dns_label, to_checked_yaml};
//!
//! assert_eq!(dns_label("Churn_Train"), "churn-train");
//! let container = ContainerSpec::new("train", "ghcr.io/acme/mlops:1")
//!     .args(["train", "--data", "churn"])
//!     .store_url("s3://ml/prod")
//!     .env("AWS_SECRET_ACCESS_KEY", EnvValue::secret("ml-store", "secret-key"))
//!     .cpu("4")
//!     .gpus(1)
//!     .build()?;
//! assert_eq!(container.name, "train");
//! let yaml = to_checked_yaml(&container)?;
//! assert!(yaml.contains("secretKeyRef"));
//! # Ok::<(), mlops_core::Error>(())
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ResourceRequirements, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use mlops_core::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The label every exported object carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "mlops");

/// The environment variable our binary reads its store URL from.
pub const STORE_ENV: &str = "MLOPS_STORE";

/// Checks that `name` is an RFC 1123 label: lowercase letters, digits and `-`, at most 63,
/// not starting or ending with `-`. [`Error::InvalidArgument`] naming `what` otherwise.
pub fn check_dns_label(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{name:?} is not a DNS label (lowercase letters, digits, '-', at most 63)"),
        ))
    }
}

/// A DNS label made from a step, pipeline or model name: lowercase, `_` and `.` as `-`, other
/// characters dropped, at most 63, no `-` at either end. Names that differ only in case or
/// `_`/`-` map to the same label — callers that need distinct labels check for collisions.
pub fn dns_label(name: &str) -> String {
    let label: String = name
        .chars()
        .filter_map(|c| match c {
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '-' => Some(c),
            '_' | '.' => Some('-'),
            _ => None,
        })
        .take(63)
        .collect();
    label.trim_matches('-').to_owned()
}

/// Checks a Kubernetes quantity: a non-negative decimal number with an optional SI or binary
/// suffix (`2`, `500m`, `8Gi`).
pub fn check_quantity(what: &'static str, value: &str) -> Result<()> {
    const SUFFIXES: [&str; 14] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let ok = SUFFIXES.iter().any(|s| {
        value.strip_suffix(s).is_some_and(|n| {
            !n.is_empty() && n.parse::<f64>().is_ok_and(|x| x.is_finite() && x >= 0.0)
        })
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{value:?} is not a Kubernetes quantity (e.g. 2, 500m, 8Gi)"),
        ))
    }
}

/// Checks that pods can reach the store at `url` — an object store (`s3://`, `gs://`, `az://`,
/// …), not a local directory or `memory://` — and that it carries no credentials
/// (`s3://key:secret@bucket` would put them in the manifest).
pub fn check_store_url(url: &str) -> Result<()> {
    let local = !url.contains("://") || url.starts_with("file://") || url.starts_with("memory://");
    if local {
        return Err(Error::invalid(
            "store",
            format!("{url:?} is not reachable from pods: use s3://, gs:// or az://"),
        ));
    }
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    if authority.contains('@') {
        return Err(Error::invalid(
            "store",
            "the URL carries credentials, which would be written into the manifest: give the \
             pods credentials through a Kubernetes Secret (store options `KEY=secret:NAME`) \
             or their service account",
        ));
    }
    Ok(())
}

/// Whether a store option's key names a credential (object_store's `aws_secret_access_key`,
/// `aws_session_token`, `azure_storage_account_key`, `google_service_account_key`, SAS tokens,
/// passwords, …), whose value must never be written into a manifest.
pub fn is_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "credential",
        "_key",
        "sas",
        "access_key",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Store options as a pod receives them: its arguments and the environment they read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodStoreOptions {
    /// `--store-option KEY=VALUE` pairs to pass (credentials as `KEY=secret:NAME`), followed by
    /// `--secrets env` when any is a secret.
    pub args: Vec<String>,
    /// The variables those secrets are read from: `NAME` from key `NAME` of the Kubernetes
    /// Secret.
    pub env: BTreeMap<String, EnvValue>,
}

/// Store options (`KEY=VALUE`, as the CLI's `--store-option` takes them) for pods, keeping
/// every credential out of the manifest: a credential must be given as `KEY=secret:NAME`, and
/// the pod then reads `NAME` from its environment, filled from key `NAME` of the Kubernetes
/// Secret `k8s_secret`. A plaintext credential is [`Error::InvalidArgument`] saying how to
/// write it; other options (an endpoint, a region) pass as they are.
pub fn pod_store_options(
    options: &[(String, String)],
    k8s_secret: &str,
) -> Result<PodStoreOptions> {
    check_dns_label("kubernetes secret", k8s_secret)
        .or_else(|_| check_dns_subdomain(k8s_secret))?;
    let mut out = PodStoreOptions::default();
    for (key, value) in options {
        match value.strip_prefix("secret:") {
            Some(name) => {
                let env_name = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && name.chars().next().is_some_and(|c| !c.is_ascii_digit())
                    && !name.is_empty();
                if !env_name {
                    return Err(Error::invalid(
                        "store option",
                        format!(
                            "{key}=secret:{name}: in a pod, secrets are environment variables \
                             filled from the Kubernetes Secret {k8s_secret}; name it with \
                             letters, digits and '_' (e.g. {key}=secret:{})",
                            key.to_ascii_uppercase()
                        ),
                    ));
                }
                out.env
                    .insert(name.to_owned(), EnvValue::secret(k8s_secret, name));
            }
            None if is_credential_key(key) => {
                return Err(Error::invalid(
                    "store option",
                    format!(
                        "{key}: a plaintext credential would be written into the manifest; give \
                         it as {key}=secret:{} and put it in key {} of the Kubernetes Secret \
                         {k8s_secret}",
                        key.to_ascii_uppercase(),
                        key.to_ascii_uppercase()
                    ),
                ));
            }
            None => {}
        }
        out.args.push("--store-option".into());
        out.args.push(format!("{key}={value}"));
    }
    if !out.env.is_empty() {
        out.args.push("--secrets".into());
        out.args.push("env".into());
    }
    Ok(out)
}

/// A DNS subdomain (the form Secret names take): dot-separated labels, at most 253.
fn check_dns_subdomain(name: &str) -> Result<()> {
    if name.len() <= 253 && name.split('.').all(|l| check_dns_label("n", l).is_ok()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "kubernetes secret",
            format!("{name:?} is not a Kubernetes object name"),
        ))
    }
}

/// The value of a container's environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal value, written into the manifest.
    Plain(String),
    /// A key of a Kubernetes Secret (`valueFrom.secretKeyRef`): the value never appears in the
    /// manifest.
    Secret {
        /// The Secret's name.
        name: String,
        /// The key in it.
        key: String,
    },
}

impl EnvValue {
    /// A reference to `key` of the Secret `name`.
    pub fn secret(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self::Secret {
            name: name.into(),
            key: key.into(),
        }
    }

    fn var(&self, name: &str) -> EnvVar {
        match self {
            Self::Plain(v) => EnvVar {
                name: name.to_owned(),
                value: Some(v.clone()),
                ..EnvVar::default()
            },
            Self::Secret { name: secret, key } => EnvVar {
                name: name.to_owned(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.clone(),
                        key: key.clone(),
                        ..SecretKeySelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
        }
    }
}

impl From<String> for EnvValue {
    fn from(v: String) -> Self {
        Self::Plain(v)
    }
}

impl From<&str> for EnvValue {
    fn from(v: &str) -> Self {
        Self::Plain(v.to_owned())
    }
}

/// A container running our binary: the one way every export builds its pods' containers.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ContainerSpec {
    /// The container's name (a DNS label).
    pub name: String,
    /// The image holding the binary.
    pub image: String,
    /// The entrypoint; `None` keeps the image's.
    pub command: Option<Vec<String>>,
    /// The arguments.
    pub args: Vec<String>,
    /// The store the pod works against (`$MLOPS_STORE`), checked reachable from pods.
    pub store_url: Option<String>,
    /// Environment variables, by name.
    pub env: BTreeMap<String, EnvValue>,
    /// CPU request and limit.
    pub cpu: Option<String>,
    /// Memory request and limit.
    pub memory: Option<String>,
    /// GPUs (`nvidia.com/gpu`).
    pub gpus: u32,
}

impl ContainerSpec {
    /// A container `name` running `image`.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            ..Self::default()
        }
    }

    /// Sets the entrypoint.
    pub fn command<I: IntoIterator<Item = S>, S: Into<String>>(mut self, command: I) -> Self {
        self.command = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The store the pod uses, passed as `$MLOPS_STORE`.
    pub fn store_url(mut self, url: impl Into<String>) -> Self {
        self.store_url = Some(url.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<EnvValue>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// CPU request and limit.
    pub fn cpu(mut self, cpu: impl Into<String>) -> Self {
        self.cpu = Some(cpu.into());
        self
    }

    /// Memory request and limit.
    pub fn memory(mut self, memory: impl Into<String>) -> Self {
        self.memory = Some(memory.into());
        self
    }

    /// GPUs.
    pub fn gpus(mut self, gpus: u32) -> Self {
        self.gpus = gpus;
        self
    }

    /// The container: name, image, store and quantities checked ([`Error::InvalidArgument`]
    /// naming the bad one); requests equal limits; `$MLOPS_STORE` first, then the rest of the
    /// environment by name.
    pub fn build(&self) -> Result<Container> {
        check_dns_label("container name", &self.name)?;
        if self.image.trim().is_empty() {
            return Err(Error::invalid("image", "empty"));
        }
        let mut quantities = BTreeMap::new();
        for (key, value) in [("cpu", &self.cpu), ("memory", &self.memory)] {
            if let Some(v) = value {
                check_quantity(key, v)?;
                quantities.insert(key.to_owned(), Quantity(v.clone()));
            }
        }
        if self.gpus > 0 {
            quantities.insert("nvidia.com/gpu".to_owned(), Quantity(self.gpus.to_string()));
        }
        let mut env: Vec<EnvVar> = Vec::new();
        if let Some(url) = &self.store_url {
            check_store_url(url)?;
            env.push(EnvValue::Plain(url.clone()).var(STORE_ENV));
        }
        for (name, value) in &self.env {
            if name.is_empty() || name == STORE_ENV && self.store_url.is_some() {
                return Err(Error::invalid(
                    "environment variable",
                    format!("{name:?}: empty, or set twice"),
                ));
            }
            env.push(value.var(name));
        }
        Ok(Container {
            name: self.name.clone(),
            image: Some(self.image.clone()),
            command: self.command.clone(),
            args: Some(self.args.clone()),
            env: (!env.is_empty()).then_some(env),
            resources: (!quantities.is_empty()).then(|| ResourceRequirements {
                requests: Some(quantities.clone()),
                limits: Some(quantities),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        })
    }
}

/// `value` as YAML, checked by parsing it back into `T` and comparing: a field the types
/// would drop or read differently is [`Error::InvalidArgument`] instead of a manifest that
/// means something else once applied.
pub fn to_checked_yaml<T: Serialize + DeserializeOwned + PartialEq>(value: &T) -> Result<String> {
    let yaml = serde_yaml_ng::to_string(value).map_err(|e| Error::backend("serde_yaml", e))?;
    let back: T = serde_yaml_ng::from_str(&yaml)
        .map_err(|e| Error::invalid("manifest", "it does not read back").with_source(e))?;
    if back != *value {
        return Err(Error::invalid(
            "manifest",
            "the YAML does not read back as written",
        ));
    }
    Ok(yaml)
}

/// Parses a manifest of `api_version`/`kind` into `T`, checking both first.
pub fn parse_manifest<T: DeserializeOwned>(yaml: &str, api_version: &str, kind: &str) -> Result<T> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| Error::invalid("manifest", "").with_source(e))?;
    let api = value.get("apiVersion").and_then(|v| v.as_str());
    let found = value.get("kind").and_then(|v| v.as_str());
    if api != Some(api_version) || found != Some(kind) {
        return Err(Error::invalid(
            "manifest",
            format!(
                "{}/{} is not {api_version} {kind}",
                api.unwrap_or("?"),
                found.unwrap_or("?")
            ),
        ));
    }
    serde_yaml_ng::from_value(value)
        .map_err(|e| Error::invalid("manifest", format!("not a {kind}")).with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_and_made() {
        assert!(check_dns_label("name", "train-churn").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            let e = check_dns_label("name", bad).unwrap_err();
            assert!(e.to_string().contains("not a DNS label"), "{bad}: {e}");
        }
        assert_eq!(dns_label("Churn_Train.v2"), "churn-train-v2");
        assert_eq!(dns_label("_x_"), "x");
        assert_eq!(dns_label("ü-model"), "model");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
        for name in ["Churn_Train", "_x_", "a b", &"b".repeat(70)] {
            let l = dns_label(name);
            assert!(
                l.is_empty() || check_dns_label("n", &l).is_ok(),
                "{name} -> {l}"
            );
        }
    }

    #[test]
    fn quantities_and_stores_are_checked() {
        for ok in ["2", "500m", "8Gi", "0.5"] {
            assert!(check_quantity("cpu", ok).is_ok(), "{ok}");
        }
        for bad in ["", "lots", "-1", "8GB"] {
            assert!(check_quantity("cpu", bad).is_err(), "{bad}");
        }
        assert!(check_store_url("s3://b/p").is_ok());
        for local in ["./data", "file:///x", "memory://"] {
            assert!(check_store_url(local).is_err(), "{local}");
        }
    }

    #[test]
    fn credentials_never_reach_a_manifest() {
        let opts = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        let e =
            pod_store_options(&opts(&[("aws_secret_access_key", "hunter2")]), "store").unwrap_err();
        assert!(e.is_invalid_argument(), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(
            e.to_string()
                .contains("aws_secret_access_key=secret:AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
        let p = pod_store_options(
            &opts(&[
                ("aws_endpoint", "http://minio:9000"),
                ("aws_secret_access_key", "secret:AWS_SECRET"),
            ]),
            "ml-store",
        )
        .unwrap();
        assert_eq!(
            p.args,
            [
                "--store-option",
                "aws_endpoint=http://minio:9000",
                "--store-option",
                "aws_secret_access_key=secret:AWS_SECRET",
                "--secrets",
                "env"
            ]
        );
        assert_eq!(
            p.env["AWS_SECRET"],
            EnvValue::secret("ml-store", "AWS_SECRET")
        );
        assert!(pod_store_options(&opts(&[("k", "secret:vault/path#f")]), "s").is_err());
        assert!(pod_store_options(&[], "Not A Name").is_err());
        assert!(
            check_store_url("s3://AKIA:hunter2@bucket/p")
                .unwrap_err()
                .to_string()
                .contains("credentials")
        );
        assert!(is_credential_key("AWS_SESSION_TOKEN") && !is_credential_key("aws_endpoint"));
        assert!(!is_credential_key("aws_region") && !is_credential_key("allow_http"));
    }

    #[test]
    fn containers_carry_store_env_and_resources() {
        let c = ContainerSpec::new("main", "img:1")
            .command(["mlops"])
            .args(["serve"])
            .store_url("s3://b")
            .env("RUST_LOG", "info")
            .env("AWS_SECRET_ACCESS_KEY", EnvValue::secret("store", "key"))
            .memory("8Gi")
            .gpus(2)
            .build()
            .unwrap();
        let env = c.env.clone().unwrap();
        assert_eq!(env[0].name, STORE_ENV);
        assert_eq!(env[0].value.as_deref(), Some("s3://b"));
        let secret = env
            .iter()
            .find(|e| e.name == "AWS_SECRET_ACCESS_KEY")
            .unwrap();
        assert!(
            secret.value.is_none(),
            "a secret's value never reaches the manifest"
        );
        assert_eq!(
            secret
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .map(|s| (s.name.as_str(), s.key.as_str())),
            Some(("store", "key"))
        );
        let limits = c.resources.as_ref().unwrap().limits.clone().unwrap();
        assert_eq!(limits["nvidia.com/gpu"].0, "2");
        assert!(to_checked_yaml(&c).is_ok());

        assert!(ContainerSpec::new("main", "").build().is_err());
        assert!(ContainerSpec::new("Main", "i").build().is_err());
        assert!(ContainerSpec::new("m", "i").cpu("x").build().is_err());
        assert!(
            ContainerSpec::new("m", "i")
                .store_url("./d")
                .build()
                .is_err()
        );
    }
}
