//! The Open Inference Protocol v2 REST API over axum, for any [`Server`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_core::serve::{LoadOptions, Server};
use mlops_core::{Error, ModelUri};
use serde_json::json;

use crate::codec;

/// Options of the HTTP transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Largest request body accepted (default 64 MiB); larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 20,
        }
    }
}

type Shared = Arc<dyn Server>;

/// An error as the protocol answers it: a status and `{"error": "..."}`.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Error::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::PolicyDenied { .. } | Error::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            Error::AlreadyExists { .. } | Error::Conflict { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, axum::Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The router: every endpoint of the protocol's REST API plus KServe's model list and
/// repository load/unload.
pub fn router(server: Shared, options: HttpOptions) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models", get(list_models))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_version_metadata),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_version_ready),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/v2/repository/models/{model}/load", post(load))
        .route("/v2/repository/models/{model}/unload", post(unload))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(server)
}

async fn live(State(s): State<Shared>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({"live": s.live().await?})))
}

async fn ready(State(s): State<Shared>) -> ApiResult<Response> {
    let ready = s.ready().await?;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json(json!({"ready": ready}))).into_response())
}

async fn server_metadata(State(s): State<Shared>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(s.metadata().await?))
}

async fn list_models(State(s): State<Shared>) -> ApiResult<impl IntoResponse> {
    let mut names: Vec<String> = s.list_models().await?.into_iter().map(|m| m.name).collect();
    names.dedup();
    Ok(axum::Json(json!({"models": names})))
}

async fn model_metadata(
    State(s): State<Shared>,
    Path(model): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(s.model_metadata(&model, None).await?))
}

async fn model_version_metadata(
    State(s): State<Shared>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(s.model_metadata(&model, Some(&version)).await?))
}

async fn ready_answer(s: &Shared, model: &str, version: Option<&str>) -> ApiResult<Response> {
    let ready = s.model_ready(model, version).await?;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json(json!({"name": model, "ready": ready}))).into_response())
}

async fn model_ready(State(s): State<Shared>, Path(model): Path<String>) -> ApiResult<Response> {
    ready_answer(&s, &model, None).await
}

async fn model_version_ready(
    State(s): State<Shared>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    ready_answer(&s, &model, Some(&version)).await
}

async fn infer(
    State(s): State<Shared>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_infer(&s, &model, None, &headers, body).await
}

async fn infer_version(
    State(s): State<Shared>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_infer(&s, &model, Some(&version), &headers, body).await
}

async fn run_infer(
    s: &Shared,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let json_len = match headers.get(codec::HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "request",
                        "Inference-Header-Content-Length is not a byte count",
                    )
                })?,
        ),
    };
    let request = codec::decode_request(model, version, &body, json_len)?;
    let (outputs, params) = codec::response_options(&request);
    let response = s.infer(request).await?;
    let encoded = codec::encode_response(&outputs, &params, &response)?;
    let mut http = Response::new(axum::body::Body::from(encoded.body));
    match encoded.json_len {
        Some(n) => {
            http.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            http.headers_mut()
                .insert(codec::HEADER_LENGTH, HeaderValue::from(n));
        }
        None => {
            http.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(http)
}

/// KServe's repository load: the body may name a `models:/` URI (`{"uri": "models:/m@champion"}`);
/// without one the registry's latest version of the model is loaded.
async fn load(
    State(s): State<Shared>,
    Path(model): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let mut options = LoadOptions::default();
    if !body.is_empty() {
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::invalid("request", format!("malformed JSON: {e}")))?;
        if let Some(uri) = doc.get("uri").and_then(|u| u.as_str()) {
            options = LoadOptions::from_uri(uri.parse::<ModelUri>()?);
        }
    }
    s.load(&model, options).await?;
    Ok(axum::Json(json!({"name": model, "load": true})))
}

async fn unload(
    State(s): State<Shared>,
    Path(model): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.unload(&model, None).await?;
    Ok(axum::Json(json!({"name": model, "unload": true})))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> mlops_core::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::backend("axum", e))
}
