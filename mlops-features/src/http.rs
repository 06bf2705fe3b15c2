//! Feast's feature server API over [`OnlineFeatures`] (feature `http`): `POST
//! /get-online-features`, `POST /push` and `GET /health`, as an axum router to serve alone
//! (`mlops features serve`) or merge into another app (`mlops serve --features`).
//!
//! Requests and responses are Feast's JSON (shared/specs/feast.md):
//!
//! ```text
//! POST /get-online-features
//! {"features": ["view:feature", ...] | "feature_service": "name",
//!  "entities": {"customer_id": [1001, 1002]}, "full_feature_names": false}
//! -> {"results": [{"values": [...], "statuses": ["PRESENT", ...],
//!                  "event_timestamps": ["2026-12-01T00:00:00Z", ...]}, ...],
//!     "metadata": {"feature_names": ["customer_id", "spend", ...]}}
//!
//! POST /push
//! {"push_source_name": "stats", "df": {"customer_id": [1], "event_timestamp": ["2026-12-01T00:00:00Z"],
//!  "spend": [3.5]}, "to": "online"}
//! -> 200, empty body
//! ```
//!
//! `"to": "offline"` or `"online_and_offline"` also appends the rows to the source (a new
//! version of its dataset; see [`OnlineFeatures::push_to`]).
//!
//! Unlike Feast's server (a 500 with a bare JSON string), bad requests answer 400 or 422 with
//! `{"error": "INVALID_ARGUMENT", "detail": "..."}` naming what was wrong. Definitions are
//! re-read in the background at the interval given to [`FeatureServer::with_refresh`] (Feast's
//! registry cache: 10 minutes by default).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_core::secret::SecretString;
use mlops_core::{Error, ErrorKind};
use serde::Deserialize;
use serde_json::Value;

use crate::definitions::{FeatureSelection, ValueType};
use crate::online::{FeatureValue, OnlineFeatures, PushTarget};

/// Largest request body.
const MAX_BODY_BYTES: usize = 64 << 20;

/// Feast's feature server endpoints over one project's online features.
#[derive(Debug, Clone)]
pub struct FeatureServer {
    online: OnlineFeatures,
    token: Option<SecretString>,
    refresh: Option<Duration>,
}

impl FeatureServer {
    /// Serves `online`.
    pub fn new(online: OnlineFeatures) -> Self {
        Self {
            online,
            token: None,
            refresh: Some(Duration::from_secs(1)),
        }
    }

    /// Requires `Authorization: Bearer <token>` on every endpoint but `/health`.
    pub fn with_bearer_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Re-reads definitions and layouts this often (`None`: never); one second by default.
    pub fn with_refresh(mut self, every: Option<Duration>) -> Self {
        self.refresh = every;
        self
    }

    /// The router. With a refresh interval it spawns the refresher on the current tokio
    /// runtime, which stops when the router is dropped.
    pub fn router(self) -> Router {
        // The refresher lives as long as the router (and its clones) hold the state.
        let refresher = match (self.refresh, tokio::runtime::Handle::try_current()) {
            (Some(every), Ok(_)) => self.online.spawn_refresh(every).ok(),
            _ => None,
        };
        let state = Arc::new(ServerState {
            server: self,
            _refresher: refresher,
        });
        let protected = Router::new()
            .route("/get-online-features", post(get_online_features))
            .route("/push", post(push))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authorize,
            ));
        Router::new()
            .route("/health", get(|| async { "" }))
            .merge(protected)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state)
    }
}

/// What the handlers share: the server, and its refresher, which stops with the last clone of
/// the router.
struct ServerState {
    server: FeatureServer,
    _refresher: Option<crate::online::RefreshTask>,
}

type AppState = State<Arc<ServerState>>;

async fn authorize(
    State(state): AppState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = &state.server.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !mlops_core::secret::bearer_matches(given, token) {
            let mut r = ApiError(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "missing or wrong bearer token".into(),
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(request).await
}

/// An error answer: `{"error": CODE, "detail": message}`.
struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(serde_json::json!({"error": self.1, "detail": self.2})),
        )
            .into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match e.kind() {
            ErrorKind::InvalidArgument => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ARGUMENT"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ErrorKind::NotSupported => (StatusCode::UNPROCESSABLE_ENTITY, "NOT_SUPPORTED"),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        Self(status, code, e.to_string())
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message.into())
}

