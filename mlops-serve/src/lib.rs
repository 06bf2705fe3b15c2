//! # mlops-serve
//!
//! Serving over the Open Inference Protocol (KServe v2), in process and over HTTP:
//!
//! - [`ModelServer`] implements [`mlops_core::Server`]: a multi-model, multi-version repository
//!   loading models as instances, as artifacts through [`mlops_core::ModelLoader`]s, or by
//!   `models:/` URI through a [`mlops_core::Registry`] and an
//!   [`ArtifactSource`](mlops_core::model::ArtifactSource); versions are ready only after a
//!   warm-up prediction, loads swap versions atomically, requests are validated against the
//!   model's signature, an optional policy engine gates deploys and an optional
//!   [`InferenceObserver`](mlops_core::drift::InferenceObserver) sees served inputs.
//! - [`http`]: the protocol's REST API on axum — health, metadata, infer with JSON (flat or
//!   nested `data`) and the binary tensor extension, KServe's model list and repository
//!   load/unload, `{"error": …}` answers with the protocol's status codes, a body limit (413).
//! - `grpc` (feature `grpc`): the same protocol over gRPC on tonic — KServe's and Triton's
//!   `GRPCInferenceService`, raw tensor contents both ways, errors as status codes.
//! - [`batch`]: dynamic batching per version (a worker stacks compatible requests up to a
//!   size or a delay); [`routing`]: a weighted canary and a shadow per model; [`metrics`]:
//!   Prometheus series per model and version.
//! - [`identity`]: a model flavor that returns its inputs, for tests and overhead measurements;
//!   [`linear`]: linear and logistic regression from scikit-learn's `coef_`/`intercept_`.
//! - [`model_dir`]: an artifact as a folder with a `FLAVOR` file; [`kserve`]: the same model
//!   as a KServe `InferenceService` running `mlops serve`.
//!
//! Served models are addressed by [`ModelName`](mlops_core::ModelName) and
//! [`Version`](mlops_core::Version) — registry versions, which is also what the protocol's
//! version path segments must parse as.
//!
//! ```
//! use std::sync::Arc;
//! use mlops_core::serve::{InferRequest, Server};
//! use mlops_core::{ModelName, Tensor, Version};
//! use mlops_serve::{LinearModel, LinearParams, ModelServer, linear::Link};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mlops_core::Result<()> {
//! let server = ModelServer::builder("example").build();
//! let model = LinearModel::new(LinearParams {
//!     coef: vec![vec![2.0, -1.0]],
//!     intercept: vec![0.5],
//!     link: Link::Identity,
//! })?;
//! let score: ModelName = "score".parse()?;
//! server.load_model(&score, Version::FIRST, Arc::new(model))?;
//! let x = Tensor::from_f32("x", vec![2, 2], &[1.0, 1.0, 0.0, 2.0])?;
//! let answer = server.infer(InferRequest::new(score, vec![x])).await?;
//! assert_eq!(answer.outputs[0].to_f32()?, vec![1.5, -1.5]);
//! assert_eq!(answer.model_version, Some(Version::FIRST));
//! // Over HTTP: axum::serve(listener, mlops_serve::model_server_router(Arc::new(server), Default::default()))
//! # Ok(())
//! # }
//! ```

mod accept;
mod admission;
pub mod batch;
pub mod codec;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod http;
pub mod identity;
pub mod kserve;
pub mod linear;
pub mod metrics;
pub mod model_dir;
pub mod routing;
mod server;

pub use batch::BatchConfig;
pub use http::{ConnectionOptions, HttpOptions, model_server_router, router};
pub use identity::{IdentityLoader, IdentityModel};
pub use linear::{LinearLoader, LinearModel, LinearParams};
pub use metrics::ServeMetrics;
pub use model_dir::{FLAVOR_FILE, read_model_dir, write_model_dir};
pub use routing::{Canary, Routing};
pub use server::{
    LoadedModel, ModelServer, ModelServerBuilder, ROUTING_KEY, SYNTHETIC, ShadowStats,
};
