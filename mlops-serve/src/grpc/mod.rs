//! The Open Inference Protocol over gRPC (feature `grpc`): KServe's
//! `inference.GRPCInferenceService` — `ServerLive`, `ServerReady`, `ModelReady`,
//! `ServerMetadata`, `ModelMetadata`, `ModelInfer` — and the model repository calls
//! (`RepositoryIndex`, `RepositoryModelLoad`, `RepositoryModelUnload`) with Triton's messages,
//! so `tritonclient.grpc` and KServe's clients both work, over any [`Server`].
//!
//! The same [`ModelServer`](crate::ModelServer) answers gRPC and HTTP: batching, canary and
//! shadow routing, the deploy gate, metrics and the drift observer behave the same on both.
//!
//! - Tensors arrive in `raw_input_contents` (used as they are, no copy) or typed `contents`
//!   (every datatype's field; FP16/BF16 only raw) and always leave in `raw_output_contents`,
//!   in output order — tritonclient reads no other form.
//! - Errors are status codes: `INVALID_ARGUMENT` (a malformed request or one the signature
//!   refuses), `NOT_FOUND`, `UNAVAILABLE` (not ready), `DEADLINE_EXCEEDED` (the inference
//!   timeout), `PERMISSION_DENIED` (a policy), `UNAUTHENTICATED` (the bearer token),
//!   `RESOURCE_EXHAUSTED` (too many calls in flight), `OUT_OF_RANGE` (a message over the size
//!   limit, tonic's answer), `UNIMPLEMENTED`; `DEADLINE_EXCEEDED` too for a whole call, upload
//!   included, not complete within the inference timeout plus 5 s or the client's shorter
//!   `grpc-timeout`.
//! - The bearer token and the in-flight limit are checked before a message is decoded
//!   ([`Admission`], a tower layer on the HTTP/2 requests), so neither an unauthenticated
//!   client nor a busy server buffers a message. With a token, every call but `ServerLive` and
//!   `ServerReady` needs `authorization: Bearer <token>` metadata. Memory is bounded by calls in
//!   flight times the message size limit.
//! - `x-routing-key` metadata pins a caller to one side of a canary, as the HTTP header does.
//!
//! ```no_run
//! # async fn run(server: std::sync::Arc<mlops_serve::ModelServer>) -> mlops_core::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await.map_err(|e| {
//!     mlops_core::Error::unavailable("cannot listen").with_source(e)
//! })?;
//! mlops_serve::grpc::serve(listener, server, Default::default(), std::future::pending()).await
//! # }
//! ```

pub mod codec;

use std::sync::Arc;
use std::time::Duration;

use mlops_core::serve::{LoadOptions, Server};
use mlops_core::{Error, ModelUri};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use proto::*;

/// The protocol's messages and service, generated from `proto/grpc_predict_v2.proto`; the
/// client (`grpc_inference_service_client`) is generic over a tonic transport.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("inference");
}

/// Options of the gRPC transport.
#[derive(Clone)]
#[non_exhaustive]
pub struct GrpcOptions {
    /// Calls but `ServerLive`/`ServerReady` must carry `authorization: Bearer <token>`.
    pub bearer_token: Option<mlops_core::secret::SecretString>,
    /// Largest message accepted (default 64 MiB, the HTTP body limit); larger ones get
    /// `OUT_OF_RANGE` before they are decoded.
    pub max_message_bytes: usize,
    /// An inference taking longer is answered `DEADLINE_EXCEEDED` (default 30 s); so is a whole
    /// call, its upload included, 5 s after it, or at a client's shorter `grpc-timeout`.
    pub request_timeout: Option<Duration>,
    /// Inference and repository calls worked on at once, over all connections (default 512);
    /// more get `RESOURCE_EXHAUSTED` at once instead of queueing.
    pub max_in_flight: usize,
}

impl std::fmt::Debug for GrpcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcOptions")
            .field("bearer_token", &self.bearer_token)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl Default for GrpcOptions {
    fn default() -> Self {
        Self {
            bearer_token: None,
            max_message_bytes: 64 << 20,
            request_timeout: Some(Duration::from_secs(30)),
            max_in_flight: 512,
        }
    }
}

impl GrpcOptions {
    /// Requires this bearer token.
    pub fn with_bearer_token(mut self, token: mlops_core::secret::SecretString) -> Self {
        self.bearer_token = Some(token);
        self
    }

