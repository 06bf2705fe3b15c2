//! The [`Server`] trait: the Open Inference Protocol's semantics, in process.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{ModelName, Version};
use crate::tensor::{DataType, Tensor};
use crate::uri::ModelUri;

/// Request or response parameters (`{k: str | number | bool}`).
pub type Parameters = BTreeMap<String, serde_json::Value>;

/// `GET /v2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetadata {
    /// Server name.
    pub name: String,
    /// Server version.
    pub version: String,
    /// Protocol extensions supported (`binary_tensor_data`, …).
    pub extensions: Vec<String>,
}

/// An input or output as model metadata describes it; `-1` marks a variable dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorMetadata {
    /// Name.
    pub name: String,
    /// Datatype.
    pub datatype: DataType,
    /// Shape.
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Model name.
    pub name: String,
    /// Available versions.
    pub versions: Vec<String>,
    /// Framework (`mlops-candle`, …).
    pub platform: String,
    /// Inputs.
    pub inputs: Vec<TensorMetadata>,
    /// Outputs.
    pub outputs: Vec<TensorMetadata>,
}

/// One entry of the model repository index (KServe's `GET /v2/models`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelState {
    /// Model name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Whether it can serve requests.
    pub ready: bool,
}

/// An output the client asks for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RequestedOutput {
    /// Output name.
    pub name: String,
    /// Per-output parameters (`binary_data`, …).
    pub parameters: Parameters,
}

/// An inference request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InferRequest {
    /// Target model.
    pub model_name: ModelName,
    /// Target version; the server routes when `None` (default version, canary split).
    pub model_version: Option<Version>,
    /// Echoed in the response.
    pub id: Option<String>,
    /// Request parameters.
    pub parameters: Parameters,
    /// Inputs.
    pub inputs: Vec<Tensor>,
    /// Requested outputs; all when empty.
    pub outputs: Vec<RequestedOutput>,
}

impl InferRequest {
    /// A request to `model` with `inputs`.
    pub fn new(model: ModelName, inputs: Vec<Tensor>) -> Self {
        Self {
            model_name: model,
            model_version: None,
            id: None,
            parameters: Parameters::new(),
            inputs,
            outputs: Vec::new(),
        }
    }

    /// Targets `version`.
    pub fn with_version(mut self, version: Version) -> Self {
        self.model_version = Some(version);
        self
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// An inference response.
#[derive(Debug, Clone, PartialEq)]
pub struct InferResponse {
    /// The model that answered.
    pub model_name: ModelName,
    /// Its version.
    pub model_version: Option<Version>,
    /// The request's id.
    pub id: Option<String>,
    /// Response parameters.
    pub parameters: Parameters,
    /// Outputs.
    pub outputs: Vec<Tensor>,
}

/// What to load.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// A `models:/` URI to load from a registry; the server's configured source when `None`.
    pub uri: Option<ModelUri>,
}

impl LoadOptions {
    /// Loads from `uri`.
    pub fn from_uri(uri: ModelUri) -> Self {
        Self { uri: Some(uri) }
    }
}

/// In-process inference with the Open Inference Protocol's semantics; the HTTP transport is a
/// thin layer over it.
///
/// # Contract
///
/// - `live` is true while the server runs; `ready` once every configured model is ready.
/// - A model is ready only after it is loaded and warmed up; requests to a model that is loading
///   are [`crate::Error::Unavailable`], to an unknown model or version [`crate::Error::NotFound`].
/// - Inputs that do not match the model's signature are [`crate::Error::InvalidArgument`] naming
///   the input; the server keeps serving.
/// - Loading a new version of a served model swaps it in without failing in-flight requests.
#[async_trait]
pub trait Server: Debug + Send + Sync + 'static {
    /// Liveness.
    async fn live(&self) -> Result<bool>;
    /// Readiness.
    async fn ready(&self) -> Result<bool>;
    /// Server metadata.
    async fn metadata(&self) -> Result<ServerMetadata>;
    /// Model metadata (of `version`, or of the version requests naming none get).
    async fn model_metadata(
        &self,
        name: &ModelName,
        version: Option<Version>,
    ) -> Result<ModelMetadata>;
    /// Model readiness.
    async fn model_ready(&self, name: &ModelName, version: Option<Version>) -> Result<bool>;
    /// The repository index.
    async fn list_models(&self) -> Result<Vec<ModelState>>;
    /// Loads (or reloads) a model.
    async fn load(&self, name: &ModelName, options: LoadOptions) -> Result<()>;
    /// Unloads a model (one version, or all).
    async fn unload(&self, name: &ModelName, version: Option<Version>) -> Result<()>;
    /// Runs inference.
    async fn infer(&self, request: InferRequest) -> Result<InferResponse>;
}

