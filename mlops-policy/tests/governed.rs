#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Governed<R>: the registry suite under an allow-all policy, denials with reasons, facts, and
//! the decision log it writes.

use std::sync::Arc;

use mlops_core::policy::PolicyEngine;
use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{CreateVersionOptions, DatasetLineage, Lineage, Registry, Stage};
use mlops_core::tracker::{Tracker, TrackerExt};
use mlops_core::tracking::Tag;
use mlops_core::{Alias, DatasetName, Digest, ModelName, Store, TagKey, Version};
use mlops_policy::{DecisionLog, Governed, RegoPolicyEngine, RunMetrics, SharedFacts};
use mlops_storage::{MemoryRegistry, MemoryStore, MemoryTracker};
use serde_json::json;

fn allow_all() -> Arc<dyn PolicyEngine> {
    Arc::new(
        RegoPolicyEngine::builder()
            .policy("all.rego", "package all\nallow := true\n")
            .unwrap()
            .build()
            .unwrap(),
    )
}

fn library(data: serde_json::Value) -> Arc<dyn PolicyEngine> {
    Arc::new(
        RegoPolicyEngine::builder()
            .library()
            .unwrap()
            .data(data)
            .unwrap()
            .build()
            .unwrap(),
    )
}

fn lineage() -> Lineage {
    Lineage {
        run_id: None,
        datasets: vec![DatasetLineage {
            name: DatasetName::new("customers").unwrap(),
            version: Version::new(2).unwrap(),
            digest: Digest::of(b"manifest"),
        }],
        git_commit: Some("abc123".into()),
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::new(TagKey::new(k).unwrap(), v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allow_all_policy_passes_the_registry_suite() {
    let governed = Governed::new(MemoryRegistry::new(), allow_all()).with_path("data.all");
    mlops_testkit::registry::run_all(&governed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_library_gates_registration_aliases_and_stages() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let log = Arc::new(DecisionLog::open_default(Arc::clone(&store)).await.unwrap());
    let drift = Arc::new(SharedFacts::new());
    let registry = Governed::new(
        MemoryRegistry::new(),
        library(json!({"mlops": {"thresholds": {"f1": {"min": 0.8}}}})),
    )
    .with_facts(drift.clone())
    .with_log(Arc::clone(&log));
    let name = ModelName::new("churn").unwrap();
    registry
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();

    // No lineage: registration is denied and nothing is created.
    let err = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new("store://m").with_lineage(Lineage {
                git_commit: Some("abc".into()),
                ..Lineage::default()
            }),
        )
        .await
        .unwrap_err();
    assert!(err.is_policy_denied(), "{err}");
    assert!(
        err.to_string()
            .contains("names no training dataset version"),
        "{err}"
    );
    assert!(registry.list_versions_count(&name).await == 0);

    let v = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new("store://m")
                .with_lineage(lineage())
                .with_tag(tag("metrics.f1", "0.75")),
        )
        .await
        .unwrap();

    // Champion needs approval and f1 >= 0.8: both reasons come back.
    let champion = Alias::new("champion").unwrap();
    let err = registry
        .set_alias(&name, &champion, v.version)
        .await
        .unwrap_err();
    let mlops_core::Error::PolicyDenied {
        policy, reasons, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(policy, "data.mlops.governance");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        registry
            .get_version_by_alias(&name, &champion)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // An unprotected alias is fine.
    registry
        .set_alias(&name, &Alias::new("candidate").unwrap(), v.version)
        .await
        .unwrap();

    // A better, approved version.
    let v2 = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new("store://m2")
                .with_lineage(lineage())
                .with_tag(tag("metrics.f1", "0.9"))
                .with_tag(tag("approved", "true")),
        )
        .await
        .unwrap();
    // Drift flagged by the monitor blocks promotion until cleared.
    drift.set("drift", json!({"flagged": true, "score": 0.42}));
    let err = registry
        .transition_stage(
            &name,
            v2.version,
            Stage::Production,
            TransitionOptions::default().with_archive_existing(true),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("drift is flagged (score 0.42)"),
        "{err}"
    );
    assert_eq!(
        registry
            .get_model_version(&name, v2.version)
            .await
            .unwrap()
            .current_stage,
        Stage::None
    );
    drift.set("drift", json!({"flagged": false, "score": 0.05}));
    registry
        .transition_stage(
            &name,
            v2.version,
            Stage::Production,
            TransitionOptions::default().with_archive_existing(true),
        )
        .await
        .unwrap();
    registry
        .set_alias(&name, &champion, v2.version)
        .await
        .unwrap();
    assert!(
        registry
            .check_deploy(&name, v2.version, Some("prod".into()))
            .await
            .unwrap()
            .allowed
    );
    assert!(
        registry
            .check_deploy(&name, v.version, None)
            .await
            .unwrap_err()
            .is_policy_denied()
    );

    // Every decision, allowed or denied, is in the log, flushed, and the chain verifies.
    let entries = log.entries().await.unwrap();
    let allowed: Vec<bool> = entries.iter().map(|e| e.allowed).collect();
    assert_eq!(
        allowed,
        vec![
            false, true, false, true, true, false, true, true, true, false
        ]
    );
    assert!(entries.iter().all(|e| e.path == "mlops/governance"));
    assert_eq!(entries[2].input["action"], "set_alias");
    assert_eq!(entries[2].input["alias"], "champion");
    assert_eq!(entries[5].input["drift"]["flagged"], true);
    assert!(entries[0].bundles["mlops"].revision.len() >= 8);
    let report = mlops_policy::log::verify(store.as_ref(), log.name())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.verified, 10);
    assert_eq!(report.head, log.head());
}

/// The versions carry no `metrics.*` tags: only the `RunMetrics` provider, reading the runs'
/// metrics from the tracker, lets the threshold decide — allowing the good run's version and
/// denying the weak one's, naming the metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_metrics_come_from_the_tracker() {
    let tracker = Arc::new(MemoryTracker::new());
    let exp = tracker
        .get_or_create_experiment(&mlops_core::ExperimentName::new("e").unwrap())
        .await
        .unwrap();
    let mut runs = Vec::new();
    for f1 in [0.95, 0.5] {
        let run = tracker
            .create_run(mlops_core::tracker::CreateRunOptions::default().in_experiment(exp.clone()))
            .await
            .unwrap();
        tracker
            .log_metric(&run.info.run_id, "f1", f1, 0)
            .await
            .unwrap();
        runs.push(run.info.run_id);
    }
    let thresholds = json!({"mlops": {"thresholds": {"f1": {"min": 0.9}}}});
    let registry = Governed::new(MemoryRegistry::new(), library(thresholds.clone()))
        .with_facts(Arc::new(RunMetrics::new(Arc::clone(&tracker))));
    let name = ModelName::new("m").unwrap();
    registry
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();
    let mut versions = Vec::new();
    for run in &runs {
        let v = registry
            .create_model_version(
                &name,
                CreateVersionOptions::new("store://m")
                    .with_run_id(run.clone())
                    .with_lineage(lineage())
                    .with_tag(tag("approved", "true")),
            )
            .await
            .unwrap();
        assert!(
            !v.tags.keys().any(|k| k.as_str().starts_with("metrics.")),
            "the metrics must come from the tracker, not the version"
        );
        versions.push(v.version);
    }
    let champion = Alias::new("champion").unwrap();
    registry
        .set_alias(&name, &champion, versions[0])
        .await
        .unwrap();
    assert_eq!(
        registry
            .get_version_by_alias(&name, &champion)
            .await
            .unwrap()
            .version,
        versions[0]
    );

    let err = registry
        .set_alias(&name, &champion, versions[1])
        .await
        .unwrap_err();
    let mlops_core::Error::PolicyDenied { reasons, .. } = &err else {
        panic!("expected a denial, got {err}");
    };
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("f1 = 0.5, below the minimum 0.9")),
        "{reasons:?}"
    );
    assert_eq!(
        registry
            .get_version_by_alias(&name, &champion)
            .await
            .unwrap()
            .version,
        versions[0],
        "a denied alias move changes nothing"
    );

    // Without the provider the same policy sees no metric at all, and says so.
    let blind = Governed::new(MemoryRegistry::new(), library(thresholds));
    blind
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();
    let v = blind
        .create_model_version(
            &name,
            CreateVersionOptions::new("store://m")
                .with_run_id(runs[0].clone())
                .with_lineage(lineage())
                .with_tag(tag("approved", "true")),
        )
        .await
        .unwrap();
    let err = blind
        .set_alias(&name, &champion, v.version)
        .await
        .unwrap_err();
    assert!(err.is_policy_denied(), "{err}");
    assert!(err.to_string().contains("reports no f1 metric"), "{err}");
}

trait CountVersions {
    async fn list_versions_count(&self, name: &ModelName) -> usize;
}

impl<R: Registry> CountVersions for Governed<R> {
    async fn list_versions_count(&self, name: &ModelName) -> usize {
        use mlops_core::registry::RegistryExt;
        self.list_versions(name).await.unwrap().len()
    }
}
