//! Policy decisions in process: the cost of one decision of the shipped approval policy (the
//! issue's goal: at least 100k decisions per second per core), the library's aggregate of every
//! rule, and the seed's Rego v0 example. One thread, so elements/s is decisions per second per
//! core; the engine is shared, as a server would share it.

use criterion::{Criterion, Throughput, criterion_group};
use mlops::policy::RegoPolicyEngine;
use mlops::policy::{PolicyEngine, PolicyQuery};
use serde_json::json;

fn input(approved: bool) -> serde_json::Value {
    json!({
        "action": "set_alias", "alias": "champion",
        "model": {
            "name": "churn", "version": 3, "source": "store://m", "stage": "None",
            "aliases": [], "approved": approved, "approved_by": "ana",
            "tags": {"approved": approved.to_string(), "metrics.f1": "0.91"},
            "metrics": {"f1": 0.91}, "has_signature": true,
            "lineage": {"run_id": "r1", "git_commit": "abc123",
                "datasets": [{"name": "customers", "version": 2, "digest": "d", "tags": {}}]}
        }
    })
}

fn decisions(c: &mut Criterion) {
    let library = RegoPolicyEngine::builder()
        .library()
        .unwrap()
        .data(json!({"mlops": {"thresholds": {"f1": {"min": 0.8}}}}))
        .unwrap()
        .build()
        .unwrap();
    let seed = RegoPolicyEngine::builder()
        .rego_v0(true)
        .policy(
            "seed.rego",
            "package ml.deployment\ndeny[msg] { input.model.approved == false; msg = \"Model lacks approval metadata\" }",
        )
        .unwrap()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    for (name, engine, path, approved) in [
        ("approval/allowed", &library, "data.mlops.approval", true),
        ("approval/denied", &library, "data.mlops.approval", false),
        (
            "governance-all-rules/allowed",
            &library,
            "data.mlops.governance",
            true,
        ),
        ("seed-v0/denied", &seed, "data.ml.deployment", false),
    ] {
        let query = PolicyQuery::new(path, input(approved));
        let expected = engine.evaluate(&query).unwrap().allowed;
        assert_eq!(expected, approved);
        group.bench_function(name, |b| {
            b.iter(|| engine.evaluate(&query).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