/// Reads a JSON body, answering 400 with serde's message when it does not fit.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("the request body is not valid: {e}")))
}

#[derive(Deserialize)]
struct OnlineRequest {
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    feature_service: Option<String>,
    entities: serde_json::Map<String, Value>,
    #[serde(default)]
    full_feature_names: bool,
}

/// A JSON entity value: integers, floats, strings, booleans, null.
fn entity_value(v: &Value) -> Result<FeatureValue, ApiError> {
    Ok(match v {
        Value::Null => FeatureValue::Null,
        Value::Bool(b) => FeatureValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FeatureValue::Int64(i),
            None => FeatureValue::Float64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => FeatureValue::String(s.clone()),
        other => {
            return Err(bad(format!(
                "entity value {other} is not a number, string, boolean or null"
            )));
        }
    })
}

fn columns(
    map: &serde_json::Map<String, Value>,
    what: &str,
) -> Result<Vec<(String, Vec<Value>)>, ApiError> {
    map.iter()
        .map(|(k, v)| match v {
            Value::Array(values) => Ok((k.clone(), values.clone())),
            _ => Err(bad(format!("{what} {k} must be a list of values"))),
        })
        .collect()
}

async fn get_online_features(
    State(state): AppState,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: OnlineRequest = body(&bytes)?;
    let selection = match request.feature_service {
        Some(s) => FeatureSelection::service(s),
        None if request.features.is_empty() => return Err(bad("give features or feature_service")),
        None => FeatureSelection::features(&request.features)?,
    };
    let entities = columns(&request.entities, "entity")?
        .into_iter()
        .map(|(k, values)| {
            Ok((
                k,
                values
                    .iter()
                    .map(entity_value)
                    .collect::<Result<Vec<_>, ApiError>>()?,
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let response = state
        .server
        .online
        .get_online_features(&selection, &entities, request.full_feature_names)
        .await?;
    Ok(Json(response.to_feast_json()).into_response())
}

#[derive(Deserialize)]
struct PushRequest {
    push_source_name: String,
    df: serde_json::Map<String, Value>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default, rename = "allow_registry_cache")]
    _allow_registry_cache: Option<bool>,
    #[serde(default, rename = "transform_on_write")]
    _transform_on_write: Option<bool>,
}

/// A pushed value in the type the online views store it as: timestamps as RFC 3339 strings or
/// epoch seconds.
fn push_value(
    v: &Value,
    dtype: Option<ValueType>,
    column: &str,
    row: usize,
) -> Result<FeatureValue, ApiError> {
    let Some(dtype) = dtype else {
        return entity_value(v);
    };
    if dtype == ValueType::UnixTimestamp
        && let Value::String(s) = v
    {
        let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).map_err(|e| {
            bad(format!(
                "{column}[{row}]: {s:?} is not an RFC 3339 time: {e}"
            ))
        })?;
        let us = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .map_err(|_| bad(format!("{column}[{row}]: {s} is before 1970")))?;
        return Ok(FeatureValue::Timestamp(us));
    }
    FeatureValue::from_json(v, dtype)
        .ok_or_else(|| bad(format!("{column}[{row}]: {v} is not a {dtype:?} value")))
}

async fn push(State(state): AppState, bytes: axum::body::Bytes) -> Result<Response, ApiError> {
    let request: PushRequest = body(&bytes)?;
    let target: PushTarget = request
        .to
        .as_deref()
        .unwrap_or("online")
        .parse()
        .map_err(|_| {
            bad(format!(
                "to must be online, offline or online_and_offline, not {:?}",
                request.to.as_deref().unwrap_or_default()
            ))
        })?;
    let types = state
        .server
        .online
        .source_types(&request.push_source_name)?;
    let columns = columns(&request.df, "column")?
        .into_iter()
        .map(|(k, values)| {
            let dtype = types.get(&k).copied();
            let values = values
                .iter()
                .enumerate()
                .map(|(row, v)| push_value(v, dtype, &k, row))
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok((k, values))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    state
        .server
        .online
        .push_to(&request.push_source_name, &columns, target)
        .await?;
    Ok(StatusCode::OK.into_response())
}
