//! `mlops serve`: the Open Inference Protocol over HTTP for models in the store's registry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mlops::policy::GOVERNANCE_PATH;
use mlops::serve::{BatchConfig, ConnectionOptions, HttpOptions, ModelServer, Routing};
use mlops::storage::{Artifacts, StoreRegistry};
use mlops::{Error, ModelName, ModelUri, Registry, RegistryExt, Result, Store, Version};

/// `mlops serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A model to serve, by URI (models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest).
    /// Repeatable
    #[arg(
        long = "model",
        value_name = "URI",
        required_unless_present_any = ["model_dirs", "features"]
    )]
    models: Vec<String>,
    /// A model to serve from a file or folder, as version 1 of NAME: a model directory (its
    /// files plus a FLAVOR file), an MLflow model directory (an MLmodel file with an onnx
    /// flavor) or an ONNX file (.onnx). Repeatable
    #[arg(long = "model-dir", value_name = "NAME=PATH", value_parser = crate::key_value)]
    model_dirs: Vec<(String, String)>,
    /// Resolve --model and --canary URIs in the model registry of this MLflow tracking server
    /// (http://host:5000; credentials from MLFLOW_TRACKING_TOKEN) and fetch the versions' MLflow
    /// model directories through its artifact proxy, instead of the store's registry
    #[arg(long, value_name = "URL")]
    mlflow_registry: Option<String>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Also serve the protocol over gRPC (KServe's and Triton's GRPCInferenceService) on this
    /// port, on the same address (0 picks a free one)
    #[arg(long, value_name = "PORT")]
    grpc_port: Option<u16>,
    #[command(flatten)]
    onnx: crate::models::OnnxArgs,
    /// Require `Authorization: Bearer <token>` with the token in this file (health stays open)
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Batch up to this many rows per prediction (1 = no batching)
    #[arg(long, default_value_t = 1)]
    max_batch: usize,
    /// How long a batch waits to fill, in milliseconds
    #[arg(long, default_value_t = 0)]
    batch_delay_ms: u64,
    /// Send PERCENT% of a model's traffic to another version: models:/NAME/VERSION=PERCENT.
    /// Repeatable
    #[arg(long, value_name = "URI=PERCENT", value_parser = crate::key_value)]
    canary: Vec<(String, String)>,
    /// Ask this Rego policy (file or folder, with the shipped library) before deploying each
    /// version; decisions at data.mlops.governance
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// Answer POST /v2/models/NAME/explain with KernelSHAP attributions (numeric inputs)
    #[arg(long)]
    explain: bool,
    /// Explain NAME against a background sampled from this Parquet file (100 rows; e.g. the
    /// training data) instead of the request's own rows. Repeatable
    #[arg(long, value_name = "NAME=FILE", value_parser = crate::key_value, requires = "explain")]
    explain_background: Vec<(String, String)>,
    /// Largest request body (HTTP) or message (gRPC) in bytes
    #[arg(long, default_value_t = 64 << 20)]
    max_body_bytes: usize,
    /// Inference and repository requests worked on at once, per transport; more get 503 with
    /// Retry-After over HTTP, RESOURCE_EXHAUSTED over gRPC
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Bytes of request bodies held in memory at once, over all requests; a body the budget
    /// cannot cover now gets 503 with Retry-After
    #[arg(long, default_value_t = 512 << 20)]
    max_body_memory: usize,
    /// Seconds a connection may take to send a request's headers, and may idle between
    /// requests, before it is closed; also how long a request body may take to arrive (408)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    client_timeout_s: u64,
    /// Also answer Feast's feature server API (POST /get-online-features, POST /push) for this
    /// feature project, from the online store (--online)
    #[arg(long, value_name = "PROJECT")]
    features: Option<String>,
    /// Complete requests to model NAME with feature service SERVICE's features, looked up in
    /// the online store by the entity keys the request carries (request inputs override).
    /// Repeatable
    #[arg(long, value_name = "NAME=SERVICE", value_parser = crate::key_value)]
    model_features: Vec<(String, String)>,
    /// The value a looked-up feature takes when the online store has none for an entity
    /// (else such a request is a 400 naming it). Repeatable
    #[arg(long, value_name = "FEATURE=VALUE", requires = "model_features")]
    feature_default: Vec<String>,
    #[command(flatten)]
    online: crate::features::OnlineArgs,
}

fn model_name(uri: &ModelUri) -> Result<ModelName> {
    uri.model_name().cloned().ok_or_else(|| {
        Error::invalid(
            "model",
            format!("{uri} is not a registered model URI (models:/…)"),
        )
    })
}

/// Rows of an explain background (shap warns above 100: each costs a model call per
/// coalition).
const BACKGROUND_ROWS: usize = 100;

