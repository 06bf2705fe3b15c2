//! Serve a model directory over the Open Inference Protocol: a scikit-learn-style linear model
//! written as a folder (its files plus `FLAVOR`), loaded by `ModelServer`, answered over HTTP on
//! 127.0.0.1 with a real client — the same folder `mlops serve --model-dir NAME=DIR` serves.
//!
//! ```text
//! cargo run --example serve-model-dir
//! ```

use std::sync::Arc;

use mlops::serve::linear::Link;
use mlops::serve::{HttpOptions, LinearModel, LinearParams, ModelServer};
use mlops::{Model, Version};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A model from elsewhere: the coefficients of a fitted regression, as a model directory.
    let model = LinearModel::new(LinearParams {
        coef: vec![vec![0.8, -0.3]],
        intercept: vec![0.1],
        link: Link::Sigmoid,
    })?;
    let dir = std::env::temp_dir().join(format!("mlops-model-dir-{}", std::process::id()));
    mlops::serve::write_model_dir(&model.to_artifact()?, &dir)?;

    // The server reads the folder; the router serves it until told to stop.
    let server = Arc::new(ModelServer::builder("example").build());
    server.load_dir(&"churn".parse()?, Version::FIRST, &dir)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = mlops::serve::http::model_server_router(server, HttpOptions::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(mlops::serve::http::serve(listener, router, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let metadata: serde_json::Value = client
        .get(format!("{base}/v2/models/churn"))
        .send()
        .await?
        .json()
        .await?;
    println!("metadata: {metadata}");
    let answer: serde_json::Value = client
        .post(format!("{base}/v2/models/churn/infer"))
        .json(&serde_json::json!({
            "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                        "data": [[1.0, 0.5], [-2.0, 1.0]]}]
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("answer:   {answer}");
    // A request that does not match the signature is a 400 naming the problem.
    let bad = client
        .post(format!("{base}/v2/models/churn/infer"))
        .json(&serde_json::json!({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}))
        .send()
        .await?;
    println!("bad input: {} {}", bad.status(), bad.text().await?);

    let _ = stop.send(());
    http.await??;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
