//! The Open Inference Protocol v2 REST API over axum, for any [`Server`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_core::serve::{LoadOptions, Server};
use mlops_core::{Error, ErrorKind, ModelName, ModelUri, Version};
use serde_json::json;

use crate::codec;

/// Produces the `/metrics` page (Prometheus text format 0.0.4).
pub type MetricsSource = Arc<dyn Fn() -> mlops_core::Result<String> + Send + Sync>;

/// Options of the HTTP transport.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Largest request body accepted (default 64 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests must carry `Authorization: Bearer <token>` (health endpoints stay open).
    pub bearer_token: Option<mlops_core::secret::SecretString>,
    /// An inference waiting longer than this is answered 504 (default 30 s). Batched models
    /// are waited on and time out; an unbatched prediction runs to completion.
    pub request_timeout: Option<std::time::Duration>,
    /// What `/metrics` serves; absent, the route answers 404.
    pub metrics: Option<MetricsSource>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("bearer_token", &self.bearer_token)
            .field("request_timeout", &self.request_timeout)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 20,
            bearer_token: None,
            request_timeout: Some(std::time::Duration::from_secs(30)),
            metrics: None,
        }
    }
}

impl HttpOptions {
    /// Requires this bearer token.
    pub fn with_bearer_token(mut self, token: mlops_core::secret::SecretString) -> Self {
        self.bearer_token = Some(token);
        self
    }

    /// Sets the body limit.
    pub fn with_max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Sets the inference timeout.
    pub fn with_request_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.request_timeout = t;
        self
    }

    /// Serves `/metrics` from `source`.
    pub fn with_metrics(mut self, source: MetricsSource) -> Self {
        self.metrics = Some(source);
        self
    }
}

#[derive(Clone)]
struct AppState {
    server: Arc<dyn Server>,
    /// Shared: handlers clone the state per request.
    options: Arc<HttpOptions>,
}

type Shared = AppState;

/// An error as the protocol answers it: a status and `{"error": "..."}`.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = if self.0.is_timeout() {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            match self.0.kind() {
                ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::PolicyDenied | ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::NotSupported => StatusCode::NOT_IMPLEMENTED,
                ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        };
        (status, axum::Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The router: every endpoint of the protocol's REST API plus KServe's model list and
/// repository load/unload.
pub fn router(server: Arc<dyn Server>, options: HttpOptions) -> Router {
    let max_body = options.max_body_bytes;
    let state = AppState {
        server,
        options: Arc::new(options),
    };
    let open = Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .with_state(state.clone());
    let guarded = Router::new()
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
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .with_state(state);
    open.merge(guarded)
        .fallback(unmatched)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(max_body))
}

/// No route: the protocol's 404, as JSON like every other error.
async fn unmatched(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": format!("no route {}", uri.path())})),
    )
        .into_response()
}

/// A route that exists, asked with the wrong method (axum adds the `Allow` header).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({"error": format!("{method} is not allowed on {}", uri.path())})),
    )
        .into_response()
}

/// Every error answer is JSON: the ones axum and its extractors write as plain text (a body
/// over the limit: 413; a malformed path or header) become `{"error": <their text>}` with the
/// same status and headers.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The texts are short; a larger body is cut, never buffered whole.
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Checks `Authorization: Bearer <token>` when a token is configured (constant-time compare).
async fn authorize(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use mlops_core::secret::ExposeSecret;
    if let Some(token) = &state.options.bearer_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok = tokens_match(given, token.expose_secret());
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(json!({"error": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Compares a presented token with the configured one in time that depends on neither: both are
/// hashed to 32 bytes first, so not even their lengths leak through early exits.
fn tokens_match(given: &str, want: &str) -> bool {
    let (a, b) = (
        mlops_core::Digest::of(given.as_bytes()),
        mlops_core::Digest::of(want.as_bytes()),
    );
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let Some(source) = &state.options.metrics else {
        return Err(Error::not_found("route", "/metrics").into());
    };
    let text = source()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn live(State(st): State<Shared>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({"live": st.server.live().await?})))
}

async fn ready(State(st): State<Shared>) -> ApiResult<Response> {
    let ready = st.server.ready().await?;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json(json!({"ready": ready}))).into_response())
}

async fn server_metadata(State(st): State<Shared>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(st.server.metadata().await?))
}

