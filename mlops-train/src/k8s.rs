//! Scale-out: a training run as a Kubernetes `batch/v1` Job that runs the same binary with the
//! same arguments in a container, against the same store.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mlops_core::{Error, Result};
use mlops_k8s::{ContainerSpec, check_dns_label, parse_manifest, to_checked_yaml};

/// Environment values of the Job's container (plain, or Secret-backed for credentials).
pub use mlops_k8s::EnvValue;
pub use mlops_k8s::MANAGED_BY;

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
    /// Extra environment variables (plain, or Kubernetes Secret references for credentials).
    pub env: BTreeMap<String, EnvValue>,
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
        if self.backoff_limit < 0 {
            return Err(Error::invalid("backoff_limit", "must not be negative"));
        }
        let mut spec = ContainerSpec::new("train", self.image.clone()).args(self.args.clone());
        spec.command = self.command.clone();
        spec.store_url = self.store_url.clone();
        spec.env = self.env.clone();
        spec.cpu = self.cpu.clone();
        spec.memory = self.memory.clone();
        spec.gpus = self.gpus;
        let container = spec.build()?;
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (
                "app.kubernetes.io/component".to_owned(),
                "training".to_owned(),
            ),
        ]);
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
        to_checked_yaml(&self.manifest()?)
    }
}

/// Parses a `batch/v1` Job manifest with the Kubernetes types.
pub fn parse_job(yaml: &str) -> Result<Job> {
    parse_manifest(yaml, "batch/v1", "Job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

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
                "not reachable from pods",
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
