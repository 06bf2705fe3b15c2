//! Scale-out: a training run as a Kubernetes `batch/v1` Job that runs the same binary with the
//! same arguments in a container, against the same store.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mlops_core::{Error, Result};

/// What to export.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobExport {
    /// The Job's name (a DNS label: lowercase letters, digits, `-`, at most 63).
    pub name: String,
    /// Namespace, when set.
    pub namespace: Option<String>,
    /// The container image holding the binary.
    pub image: String,
    /// The entrypoint; `None` keeps the image's.
    pub command: Option<Vec<String>>,
    /// The arguments, e.g. `train --data churn --target churned --model logistic`.
    pub args: Vec<String>,
    /// The store the pod reads data from and writes runs to (`$MLOPS_STORE`); it must be
    /// reachable from the cluster (`s3://…`, `gs://…`, `az://…`), not a local directory.
    pub store_url: Option<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// CPU request and limit (`"4"`, `"500m"`).
    pub cpu: Option<String>,
    /// Memory request and limit (`"8Gi"`).
    pub memory: Option<String>,
    /// GPUs (`nvidia.com/gpu`), for `--device cuda`.
    pub gpus: u32,
    /// Retries before the Job fails (Kubernetes' default is 6).
    pub backoff_limit: i32,
    /// Wall-clock limit.
    pub active_deadline_seconds: Option<i64>,
    /// Delete the finished Job after this long.
    pub ttl_seconds_after_finished: Option<i32>,
}

/// The label every exported object carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "mlops");

impl JobExport {
    /// Runs `args` in `image` as the Job `name`.
    pub fn new(name: impl Into<String>, image: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            name: name.into(),
            namespace: None,
            image: image.into(),
            command: None,
            args,
            store_url: None,
            env: BTreeMap::new(),
            cpu: None,
            memory: None,
            gpus: 0,
            backoff_limit: 2,
            active_deadline_seconds: None,
            ttl_seconds_after_finished: Some(86_400),
        }
    }

    /// The manifest, checked: a bad name, an empty image, a local store or a resource quantity
    /// that is not one is [`Error::InvalidArgument`].
    pub fn manifest(&self) -> Result<Job> {
        check_dns_label("name", &self.name)?;
        if let Some(ns) = &self.namespace {
            check_dns_label("namespace", ns)?;
        }
        if self.image.trim().is_empty() {
            return Err(Error::invalid("image", "empty"));
        }
        if let Some(url) = &self.store_url
            && !url.contains("://")
        {
            return Err(Error::invalid(
                "store",
                format!(
                    "{url:?} is a local path, which a pod cannot reach: use s3://, gs://, az://"
                ),
            ));
        }
        if self.backoff_limit < 0 {
            return Err(Error::invalid("backoff_limit", "must not be negative"));
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
            env.push(EnvVar {
                name: "MLOPS_STORE".into(),
                value: Some(url.clone()),
                ..EnvVar::default()
            });
        }
        env.extend(self.env.iter().map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..EnvVar::default()
        }));
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (
                "app.kubernetes.io/component".to_owned(),
                "training".to_owned(),
            ),
        ]);
        let container = Container {
            name: "train".into(),
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
        };
        Ok(Job {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: self.namespace.clone(),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                backoff_limit: Some(self.backoff_limit),
                completions: Some(1),
                parallelism: Some(1),
                active_deadline_seconds: self.active_deadline_seconds,
                ttl_seconds_after_finished: self.ttl_seconds_after_finished,
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        restart_policy: Some("Never".into()),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        })
    }

    /// The manifest as YAML, checked by parsing it back as a Kubernetes `Job`.
    pub fn to_yaml(&self) -> Result<String> {
        let job = self.manifest()?;
        let yaml = serde_yaml_ng::to_string(&job).map_err(|e| Error::backend("serde_yaml", e))?;
        if parse_job(&yaml)? != job {
            return Err(Error::invalid(
                "manifest",
                "the YAML does not read back as written",
            ));
        }
        Ok(yaml)
    }
}

/// Parses a `batch/v1` Job manifest with the Kubernetes types.
pub fn parse_job(yaml: &str) -> Result<Job> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| Error::invalid("manifest", e.to_string()))?;
    let api = value.get("apiVersion").and_then(|v| v.as_str());
    let kind = value.get("kind").and_then(|v| v.as_str());
    if api != Some("batch/v1") || kind != Some("Job") {
        return Err(Error::invalid(
            "manifest",
            format!("{api:?}/{kind:?} is not batch/v1 Job"),
        ));
    }
    serde_yaml_ng::from_value(value)
        .map_err(|e| Error::invalid("manifest", format!("not a Job: {e}")))
}

fn check_dns_label(what: &'static str, name: &str) -> Result<()> {
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

/// A Kubernetes quantity: a decimal number with an optional SI or binary suffix.
fn check_quantity(what: &'static str, v: &str) -> Result<()> {
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let ok = suffixes.iter().any(|s| {
        v.strip_suffix(s).is_some_and(|n| {
            !n.is_empty() && n.parse::<f64>().is_ok_and(|x| x.is_finite() && x >= 0.0)
        })
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{v:?} is not a Kubernetes quantity (e.g. 2, 500m, 8Gi)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> JobExport {
        let mut e = JobExport::new(
            "train-churn",
            "ghcr.io/acme/mlops:1.0",
            [
                "train", "--data", "churn", "--target", "churned", "--model", "logistic",
            ]
            .map(String::from)
            .to_vec(),
        );
        e.store_url = Some("s3://ml/store".into());
        e.cpu = Some("4".into());
        e.memory = Some("8Gi".into());
        e.gpus = 1;
        e
    }

    #[test]
    fn job_yaml_parses_back_as_the_kubernetes_type() {
        let yaml = export().to_yaml().unwrap();
        assert!(yaml.contains("apiVersion: batch/v1"), "{yaml}");
        assert!(yaml.contains("kind: Job"), "{yaml}");
        let job = parse_job(&yaml).unwrap();
        let spec = job.spec.unwrap();
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let c = &pod.containers[0];
        assert_eq!(c.args.as_ref().unwrap()[0], "train");
        assert_eq!(
            c.env.as_ref().unwrap()[0].value.as_deref(),
            Some("s3://ml/store")
        );
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["nvidia.com/gpu"], Quantity("1".into()));
        assert_eq!(limits["memory"], Quantity("8Gi".into()));
        assert_eq!(spec.backoff_limit, Some(2));
    }

    #[test]
    fn bad_fields_are_named() {
        for (edit, want) in [
            (
                Box::new(|e: &mut JobExport| e.name = "Train_Churn".into())
                    as Box<dyn Fn(&mut JobExport)>,
                "DNS label",
            ),
            (
                Box::new(|e: &mut JobExport| e.store_url = Some("./mlops-data".into())),
                "local path",
            ),
            (
                Box::new(|e: &mut JobExport| e.memory = Some("lots".into())),
                "quantity",
            ),
            (Box::new(|e: &mut JobExport| e.image = " ".into()), "image"),
        ] {
            let mut e = export();
            edit(&mut e);
            let err = e.manifest().unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        assert!(parse_job("apiVersion: v1\nkind: Pod\n").is_err());
    }
}
