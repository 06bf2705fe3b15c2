//! Local-first tracking against a real MLflow server that goes down mid-run and comes back:
//! nothing logged locally is lost, and the copy catches up. The test starts (and stops, and
//! restarts) its own server with the Python named by `MLOPS_TEST_PYTHON` (`./scripts/test` sets it).
// Test helpers may panic: a failure is a failed test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops_core::tracker::{CreateRunOptions, SearchRunsOptions};
use mlops_core::{RunStatus, Store, Tracker, TrackerExt};
use mlops_mlflow::{MlflowTracker, REPLICA_OF_TAG, Replicator};
use mlops_storage::{MemoryStore, StoreTracker, StoreTrackerOptions};

fn python() -> String {
    mlops_testkit::python::interpreter("mlflow")
}

struct Server {
    child: Child,
}

impl Server {
    // The child is returned inside `Server` and reaped by `Server::stop`.
    #[allow(clippy::zombie_processes)]
    fn start(port: u16, dir: &std::path::Path) -> Self {
        let mut child = Command::new(python())
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .env("DO_NOT_TRACK", "1")
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let ok = std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                        .ok()?;
                    let mut buf = String::new();
                    s.read_to_string(&mut buf).ok()?;
                    Some(buf.ends_with("OK"))
                })
                .unwrap_or(false);
            if ok {
                return Self { child };
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mlflow server did not become ready");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn stop(mut self) {
        // The server's job-runner child outlives SIGTERM to its parent: stop the children first.
        if let Ok(out) = Command::new("pgrep")
            .arg("-P")
            .arg(self.child.id().to_string())
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_replication_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(port, dir.path());

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let local: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store, StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    let remote: Arc<dyn Tracker> =
        Arc::new(MlflowTracker::new(&format!("http://127.0.0.1:{port}")).unwrap());
    let replicator = Replicator::new(local.clone(), remote.clone());

    let exp = local
        .get_or_create_experiment(&"local-first".parse().unwrap())
        .await
        .unwrap();
    let run = local
        .create_run(
            CreateRunOptions::default()
                .in_experiment(exp)
                .with_name("training"),
        )
        .await
        .unwrap()
        .info
        .run_id;
    local.log_param(&run, "lr", "0.1").await.unwrap();
    for step in 0..50 {
        local
            .log_metric(&run, "loss", 1.0 / (step + 1) as f64, step)
            .await
            .unwrap();
    }
    let first = replicator.sync_once().await.unwrap();
    assert_eq!((first.runs_created, first.metric_values), (1, 50));

    // The server goes away; training goes on and logs locally at full speed.
    server.stop();
    for step in 50..120 {
        local
            .log_metric(&run, "loss", 1.0 / (step + 1) as f64, step)
            .await
            .unwrap();
    }
    local.set_tag(&run, "phase", "after-outage").await.unwrap();
    local.end_run(&run, RunStatus::Finished).await.unwrap();
    let err = replicator.sync_once().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    // It comes back with the same database; the next sync sends exactly what it missed.
    let server = Server::start(port, dir.path());
    let second = replicator.sync_once().await.unwrap();
    assert_eq!((second.runs_created, second.metric_values), (0, 70));
    let copies = remote
        .search_all_runs(
            SearchRunsOptions::default().with_filter(format!("tags.`{REPLICA_OF_TAG}` = '{run}'")),
        )
        .await
        .unwrap();
    assert_eq!(copies.len(), 1, "one copy of the run");
    let copy = &copies[0];
    assert_eq!(copy.info.status, RunStatus::Finished);
    assert_eq!(copy.data.params.get("lr").map(String::as_str), Some("0.1"));
    assert_eq!(
        copy.data.tags.get("phase").map(String::as_str),
        Some("after-outage")
    );
    let history = remote
        .metric_history(&copy.info.run_id, &"loss".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        history.len(),
        120,
        "every value logged during the outage arrived"
    );
    let third = replicator.sync_once().await.unwrap();
    assert_eq!(
        (
            third.runs_created,
            third.metric_values,
            third.params_and_tags
        ),
        (0, 0, 0),
        "nothing sent twice"
    );
    server.stop();
}
