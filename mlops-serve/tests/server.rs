#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The in-process server: loading, validation, versions, hot swaps under load, registry URIs
//! with the deploy gate, and the drift observer hook.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mlops_core::drift::InferenceObserver;
use mlops_core::policy::{Decision, PolicyEngine, PolicyQuery};
use mlops_core::registry::{CreateVersionOptions, Registry, RegistryObject};
use mlops_core::serve::{InferRequest, LoadOptions, Server};
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, Model, ModelName, Tag, Tensor, Version};
use mlops_serve::{IdentityModel, ModelServer};
use mlops_storage::{Artifacts, MemoryRegistry, MemoryStore};

fn n(name: &str) -> mlops_core::ModelName {
    name.parse().unwrap()
}

fn v(n: u64) -> mlops_core::Version {
    mlops_core::Version::new(n).unwrap()
}

fn identity_2d() -> Arc<IdentityModel> {
    Arc::new(
        IdentityModel::new(Signature::tensors(
            vec![TensorSpec::new("x", DataType::Fp32, vec![-1, 3])],
            vec![TensorSpec::new("y", DataType::Fp32, vec![-1, 3])],
        ))
        .unwrap(),
    )
}

fn x(rows: usize, v: f32) -> Tensor {
    Tensor::from_f32("x", vec![rows, 3], &vec![v; rows * 3]).unwrap()
}

