//! Export to KServe: an `InferenceService` (`serving.kserve.io/v1beta1`) whose predictor runs
//! `mlops serve` in the user's image, and the `ServingRuntime` (`serving.kserve.io/v1alpha1`)
//! it names, in one YAML file.
//!
//! The predictor is KServe's model form: `predictor.model` with `modelFormat` — `onnx` for ONNX
//! models (and MLflow models served by their onnx flavor), [`MLOPS_FORMAT`] for the flavors
//! only mlops runs —, `protocolVersion: v2`, `runtime: mlops-serve` and the container fields
//! (image, arguments, store, ports, probes). The runtime declares both formats and the
//! protocols `v2` and `grpc-v2`; it auto-selects neither, so KServe's own runtimes (Triton
//! auto-selects `onnx`) never take these models and these never take theirs.
//!
//! Ports: in KServe's Standard (raw) mode, the default here, the HTTP port comes first (the
//! Service's port 80, the readiness probe) and the gRPC port second (named `grpc`, which KServe
//! marks `h2c`). A canary needs KServe's Knative mode, where a container exposes one port:
//! then only HTTP is served.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlops_core::{Error, ModelUri, Result};
use mlops_k8s::{ContainerSpec, check_dns_label, to_checked_yaml};

/// Environment values of the predictor's container (plain, or Secret-backed for credentials).
pub use mlops_k8s::EnvValue;
use serde::{Deserialize, Serialize};

/// The annotation that selects KServe's deployment mode: `Knative` for a canary, else
/// `Standard` (raw Deployments, where both ports are exposed).
pub const DEPLOYMENT_MODE_ANNOTATION: &str = "serving.kserve.io/deploymentMode";
/// The `ServingRuntime` the exports name.
pub const RUNTIME_NAME: &str = "mlops-serve";
/// The model format of flavors only mlops runs (candle, linear, …).
pub const MLOPS_FORMAT: &str = "mlops";
/// The model format of ONNX models.
pub const ONNX_FORMAT: &str = "onnx";

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

/// `spec.predictor`.
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
    /// The model.
    pub model: ModelSpec,
}

/// `spec.predictor.model`: the format, protocol and runtime, and the container's fields
/// (KServe inlines a Kubernetes container here and merges it into the runtime's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// The model's format.
    pub model_format: ModelFormat,
    /// `v2`: the Open Inference Protocol.
    pub protocol_version: String,
    /// The `ServingRuntime` ([`RUNTIME_NAME`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The container fields.
    #[serde(flatten)]
    pub container: Container,
}

/// `modelFormat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelFormat {
    /// `onnx`, [`MLOPS_FORMAT`], ….
    pub name: String,
    /// A format version, when the runtime lists one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A `ServingRuntime`, typed as far as this export uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServingRuntime {
    /// `serving.kserve.io/v1alpha1`.
    pub api_version: String,
    /// `ServingRuntime`.
    pub kind: String,
    /// Name, namespace.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: ServingRuntimeSpec,
}

/// `ServingRuntime.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServingRuntimeSpec {
    /// The formats it serves.
    pub supported_model_formats: Vec<SupportedModelFormat>,
    /// `v2` and `grpc-v2`.
    pub protocol_versions: Vec<String>,
    /// One container, `kserve-container`.
    pub containers: Vec<Container>,
}

