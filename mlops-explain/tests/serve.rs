#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `POST /v2/models/{name}/explain` on a real HTTP server: KernelSHAP of a served linear model
//! equals the exact values, with a configured background or against the request's rows; the
//! route answers 501 without an explainer and 400/501 naming what is wrong.

use std::sync::Arc;

use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, ModelName, Version};
use mlops_explain::{Features, LinearExplainer, ShapService};
use mlops_serve::identity::IdentityModel;
use mlops_serve::linear::{LinearModel, LinearParams, Link};
use mlops_serve::{HttpOptions, ModelServer};
use serde_json::{Value, json};

const COEF: [f64; 4] = [1.5, -2.0, 0.0, 0.25];

fn rows(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n * 4)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0).round()
        })
        .collect()
}

fn names() -> Vec<String> {
    (0..4).map(|j| format!("x[{j}]")).collect()
}

/// score = 2a + [plan = "pro"], over a text and a number column.
#[derive(Debug)]
struct PlanModel(Signature);

impl mlops_core::Model for PlanModel {
    fn flavor(&self) -> &str {
        "test"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(
        &self,
        inputs: &[mlops_core::Tensor],
    ) -> mlops_core::Result<Vec<mlops_core::Tensor>> {
        let plan = inputs
            .iter()
            .find(|t| t.name() == "plan")
            .unwrap()
            .to_byte_strings()?;
        let a = inputs.iter().find(|t| t.name() == "a").unwrap().to_f64()?;
        let score: Vec<f64> = a
            .iter()
            .zip(plan)
            .map(|(a, p)| 2.0 * a + f64::from(u8::from(p == b"pro")))
            .collect();
        Ok(vec![mlops_core::Tensor::from_f64(
            "score",
            vec![score.len()],
            &score,
        )?])
    }
    fn to_artifact(&self) -> mlops_core::Result<mlops_core::ModelArtifact> {
        Err(mlops_core::Error::invalid(
            "model",
            "a test model is not stored",
        ))
    }
}

/// Counts the rows the server shows its observer (what drift monitoring sees).
#[derive(Debug, Default)]
struct Rows(std::sync::atomic::AtomicUsize);

impl mlops_core::drift::InferenceObserver for Rows {
    fn observe(&self, _: &str, _: Option<Version>, inputs: &arrow::array::RecordBatch) {
        self.0
            .fetch_add(inputs.num_rows(), std::sync::atomic::Ordering::SeqCst);
    }
}

async fn start(explainer: Option<ShapService>) -> String {
    start_observed(explainer, Arc::new(Rows::default())).await
}

async fn start_observed(explainer: Option<ShapService>, rows: Arc<Rows>) -> String {
    let server = ModelServer::builder("explain-test").observer(rows).build();
    let model = LinearModel::new(LinearParams {
        coef: vec![COEF.to_vec()],
        intercept: vec![0.5],
        link: Link::Identity,
    })
    .unwrap();
    let name: ModelName = "lin".parse().unwrap();
    server
        .load_model(&name, Version::FIRST, Arc::new(model))
        .unwrap();
    let text = IdentityModel::new(Signature::tensors(
        vec![TensorSpec::new("s", DataType::Bytes, vec![-1])],
        vec![TensorSpec::new("t", DataType::Bytes, vec![-1])],
    ))
    .unwrap();
    server
        .load_model(&"text".parse().unwrap(), Version::FIRST, Arc::new(text))
        .unwrap();
    let plan = PlanModel(Signature::tensors(
        vec![
            TensorSpec::new("plan", DataType::Bytes, vec![-1]),
            TensorSpec::new("a", DataType::Fp64, vec![-1]),
        ],
        vec![TensorSpec::new("score", DataType::Fp64, vec![-1])],
    ));
    server
        .load_model(&"plan".parse().unwrap(), Version::FIRST, Arc::new(plan))
        .unwrap();
    let mut options = HttpOptions::default();
    if let Some(e) = explainer {
        options = options.with_explainer(Arc::new(e));
    }
    let app = mlops_serve::model_server_router(Arc::new(server), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mlops_serve::http::serve(
        listener,
        app,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn request(x: &[f64], parameters: Value) -> Value {
    json!({
        "inputs": [{"name": "x", "shape": [x.len() / 4, 4], "datatype": "FP32", "data": x}],
        "parameters": parameters,
    })
}

fn shap_values(body: &Value) -> Vec<f64> {
    let out = body["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "shap_values")
        .unwrap_or_else(|| panic!("{body}"));
    out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_served_model_is_explained_over_http() {
    let background = Features::new(names(), rows(20, 7)).unwrap();
    let base = start(Some(
        ShapService::new().with_background("lin", background.clone()),
    ))
    .await;
    let x = rows(3, 11);
    let (status, body) = post(&base, "/v2/models/lin/explain", request(&x, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let exact = LinearExplainer::new(COEF.to_vec(), 0.5, &background)
        .unwrap()
        .explain(&Features::new(names(), x.clone()).unwrap())
        .unwrap();
    let got = shap_values(&body);
    let want: Vec<f64> = exact.values.iter().flatten().copied().collect();
    assert_eq!(got.len(), 12);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    assert_eq!(body["model_version"], "1", "{body}");
    assert_eq!(body["parameters"]["features"], json!(names()));
    assert_eq!(body["parameters"]["output"], "y");
    assert!(body["parameters"]["additivity_error"].as_f64().unwrap() < 1e-6);

    // The versioned route, and a request explained against its own rows.
    let own = start(Some(ShapService::new())).await;
    let (status, body) = post(
        &own,
        "/v2/models/lin/versions/1/explain",
        request(&x, json!({"nsamples": 14})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bg = Features::new(names(), x.clone()).unwrap();
    let exact = LinearExplainer::new(COEF.to_vec(), 0.5, &bg)
        .unwrap()
        .explain(&bg)
        .unwrap();
    for (g, w) in shap_values(&body).iter().zip(exact.values.iter().flatten()) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[tokio::test]
async fn text_inputs_get_attributions_too() {
    let base = start(Some(ShapService::new())).await;
    // Explained against its own four rows: P(pro) = 1/4, mean a = 1.5; additive, so exact.
    let (status, body) = post(
        &base,
        "/v2/models/plan/explain",
        json!({"inputs": [
            {"name": "plan", "shape": [4], "datatype": "BYTES", "data": ["pro", "basic", "basic", "basic"]},
            {"name": "a", "shape": [4], "datatype": "FP64", "data": [0.0, 1.0, 2.0, 3.0]}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v = shap_values(&body);
    assert!((v[0] - 0.75).abs() < 1e-12, "{v:?}");
    assert!((v[1] - 2.0 * (0.0 - 1.5)).abs() < 1e-12, "{v:?}");
    assert!((v[2] + 0.25).abs() < 1e-12, "{v:?}");
    assert_eq!(body["parameters"]["features"], json!(["plan", "a"]));
}

#[tokio::test]
async fn explanations_are_not_traffic_the_drift_monitor_sees() {
    let rows = Arc::new(Rows::default());
    let base = start_observed(Some(ShapService::new()), rows.clone()).await;
    let body = json!({"inputs": [
        {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "basic"]},
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [0.0, 1.0]}
    ]});
    // The server hands observers their rows off the request path: wait for them.
    let seen = |want: usize| {
        let rows = rows.clone();
        async move {
            for _ in 0..100 {
                if rows.0.load(std::sync::atomic::Ordering::SeqCst) >= want {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            rows.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    };
    let (status, _) = post(&base, "/v2/models/plan/infer", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(seen(2).await, 2);
    let (status, answer) = post(&base, "/v2/models/plan/explain", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(seen(3).await, 2, "synthetic rows were observed");
    // A client cannot mark its own traffic synthetic to hide it.
    let mut hidden = body;
    hidden["parameters"] = json!({"mlops.synthetic": true});
    let (status, _) = post(&base, "/v2/models/plan/infer", hidden).await;
    assert_eq!(status, 200);
    assert_eq!(seen(4).await, 4);
}

#[tokio::test]
async fn bad_explain_requests_name_what_is_wrong() {
    let none = start(None).await;
    let x = rows(2, 3);
    let (status, body) = post(&none, "/v2/models/lin/explain", request(&x, json!({}))).await;
    assert_eq!(status, 501, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--explain"),
        "{body}"
    );

    let base = start(Some(ShapService::new())).await;
    let one = rows(1, 3);
    let cases = [
        (request(&one, json!({})), 400, "background"),
        (request(&x, json!({"link": "probit"})), 400, "probit"),
        (request(&x, json!({"output": "z"})), 400, "\"z\""),
        (request(&x, json!({"nsamples": "many"})), 400, "nsamples"),
        (request(&x, json!({"nsamples": 50_000_000})), 400, "at most"),
    ];
    for (req, code, needle) in cases {
        let (status, body) = post(&base, "/v2/models/lin/explain", req.clone()).await;
        assert_eq!(status, code, "{req}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{req}: {body}"
        );
    }
    let (status, body) = post(
        &base,
        "/v2/models/text/explain",
        json!({"inputs": [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]}),
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no numeric output"),
        "{body}"
    );
    let (status, _) = post(&base, "/v2/models/absent/explain", request(&x, json!({}))).await;
    assert_eq!(status, 404);
    // Nothing broke: inference still answers.
    let (status, body) = post(&base, "/v2/models/lin/infer", request(&x, json!({}))).await;
    assert_eq!(status, 200, "{body}");
}
