//! Export to KServe: an `InferenceService` (`serving.kserve.io/v1beta1`) whose predictor runs
//! `mlops serve` in the user's image, with a canary share when asked (which needs KServe's
//! Knative deployment mode, so the manifest sets it).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlops_core::{Error, ModelUri, Result};
use mlops_k8s::{ContainerSpec, check_dns_label, to_checked_yaml};

/// Environment values of the predictor's container (plain, or Secret-backed for credentials).
pub use mlops_k8s::EnvValue;
use serde::{Deserialize, Serialize};

/// The annotation that selects KServe's Knative mode (canary rollouts need it).
pub const DEPLOYMENT_MODE_ANNOTATION: &str = "serving.kserve.io/deploymentMode";

/// An `InferenceService`, typed as far as this export uses it; containers and metadata are
/// the real Kubernetes types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceService {
    /// `serving.kserve.io/v1beta1`.
    pub api_version: String,
    /// `InferenceService`.
    pub kind: String,
    /// Name, namespace, annotations.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: InferenceServiceSpec,
}

/// `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceServiceSpec {
    /// The predictor.
    pub predictor: PredictorSpec,
}

/// `spec.predictor`: a custom container predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PredictorSpec {
    /// Percent of traffic to the newest revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_traffic_percent: Option<i64>,
    /// Fewest replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Most replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// The containers (one: `kserve-container`).
    pub containers: Vec<Container>,
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KServeExport {
    /// The InferenceService's name (a DNS label).
    pub name: String,
    /// Namespace, when set.
    pub namespace: Option<String>,
    /// An image whose entrypoint is the `mlops` binary (or the user's binary embedding it).
    pub image: String,
    /// The model to serve, `models:/…`.
    pub model: ModelUri,
    /// The store the pods read the registry and artifacts from (`s3://…`); credentials come from
    /// the pod's environment (`env`) or service account.
    pub store_url: String,
    /// Percent of traffic to this new revision; `None` sends all of it.
    pub canary_percent: Option<u8>,
    /// Container port (8080, KServe's default).
    pub port: i32,
    /// Replica bounds.
    pub min_replicas: Option<i32>,
    /// Replica bounds.
    pub max_replicas: Option<i32>,
    /// Extra environment variables (plain, or Kubernetes Secret references for credentials).
    pub env: BTreeMap<String, EnvValue>,
}

impl KServeExport {
    /// Serves `model` from the store at `store_url` in `image`, as `name`.
    pub fn new(
        name: impl Into<String>,
        image: impl Into<String>,
        model: ModelUri,
        store_url: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: None,
            image: image.into(),
            model,
            store_url: store_url.into(),
            canary_percent: None,
            port: 8080,
            min_replicas: None,
            max_replicas: None,
            env: BTreeMap::new(),
        }
    }

    /// Rolls out as a canary taking `percent`% of traffic.
    pub fn with_canary(mut self, percent: u8) -> Self {
        self.canary_percent = Some(percent);
        self
    }

    /// The manifest.
    pub fn manifest(&self) -> Result<InferenceService> {
        check_dns_label("name", &self.name)?;
        if self.model.model_name().is_none() {
            return Err(Error::invalid(
                "model",
                format!("{} is not a models:/ URI", self.model),
            ));
        }
        if let Some(p) = self.canary_percent
            && p > 100
        {
            return Err(Error::invalid("canary", format!("{p} is not a percentage")));
        }
        let mut annotations = BTreeMap::new();
        if self.canary_percent.is_some() {
            annotations.insert(
                DEPLOYMENT_MODE_ANNOTATION.to_string(),
                "Knative".to_string(),
            );
        }
        let probe = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_string()),
                port: IntOrString::Int(self.port),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        let mut spec = ContainerSpec::new("kserve-container", self.image.clone()).args([
            "serve".to_owned(),
            "--model".to_owned(),
            self.model.to_string(),
            "--host".to_owned(),
            "0.0.0.0".to_owned(),
            "--port".to_owned(),
            self.port.to_string(),
        ]);
        spec.store_url = Some(self.store_url.clone());
        spec.env = self.env.clone();
        let container = Container {
            ports: Some(vec![ContainerPort {
                container_port: self.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(probe("/v2/health/ready")),
            liveness_probe: Some(probe("/v2/health/live")),
            ..spec.build()?
        };
        Ok(InferenceService {
            api_version: "serving.kserve.io/v1beta1".into(),
            kind: "InferenceService".into(),
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: self.namespace.clone(),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            },
            spec: InferenceServiceSpec {
                predictor: PredictorSpec {
                    canary_traffic_percent: self.canary_percent.map(i64::from),
                    min_replicas: self.min_replicas,
                    max_replicas: self.max_replicas,
                    containers: vec![container],
                },
            },
        })
    }

    /// The manifest as YAML, checked by parsing it back.
    pub fn to_yaml(&self) -> Result<String> {
        let manifest = self.manifest()?;
        let yaml = to_checked_yaml(&manifest)?;
        // The checks `parse` adds (the canary's deployment mode) hold for what we write.
        parse(&yaml)?;
        Ok(yaml)
    }
}

/// Parses an `InferenceService` manifest (as this module writes them).
pub fn parse(yaml: &str) -> Result<InferenceService> {
    let isvc: InferenceService = serde_yaml_ng::from_str(yaml)
        .map_err(|e| Error::invalid("manifest", "not an InferenceService").with_source(e))?;
    if isvc.api_version != "serving.kserve.io/v1beta1" || isvc.kind != "InferenceService" {
        return Err(Error::invalid(
            "manifest",
            format!(
                "{}/{} is not serving.kserve.io/v1beta1 InferenceService",
                isvc.api_version, isvc.kind
            ),
        ));
    }
    if isvc.spec.predictor.canary_traffic_percent.is_some()
        && isvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEPLOYMENT_MODE_ANNOTATION))
            .map(String::as_str)
            != Some("Knative")
    {
        return Err(Error::invalid(
            "manifest",
            "canaryTrafficPercent needs the serving.kserve.io/deploymentMode: Knative annotation",
        ));
    }
    Ok(isvc)
}
