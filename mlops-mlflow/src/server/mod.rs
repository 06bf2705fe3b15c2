//! An MLflow-compatible tracking server over any [`Tracker`] and [`Registry`]: MLflow's REST API
//! (`/api/2.0/mlflow/...` and the UI's `/ajax-api/2.0/mlflow/...`) and its artifact proxy
//! (`/api/2.0/mlflow-artifacts/artifacts/...`), so MLflow's own clients and integrations log into
//! an mlops store unchanged.
//!
//! ```no_run
//! # async fn example() -> mlops_core::Result<()> {
//! use std::sync::Arc;
//! use mlops_mlflow::server::MlflowServer;
//! use mlops_storage::{MemoryRegistry, MemoryTracker};
//!
//! let server = MlflowServer::new(Arc::new(MemoryTracker::new()), Arc::new(MemoryRegistry::new()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000")
//!     .await
//!     .map_err(|e| mlops_core::Error::io("listener", "bind", "127.0.0.1:5000", e))?;
//! // Then, in a shell: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python train.py
//! axum::serve(listener, server.router())
//!     .await
//!     .map_err(|e| mlops_core::Error::io("server", "serve", "127.0.0.1:5000", e))?;
//! # Ok(())
//! # }
//! ```
//!
//! # What it answers, and how
//!
//! - **Shapes** follow `service.proto` and `model_registry.proto` as MLflow's server emits them:
//!   snake_case fields, int64 as JSON numbers, enums by name, unset fields omitted, `{}` for empty
//!   answers. GET parameters come from the query string (repeated keys are lists), other methods'
//!   from a JSON body; both are accepted everywhere, as MLflow's clients mix them.
//! - **Errors** are MLflow's: `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": …}` with the
//!   matching status, mapped from [`mlops_core::Error`]'s categories ([`ApiError`]). A policy's
//!   denial is `PERMISSION_DENIED` (403) carrying every reason.
//! - **Durability.** Every write is flushed ([`Tracker::flush`]) before it is acknowledged, so a
//!   server killed at any point loses nothing it answered. Concurrent writers share flushes.
//! - **Artifacts.** Every run's `artifact_uri` is answered as
//!   `mlflow-artifacts:/<experiment>/<run>/artifacts` (and every experiment's location as
//!   `mlflow-artifacts:/<experiment>`), so clients upload and download through this server's
//!   proxy, into the tracker's own artifact store — `mlflow server --serve-artifacts` semantics.
//! - **Registry writes** go to the registry it is given: pass a policy-governed one
//!   (`mlops_policy::Governed`) and a denied alias move answers `PERMISSION_DENIED` with the
//!   policy's reasons, logged in its decision log.
//! - **Auth.** With [`MlflowServer::with_bearer_token`], every route but `/health` and `/version`
//!   needs `Authorization: Bearer <token>` (MLflow's clients send `MLFLOW_TRACKING_TOKEN` so).
//!
//! - **LoggedModels** (MLflow 3's `/logged-models/...` and `runs/outputs`, which
//!   `mlflow.<flavor>.log_model`, autologging and `register_model("runs:/…")` use) are kept in a
//!   store given with [`MlflowServer::with_logged_models`]: one document per model under the ref
//!   `mlflow/logged-models/<model_id>`, its files as blobs retained by the ref's commits, reached
//!   at `mlflow-artifacts:/<experiment>/models/<model_id>/artifacts`; what a run output
//!   (`runs/outputs`, answered as the run's `outputs`) under `mlflow/run-outputs/<run_id>`.
//!   Without a store, creating one answers `NOT_IMPLEMENTED` and searches find none.
//!
//! # What it does not answer (yet)
//!
//! Renaming experiments and registered models (the core traits have no rename: answered
//! `NOT_IMPLEMENTED`), per-LoggedModel metrics (they stay with the run they were logged to),
//! traces, and multipart artifact uploads. Unknown routes answer `ENDPOINT_NOT_FOUND` (404).

mod artifacts;
mod entities;
mod logged_models;
mod params;
mod registry;
mod tracking;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mlops_core::secret::SecretString;
use mlops_core::{Error, ErrorKind, Registry, Tracker};
use serde_json::json;

/// The version `GET /version` answers: the MLflow REST API generation this server speaks.
pub const MLFLOW_API_VERSION: &str = "3.17.2";

/// The default bound on one artifact upload (artifacts are held in memory while stored).
pub const DEFAULT_MAX_ARTIFACT_BYTES: usize = 1 << 30;

/// The bound on a JSON request body (MLflow's own limit on a log-batch is 1 MB).
const MAX_JSON_BYTES: usize = 16 << 20;

/// An MLflow-compatible tracking server over a [`Tracker`] and a [`Registry`] (see the
/// [module docs](self)).
#[derive(Clone)]
pub struct MlflowServer {
    tracker: Arc<dyn Tracker>,
    registry: Arc<dyn Registry>,
    token: Option<SecretString>,
    max_artifact_bytes: usize,
    logged_models: Option<logged_models::LoggedModels>,
}

