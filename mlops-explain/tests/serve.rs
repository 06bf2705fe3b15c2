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

async fn start(explainer: Option<ShapService>) -> String {
    let server = ModelServer::builder("explain-test").build();
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
    assert!(body["error"].as_str().unwrap().contains("BYTES"), "{body}");
    let (status, _) = post(&base, "/v2/models/absent/explain", request(&x, json!({}))).await;
    assert_eq!(status, 404);
    // Nothing broke: inference still answers.
    let (status, body) = post(&base, "/v2/models/lin/infer", request(&x, json!({}))).await;
    assert_eq!(status, 200, "{body}");
}