#[tokio::test]
async fn serves_versions_and_validates_requests() {
    let server = ModelServer::builder("test").build();
    server.load_model(&n("m"), v(1), identity_2d()).unwrap();
    let out = server
        .infer(InferRequest::new(n("m"), vec![x(2, 1.5)]).with_id("r1"))
        .await
        .unwrap();
    assert_eq!(
        (out.model_version, out.id.as_deref()),
        (Some(v(1)), Some("r1"))
    );
    assert_eq!(out.outputs[0].name(), "y");
    assert_eq!(out.outputs[0].to_f32().unwrap(), vec![1.5; 6]);

    let cases: Vec<(Vec<Tensor>, &str)> = vec![
        (vec![], "missing input \"x\""),
        (
            vec![x(1, 0.0), Tensor::from_f32("z", vec![1], &[0.0]).unwrap()],
            "unexpected input \"z\"",
        ),
        (
            vec![Tensor::from_f64("x", vec![1, 3], &[0.0; 3]).unwrap()],
            "must be FP32, got FP64",
        ),
        (
            vec![Tensor::from_f32("x", vec![1, 4], &[0.0; 4]).unwrap()],
            "must have shape [-1, 3]",
        ),
        (
            vec![Tensor::from_f32("x", vec![1, 3], &[0.0, f32::NAN, 0.0]).unwrap()],
            "element 1 is not finite",
        ),
        (vec![x(1, 0.0), x(1, 0.0)], "given twice"),
    ];
    for (inputs, want) in cases {
        let err = server
            .infer(InferRequest::new(n("m"), inputs))
            .await
            .unwrap_err();
        assert!(
            err.is_invalid_argument() && err.to_string().contains(want),
            "{want}: {err}"
        );
    }
    assert!(
        server
            .infer(InferRequest::new(n("nope"), vec![x(1, 0.0)]))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        server
            .infer(InferRequest::new(n("m"), vec![x(1, 0.0)]).with_version(v(9)))
            .await
            .unwrap_err()
            .is_not_found()
    );

    // A second version becomes the default; the first stays addressable.
    server.load_model(&n("m"), v(2), identity_2d()).unwrap();
    let version = |r: mlops_core::serve::InferResponse| r.model_version.unwrap();
    assert_eq!(
        version(
            server
                .infer(InferRequest::new(n("m"), vec![x(1, 0.0)]))
                .await
                .unwrap()
        ),
        v(2)
    );
    assert_eq!(
        version(
            server
                .infer(InferRequest::new(n("m"), vec![x(1, 0.0)]).with_version(v(1)))
                .await
                .unwrap()
        ),
        v(1)
    );
    let meta = server.model_metadata(&n("m"), None).await.unwrap();
    assert_eq!(meta.versions, vec!["1", "2"]);
    assert_eq!(meta.platform, "mlops-identity");
    assert_eq!(meta.inputs[0].shape, vec![-1, 3]);
    server.unload(&n("m"), Some(v(2))).await.unwrap();
    assert_eq!(
        version(
            server
                .infer(InferRequest::new(n("m"), vec![x(1, 0.0)]))
                .await
                .unwrap()
        ),
        v(1)
    );
    server.unload(&n("m"), None).await.unwrap();
    assert!(server.list_models().await.unwrap().is_empty());
    assert!(
        server
            .unload(&n("m"), None)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A model whose warm-up fails never replaces what is served.
#[derive(Debug)]
struct Broken(Signature);

impl Model for Broken {
    fn flavor(&self) -> &str {
        "broken"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, _: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        Err(mlops_core::Error::invalid("model", "cannot predict"))
    }
    fn to_artifact(&self) -> mlops_core::Result<mlops_core::ModelArtifact> {
        Err(mlops_core::Error::not_supported(
            "operation",
            "to_artifact",
            "broken",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_swaps_under_load_fail_no_request() {
    let server = Arc::new(ModelServer::builder("test").build());
    // Version 1 is the live one, swapped again and again.
    server.load_model(&n("m"), v(1), identity_2d()).unwrap();
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (server, failures, done) = (server.clone(), failures.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..300 {
                let req = InferRequest::new(n("m"), vec![x(1 + (c + i) % 4, 1.0)]);
                match server.infer(req).await {
                    Ok(r) => assert_eq!(r.outputs[0].to_f32().unwrap()[0], 1.0),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }));
    }
    for other in 2..40 {
        // Version 1 is the live one, swapped again and again.
        server.load_model(&n("m"), v(1), identity_2d()).unwrap();
        server.load_model(&n("m"), v(other), identity_2d()).unwrap();
        let sig = identity_2d().signature().clone();
        assert!(
            server
                .load_model(&n("m"), v(1), Arc::new(Broken(sig)))
                .is_err()
        );
        tokio::task::yield_now().await;
    }
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 2400);
    assert_eq!(failures.load(Ordering::SeqCst), 0, "a swap failed requests");
}

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<(String, usize, Vec<String>)>>);

impl InferenceObserver for Seen {
    fn observe(&self, model: &str, _: Option<Version>, inputs: &arrow_array::RecordBatch) {
        let cols = inputs
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        self.0
            .lock()
            .unwrap()
            .push((model.to_string(), inputs.num_rows(), cols));
    }
}

/// Approved versions may deploy to the server called "edge".
#[derive(Debug)]
struct Approval;

impl PolicyEngine for Approval {
    fn evaluate(&self, q: &PolicyQuery) -> mlops_core::Result<Decision> {
        assert_eq!(q.input["action"], "deploy");
        assert_eq!(q.input["target"], "edge");
        let ok = q.input["model"]["approved"] == true;
        Ok(Decision {
            decision_id: "d".into(),
            allowed: ok,
            reasons: if ok {
                vec![]
            } else {
                vec!["not approved".into()]
            },
            result: serde_json::Value::Null,
            revision: None,
        })
    }
}

#[tokio::test]
async fn registry_uris_pass_the_deploy_gate_and_inputs_reach_the_observer() {
    let store = Arc::new(MemoryStore::new());
    let registry = Arc::new(MemoryRegistry::new());
    let artifacts = Arc::new(Artifacts::new(store));
    // A tabular identity model: two 1-D columns in, two out.
    let model = IdentityModel::new(Signature::tensors(
        vec![
            TensorSpec::new("age", DataType::Fp64, vec![-1]),
            TensorSpec::new("income", DataType::Fp64, vec![-1]),
        ],
        vec![
            TensorSpec::new("age_out", DataType::Fp64, vec![-1]),
            TensorSpec::new("income_out", DataType::Fp64, vec![-1]),
        ],
    ))
    .unwrap();
    let tree = artifacts
        .put_model(&model.to_artifact().unwrap())
        .await
        .unwrap();
    let name = ModelName::new("churn").unwrap();
    registry
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();
    let version = registry
        .create_model_version(
            &name,
            CreateVersionOptions::new(Artifacts::model_source(&tree)),
        )
        .await
        .unwrap();
    registry
        .set_alias(&name, &"champion".parse().unwrap(), version.version)
        .await
        .unwrap();

    let seen = Arc::new(Seen::default());
    let server = ModelServer::builder("edge")
        .registry(registry.clone(), artifacts.clone())
        .policy(Arc::new(Approval), "data.gate")
        .observer(seen.clone())
        .build();
    let uri: mlops_core::ModelUri = "models:/churn@champion".parse().unwrap();
    let err = server
        .load(&n("churn"), LoadOptions::from_uri(uri.clone()))
        .await
        .unwrap_err();
    assert!(err.is_policy_denied(), "{err}");
    assert!(server.list_models().await.unwrap().is_empty());
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), version.version),
            Tag::new("approved".parse().unwrap(), "true").unwrap(),
        )
        .await
        .unwrap();
    server
        .load(&n("churn"), LoadOptions::from_uri(uri))
        .await
        .unwrap();
    let out = server
        .infer(InferRequest::new(
            n("churn"),
            vec![
                Tensor::from_f64("age", vec![3], &[30.0, 40.0, 50.0]).unwrap(),
                Tensor::from_f64("income", vec![3], &[1.0, 2.0, 3.0]).unwrap(),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(out.model_version, Some(v(1)));
    assert_eq!(out.outputs[1].to_f64().unwrap(), vec![1.0, 2.0, 3.0]);
    // The observer runs off the request path: wait for it.
    for _ in 0..200 {
        if !seen.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        *seen.0.lock().unwrap(),
        vec![(
            "churn".to_string(),
            3,
            vec!["age".to_string(), "income".to_string()]
        )]
    );
    // Without a URI the registry's latest version is loaded.
    server.unload(&n("churn"), None).await.unwrap();
    server
        .load(&n("churn"), LoadOptions::default())
        .await
        .unwrap();
    assert!(server.model_ready(&n("churn"), Some(v(1))).await.unwrap());
    // A source this store does not hold is NotSupported, named.
    let foreign = registry
        .create_model_version(&name, CreateVersionOptions::new("s3://elsewhere/model"))
        .await
        .unwrap();
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), foreign.version),
            Tag::new("approved".parse().unwrap(), "true").unwrap(),
        )
        .await
        .unwrap();
    let err = server
        .load(&n("churn"), LoadOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.is_not_supported() && err.to_string().contains("s3://elsewhere"),
        "{err}"
    );
}