    /// Sets the message size limit.
    pub fn with_max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Sets the inference timeout.
    pub fn with_request_timeout(mut self, t: Option<Duration>) -> Self {
        self.request_timeout = t;
        self
    }

    /// Sets how many inference and repository calls are worked on at once.
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }
}

/// `GRPCInferenceService` over a [`Server`].
pub struct InferenceService {
    server: Arc<dyn Server>,
    options: Arc<GrpcOptions>,
}

impl std::fmt::Debug for InferenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceService")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl InferenceService {
    /// The service for `server`.
    pub fn new(server: Arc<dyn Server>, options: GrpcOptions) -> Self {
        Self {
            server,
            options: Arc::new(options),
        }
    }

    /// The tonic service behind its [`Admission`]: the bearer token and the in-flight limit
    /// checked before decoding, the message size limit of the options.
    pub fn into_server(self) -> Admission<GrpcInferenceServiceServer<Self>> {
        let options = Arc::clone(&self.options);
        let max = options.max_message_bytes;
        Admission::new(
            GrpcInferenceServiceServer::new(self)
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
            &options,
        )
    }
}

/// How much longer than the inference timeout a whole call may take (its upload, decoding and
/// answer around the inference).
const CALL_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// The deadline a client set with `grpc-timeout` (`<digits><H|M|S|m|u|n>`).
fn client_deadline(headers: &tonic::codegen::http::HeaderMap) -> Option<Duration> {
    let raw = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// What a gRPC call may do before its message is decoded: the bearer token (every method but
/// `ServerLive` and `ServerReady`), and a slot of the in-flight budget (`ModelInfer` and the
/// repository calls; held until the call is answered). A refusal is answered at once with its
/// status, without reading the message. It also bounds the whole call — the inference timeout
/// plus 5 s, or the client's `grpc-timeout` when shorter — answering `DEADLINE_EXCEEDED`.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    in_flight: Arc<Semaphore>,
    limit: usize,
    token: Option<mlops_core::secret::SecretString>,
    /// The longest a whole call may take, its upload included.
    call_timeout: Option<Duration>,
}

impl<S> std::fmt::Debug for Admission<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("limit", &self.limit)
            .field("token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Admission<S> {
    /// Guards `inner` with the token and in-flight limit of `options`.
    pub fn new(inner: S, options: &GrpcOptions) -> Self {
        let limit = options.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner,
            in_flight: Arc::new(Semaphore::new(limit)),
            limit,
            token: options.bearer_token.clone(),
            call_timeout: options
                .request_timeout
                .map(|t| t.saturating_add(CALL_TIMEOUT_MARGIN)),
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Admission<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for Admission<S>
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<B>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        let refuse = |status: Status| -> Self::Future {
            Box::pin(std::future::ready(Ok(status.into_http())))
        };
        if !matches!(method, "ServerLive" | "ServerReady")
            && let Some(token) = &self.token
        {
            let given = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if !mlops_core::secret::bearer_matches(given, token) {
                return refuse(Status::unauthenticated("missing or wrong bearer token"));
            }
        }
        let slot = if matches!(
            method,
            "ModelInfer" | "RepositoryModelLoad" | "RepositoryModelUnload"
        ) {
            match Arc::clone(&self.in_flight).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    return refuse(Status::resource_exhausted(format!(
                        "the server is busy: {} calls in flight; retry later",
                        self.limit
                    )));
                }
            }
        } else {
            None
        };
        // The ready service answers this call; a fresh clone takes the next one (tower's rule).
        let deadline = match (self.call_timeout, client_deadline(request.headers())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let answer = ready.call(request);
        Box::pin(async move {
            let response = match deadline {
                Some(limit) => match tokio::time::timeout(limit, answer).await {
                    Ok(response) => response,
                    Err(_) => Ok(Status::deadline_exceeded(format!(
                        "the call did not complete within {} ms",
                        limit.as_millis()
                    ))
                    .into_http()),
                },
                None => answer.await,
            };
            drop(slot);
            response
        })
    }
}

type GrpcResult<T> = Result<Response<T>, Status>;

