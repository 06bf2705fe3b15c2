#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The UI over a filled store, through real HTTP: every page and API endpoint, escaping of
//! hostile names, bad filters and missing objects as readable pages, artifact traversal, the
//! token gate, downsampled histories, cursor paging and mounting under a prefix.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use mlops_core::drift::DriftDetector;
use mlops_core::policy::{Decision, PolicyQuery};
use mlops_core::registry::{CreateVersionOptions, DatasetLineage, Lineage};
use mlops_core::secret::SecretString;
use mlops_core::tracker::{CreateRunOptions, LogBatch, TrackerExt};
use mlops_core::tracking::{Metric, Param, RunStatus};
use mlops_core::{Registry, Store, Tracker};
use mlops_drift::{Report, StatDetector, history};
use mlops_policy::log::DecisionLog;
use mlops_storage::{
    Datasets, MemoryStore, StoreRegistry, StoreTracker, StoreTrackerOptions, WriteOptions,
};
use mlops_ui::Ui;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

const EVIL: &str = "<script>alert(1)</script>";
const QUOTES: &str = "\"'><img src=x onerror=alert(2)>";

struct Fixture {
    store: Arc<dyn Store>,
    tracker: Arc<StoreTracker>,
    registry: Arc<StoreRegistry>,
    experiment: String,
    best: String,
    evil: String,
    child: String,
}

