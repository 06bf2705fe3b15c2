#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops ui` as a separate process over a store directory, with a drift report kept by
//! `mlops drift --track`: pages and API answer, foreign host names are refused without a token,
//! SIGTERM stops it.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{mlops, text};

fn csv(path: &std::path::Path, shift: f64) {
    let mut s = String::from("age,plan\n");
    for i in 0..400 {
        let age = 20.0 + ((i * 37) % 50) as f64 + shift;
        writeln!(s, "{age},{}", ["free", "pro"][i % 2]).unwrap();
    }
    std::fs::write(path, s).unwrap();
}

#[tokio::test]
async fn the_ui_serves_a_store_and_its_tracked_drift_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    csv(&d.join("train.csv"), 0.0);
    csv(&d.join("prod.csv"), 30.0);
    for (name, file) in [("train", "train.csv"), ("prod", "prod.csv")] {
        let o = mlops(d, &["datasets", "put", name, file]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let tracked = mlops(
        d,
        &[
            "drift",
            "--reference",
            "train",
            "--current",
            "prod",
            "--track",
        ],
    );
    assert_eq!(
        tracked.status.code(),
        Some(1),
        "drift found: {}",
        text(&tracked)
    );
    assert!(
        text(&tracked).contains("drift-reports"),
        "{}",
        text(&tracked)
    );
    let unknown = mlops(
        d,
        &[
            "drift",
            "--reference",
            "train",
            "--current",
            "prod",
            "--track",
            "models:/nope@x",
        ],
    );
    assert!(!unknown.status.success(), "an unknown model is an error");

    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(d)
        .env_remove("MLOPS_STORE")
        .args(["ui", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("mlops ui exited early").unwrap();
        if let Some(rest) = line.strip_prefix("mlops UI on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
        }
    };
    let drain = std::thread::spawn(move || lines.count());
    let http = reqwest::Client::new();
    let reports: serde_json::Value = http
        .get(format!("{base}/api/drift"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reports = reports["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["dataset_drift"], true);
    assert_eq!(reports[0]["current"], "prod");
    let page = http.get(format!("{base}/drift")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("prod"));
    let datasets = http
        .get(format!("{base}/datasets/train"))
        .send()
        .await
        .unwrap();
    assert_eq!(datasets.status(), 200);
    let rebound = http
        .get(format!("{base}/datasets"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM stops it cleanly: {status}");
    drain.join().unwrap();
}