use codec::status as fail;

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> GrpcResult<ServerLiveResponse> {
        let live = self.server.live().await.map_err(|e| fail(&e))?;
        Ok(Response::new(ServerLiveResponse { live }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> GrpcResult<ServerReadyResponse> {
        let ready = self.server.ready().await.map_err(|e| fail(&e))?;
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> GrpcResult<ModelReadyResponse> {
        let r = request.into_inner();
        let asked = async {
            let name = codec::model_name(&r.name)?;
            let version = codec::model_version(&r.name, &r.version)?;
            self.server.model_ready(&name, version).await
        };
        // A model or version not served is not ready (Triton's answer; tritonclient's
        // `is_model_ready` expects a boolean, not an error).
        let ready = match asked.await {
            Ok(ready) => ready,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(fail(&e)),
        };
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> GrpcResult<ServerMetadataResponse> {
        let m = self.server.metadata().await.map_err(|e| fail(&e))?;
        Ok(Response::new(ServerMetadataResponse {
            name: m.name,
            version: m.version,
            extensions: m.extensions,
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> GrpcResult<ModelMetadataResponse> {
        let r = request.into_inner();
        let name = codec::model_name(&r.name).map_err(|e| fail(&e))?;
        let version = codec::model_version(&r.name, &r.version).map_err(|e| fail(&e))?;
        let m = self
            .server
            .model_metadata(&name, version)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(codec::metadata(m)))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> GrpcResult<ModelInferResponse> {
        let limit = self.options.request_timeout;
        let routing_key = request
            .metadata()
            .get("x-routing-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut infer = codec::decode_request(request.into_inner()).map_err(|e| fail(&e))?;
        if let Some(key) = routing_key {
            infer
                .parameters
                .insert(crate::ROUTING_KEY.to_string(), serde_json::Value::from(key));
        }
        let answer = match limit {
            Some(limit) => tokio::time::timeout(limit, self.server.infer(infer))
                .await
                .map_err(|_| fail(&Error::timed_out("inference request", limit)))?,
            None => self.server.infer(infer).await,
        }
        .map_err(|e| fail(&e))?;
        Ok(Response::new(codec::encode_response(answer)))
    }

    async fn repository_index(
        &self,
        request: Request<RepositoryIndexRequest>,
    ) -> GrpcResult<RepositoryIndexResponse> {
        let only_ready = request.into_inner().ready;
        let models = self.server.list_models().await.map_err(|e| fail(&e))?;
        Ok(Response::new(RepositoryIndexResponse {
            models: models
                .into_iter()
                .filter(|m| m.ready || !only_ready)
                .map(|m| repository_index_response::ModelIndex {
                    name: m.name,
                    version: m.version.unwrap_or_default(),
                    state: if m.ready { "READY" } else { "UNAVAILABLE" }.to_owned(),
                    reason: String::new(),
                })
                .collect(),
        }))
    }

    async fn repository_model_load(
        &self,
        request: Request<RepositoryModelLoadRequest>,
    ) -> GrpcResult<RepositoryModelLoadResponse> {
        let r = request.into_inner();
        let name = codec::model_name(&r.model_name).map_err(|e| fail(&e))?;
        let mut options = LoadOptions::default();
        if let Some(p) = r.parameters.get("uri") {
            let Some(model_repository_parameter::ParameterChoice::StringParam(uri)) =
                &p.parameter_choice
            else {
                return Err(Status::invalid_argument(
                    "parameter \"uri\" must be a string (a models:/ URI)",
                ));
            };
            options = LoadOptions::from_uri(uri.parse::<ModelUri>().map_err(|e| fail(&e))?);
        }
        self.server
            .load(&name, options)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<RepositoryModelUnloadRequest>,
    ) -> GrpcResult<RepositoryModelUnloadResponse> {
        let r = request.into_inner();
        let name = codec::model_name(&r.model_name).map_err(|e| fail(&e))?;
        self.server
            .unload(&name, None)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}

/// Serves the protocol over gRPC (HTTP/2, cleartext) on `listener` until `shutdown` resolves,
/// then stops accepting and lets every call in flight finish.
///
/// Connections are served by hyper's HTTP/2 directly (the generated service behind its
/// [`Admission`]), not by tonic's server: one layer less per call, measured at about 1.5 µs of
/// the server's 27 µs per one-row call.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<dyn Server>,
    options: GrpcOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> mlops_core::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let service = InferenceService::new(server, options).into_server();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        // Dead peers are found and their connections closed.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    crate::accept::serve_connections(
        listener,
        "grpc",
        |stream| {
            builder.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
        },
        shutdown,
    )
    .await;
    Ok(())
}