async fn list_models(State(st): State<Shared>) -> ApiResult<impl IntoResponse> {
    let mut names: Vec<String> = st
        .server
        .list_models()
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.dedup();
    Ok(axum::Json(json!({"models": names})))
}

/// A model name from the path. A name that is not a valid model name cannot be served: the
/// protocol's answer is 404, as for any unknown model.
fn model_name(raw: &str) -> Result<ModelName, Error> {
    raw.parse()
        .map_err(|e: Error| Error::not_found("model", raw).with_source(e))
}

/// A version from the path; one that is not a version number is not served either (404).
fn model_version(model: &str, raw: &str) -> Result<Version, Error> {
    raw.parse().map_err(|e: Error| {
        Error::not_found("model version", format!("{model} v{raw}")).with_source(e)
    })
}

async fn model_metadata(
    State(st): State<Shared>,
    Path(model): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(
        st.server.model_metadata(&model_name(&model)?, None).await?,
    ))
}

async fn model_version_metadata(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let version = model_version(&model, &version)?;
    Ok(axum::Json(
        st.server
            .model_metadata(&model_name(&model)?, Some(version))
            .await?,
    ))
}

async fn ready_answer(st: &Shared, model: &str, version: Option<&str>) -> ApiResult<Response> {
    let version = version.map(|v| model_version(model, v)).transpose()?;
    let ready = st.server.model_ready(&model_name(model)?, version).await?;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json(json!({"name": model, "ready": ready}))).into_response())
}

async fn model_ready(State(st): State<Shared>, Path(model): Path<String>) -> ApiResult<Response> {
    ready_answer(&st, &model, None).await
}

async fn model_version_ready(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    ready_answer(&st, &model, Some(&version)).await
}

async fn infer(
    State(st): State<Shared>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_infer(&st, &model, None, &headers, body).await
}

async fn infer_version(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_infer(&st, &model, Some(&version), &headers, body).await
}

async fn run_infer(
    st: &Shared,
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
    let version = version.map(|v| model_version(model, v)).transpose()?;
    let mut request = codec::decode_request(model_name(model)?, version, &body, json_len)?;
    if let Some(key) = headers.get("x-routing-key").and_then(|v| v.to_str().ok()) {
        request
            .parameters
            .insert(crate::ROUTING_KEY.to_string(), serde_json::Value::from(key));
    }
    let (outputs, params) = codec::response_options(&request);
    let response = match st.options.request_timeout {
        Some(limit) => tokio::time::timeout(limit, st.server.infer(request))
            .await
            .map_err(|_| Error::timed_out("inference request", limit))??,
        None => st.server.infer(request).await?,
    };
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
    State(st): State<Shared>,
    Path(model): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let mut options = LoadOptions::default();
    if !body.is_empty() {
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::invalid("request", "malformed JSON").with_source(e))?;
        if let Some(uri) = doc.get("uri").and_then(|u| u.as_str()) {
            options = LoadOptions::from_uri(uri.parse::<ModelUri>()?);
        }
    }
    st.server.load(&model.parse()?, options).await?;
    Ok(axum::Json(json!({"name": model, "load": true})))
}

async fn unload(
    State(st): State<Shared>,
    Path(model): Path<String>,
) -> ApiResult<impl IntoResponse> {
    st.server.unload(&model_name(&model)?, None).await?;
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

/// The router for a [`ModelServer`](crate::ModelServer), with its `/metrics`.
pub fn model_server_router(server: Arc<crate::ModelServer>, options: HttpOptions) -> Router {
    let metrics_server = Arc::clone(&server);
    let options = options.with_metrics(Arc::new(move || metrics_server.render_metrics()));
    router(server, options)
}

#[cfg(test)]
mod tests {
    use super::tokens_match;

    #[test]
    fn tokens_compare_by_digest() {
        assert!(tokens_match("s3cr3t", "s3cr3t"));
        for other in [
            "",
            "s",
            "s3cr3",
            "s3cr3t ",
            "S3CR3T",
            "another secret entirely",
        ] {
            assert!(!tokens_match(other, "s3cr3t"), "{other:?}");
        }
    }
}
