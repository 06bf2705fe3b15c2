//! Track a training run and register its model: params and a metric history in MLflow's
//! entities, a search with MLflow's filter grammar, a registered version with a signature and
//! lineage, an alias, and `models:/` URIs resolved back.
//!
//! ```text
//! cargo run --example track-and-register                   # in memory
//! cargo run --example track-and-register -- ./mlops-data   # or any store URL
//! ```

use mlops::registry::{CreateModelOptions, CreateVersionOptions, DatasetLineage, Lineage};
use mlops::signature::{ColumnSpec, ColumnType, Schema, Signature};
use mlops::storage::{ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions};
use mlops::tracker::{CreateRunOptions, SearchRunsOptions};
use mlops::{Digest, Registry, RegistryExt, RunStatus, Tracker, TrackerExt};
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".into());
    let store: Arc<dyn mlops::Store> = Arc::new(ObjectStoreStore::open(&url, &[])?);
    let tracker = StoreTracker::open(store.clone(), StoreTrackerOptions::default()).await?;
    let registry = StoreRegistry::new(store);

    // A run: params once, metrics per step, then the run ends (a durability point).
    let experiment = tracker.get_or_create_experiment(&"churn".parse()?).await?;
    for (lr, losses) in [("0.1", [0.69, 0.41, 0.33]), ("0.01", [0.69, 0.62, 0.57])] {
        let run = tracker
            .create_run(CreateRunOptions::default().in_experiment(experiment.clone()))
            .await?;
        let id = &run.info.run_id;
        tracker.log_param(id, "learning_rate", lr).await?;
        for (step, loss) in losses.into_iter().enumerate() {
            tracker
                .log_metric(id, "val_loss", loss, step as i64)
                .await?;
        }
        tracker.end_run(id, RunStatus::Finished).await?;
    }

    // MLflow's search grammar: the best run by its latest val_loss.
    let best = tracker
        .search_all_runs(
            SearchRunsOptions::default()
                .in_experiment(experiment)
                .with_filter("metrics.val_loss < 0.5")
                .order_by("metrics.val_loss ASC"),
        )
        .await?;
    let best = best
        .first()
        .ok_or_else(|| anyhow::anyhow!("no run beat 0.5"))?;
    println!(
        "best run {} (learning_rate {}, val_loss {:?})",
        best.info.run_id,
        best.data.params["learning_rate"],
        best.metric("val_loss")
    );

    // Register it: where the model is, what it takes, what it was trained on.
    let name = "churn".parse()?;
    match registry
        .create_registered_model(&name, CreateModelOptions::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e.into()),
    }
    let signature = Signature {
        inputs: Schema::Columns(vec![
            ColumnSpec::new("tenure", ColumnType::Double),
            ColumnSpec::new("plan", ColumnType::String),
        ]),
        outputs: Some(Schema::Columns(vec![ColumnSpec::new(
            "churned",
            ColumnType::String,
        )])),
    };
    let version = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new(format!("runs:/{}/model", best.info.run_id))
                .with_run_id(best.info.run_id.clone())
                .with_signature(signature)
                .with_lineage(Lineage {
                    run_id: Some(best.info.run_id.clone()),
                    datasets: vec![DatasetLineage {
                        name: "customers".parse()?,
                        version: mlops::Version::FIRST,
                        digest: Digest::of(b"the dataset manifest"),
                    }],
                    git_commit: Lineage::current_git_commit(),
                }),
        )
        .await?;
    registry
        .set_alias(&name, &"champion".parse()?, version.version)
        .await?;

    for uri in ["models:/churn@champion", "models:/churn/latest"] {
        let v = registry.resolve(&uri.parse()?).await?;
        println!("{uri} -> version {} ({})", v.version, v.source);
    }
    tracker.flush().await?;
    Ok(())
}
