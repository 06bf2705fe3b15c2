//! `mlops server`: MLflow's tracking server API over the store, for MLflow's own clients.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use mlops::mlflow::server::{DEFAULT_MAX_ARTIFACT_BYTES, MlflowServer};
use mlops::policy::{DecisionLog, Governed};
use mlops::storage::{StoreRegistry, StoreTracker};
use mlops::{Error, Registry, Result, Store, Tracker};

/// `mlops server` arguments.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed)
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// Require `Authorization: Bearer <token>` with the token in this file (MLflow's clients send
    /// MLFLOW_TRACKING_TOKEN so); /health and /version stay open
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Decide registrations, alias moves and stage changes with this Rego policy (file or folder,
    /// with the shipped library); a denial answers PERMISSION_DENIED with the policy's reasons,
    /// and every decision goes to the store's decision log
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// Largest artifact upload in bytes
    #[arg(long, default_value_t = DEFAULT_MAX_ARTIFACT_BYTES)]
    max_artifact_bytes: usize,
}

/// Reads a bearer token from `file`: trimmed, never empty.
pub(crate) fn read_token(file: &Path) -> Result<mlops::secret::SecretString> {
    let token =
        std::fs::read_to_string(file).map_err(|e| Error::io("token file", "read", file, e))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Error::invalid(
            "token-file",
            format!("{} is empty", file.display()),
        ));
    }
    Ok(mlops::secret::SecretString::from(token))
}

/// Serves until Ctrl-C or SIGTERM, then drains requests in flight.
pub async fn server(args: &ServerArgs, store: Arc<dyn Store>) -> Result<bool> {
    // Every write is flushed before it is answered, so no background flushing is needed.
    let tracker = Arc::new(StoreTracker::open(store.clone(), crate::quiet()).await?);
    let plain = StoreRegistry::new(store.clone());
    let registry: Arc<dyn Registry> = match &args.policy {
        Some(path) => {
            let engine = Arc::new(crate::policy::engine_with_library(path)?);
            let log = Arc::new(DecisionLog::open_default(store.clone()).await?);
            Arc::new(Governed::new(plain, engine).with_log(log))
        }
        None => Arc::new(plain),
    };
    let mut server = MlflowServer::new(tracker.clone(), registry)
        .with_max_artifact_bytes(args.max_artifact_bytes)
        .with_logged_models(store.clone());
    if let Some(file) = &args.token_file {
        server = server.with_bearer_token(read_token(file)?);
    }
    let (listener, addr) = crate::listen(&args.host, args.port).await?;
    let stop = crate::stop_signal();
    println!(
        "listening on http://{addr} (MLflow tracking API; MLFLOW_TRACKING_URI=http://{addr}; Ctrl-C or SIGTERM stops)"
    );
    mlops::serve::http::serve(listener, server.router(), async {
        let why = stop.await;
        println!("{why}: shutting down, draining requests in flight");
    })
    .await?;
    tracker.flush().await?;
    Ok(true)
}