/// One entry of `supportedModelFormats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportedModelFormat {
    /// The format.
    pub name: String,
    /// Whether KServe may pick this runtime for the format unasked (never, here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_select: Option<bool>,
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
    /// Its format: [`ONNX_FORMAT`] or [`MLOPS_FORMAT`] (the default).
    pub model_format: String,
    /// The store the pods read the registry and artifacts from (`s3://…`); credentials come from
    /// the pod's environment (`env`) or service account.
    pub store_url: String,
    /// Percent of traffic to this new revision; `None` sends all of it.
    pub canary_percent: Option<u8>,
    /// HTTP port (8080, KServe's default).
    pub port: i32,
    /// gRPC port (8081, KServe's); `None` serves HTTP only. Not exposed in Knative mode (a
    /// canary), where a container has one port.
    pub grpc_port: Option<i32>,
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
            model_format: MLOPS_FORMAT.to_owned(),
            store_url: store_url.into(),
            canary_percent: None,
            port: 8080,
            grpc_port: Some(8081),
            min_replicas: None,
            max_replicas: None,
            env: BTreeMap::new(),
        }
    }

    /// Rolls out as a canary taking `percent`% of traffic (Knative mode: HTTP only).
    pub fn with_canary(mut self, percent: u8) -> Self {
        self.canary_percent = Some(percent);
        self
    }

    /// Declares the model's format ([`ONNX_FORMAT`], [`MLOPS_FORMAT`]).
    pub fn with_model_format(mut self, format: impl Into<String>) -> Self {
        self.model_format = format.into();
        self
    }

    /// Serves HTTP only.
    pub fn without_grpc(mut self) -> Self {
        self.grpc_port = None;
        self
    }

    /// The gRPC port the pod exposes: none in Knative mode.
    fn exposed_grpc_port(&self) -> Option<i32> {
        self.grpc_port.filter(|_| self.canary_percent.is_none())
    }

    fn check(&self) -> Result<()> {
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
        if self.model_format != ONNX_FORMAT && self.model_format != MLOPS_FORMAT {
            return Err(Error::invalid(
                "model format",
                format!(
                    "{:?}: the runtime serves {ONNX_FORMAT} and {MLOPS_FORMAT}",
                    self.model_format
                ),
            ));
        }
        if self.grpc_port == Some(self.port) {
            return Err(Error::invalid(
                "grpc port",
                format!("{} is also the HTTP port", self.port),
            ));
        }
        Ok(())
    }

    /// The `ServingRuntime` the InferenceService names: `mlops serve` in the image, serving
    /// both formats over `v2` and `grpc-v2`.
    pub fn serving_runtime(&self) -> Result<ServingRuntime> {
        self.check()?;
        let container = ContainerSpec::new("kserve-container", self.image.clone())
            .args(["serve", "--host", "0.0.0.0"])
            .build()?;
        Ok(ServingRuntime {
            api_version: "serving.kserve.io/v1alpha1".into(),
            kind: "ServingRuntime".into(),
            metadata: ObjectMeta {
                name: Some(RUNTIME_NAME.into()),
                namespace: self.namespace.clone(),
                ..ObjectMeta::default()
            },
            spec: ServingRuntimeSpec {
                supported_model_formats: [MLOPS_FORMAT, ONNX_FORMAT]
                    .iter()
                    .map(|name| SupportedModelFormat {
                        name: (*name).to_owned(),
                        auto_select: Some(false),
                    })
                    .collect(),
                protocol_versions: vec!["v2".into(), "grpc-v2".into()],
                containers: vec![container],
            },
        })
    }

    /// The InferenceService.
    pub fn manifest(&self) -> Result<InferenceService> {
        self.check()?;
        let mode = if self.canary_percent.is_some() {
            "Knative"
        } else {
            "Standard"
        };
        let annotations =
            BTreeMap::from([(DEPLOYMENT_MODE_ANNOTATION.to_string(), mode.to_owned())]);
        let probe = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_string()),
                port: IntOrString::Int(self.port),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        // Appended to the runtime's `serve --host 0.0.0.0`.
        let mut args = vec![
            "--model".to_owned(),
            self.model.to_string(),
            "--port".to_owned(),
            self.port.to_string(),
        ];
        let mut ports = vec![ContainerPort {
            // Knative accepts only `http1` or `h2c` as the name of its one port.
            name: Some(
                if self.canary_percent.is_some() {
                    "http1"
                } else {
                    "http"
                }
                .into(),
            ),
            container_port: self.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }];
        if let Some(grpc) = self.exposed_grpc_port() {
            args.extend(["--grpc-port".to_owned(), grpc.to_string()]);
            ports.push(ContainerPort {
                name: Some("grpc".into()),
                container_port: grpc,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            });
        }
        let mut spec = ContainerSpec::new("kserve-container", self.image.clone()).args(args);
        spec.store_url = Some(self.store_url.clone());
        spec.env = self.env.clone();
        let container = Container {
            ports: Some(ports),
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
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            spec: InferenceServiceSpec {
                predictor: PredictorSpec {
                    canary_traffic_percent: self.canary_percent.map(i64::from),
                    min_replicas: self.min_replicas,
                    max_replicas: self.max_replicas,
                    model: ModelSpec {
                        model_format: ModelFormat {
                            name: self.model_format.clone(),
                            version: None,
                        },
                        protocol_version: "v2".into(),
                        runtime: Some(RUNTIME_NAME.into()),
                        container,
                    },
                },
            },
        })
    }

    /// The ServingRuntime and the InferenceService as one YAML file (two documents), each
    /// checked by parsing it back.
    pub fn to_yaml(&self) -> Result<String> {
        let runtime = to_checked_yaml(&self.serving_runtime()?)?;
        let isvc = to_checked_yaml(&self.manifest()?)?;
        let yaml = format!("{runtime}---\n{isvc}");
        // The checks `parse` adds (the canary's deployment mode) hold for what we write.
        parse(&yaml)?;
        Ok(yaml)
    }
}