/// The explain endpoint's KernelSHAP, with the backgrounds `--explain-background` names.
fn explainer(args: &ServeArgs, server: &ModelServer) -> Result<mlops::explain::ShapService> {
    let mut service = mlops::explain::ShapService::new();
    for (name, file) in &args.explain_background {
        let model = server.resolve(&name.parse()?, None).map_err(|e| {
            e.context(format!(
                "--explain-background {name}={file}: serve {name} first"
            ))
        })?;
        let batches = crate::datasets::read_parquet(std::path::Path::new(file))?;
        let schema = batches
            .first()
            .ok_or_else(|| Error::invalid("explain background", format!("{file} has no rows")))?
            .schema();
        let batch = arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Error::backend("arrow", e))?;
        // A model of one [n, width] input reads the file's numeric columns in order; a model
        // of one input per feature, its inputs by name, of any type.
        let inputs: Option<Vec<String>> = match &model.model().signature().inputs {
            mlops::signature::Schema::Tensors(t) if t.len() == 1 && t[0].shape.len() == 2 => {
                let width = t[0].shape[1];
                let columns = schema.fields().len();
                if width >= 0 && usize::try_from(width).ok() != Some(columns) {
                    return Err(Error::invalid(
                        "explain background",
                        format!(
                            "{file} has {columns} columns and {name} takes {width} features in its one input: keep only the feature columns, in order (drop the target)"
                        ),
                    ));
                }
                None
            }
            mlops::signature::Schema::Tensors(t) => {
                Some(t.iter().filter_map(|s| s.name.clone()).collect())
            }
            mlops::signature::Schema::Columns(c) => {
                Some(c.iter().filter_map(|s| s.name.clone()).collect())
            }
        };
        let rows = match inputs {
            None => {
                let columns: Vec<String> =
                    schema.fields().iter().map(|f| f.name().clone()).collect();
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let all = mlops::explain::Features::from_batch(&batch, &columns)?;
                let background = mlops::explain::sample_background(&all, BACKGROUND_ROWS, 0)?;
                let rows = background.rows();
                service = service.with_background(name.clone(), background);
                rows
            }
            Some(inputs) => {
                let indices = inputs
                    .iter()
                    .map(|c| {
                        schema.index_of(c).map_err(|_| {
                            Error::invalid(
                                "explain background",
                                format!("{file} has no column {c:?}, an input of {name}"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let projected = batch
                    .project(&indices)
                    .map_err(|e| Error::backend("arrow", e))?;
                let background = mlops::explain::sample_rows(&projected, BACKGROUND_ROWS, 0)?;
                let rows = background.num_rows();
                service = service.with_column_background(name.clone(), background);
                rows
            }
        };
        println!("explaining {name} against {rows} rows of {file}");
    }
    Ok(service)
}

/// Loads the models and serves until Ctrl-C, then drains in-flight requests on every
/// transport.
pub async fn serve(args: &ServeArgs, store: Arc<dyn Store>) -> Result<bool> {
    let (registry, artifacts): (Arc<dyn Registry>, Arc<dyn mlops::model::ArtifactSource>) =
        match &args.mlflow_registry {
            Some(url) => (
                Arc::new(mlops::mlflow::MlflowRegistry::new(url)?),
                Arc::new(mlops::mlflow::model::MlflowArtifacts::new(url)?),
            ),
            None => (
                Arc::new(StoreRegistry::new(Arc::clone(&store))),
                Arc::new(Artifacts::new(store.clone())),
            ),
        };
    let mut builder = crate::models::with_loaders(ModelServer::builder("mlops"), &args.onnx)?
        .registry(registry.clone(), artifacts)
        .batching(BatchConfig::new(
            args.max_batch,
            Duration::from_millis(args.batch_delay_ms),
        ));
    if let Some(path) = &args.policy {
        let engine = crate::policy::engine_with_library(path)?;
        builder = builder.policy(Arc::new(engine), GOVERNANCE_PATH);
    }
    // One view of the online store for the feature API and the models' lookups.
    let mut online = None;
    let mut refresher = None;
    if args.features.is_some() || !args.model_features.is_empty() {
        let features = mlops::features::FeatureStore::new(
            store.clone(),
            Arc::new(mlops::steps::features::StoreSources::new(
                store.clone(),
                &args.online.root,
            )),
        );
        let project = match (&args.features, args.model_features.first()) {
            (Some(p), _) => p.clone(),
            (None, Some((_, service))) => {
                mlops::steps::features::service_project(features.registry(), None, service).await?
            }
            (None, None) => {
                return Err(Error::invalid(
                    "--features",
                    "no feature project or service",
                ));
            }
        };
        let client =
            mlops::features::OnlineFeatures::open(features, args.online.open().await?, &project)
                .await?;
        online = Some((project, client));
    }
    if let Some((project, client)) = &online {
        let defaults = args
            .feature_default
            .iter()
            .map(|d| mlops::features::serving::parse_default(d))
            .collect::<Result<Vec<_>>>()?;
        for (model, service) in &args.model_features {
            let selection = mlops::features::FeatureSelection::service(service.clone());
            // Fail at start, not on the first request, when the service cannot be looked up.
            let keys = client.join_keys(&selection).map_err(|e| {
                e.context(format!(
                    "--model-features {model}={service} (project {project})"
                ))
            })?;
            let mut lookup = mlops::features::FeatureLookup::new(client.clone(), selection);
            for (name, value) in &defaults {
                lookup = lookup.with_default(name.clone(), value.clone());
            }
            builder = builder.preprocessor(model.parse()?, Arc::new(lookup));
            println!(
                "{model}: features of {service} looked up by {}",
                keys.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if args.features.is_none() {
            // No feature API to refresh the definitions: refresh them for the lookups. The
            // task lives as long as the command.
            refresher = Some(client.spawn_refresh(Duration::from_secs(1))?);
        }
    }
    let server = Arc::new(builder.build());
    for spec in &args.models {
        let uri: ModelUri = spec.parse()?;
        let name = model_name(&uri)?;
        mlops::Server::load(&*server, &name, mlops::serve::LoadOptions::from_uri(uri)).await?;
        let v = server.resolve(&name, None)?;
        println!("loaded {spec} as {name} version {}", v.version());
    }
    for (name, path) in &args.model_dirs {
        let artifact = crate::models::read_model(std::path::Path::new(path))?;
        server.load_artifact(&name.parse()?, Version::FIRST, &artifact)?;
        println!("loaded {path} as {name} version 1 ({})", artifact.flavor);
    }
    for (spec, percent) in &args.canary {
        let uri: ModelUri = spec.parse()?;
        let name = model_name(&uri)?;
        let percent: u8 = percent.parse().ok().filter(|p| *p <= 100).ok_or_else(|| {
            Error::invalid("canary", format!("{spec}={percent}: percent must be 0-100"))
        })?;
        let primary = server.resolve(&name, None)?.version();
        let canary = registry.resolve(&uri).await?.version;
        if canary != primary {
            mlops::Server::load(&*server, &name, mlops::serve::LoadOptions::from_uri(uri)).await?;
        }
        server.set_routing(&name, Routing::to(primary).with_canary(canary, percent))?;
        println!(
            "routing {name}: {}% to version {canary}, the rest to {primary}",
            percent
        );
    }
    let client_timeout = Duration::from_secs(args.client_timeout_s);
    let mut options = HttpOptions::default()
        .with_max_body_bytes(args.max_body_bytes)
        .with_max_in_flight(args.max_in_flight)
        .with_max_body_memory(args.max_body_memory)
        .with_body_read_timeout(Some(client_timeout));
    // One token for every transport and the feature API.
    let token = match &args.token_file {
        Some(file) => Some(crate::server::read_token(file)?),
        None => None,
    };
    if let Some(token) = &token {
        options = options.with_bearer_token(token.clone());
    }
    if args.explain {
        options = options.with_explainer(Arc::new(explainer(args, &server)?));
    }
    let server_for_grpc = Arc::clone(&server);
    let mut app = mlops::serve::model_server_router(server, options);
    if let (Some(project), Some((_, client))) = (&args.features, online) {
        let mut feature_server = mlops::features::http::FeatureServer::new(client);
        if let Some(token) = token.clone() {
            feature_server = feature_server.with_bearer_token(token);
        }
        app = app.merge(feature_server.router());
        println!("serving feature project {project} (POST /get-online-features, /push)");
    }
    let (listener, addr) = crate::listen(&args.host, args.port).await?;
    let grpc_listener = match args.grpc_port {
        Some(port) => Some(crate::listen(&args.host, port).await?),
        None => None,
    };
    let stop = crate::stop_signal();
    // One signal stops both transports; each drains its own calls in flight. A transport that
    // fails stops the other too, and its error is the command's.
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let stopping = Arc::new(stopping);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut transports = tokio::task::JoinSet::new();
    if let Some((listener, grpc_addr)) = grpc_listener {
        let mut options = mlops::serve::grpc::GrpcOptions::default()
            .with_max_message_bytes(args.max_body_bytes)
            .with_max_in_flight(args.max_in_flight);
        if let Some(token) = &token {
            options = options.with_bearer_token(token.clone());
        }
        println!("listening on grpc://{grpc_addr} (Open Inference Protocol v2 over gRPC)");
        let server: Arc<dyn mlops::serve::Server> = server_for_grpc;
        let done = until_stopped();
        transports.spawn(async move {
            mlops::serve::grpc::serve(listener, server, options, done)
                .await
                .map_err(|e| e.context("the gRPC transport"))
        });
    }
    println!("listening on http://{addr} (Open Inference Protocol v2; Ctrl-C or SIGTERM stops)");
    {
        let stopping = Arc::clone(&stopping);
        tokio::spawn(async move {
            let why = stop.await;
            println!("{why}: shutting down, draining requests in flight");
            let _ = stopping.send(true);
        });
    }
    let connections = ConnectionOptions::default().with_header_read_timeout(client_timeout);
    let done = until_stopped();
    transports.spawn(async move {
        mlops::serve::http::serve_with(listener, app, connections, done)
            .await
            .map_err(|e| e.context("the HTTP transport"))
    });
    let mut outcome = Ok(());
    while let Some(ended) = transports.join_next().await {
        // Whichever ends first, for whatever reason, ends the other.
        let _ = stopping.send(true);
        let ended = ended
            .map_err(|e| Error::backend("server task", e))
            .and_then(|r| r);
        if outcome.is_ok() {
            outcome = ended;
        }
    }
    outcome?;
    drop(refresher);
    Ok(true)
}
