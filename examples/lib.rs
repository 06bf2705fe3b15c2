//! End-to-end examples of the mlops SDK. Each opens with the command that runs it.
//!
//! | example | what it shows | command |
//! |---|---|---|
//! | `quickstart` | the main job, the whole loop: versioned churn data → a training pipeline under Rego (denied until approved, then served from cache) → HTTP serving → shifted production and drift → the retraining pipeline (monitor, retrain, validate, canary alias) → a 20% live canary → promotion → Argo/KServe hand-over → a verified decision log | `cargo run --release --example quickstart` |
//! | `track-and-register` | runs with params and metric histories, MLflow's search grammar, a registered version with signature and lineage, an alias, `models:/` URIs | `cargo run --example track-and-register` |
//! | `serve-model-dir` | a model directory served over the Open Inference Protocol on 127.0.0.1, queried with a real HTTP client | `cargo run --example serve-model-dir` |
//! | `drift-report` | a stored reference profile, today's data tested with Evidently's rules, a standalone HTML report | `cargo run --example drift-report` |
//! | `cached-pipeline` | a two-step pipeline whose steps re-run only when parameters, code or inputs change | `cargo run --example cached-pipeline` |
//! | `governed-promotion` | an alias move refused by the shipped Rego library until approved, with a verified decision log | `cargo run --example governed-promotion` |
//!
//! `examples/pipelines/` holds the pipeline files the quickstart runs, usable with
//! `mlops pipeline run`.
