//! The web UI inside your own axum application: `mlops_ui::Ui::router()` nested under
//! `/mlops` beside the app's routes, over the app's tracker and registry (an in-memory store
//! here, filled with a small experiment), answered on 127.0.0.1 with a real client. With
//! `--serve` it keeps serving until Ctrl-C, to open in a browser.
//!
//! ```text
//! cargo run --example ui-in-your-app [-- --serve]
//! ```

use std::sync::Arc;

use mlops::storage::{MemoryStore, StoreRegistry, StoreTracker};
use mlops::{RunStatus, Store, Tracker, TrackerExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let serve_forever = std::env::args().any(|a| a == "--serve");

    // The application's store, with an experiment of three runs.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tracker = Arc::new(StoreTracker::open(store.clone(), Default::default()).await?);
    let experiment = tracker.get_or_create_experiment(&"churn".parse()?).await?;
    for (name, lr) in [("baseline", 0.1), ("tuned", 0.03), ("tuned-longer", 0.01)] {
        let run = tracker
            .create_run(
                mlops::tracker::CreateRunOptions::default()
                    .in_experiment(experiment.clone())
                    .with_name(name),
            )
            .await?
            .info
            .run_id;
        tracker
            .log_param(&run, "learning_rate", &lr.to_string())
            .await?;
        for step in 0..20 {
            let loss = 1.0 / (1.0 + step as f64 * lr * 10.0);
            tracker.log_metric(&run, "loss", loss, step).await?;
        }
        tracker.end_run(&run, RunStatus::Finished).await?;
    }
    let registry = Arc::new(StoreRegistry::new(store.clone()));

    // The UI, nested under /mlops next to the application's own routes.
    let ui = mlops_ui::Ui::new(tracker, registry)
        .with_store(store)
        .with_base_path("/mlops")?;
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest("/mlops", ui.router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await?
        .text()
        .await?;
    let runs: serde_json::Value = client
        .get(format!("{base}/mlops/api/runs?order_by=metrics.loss%20ASC"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let best = &runs["runs"][0]["info"]["run_name"];
    let page = client
        .get(format!("{base}/mlops/experiments"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    println!("app /health: {health}");
    println!(
        "UI /mlops/api/runs: {} runs, lowest loss: {best}",
        runs["runs"].as_array().map_or(0, Vec::len)
    );
    println!(
        "UI /mlops/experiments: {} bytes of HTML, links under /mlops: {}",
        page.len(),
        page.contains("href=\"/mlops/experiments/")
    );
    if serve_forever {
        println!("open {base}/mlops/ (Ctrl-C stops)");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
