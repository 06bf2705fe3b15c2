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
//! - [`identity`]: a model flavor that returns its inputs, for tests and overhead measurements;
//!   [`linear`]: linear and logistic regression from scikit-learn's `coef_`/`intercept_`.
//!
//! Still to come (the serving issue): dynamic batching, canary and shadow routing, `/metrics`,
//! bearer-token auth, the `mlops serve` command, the KServe manifest export and the benchmarks.

pub mod batch;
pub mod codec;
pub mod http;
pub mod identity;
pub mod kserve;
pub mod linear;
pub mod metrics;
pub mod routing;
mod server;

pub use batch::BatchConfig;
pub use http::{HttpOptions, model_server_router, router};
pub use identity::{IdentityLoader, IdentityModel};
pub use linear::{LinearLoader, LinearModel, LinearParams};
pub use metrics::ServeMetrics;
pub use routing::{Canary, Routing};
pub use server::{
    FLAVOR_FILE, LoadedModel, ModelServer, ModelServerBuilder, ROUTING_KEY, ShadowStats,
    read_model_dir, write_model_dir,
};
