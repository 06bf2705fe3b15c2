//! A governed promotion: the registry asks the shipped Rego library before an alias moves.
//! Without approval `champion` is refused with every reason; once a reviewer approves (and the
//! metrics meet the threshold) it moves. Every decision is in a hash-chained log that verifies.
//!
//! ```text
//! cargo run --example governed-promotion
//! ```

use std::sync::Arc;

use mlops::policy::{DecisionLog, Governed, PolicyEngine, RegoPolicyEngine};
use mlops::registry::{
    CreateModelOptions, CreateVersionOptions, DatasetLineage, Lineage, RegistryObject,
};
use mlops::storage::{MemoryRegistry, MemoryStore};
use mlops::{Digest, Error, Registry, Store, Tag};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine: Arc<dyn PolicyEngine> = Arc::new(
        RegoPolicyEngine::builder()
            .library()?
            .data(serde_json::json!({"mlops": {"thresholds": {"f1": {"min": 0.8}}}}))?
            .build()?,
    );
    let log = Arc::new(DecisionLog::open_default(store.clone()).await?);
    let registry = Governed::new(MemoryRegistry::new(), engine).with_log(log.clone());

    let name = "churn".parse()?;
    registry
        .create_registered_model(&name, CreateModelOptions::default())
        .await?;
    let version = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new("tree:example")
                .with_tag(Tag::new("metrics.f1".parse()?, "0.86")?)
                .with_lineage(Lineage {
                    run_id: None,
                    datasets: vec![DatasetLineage {
                        name: "customers".parse()?,
                        version: mlops::Version::FIRST,
                        digest: Digest::of(b"manifest"),
                    }],
                    git_commit: Some("4f2c9e1".into()),
                }),
        )
        .await?;
    let champion = "champion".parse()?;

    match registry.set_alias(&name, &champion, version.version).await {
        Err(Error::PolicyDenied { reasons, .. }) => {
            println!("champion refused:");
            for r in reasons {
                println!("  - {r}");
            }
        }
        other => anyhow::bail!("expected a denial, got {other:?}"),
    }

    // A reviewer approves; the same request now passes.
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), version.version),
            Tag::new("approved".parse()?, "true")?,
        )
        .await?;
    registry
        .set_alias(&name, &champion, version.version)
        .await?;
    println!("champion -> version {}", version.version);

    log.flush().await?;
    for entry in log.entries().await? {
        println!(
            "decision {} at {}: {} ({})",
            entry.seq,
            entry.path,
            if entry.allowed { "allowed" } else { "denied" },
            entry.input["action"]
        );
    }
    let verified = mlops::policy::log::verify(store.as_ref(), log.name()).await?;
    println!(
        "decision log verifies: {} entries, ok = {}",
        verified.verified,
        verified.is_ok()
    );
    Ok(())
}