/// Fetches slowly, so a load is observably in progress.
#[derive(Debug)]
struct SlowSource(Artifacts);

#[async_trait::async_trait]
impl mlops_core::model::ArtifactSource for SlowSource {
    async fn fetch(
        &self,
        v: &mlops_core::ModelVersion,
    ) -> mlops_core::Result<mlops_core::ModelArtifact> {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.0.fetch(v).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_being_loaded_is_unavailable_not_unknown() {
    let store = Arc::new(MemoryStore::new());
    let registry = Arc::new(MemoryRegistry::new());
    let artifacts = Artifacts::new(store);
    let tree = artifacts
        .put_model(&identity_2d().to_artifact().unwrap())
        .await
        .unwrap();
    for name in ["m", "m2"] {
        let name = ModelName::new(name).unwrap();
        registry
            .create_registered_model(&name, Default::default())
            .await
            .unwrap();
        registry
            .create_model_version(
                &name,
                CreateVersionOptions::new(Artifacts::model_source(&tree)),
            )
            .await
            .unwrap();
    }
    let server = Arc::new(
        ModelServer::builder("s")
            .registry(registry, Arc::new(SlowSource(artifacts)))
            .build(),
    );
    let loader = {
        let server = server.clone();
        tokio::spawn(async move { server.load(&n("m"), LoadOptions::default()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let err = server
        .infer(InferRequest::new(n("m"), vec![x(1, 0.0)]))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!server.model_ready(&n("m"), None).await.unwrap());
    assert!(
        !server.ready().await.unwrap(),
        "not ready before its first model"
    );
    loader.await.unwrap().unwrap();
    assert!(server.model_ready(&n("m"), None).await.unwrap());
    assert!(server.ready().await.unwrap());

    // Reloading a served model keeps the server in rotation.
    let reload = {
        let server = server.clone();
        tokio::spawn(async move { server.load(&n("m"), LoadOptions::default()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        server.ready().await.unwrap(),
        "ready while a served model reloads"
    );
    reload.await.unwrap().unwrap();

    // A load of a new model that is abandoned midway (its client went away) does not leave the
    // server "loading" for ever.
    let abandoned = {
        let server = server.clone();
        tokio::spawn(async move { server.load(&n("m2"), LoadOptions::default()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!server.ready().await.unwrap(), "a new model is loading");
    abandoned.abort();
    let _ = abandoned.await;
    assert!(
        server.ready().await.unwrap(),
        "the abandoned load is forgotten"
    );
    assert!(
        server
            .infer(InferRequest::new(n("m"), vec![x(1, 0.0)]))
            .await
            .is_ok()
    );
    assert!(
        server
            .infer(InferRequest::new(n("other"), vec![x(1, 0.0)]))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn model_directories_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    mlops_serve::write_model_dir(&identity_2d().to_artifact().unwrap(), &path).unwrap();
    assert_eq!(
        std::fs::read_to_string(path.join("FLAVOR")).unwrap(),
        "identity\n"
    );
    let server = ModelServer::builder("s").build();
    server.load_dir(&n("m"), v(1), &path).unwrap();
    assert!(
        server
            .infer(InferRequest::new(n("m"), vec![x(2, 3.0)]))
            .await
            .is_ok()
    );
    std::fs::remove_file(path.join("FLAVOR")).unwrap();
    let err = server.load_dir(&n("m"), v(2), &path).unwrap_err();
    assert!(
        err.is_invalid_argument() && err.to_string().contains("FLAVOR"),
        "{err}"
    );
}

#[tokio::test]
async fn non_finite_values_are_refused_in_every_float_format() {
    let server = ModelServer::builder("s").build();
    for (dt, bits) in [
        (DataType::Fp16, vec![0x00u8, 0x7c]), // +inf
        (DataType::Fp16, vec![0x01, 0x7e]),   // NaN
        (DataType::Bf16, vec![0x80, 0x7f]),   // +inf
        (DataType::Fp32, f32::NEG_INFINITY.to_le_bytes().to_vec()),
        (DataType::Fp64, f64::NAN.to_le_bytes().to_vec()),
    ] {
        let sig = Signature::tensors(
            vec![TensorSpec::new("x", dt, vec![-1])],
            vec![TensorSpec::new("y", dt, vec![-1])],
        );
        let name = n(&format!("m-{dt}"));
        server
            .load_model(&name, v(1), Arc::new(IdentityModel::new(sig).unwrap()))
            .unwrap();
        let width = bits.len();
        let mut data = vec![0u8; width];
        data.extend_from_slice(&bits);
        let t = Tensor::new("x", dt, vec![2], data).unwrap();
        let err = server
            .infer(InferRequest::new(name.clone(), vec![t]))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("element 1 is not finite"),
            "{dt}: {err}"
        );
        let ok = Tensor::new("x", dt, vec![2], vec![0u8; 2 * width]).unwrap();
        assert!(
            server
                .infer(InferRequest::new(name.clone(), vec![ok]))
                .await
                .is_ok(),
            "{dt}"
        );
    }
}
