//! `mlops features serve` against a live `feast serve` (Feast 0.67, sqlite online store) on the
//! same data: the same `POST /get-online-features` requests (feature references, a feature
//! service, full feature names, present and missing entities, an integer key sent as a string)
//! give the same names, values, statuses and event timestamps key for key, before and after the
//! same `POST /push`. The one documented difference: a stored null is `NULL_VALUE` here (Feast's
//! serving proto) where Feast's Python server says `PRESENT`.
//!
//! Needs a Python with `feast[duckdb]` named by `MLOPS_TEST_PYTHON` (`./scripts/test` sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use common::{mlops, text};
use serde_json::{Value, json};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // `feast serve` runs its workers as child processes that outlive their parent's kill.
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const REPO: &str = r#"
project: shop
entities:
  - name: customer
    join_keys: [customer_id]
sources:
  - name: stats
    path: stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
feature_views:
  - name: customer_stats
    entities: [customer]
    ttl: 30days
    source: stats
    schema:
      - {name: spend, dtype: Float64}
      - {name: tier, dtype: String}
      - {name: visits, dtype: Int64}
feature_services:
  - name: scoring
    features: [customer_stats]
"#;

fn python() -> PathBuf {
    PathBuf::from(mlops_testkit::python::interpreter("feast[duckdb]"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whole seconds (Feast's sqlite store keeps seconds), within the last days.
fn source(now: i64) -> RecordBatch {
    let h = 3600;
    let ids = vec![1, 1, 2, 2, 3, 4];
    let events = vec![
        now - 50 * h,
        now - 30 * h,
        now - 20 * h,
        now - 20 * h,
        now - 10 * h,
        now - 5 * h,
    ];
    // Customer 2's second row (same event time) was created later: it wins.
    let created = vec![
        now - 50 * h,
        now - 30 * h,
        now - 20 * h,
        now - 19 * h,
        now - 10 * h,
        now - 5 * h,
    ];
    let spend = vec![Some(1.5), Some(2.5), Some(3.0), Some(3.25), None, Some(9.0)];
    let tier = vec!["gold", "gold", "silver", "bronze", "gold", "silver"];
    let visits = vec![1, 2, 3, 4, 5, 6];
    // Microseconds (of whole seconds): see feast_serve_setup.py.
    let ts = |v: Vec<i64>| {
        let us: Vec<i64> = v.iter().map(|s| s * 1_000_000).collect();
        Arc::new(TimestampMicrosecondArray::from(us).with_timezone("UTC")) as ArrayRef
    };
    RecordBatch::try_from_iter([
        ("customer_id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("event_timestamp", ts(events)),
        ("created", ts(created)),
        ("spend", Arc::new(Float64Array::from(spend)) as ArrayRef),
        ("tier", Arc::new(StringArray::from(tier)) as ArrayRef),
        ("visits", Arc::new(Int64Array::from(visits)) as ArrayRef),
    ])
    .unwrap()
}

fn rfc3339(secs: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs as u64))
        .to_string()
}

async fn wait_healthy(http: &reqwest::Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{base} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{base} did not become healthy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// name -> (values, statuses, event_timestamps), and the names in order.
fn by_name(response: &Value) -> (Vec<String>, BTreeMap<String, Value>) {
    let names: Vec<String> = response["metadata"]["feature_names"]
        .as_array()
        .unwrap_or_else(|| panic!("no feature names in {response}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), names.len(), "{response}");
    let map = names.iter().cloned().zip(results.iter().cloned()).collect();
    (names, map)
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let r = http.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn compare(http: &reqwest::Client, ours: &str, feast: &str, request: &Value) {
    let (s1, a) = post(http, format!("{ours}/get-online-features"), request).await;
    let (s2, b) = post(http, format!("{feast}/get-online-features"), request).await;
    assert_eq!((s1, s2), (200, 200), "{request}: ours {a}, Feast {b}");
    let (names_a, mut map_a) = by_name(&a);
    let (names_b, map_b) = by_name(&b);
    // Join keys first in both; features of a view may come in another order from Feast (a set).
    assert_eq!(names_a[0], names_b[0], "{request}");
    let mut sorted_a = names_a.clone();
    let mut sorted_b = names_b.clone();
    sorted_a.sort();
    sorted_b.sort();
    assert_eq!(sorted_a, sorted_b, "{request}");
    // The documented difference: a stored null.
    for column in map_a.values_mut() {
        let nulls: Vec<usize> = column["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, s)| *s == "NULL_VALUE")
            .map(|(i, _)| i)
            .collect();
        for i in nulls {
            assert_eq!(column["values"][i], Value::Null);
            column["statuses"][i] = json!("PRESENT");
        }
    }
    for name in &names_a {
        assert_eq!(
            map_a[name], map_b[name],
            "{request}: column {name}\nours:  {a}\nFeast: {b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_features_and_push_answer_as_feast_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let batch = source(now);
    let file = std::fs::File::create(cwd.join("stats.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    std::fs::write(cwd.join("features.yaml"), REPO).unwrap();
    let (start, end) = (rfc3339(now - 100 * 3600), rfc3339(now));

    // Ours: apply, materialize, serve.
    let o = mlops(cwd, &["features", "apply"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mlops(
        cwd,
        &["features", "materialize", "--project", "shop", &start, &end],
    );
    assert!(o.status.success(), "{}", text(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(cwd)
        .env_remove("MLOPS_STORE")
        .args([
            "features",
            "serve",
            "--project",
            "shop",
            "--port",
            "0",
            "--refresh-ms",
            "100",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ours = loop {
        let line = lines
            .next()
            .expect("mlops features serve exited early")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let _ours_process = Process(child);

    // Feast's: the same definitions, applied and materialized, then `feast serve`.
    let feast_repo = cwd.join("feast_repo");
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feast_serve_setup.py");
    let case = json!({"repo": feast_repo, "source": cwd.join("stats.parquet"), "start": start, "end": end});
    mlops_testkit::python::run_json(&setup, &case, "feast[duckdb]");
    let port = free_port();
    let feast_bin = python().with_file_name("feast");
    let mut feast_child = Command::new(&feast_bin)
        .current_dir(&feast_repo)
        .env("FEAST_USAGE", "False")
        .args([
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-w",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", feast_bin.display()));
    let feast = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_healthy(&http, &feast, &mut feast_child).await;
    let _feast_process = Process(feast_child);

    let requests = [
        json!({"features": ["customer_stats:spend", "customer_stats:tier"], "entities": {"customer_id": [1, 2, 3, 4, 99]}}),
        json!({"feature_service": "scoring", "entities": {"customer_id": [2, 1]}, "full_feature_names": true}),
        json!({"features": ["customer_stats:visits"], "entities": {"customer_id": ["4", 1]}}),
    ];
    for r in &requests {
        compare(&http, &ours, &feast, r).await;
    }

    // The same push to both: a newer row for customer 1, a new customer 7.
    let push = json!({
        "push_source_name": "stats",
        "df": {
            "customer_id": [1, 7],
            "event_timestamp": [rfc3339(now - 60), rfc3339(now - 120)],
            "created": [rfc3339(now - 60), rfc3339(now - 120)],
            "spend": [11.0, 7.5],
            "tier": ["platinum", "bronze"],
            "visits": [40, 1],
        },
        "to": "online",
    });
    let (s1, a) = post(&http, format!("{ours}/push"), &push).await;
    let (s2, b) = post(&http, format!("{feast}/push"), &push).await;
    assert_eq!((s1, s2), (200, 200), "ours {a}, Feast {b}");
    let after = json!({"feature_service": "scoring", "entities": {"customer_id": [1, 7, 2]}});
    compare(&http, &ours, &feast, &after).await;

    // The same API mounted in `mlops serve` beside the Open Inference Protocol.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(cwd)
        .env_remove("MLOPS_STORE")
        .args(["serve", "--features", "shop", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = loop {
        let line = lines.next().expect("mlops serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let _serving_process = Process(child);
    let (s1, a) = post(&http, format!("{ours}/get-online-features"), &after).await;
    let (s2, b) = post(&http, format!("{serving}/get-online-features"), &after).await;
    assert_eq!((s1, s2), (200, 200), "{b}");
    assert_eq!(
        a, b,
        "mlops serve --features answers as mlops features serve"
    );
    let live = http
        .get(format!("{serving}/v2/health/live"))
        .send()
        .await
        .unwrap();
    assert!(live.status().is_success());

    // Bad requests name what was wrong.
    let (status, body) = post(
        &http,
        format!("{ours}/get-online-features"),
        &json!({"features": ["customer_stats:nope"], "entities": {"customer_id": [1]}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("no feature nope"),
        "{body}"
    );
    let (status, body) = post(
        &http,
        format!("{ours}/get-online-features"),
        &json!({"entities": 5}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &http,
        format!("{ours}/push"),
        &json!({"push_source_name": "stats", "df": {"customer_id": [1]}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no column event_timestamp"),
        "{body}"
    );
}