/// The documents of a YAML file.
fn documents(yaml: &str) -> Result<Vec<serde_yaml_ng::Value>> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| {
            serde_yaml_ng::Value::deserialize(doc)
                .map_err(|e| Error::invalid("manifest", "not YAML").with_source(e))
        })
        .collect()
}

fn document(yaml: &str, api_version: &str, kind: &str) -> Result<serde_yaml_ng::Value> {
    let docs = documents(yaml)?;
    let mut found = docs.into_iter().filter(|d| {
        d.get("kind").and_then(|k| k.as_str()) == Some(kind)
            && d.get("apiVersion").and_then(|k| k.as_str()) == Some(api_version)
    });
    let doc = found
        .next()
        .ok_or_else(|| Error::invalid("manifest", format!("no {api_version} {kind} in it")))?;
    if found.next().is_some() {
        return Err(Error::invalid("manifest", format!("more than one {kind}")));
    }
    Ok(doc)
}

/// Parses the `InferenceService` of a manifest (as this module writes them: the document of
/// that kind in the file).
pub fn parse(yaml: &str) -> Result<InferenceService> {
    let isvc: InferenceService = serde_yaml_ng::from_value(document(
        yaml,
        "serving.kserve.io/v1beta1",
        "InferenceService",
    )?)
    .map_err(|e| Error::invalid("manifest", "not an InferenceService").with_source(e))?;
    let mode = isvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEPLOYMENT_MODE_ANNOTATION))
        .map(String::as_str);
    if isvc.spec.predictor.canary_traffic_percent.is_some() && mode != Some("Knative") {
        return Err(Error::invalid(
            "manifest",
            "canaryTrafficPercent needs the serving.kserve.io/deploymentMode: Knative annotation",
        ));
    }
    let ports = isvc
        .spec
        .predictor
        .model
        .container
        .ports
        .as_ref()
        .map_or(0, Vec::len);
    if mode == Some("Knative") && ports > 1 {
        return Err(Error::invalid(
            "manifest",
            "a container in Knative mode exposes one port",
        ));
    }
    Ok(isvc)
}

/// Parses the `ServingRuntime` of a manifest.
pub fn parse_runtime(yaml: &str) -> Result<ServingRuntime> {
    serde_yaml_ng::from_value(document(
        yaml,
        "serving.kserve.io/v1alpha1",
        "ServingRuntime",
    )?)
    .map_err(|e| Error::invalid("manifest", "not a ServingRuntime").with_source(e))
}