async fn fixture() -> Fixture {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tracker = Arc::new(
        StoreTracker::open(
            store.clone(),
            StoreTrackerOptions::default().with_flush_interval(None),
        )
        .await
        .unwrap(),
    );
    let registry = Arc::new(StoreRegistry::new(store.clone()));
    let experiment = tracker
        .get_or_create_experiment(&"churn ✓".parse().unwrap())
        .await
        .unwrap();
    let mut ids = vec![];
    for (i, name) in ["baseline", "best-mlp", EVIL].iter().enumerate() {
        let run = tracker
            .create_run(
                CreateRunOptions::default()
                    .in_experiment(experiment.clone())
                    .with_name(*name),
            )
            .await
            .unwrap();
        let id = run.info.run_id;
        let mut batch = LogBatch::new()
            .param(Param::new("lr".parse().unwrap(), format!("0.0{}", i + 1)).unwrap())
            .param(
                Param::new(
                    "model".parse().unwrap(),
                    if i == 0 { "linear" } else { "mlp" },
                )
                .unwrap(),
            );
        for step in 0..50 {
            batch = batch.metric(Metric::new(
                "loss".parse().unwrap(),
                1.0 / (step as f64 + 1.0 + i as f64),
                step,
            ));
        }
        batch = batch.metric(Metric::new(
            "accuracy".parse().unwrap(),
            0.7 + 0.1 * i as f64,
            49,
        ));
        tracker.log_batch(&id, batch).await.unwrap();
        tracker.set_tag(&id, "note", QUOTES).await.unwrap();
        tracker.end_run(&id, RunStatus::Finished).await.unwrap();
        ids.push(id);
    }
    // A long history, a child run and artifacts on the best run.
    let best = ids[1].clone();
    let mut batch = LogBatch::new();
    for step in 0..100_000 {
        batch = batch.metric(Metric::new(
            "train_loss".parse().unwrap(),
            (step as f64 / 500.0).sin(),
            step,
        ));
        if step % 1000 == 999 {
            tracker
                .log_batch(&best, std::mem::replace(&mut batch, LogBatch::new()))
                .await
                .unwrap();
        }
    }
    let child = tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(experiment.clone())
                .with_name("fold-1")
                .with_parent(best.clone()),
        )
        .await
        .unwrap()
        .info
        .run_id;
    for (path, body) in [
        ("notes.txt", "hello <b>world</b>"),
        ("metrics/summary.json", "{\"f1\": 0.91}"),
        ("model/MLmodel", "flavors: {}"),
    ] {
        tracker
            .put_artifact(&best, &path.parse().unwrap(), Bytes::from(body))
            .await
            .unwrap();
    }
    // A dataset with two versions (a column added).
    let datasets = Datasets::new(store.clone());
    let name = "customers".parse().unwrap();
    for extra in [false, true] {
        let mut fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("plan", DataType::Utf8, false),
        ];
        let mut columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["basic", "pro", EVIL])),
        ];
        if extra {
            fields.push(Field::new("spend", DataType::Float64, true));
            columns.push(Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(9.0),
            ])));
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        datasets
            .write(
                &name,
                schema,
                futures::stream::iter([Ok(batch)]),
                WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    let digest = datasets
        .version(&name, Default::default())
        .await
        .unwrap()
        .digest;
    // A model version with lineage and an alias, and a decision about it.
    let model = "churn".parse().unwrap();
    registry
        .create_registered_model(&model, Default::default())
        .await
        .unwrap();
    let mut options = CreateVersionOptions::new("mlops-artifact:abc").with_run_id(best.clone());
    options.lineage = Lineage {
        run_id: Some(best.clone()),
        datasets: vec![DatasetLineage {
            name: "customers".parse().unwrap(),
            version: "2".parse().unwrap(),
            digest,
        }],
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
    };
    registry
        .create_model_version(&model, options)
        .await
        .unwrap();
    registry
        .set_alias(&model, &"champion".parse().unwrap(), "1".parse().unwrap())
        .await
        .unwrap();
    let log = DecisionLog::open_default(store.clone()).await.unwrap();
    let query = PolicyQuery::new(
        "mlops/governance",
        serde_json::json!({"action": "set_alias", "alias": "champion", "model": {"name": "churn", "version": 1}}),
    );
    let decision = Decision {
        decision_id: "d-1".into(),
        allowed: false,
        reasons: vec![format!("needs approval {EVIL}")],
        result: serde_json::json!({"allow": false}),
        revision: None,
    };
    log.record(&query, &decision).unwrap();
    log.flush().await.unwrap();
    // Two drift reports about churn v1: calm, then shifted.
    for shift in [0.0, 40.0] {
        let data = |shift: f64| {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "spend",
                DataType::Float64,
                false,
            )]));
            let x = Float64Array::from_iter_values((0..300).map(|i| f64::from(i % 60) + shift));
            RecordBatch::try_new(schema, vec![Arc::new(x)]).unwrap()
        };
        let detector = StatDetector::new();
        let profile = detector.profile(&[data(0.0)], &Default::default()).unwrap();
        let current = [data(shift)];
        let drift = detector
            .detect(&profile, &current, &Default::default())
            .unwrap();
        let report = Report::new(
            &drift,
            &profile,
            &current,
            "customers@1",
            format!("prod+{shift}"),
        )
        .unwrap();
        history::log_report(
            tracker.as_ref(),
            &report,
            Some((&model, "1".parse().unwrap())),
        )
        .await
        .unwrap();
    }
    tracker.flush().await.unwrap();
    Fixture {
        store,
        tracker,
        registry,
        experiment: experiment.as_str().to_string(),
        best: best.as_str().to_string(),
        evil: ids[2].as_str().to_string(),
        child: child.as_str().to_string(),
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn ui(f: &Fixture) -> Ui {
    Ui::new(f.tracker.clone(), f.registry.clone()).with_store(f.store.clone())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn get(base: &str, path: &str) -> (StatusCode, String) {
    let r = client().get(format!("{base}{path}")).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn json(base: &str, path: &str) -> (StatusCode, serde_json::Value) {
    let r = client().get(format!("{base}{path}")).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn every_page_shows_the_store() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, body) = get(&base, "/experiments").await;
    assert_eq!(s, 200);
    assert!(body.contains("churn ✓"));
    let (s, body) = get(&base, &format!("/experiments/{}", f.experiment)).await;
    assert_eq!(s, 200);
    assert!(body.contains("best-mlp") && body.contains("baseline") && body.contains("accuracy"));
    let (s, body) = get(&base, &format!("/runs/{}", f.best)).await;
    assert_eq!(s, 200);
    for expected in [
        "best-mlp",
        "0.8",
        "lr",
        "0.02",
        "fold-1",
        "churn v1",
        f.child.as_str(),
    ] {
        assert!(body.contains(expected), "run page lacks {expected}");
    }
    let (s, body) = get(&base, &format!("/runs/{}", f.child)).await;
    assert_eq!(s, 200);
    assert!(
        body.contains(&format!("/runs/{}", f.best)),
        "the child links its parent"
    );
    let (s, body) = get(
        &base,
        &format!(
            "/chart?runs={},{}&key=loss&log=1&smooth=0.5",
            f.best, f.evil
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body.matches("<polyline").count(), 2, "one line per run");
    let (s, body) = get(
        &base,
        &format!(
            "/chart?runs={},{},{}&key=loss&group_by=model",
            f.best, f.evil, f.child
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("model=mlp (n=2)"), "runs grouped by a param");
    assert!(body.contains("<polygon"), "mean ± std bands");
    let (s, body) = get(&base, &format!("/compare?run={}&run={}", f.best, f.evil)).await;
    assert_eq!(s, 200);
    assert!(
        body.contains("class=\"diff\""),
        "differing params are highlighted"
    );
    assert!(body.contains("parallel coordinates"));
    let (s, body) = get(&base, "/models").await;
    assert_eq!(s, 200);
    assert!(body.contains("churn") && body.contains("@champion"));
    let (s, body) = get(&base, "/models/churn/versions/1").await;
    assert_eq!(s, 200);
    for expected in [
        "customers@2",
        "commit 0123456789",
        "@champion",
        "hash chain verified",
        "denied",
    ] {
        assert!(body.contains(expected), "version page lacks {expected}");
    }
    let (s, body) = get(&base, "/datasets/customers?from=1&to=2").await;
    assert_eq!(s, 200);
    assert!(body.contains("spend"), "the diff names the added column");
    let (s, _) = get(&base, "/pipelines").await;
    assert_eq!(s, 200);
    let (s, body) = get(&base, "/decisions").await;
    assert_eq!(s, 200);
    assert!(body.contains("needs approval"));
}

#[tokio::test]
async fn user_strings_are_escaped_everywhere() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    for path in [
        format!("/experiments/{}", f.experiment),
        format!("/runs/{}", f.evil),
        format!("/chart?runs={}", f.evil),
        format!("/compare?runs={},{}", f.evil, f.best),
        "/datasets/customers".to_string(),
        "/decisions".to_string(),
        "/models/churn/versions/1".to_string(),
        format!(
            "/experiments/{}?filter={}",
            f.experiment, "params.x%20%3D%20%27%3Cscript%3E"
        ),
    ] {
        let (_, body) = get(&base, &path).await;
        assert!(!body.contains("<script>"), "{path} has a raw <script>");
        assert!(
            !body.contains("<img src=x"),
            "{path} has a raw attribute break-out"
        );
    }
    let (_, body) = get(&base, &format!("/runs/{}", f.evil)).await;
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn bad_filters_and_missing_objects_are_readable_pages() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, body) = get(
        &base,
        &format!(
            "/experiments/{}?filter=metrics.accuracy%20%3E%3E%201",
            f.experiment
        ),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        body.contains("id=\"filter-error\""),
        "the error sits beside the filter box"
    );
    let (s, body) = json(&base, "/api/runs?filter=metrics.accuracy%20%3E%3E%201").await;
    assert_eq!(s, 400);
    assert_eq!(body["error_code"], "INVALID_ARGUMENT");
    for path in [
        "/runs/0123456789abcdef0123456789abcdef",
        "/models/nope",
        "/models/churn/versions/9",
        "/datasets/nope",
        "/no/such/page",
    ] {
        let (s, body) = get(&base, path).await;
        assert_eq!(s, 404, "{path}");
        assert!(body.contains("404"), "{path}");
    }
    let (s, body) = get(&base, "/runs/bad.id").await;
    assert_eq!(s, 400);
    assert!(body.contains("run id"), "the error names what was wrong");
    let (s, body) = json(&base, "/api/models/nope").await;
    assert_eq!(
        (s.as_u16(), body["error_code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn the_artifact_browser_stays_inside_the_run() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, body) = get(&base, &format!("/runs/{}/artifacts", f.best)).await;
    assert_eq!(s, 200);
    assert!(body.contains("metrics/") && body.contains("notes.txt"));
    let (s, body) = get(&base, &format!("/runs/{}/artifacts?path=notes.txt", f.best)).await;
    assert_eq!(s, 200);
    assert!(
        body.contains("hello &lt;b&gt;world&lt;/b&gt;"),
        "text previews are escaped"
    );
    let (s, body) = get(
        &base,
        &format!("/runs/{}/artifacts?path=metrics/summary.json", f.best),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        body.contains("&quot;f1&quot;: 0.91"),
        "JSON is pretty-printed"
    );
    let r = client()
        .get(format!(
            "{base}/api/runs/{}/artifact?path=metrics/summary.json",
            f.best
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"summary.json\""
    );
    assert_eq!(r.text().await.unwrap(), "{\"f1\": 0.91}");
    for bad in [
        "../other/notes.txt",
        "metrics/../../x",
        "%2e%2e/x",
        "metrics/%2e%2e/%2e%2e/x",
    ] {
        let (s, _) = get(&base, &format!("/api/runs/{}/artifact?path={bad}", f.best)).await;
        assert_eq!(s, 400, "{bad}");
        let (s, _) = get(&base, &format!("/runs/{}/artifacts?path={bad}", f.best)).await;
        assert_eq!(s, 400, "{bad}");
    }
}

#[tokio::test]
async fn histories_are_downsampled_on_the_server() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, body) = json(
        &base,
        &format!(
            "/api/runs/{}/metric-history?key=train_loss&points=500",
            f.best
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["total"], 100_000);
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 500);
    assert_eq!(points[0][0], 0.0);
    assert_eq!(points[499][0], 99_999.0);
    let max = points
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert!(max > 0.999, "the peaks survive ({max})");
    let (s, body) = json(
        &base,
        &format!("/api/runs/{}/metric-history?key=train_loss&x=time", f.best),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        body["points"].as_array().unwrap().len(),
        mlops_ui::DEFAULT_CHART_POINTS
    );
}

#[tokio::test]
async fn runs_page_through_with_a_cursor() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, first) = json(
        &base,
        &format!(
            "/api/runs?experiment_ids={}&max_results=2&order_by=metrics.accuracy%20DESC",
            f.experiment
        ),
    )
    .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = first["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["run_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [EVIL, "best-mlp"]);
    let token = first["next_page_token"].as_str().unwrap();
    let (_, second) = json(&base, &format!("/api/runs?experiment_ids={}&max_results=2&order_by=metrics.accuracy%20DESC&page_token={token}", f.experiment)).await;
    let names: Vec<&str> = second["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["run_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "baseline and the child run");
    assert!(second["next_page_token"].is_null());
    let (_, page) = get(
        &base,
        &format!("/experiments/{}?max_results=2", f.experiment),
    )
    .await;
    assert!(
        page.contains("id=\"next\""),
        "the page offers the next page"
    );
    let (_, all) = json(&base, "/api/runs?filter=params.model%20%3D%20%27mlp%27").await;
    assert_eq!(all["runs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_token_gates_pages_and_api() {
    let f = fixture().await;
    let base = serve(
        ui(&f)
            .with_token(SecretString::from("s3cret".to_string()))
            .router(),
    )
    .await;
    let (s, body) = json(&base, "/api/experiments").await;
    assert_eq!(
        (s.as_u16(), body["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let r = client()
        .get(format!("{base}/api/experiments"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{base}/api/experiments"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client().get(format!("{base}/models")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fmodels");
    let (s, body) = get(&base, "/login?next=%2Fmodels").await;
    assert_eq!(s, 200);
    assert!(body.contains("name=\"token\""));
    let wrong = client()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=nope&next=%2Fmodels")
        .send()
        .await
        .unwrap();
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(
        wrong.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?failed=1")
    );
    let right = client()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=s3cret&next=%2F%2Fevil.example%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(right.headers()["location"], "/", "no open redirect");
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("s3cret"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let r = client()
        .get(format!("{base}/models"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{base}/models"))
        .header("cookie", "mlops_ui_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The stylesheet is served to the login page without a token.
    let (s, _) = get(&base, "/static/mlops.css").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn the_router_mounts_under_a_prefix() {
    let f = fixture().await;
    assert!(ui(&f).with_base_path("../x").is_err());
    let router =
        axum::Router::new().nest("/mlops", ui(&f).with_base_path("/mlops/").unwrap().router());
    let base = serve(router).await;
    let (s, body) = get(&base, "/mlops/models").await;
    assert_eq!(s, 200);
    assert!(body.contains("href=\"/mlops/models/churn\""));
    assert!(body.contains("href=\"/mlops/static/mlops.css\""));
    let r = client().get(format!("{base}/mlops")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/mlops/experiments");
}

#[tokio::test]
async fn drift_reports_over_time_and_each_report() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, body) = json(&base, "/api/drift?model=churn").await;
    assert_eq!(s, 200);
    let reports = body["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        reports[0]["dataset_drift"], false,
        "oldest first: the calm one"
    );
    assert_eq!(reports[1]["dataset_drift"], true);
    let (s, page) = get(&base, "/drift").await;
    assert_eq!(s, 200);
    assert!(page.contains("Model churn") && page.contains("prod+40") && page.contains("<polyline"));
    let shifted = reports[1]["run_id"].as_str().unwrap();
    let (s, page) = get(&base, &format!("/drift/{shifted}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("id=\"verdict\"") && page.contains(">drift<") && page.contains("spend"));
    let (s, body) = json(&base, &format!("/api/drift/{shifted}")).await;
    assert_eq!(s, 200);
    assert_eq!(body["report"]["current"]["name"], "prod+40");
    // The full HTML report is shown inline, sandboxed.
    let r = client()
        .get(format!(
            "{base}/api/runs/{shifted}/artifact?path=drift_report.html&inline=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["content-security-policy"], "sandbox");
    // A run without a report is a 404, not a 500.
    let (s, _) = get(&base, &format!("/drift/{}", f.best)).await;
    assert_eq!(s, 404);
    let (s, _) = json(&base, "/api/drift?model=bad/name").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_fresh_store_and_odd_lineage_still_render() {
    // No decision log yet, a non-ASCII commit string, a version without a run.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tracker = Arc::new(
        StoreTracker::open(store.clone(), Default::default())
            .await
            .unwrap(),
    );
    let registry = Arc::new(StoreRegistry::new(store.clone()));
    let model = "m".parse().unwrap();
    registry
        .create_registered_model(&model, Default::default())
        .await
        .unwrap();
    let mut options = CreateVersionOptions::new("s3://elsewhere/model");
    options.lineage.git_commit = Some("éééééééééééé".into());
    registry
        .create_model_version(&model, options)
        .await
        .unwrap();
    let base = serve(Ui::new(tracker, registry).with_store(store).router()).await;
    let (s, body) = get(&base, "/models/m/versions/1").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("no decisions logged yet") && body.contains("commit éééééééééé"));
    for path in [
        "/decisions",
        "/drift",
        "/pipelines",
        "/datasets",
        "/experiments",
    ] {
        let (s, body) = get(&base, path).await;
        assert_eq!(s, 200, "{path}: {body}");
    }
    let (s, body) = json(&base, "/api/decisions").await;
    assert_eq!(s, 200);
    assert_eq!(body["decisions"]["log"]["segments"], 0);
}

#[tokio::test]
async fn malformed_queries_are_our_errors_not_plain_text() {
    let f = fixture().await;
    let base = serve(ui(&f).router()).await;
    let (s, body) = json(&base, "/api/runs?max_results=abc").await;
    assert_eq!(
        (s.as_u16(), body["error_code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (s, body) = get(&base, &format!("/chart?runs={}&x=sideways", f.best)).await;
    assert_eq!(s, 400);
    assert!(body.contains("<html"), "a page, not plain text");
    let (s, body) = get(
        &base,
        &format!("/chart?runs={}&key=loss&smooth=NaN", f.best),
    )
    .await;
    assert_eq!(s, 200);
    assert!(!body.contains("NaN,"), "no NaN coordinates");
    let (s, _) = get(&base, "/runs/%FF").await;
    assert_eq!(s, 400);
    let too_many = vec![f.best.clone(); 101].join(",");
    let (s, body) = get(&base, &format!("/chart?runs={too_many}")).await;
    assert_eq!(s, 400);
    assert!(body.contains("at most 100"));
}

#[tokio::test]
async fn only_allowed_host_names_are_answered() {
    let f = fixture().await;
    let hosts = ["localhost", "127.0.0.1"].map(String::from);
    let base = serve(ui(&f).with_allowed_hosts(hosts).router()).await;
    let (s, _) = get(&base, "/models").await;
    assert_eq!(s, 200, "127.0.0.1 is allowed");
    let r = client()
        .get(format!("{base}/models"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421, "a rebound name is refused");
}

#[tokio::test]
async fn the_login_cookie_works_beside_another_auth_scheme() {
    let f = fixture().await;
    let base = serve(
        ui(&f)
            .with_token(SecretString::from("s3cret".to_string()))
            .router(),
    )
    .await;
    let login = client()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=s3cret&next=%2F%09%2Fevil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.headers()["location"],
        "/",
        "a tab cannot smuggle //host past the check"
    );
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A proxy's Basic auth does not hide the session.
    let r = client()
        .get(format!("{base}/models"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