impl std::fmt::Debug for MlflowServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowServer")
            .field("tracker", &self.tracker)
            .field("registry", &self.registry)
            .field("token", &self.token)
            .field("max_artifact_bytes", &self.max_artifact_bytes)
            .field("logged_models", &self.logged_models)
            .finish()
    }
}

impl MlflowServer {
    /// A server over `tracker` and `registry`.
    pub fn new(tracker: Arc<dyn Tracker>, registry: Arc<dyn Registry>) -> Self {
        Self {
            tracker,
            registry,
            token: None,
            max_artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            logged_models: None,
        }
    }

    /// Keeps MLflow 3's LoggedModels (what `mlflow.<flavor>.log_model` and autologging create)
    /// and their files in `store`, under the refs `mlflow/logged-models/<model_id>`. Without
    /// it, creating one answers `NOT_IMPLEMENTED` and searches find none.
    pub fn with_logged_models(mut self, store: Arc<dyn mlops_core::Store>) -> Self {
        self.logged_models = Some(logged_models::LoggedModels::new(store));
        self
    }

    /// Requires `Authorization: Bearer <token>` on every route but `/health` and `/version`.
    pub fn with_bearer_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Bounds one artifact upload (default [`DEFAULT_MAX_ARTIFACT_BYTES`]); larger ones answer
    /// 413.
    pub fn with_max_artifact_bytes(mut self, n: usize) -> Self {
        self.max_artifact_bytes = n;
        self
    }

    /// The router: mount it as it is, or merge it into an app of your own.
    pub fn router(self) -> Router {
        let max_artifact = self.max_artifact_bytes;
        let state = Arc::new(self);
        let api = tracking::routes()
            .merge(registry::routes())
            .layer(DefaultBodyLimit::max(MAX_JSON_BYTES));
        let artifacts = artifacts::routes().layer(DefaultBodyLimit::max(max_artifact));
        let protected = Router::new()
            .nest("/api/2.0/mlflow", api.clone())
            .nest("/ajax-api/2.0/mlflow", api)
            .nest("/api/2.0/mlflow-artifacts", artifacts.clone())
            .nest("/ajax-api/2.0/mlflow-artifacts", artifacts)
            .fallback(not_found)
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authorize,
            ));
        Router::new()
            .route("/health", get(|| async { "OK" }))
            .route("/version", get(|| async { MLFLOW_API_VERSION }))
            .merge(protected)
            .fallback(not_found)
            .with_state(state)
    }

    /// Acknowledges a write only once it is durable.
    async fn durable(&self) -> Result<(), ApiError> {
        self.tracker.flush().await.map_err(ApiError::from)
    }
}

type AppState = State<Arc<MlflowServer>>;

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        "ENDPOINT_NOT_FOUND",
        StatusCode::NOT_FOUND,
        format!("no API endpoint {}", uri.path()),
    )
}

async fn authorize(
    State(state): AppState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !mlops_core::secret::bearer_matches(given, token) {
            let mut response = ApiError::new(
                "UNAUTHENTICATED",
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (set MLFLOW_TRACKING_TOKEN)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// An error as MLflow's server answers it: `{"error_code", "message"}` with the code's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, …).
    pub code: &'static str,
    /// The HTTP status that goes with it.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new("INVALID_PARAMETER_VALUE", StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_implemented(message: impl Into<String>) -> Self {
        Self::new("NOT_IMPLEMENTED", StatusCode::NOT_IMPLEMENTED, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (code, status) = match e.kind() {
            ErrorKind::NotFound => ("RESOURCE_DOES_NOT_EXIST", StatusCode::NOT_FOUND),
            ErrorKind::AlreadyExists => ("RESOURCE_ALREADY_EXISTS", StatusCode::BAD_REQUEST),
            ErrorKind::Conflict => ("RESOURCE_CONFLICT", StatusCode::CONFLICT),
            ErrorKind::InvalidArgument => ("INVALID_PARAMETER_VALUE", StatusCode::BAD_REQUEST),
            ErrorKind::PolicyDenied | ErrorKind::PermissionDenied => {
                ("PERMISSION_DENIED", StatusCode::FORBIDDEN)
            }
            ErrorKind::NotSupported => ("NOT_IMPLEMENTED", StatusCode::NOT_IMPLEMENTED),
            ErrorKind::Unavailable => ("TEMPORARILY_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            _ => ("INTERNAL_ERROR", StatusCode::INTERNAL_SERVER_ERROR),
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, code, "mlflow api request failed");
        }
        Self::new(code, status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error_code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// A JSON answer.
pub(crate) fn ok(v: serde_json::Value) -> ApiResult<axum::Json<serde_json::Value>> {
    Ok(axum::Json(v))
}
