//! A small client for MLflow's REST API 2.0: JSON in and out, MLflow's error codes mapped onto
//! [`Error`]'s categories.

use std::fmt;

use mlops_core::{Error, Result};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

/// Where an MLflow tracking server is, and how to authenticate.
#[derive(Clone)]
pub struct MlflowClient {
    http: reqwest::Client,
    /// Requests in flight at once: MLflow's server holds a database connection per request and
    /// its default pool (sqlite: 5 + 10 overflow) times out under more.
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    base: Url,
    token: Option<String>,
    basic: Option<(String, String)>,
}

impl fmt::Debug for MlflowClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print credentials.
        f.debug_struct("MlflowClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.basic.as_ref().map(|(u, _)| u))
            .finish()
    }
}

const DEFAULT_IN_FLIGHT: usize = 4;

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    message: Option<String>,
}

impl MlflowClient {
    /// A client for the server at `tracking_uri` (`http://127.0.0.1:5000`, `https://host/prefix`).
    /// Credentials come from `MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
    /// `MLFLOW_TRACKING_PASSWORD`, as MLflow's own client reads them.
    pub fn new(tracking_uri: &str) -> Result<Self> {
        let mut base = Url::parse(tracking_uri).map_err(|e| {
            Error::invalid(
                "mlflow tracking uri",
                format!("{tracking_uri:?} is not a URL"),
            )
            .with_source(e)
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::invalid(
                "mlflow tracking uri",
                format!("{tracking_uri:?} must be http:// or https://"),
            ));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::backend("reqwest", e))?;
        let token = std::env::var("MLFLOW_TRACKING_TOKEN").ok();
        let basic = match (
            std::env::var("MLFLOW_TRACKING_USERNAME"),
            std::env::var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Ok(u), Ok(p)) => Some((u, p)),
            _ => None,
        };
        Ok(Self {
            http,
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(DEFAULT_IN_FLIGHT)),
            base,
            token,
            basic,
        })
    }

    /// Allows `n` requests in flight at once (default 4).
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::backend("mlflow", e))
    }

    /// The server's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| Error::invalid("mlflow path", path).with_source(e))
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        } else if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        req
    }

    /// Sends a request to `api/2.0/mlflow/<path>`: a JSON body for POST/PATCH/DELETE, query
    /// parameters for GET. `kind` and `name` name the object in a not-found or exists error.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
        kind: &'static str,
        name: &str,
    ) -> Result<T> {
        let url = self.url(&format!("api/2.0/mlflow/{path}"))?;
        let _permit = self.permit().await?;
        let req = self.request(method.clone(), url);
        let req = if method == Method::GET {
            let query: Vec<(String, String)> = body
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| !v.is_null())
                        .flat_map(|(k, v)| match v {
                            serde_json::Value::Array(items) => items
                                .iter()
                                .map(|i| (k.clone(), plain(i)))
                                .collect::<Vec<_>>(),
                            other => vec![(k.clone(), plain(other))],
                        })
                        .collect()
                })
                .unwrap_or_default();
            req.query(&query)
        } else {
            req.json(body)
        };
        let resp = req.send().await.map_err(|e| unavailable(&self.base, e))?;
        decode(resp, kind, name).await
    }

    /// Uploads an artifact through the server's artifact proxy (`mlflow-artifacts:` URIs).
    pub async fn put_artifact(&self, path: &str, data: bytes::Bytes) -> Result<()> {
        let url = self.url(&format!("api/2.0/mlflow-artifacts/artifacts/{path}"))?;
        let _permit = self.permit().await?;
        let resp = self
            .request(Method::PUT, url)
            .body(data)
            .send()
            .await
            .map_err(|e| unavailable(&self.base, e))?;
        decode::<serde_json::Value>(resp, "artifact", path)
            .await
            .map(|_| ())
    }

    /// Downloads an artifact through the server's artifact proxy.
    pub async fn get_artifact(&self, path: &str) -> Result<bytes::Bytes> {
        let url = self.url(&format!("api/2.0/mlflow-artifacts/artifacts/{path}"))?;
        let _permit = self.permit().await?;
        let resp = self
            .request(Method::GET, url)
            .send()
            .await
            .map_err(|e| unavailable(&self.base, e))?;
        if !resp.status().is_success() {
            return Err(error_of(resp, "artifact", path).await);
        }
        resp.bytes().await.map_err(|e| unavailable(&self.base, e))
    }

    /// Lists one directory level of artifacts through the server's artifact proxy.
    pub async fn list_artifacts(&self, path: &str) -> Result<serde_json::Value> {
        let url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        let _permit = self.permit().await?;
        let resp = self
            .request(Method::GET, url)
            .query(&[("path", path)])
            .send()
            .await
            .map_err(|e| unavailable(&self.base, e))?;
        decode(resp, "artifact", path).await
    }
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn unavailable(base: &Url, e: reqwest::Error) -> Error {
    Error::unavailable(format!("mlflow server at {base}")).with_source(e)
}

/// A response body that is not what the API promises: the source of [`Error::Backend`] errors,
/// keeping the decoder's error underneath.
#[derive(Debug)]
struct UnexpectedResponse {
    /// The object asked about ("run abc").
    what: String,
    /// The body the server sent.
    body: String,
    source: serde_json::Error,
}

impl fmt::Display for UnexpectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unexpected response for {}: {}: {}",
            self.what, self.source, self.body
        )
    }
}

impl std::error::Error for UnexpectedResponse {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

async fn decode<T: DeserializeOwned>(
    resp: reqwest::Response,
    kind: &'static str,
    name: &str,
) -> Result<T> {
    if !resp.status().is_success() {
        return Err(error_of(resp, kind, name).await);
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::unavailable("reading an mlflow response").with_source(e))?;
    let bytes = if bytes.is_empty() {
        bytes::Bytes::from_static(b"{}")
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::backend(
            "mlflow",
            UnexpectedResponse {
                what: format!("{kind} {name}"),
                body: String::from_utf8_lossy(&bytes).into_owned(),
                source: e,
            },
        )
    })
}

async fn error_of(resp: reqwest::Response, kind: &'static str, name: &str) -> Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
    let code = body
        .as_ref()
        .and_then(|b| b.error_code.clone())
        .unwrap_or_default();
    let message = body
        .and_then(|b| b.message)
        .unwrap_or_else(|| format!("HTTP {status}: {text}"));
    match code.as_str() {
        "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND" | "ENDPOINT_NOT_FOUND" => {
            Error::not_found(kind, name)
        }
        "RESOURCE_ALREADY_EXISTS" => Error::already_exists(kind, name),
        "INVALID_PARAMETER_VALUE" | "BAD_REQUEST" | "INVALID_STATE" => {
            Error::invalid("mlflow request", message)
        }
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => Error::permission_denied(kind, name, message),
        "ALREADY_EXISTS" | "RESOURCE_CONFLICT" | "ABORTED" => Error::conflict(kind, name, message),
        "TEMPORARILY_UNAVAILABLE" | "REQUEST_LIMIT_EXCEEDED" => Error::unavailable(message),
        _ if status == reqwest::StatusCode::NOT_FOUND => Error::not_found(kind, name),
        _ if status.is_server_error() => {
            Error::unavailable(format!("mlflow server error: {message}"))
        }
        _ => Error::backend("mlflow", format!("{code} {message}")),
    }
}
