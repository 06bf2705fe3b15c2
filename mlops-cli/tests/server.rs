//! `mlops server`: MLflow's REST API over a store directory, as a separate process — a policy
//! governs registry writes (PERMISSION_DENIED with the reasons, decisions logged), the CLI reads
//! what clients logged, and a SIGKILL loses nothing that was acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{mlops, text};
use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(dir)
            .env_remove("MLOPS_STORE")
            .args(["server", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("mlops server exited early").unwrap();
            if let Some(rest) = line.strip_prefix("listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/2.0/mlflow/{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_policy_governs_registry_writes_and_every_decision_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    // Only the approval rule: champion needs approved=true.
    std::fs::write(
        policies.join("only-approval.rego"),
        "package mlops\n\ndisabled := [\"metrics\", \"drift\", \"lineage\", \"datasets\", \"fairness\"]\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--policy", "policies"]);
    let http = reqwest::Client::new();
    let (s, _) = post(
        &http,
        &server.api("registered-models/create"),
        json!({"name": "fraud"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = post(
        &http,
        &server.api("model-versions/create"),
        json!({"name": "fraud", "source": "s3://bucket/model"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["model_version"]["version"], "1");

    let alias = json!({"name": "fraud", "alias": "champion", "version": "1"});
    let (s, body) = post(&http, &server.api("registered-models/alias"), alias.clone()).await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error_code"], "PERMISSION_DENIED");
    assert!(
        body["message"].as_str().unwrap().contains("needs approval"),
        "{body}"
    );

    let (s, _) = post(
        &http,
        &server.api("model-versions/set-tag"),
        json!({"name": "fraud", "version": "1", "key": "approved", "value": "true"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = post(&http, &server.api("registered-models/alias"), alias).await;
    assert_eq!(s, 200, "{body}");
    drop(server);

    let out = mlops(dir.path(), &["policy", "verify-log"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mlops(dir.path(), &["policy", "log", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("needs approval"), "{log}");
    let out = mlops(dir.path(), &["models", "show", "fraud"]);
    assert!(text(&out).contains("champion"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let (s, body) = post(
        &http,
        &server.api("experiments/create"),
        json!({"name": "kill"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let experiment = body["experiment_id"].as_str().unwrap().to_string();
    let (s, body) = post(
        &http,
        &server.api("runs/create"),
        json!({"experiment_id": experiment, "run_name": "survivor", "start_time": 1}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();

    // Log from a thread until the server dies under it; count what was acknowledged.
    let url = server.api("runs/log-metric");
    let logger = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut acknowledged = 0u32;
        for step in 0..100_000u32 {
            let r = http
                .post(&url)
                .json(&json!({"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 1, "step": step}))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => acknowledged += 1,
                _ => break,
            }
        }
        (run_id, acknowledged)
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (run_id, acknowledged) = logger.await.unwrap();
    assert!(
        acknowledged > 10,
        "only {acknowledged} writes before the kill"
    );

    let out = mlops(dir.path(), &["runs", "show", &run_id, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let latest_step = shown["run"]["data"]["metrics"]["loss"]["step"].as_i64();
    // Steps were logged in order, so the latest stored step says how many values survived.
    assert!(
        latest_step.is_some_and(|s| s >= i64::from(acknowledged) - 1),
        "acknowledged {acknowledged}, stored up to step {latest_step:?}: {shown}"
    );
    let out = mlops(dir.path(), &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn a_logged_models_files_survive_gc_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let server = Server::start(dir.path(), &[]);
    let (s, body) = post(
        &http,
        &server.api("experiments/create"),
        json!({"name": "models"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let experiment = body["experiment_id"].as_str().unwrap().to_string();
    let (s, body) = post(
        &http,
        &server.api("logged-models"),
        json!({"experiment_id": experiment, "name": "clf", "model_type": "sklearn"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let model_id = body["model"]["info"]["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = body["model"]["info"]["artifact_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("mlflow-artifacts:/{experiment}/models/{model_id}/artifacts")
    );
    let file = format!(
        "{}/api/2.0/mlflow-artifacts/artifacts/{experiment}/models/{model_id}/artifacts/MLmodel",
        server.base
    );
    let r = http.put(&file).body("flavors: {}\n").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .patch(format!("{}/{model_id}", server.api("logged-models")))
        .json(&json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let base = server.base.clone();
    drop(server);

    // Nothing a LoggedModel's commit retains is garbage.
    let out = mlops(dir.path(), &["store", "gc", "--grace", "0s"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mlops(dir.path(), &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out));

    let server = Server::start(dir.path(), &[]);
    let file = file.replace(&base, &server.base);
    let http = reqwest::Client::new();
    let r = http.get(&file).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "flavors: {}\n");
    let (s, body) = post(
        &http,
        &server.api("logged-models/search"),
        json!({"experiment_ids": [experiment], "filter": "status = 'READY' AND model_type = 'sklearn'"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["models"][0]["info"]["model_id"],
        model_id.as_str(),
        "{body}"
    );
}