macro_rules! forward_server {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<S: Server + ?Sized> Server for $ty {
            async fn live(&self) -> Result<bool> {
                (**self).live().await
            }
            async fn ready(&self) -> Result<bool> {
                (**self).ready().await
            }
            async fn metadata(&self) -> Result<ServerMetadata> {
                (**self).metadata().await
            }
            async fn model_metadata(
                &self,
                name: &ModelName,
                version: Option<Version>,
            ) -> Result<ModelMetadata> {
                (**self).model_metadata(name, version).await
            }
            async fn model_ready(
                &self,
                name: &ModelName,
                version: Option<Version>,
            ) -> Result<bool> {
                (**self).model_ready(name, version).await
            }
            async fn list_models(&self) -> Result<Vec<ModelState>> {
                (**self).list_models().await
            }
            async fn load(&self, name: &ModelName, options: LoadOptions) -> Result<()> {
                (**self).load(name, options).await
            }
            async fn unload(&self, name: &ModelName, version: Option<Version>) -> Result<()> {
                (**self).unload(name, version).await
            }
            async fn infer(&self, request: InferRequest) -> Result<InferResponse> {
                (**self).infer(request).await
            }
        }
    };
}

forward_server!(Arc<S>);
forward_server!(Box<S>);

/// Turns a request's inputs into the model's: KServe's transformer `preprocess` step, in
/// process and without the network hop — e.g. `mlops_features::FeatureLookup` looks features up
/// by the entity keys a request carries.
///
/// # Contract
/// - Called once per request to the model it was configured for, before the inputs are checked
///   against `signature` (the served version's), with the request's inputs; what it returns is
///   what the model receives (and what drift observers see).
/// - Inputs it cannot complete are [`crate::Error::InvalidArgument`] naming what is missing
///   (a 400 over HTTP); a backend it cannot reach is [`crate::Error::Unavailable`].
#[async_trait]
pub trait Preprocessor: Debug + Send + Sync + 'static {
    /// The model's inputs for a request's `inputs`.
    async fn preprocess(
        &self,
        model: &ModelName,
        signature: &crate::signature::Signature,
        inputs: Vec<Tensor>,
    ) -> Result<Vec<Tensor>>;
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<P: Preprocessor + ?Sized> Preprocessor for Arc<P> {
    async fn preprocess(
        &self,
        model: &ModelName,
        signature: &crate::signature::Signature,
        inputs: Vec<Tensor>,
    ) -> Result<Vec<Tensor>> {
        (**self).preprocess(model, signature, inputs).await
    }
}

/// The served model's inference, as an [`Explainer`] calls it: inputs in, outputs out, always
/// against the same model version.
pub type InferFn<'a> = &'a (dyn Fn(Vec<Tensor>) -> Result<Vec<Tensor>> + Sync);

/// Explains a served model's predictions: what answers `POST /v2/models/{name}/explain` (the
/// `:explain` verb of KServe's protocol, with the Open Inference Protocol's request shape).
///
/// # Contract
///
/// - `request` is an inference request (its rows are the ones to explain); the explainer calls
///   `infer` as often as it needs, and every call reaches the version that answered the
///   request's first call (the transport pins it, so a canary split cannot mix versions).
/// - The response holds per-row attributions as output tensors; bad parameters or inputs the
///   explainer cannot perturb are [`crate::Error::InvalidArgument`] or
///   [`crate::Error::NotSupported`] naming them.
/// - Synchronous compute: transports call it on a blocking thread.
pub trait Explainer: Debug + Send + Sync + 'static {
    /// Explains `request`'s rows.
    fn explain(&self, request: &InferRequest, infer: InferFn<'_>) -> Result<InferResponse>;
}

macro_rules! forward_explainer {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<E: Explainer + ?Sized> Explainer for $ty {
            fn explain(&self, request: &InferRequest, infer: InferFn<'_>) -> Result<InferResponse> {
                (**self).explain(request, infer)
            }
        }
    };
}

forward_explainer!(Arc<E>);
forward_explainer!(Box<E>);
