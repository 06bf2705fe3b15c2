//! Materialization and online lookups on the embedded (redb) and memory online stores: the
//! latest row per key in the window (ties by created time), statuses, a run killed mid-way that
//! resumes to the same state, incremental runs, and online values equal to a point-in-time
//! retrieval at the same instant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow::datatypes::Float64Type;
use async_trait::async_trait;
use bytes::Bytes;
use common::Batched;
use mlops_core::online::{OnlineRow, OnlineStore, OnlineValue, WriteSummary};
use mlops_core::{Error, Result};
use mlops_features::online::now_ns;
use mlops_features::{
    EmbeddedOnlineStore, FeatureRepo, FeatureSelection, FeatureStatus, FeatureStore, FeatureValue,
    HistoricalOptions, MaterializeOptions, MemoryOnlineStore, OnlineFeatures, ParquetFiles,
    SourceReader,
};
use mlops_storage::MemoryStore;
use mlops_testkit::rng::SplitMix64;

const HOUR: i64 = 3_600_000_000_000;

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    std::fs::rename(tmp, path).unwrap();
}

struct Source {
    id: Vec<i64>,
    event: Vec<i64>,
    created: Vec<i64>,
    spend: Vec<Option<f64>>,
    tier: Vec<String>,
}

impl Source {
    fn batch(&self) -> RecordBatch {
        let ts = |v: &Vec<i64>| {
            Arc::new(TimestampNanosecondArray::from(v.clone()).with_timezone("UTC")) as ArrayRef
        };
        RecordBatch::try_from_iter([
            (
                "customer_id",
                Arc::new(Int64Array::from(self.id.clone())) as ArrayRef,
            ),
            ("event_timestamp", ts(&self.event)),
            ("created", ts(&self.created)),
            (
                "spend",
                Arc::new(Float64Array::from(self.spend.clone())) as ArrayRef,
            ),
            (
                "tier",
                Arc::new(StringArray::from(self.tier.clone())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    /// The expected online row per key: latest (event, created, position) in [start, end].
    fn latest(&self, start: i64, end: i64) -> HashMap<i64, usize> {
        let mut best: HashMap<i64, usize> = HashMap::new();
        for i in 0..self.id.len() {
            if self.event[i] < start || self.event[i] > end {
                continue;
            }
            let k = (self.event[i], self.created[i], i);
            match best.get(&self.id[i]) {
                Some(&j) if (self.event[j], self.created[j], j) > k => {}
                _ => {
                    best.insert(self.id[i], i);
                }
            }
        }
        best
    }
}

/// 40 customers, rows over the last 10 days, ties on event time with later corrections, some
/// null spends.
fn source(rng: &mut SplitMix64, now: i64) -> Source {
    let mut s = Source {
        id: vec![],
        event: vec![],
        created: vec![],
        spend: vec![],
        tier: vec![],
    };
    for c in 0..40 {
        for _ in 0..(1 + rng.next_u64() % 6) {
            let e = now - 240 * HOUR + (rng.next_u64() % 240) as i64 * HOUR;
            for correction in 0..(1 + rng.next_u64() % 2) {
                s.id.push(c);
                s.event.push(e);
                s.created.push(e + correction as i64 * HOUR);
                s.spend.push(
                    (!rng.next_u64().is_multiple_of(7)).then(|| (rng.unit() * 100.0).round()),
                );
                s.tier
                    .push(["gold", "silver", "bronze"][(rng.next_u64() % 3) as usize].into());
            }
        }
    }
    s
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
    ttl: 120h
    source: stats
    schema:
      - {name: spend, dtype: Float64}
      - {name: tier, dtype: String}
  - name: customer_all
    entities: [customer]
    source: stats
feature_services:
  - name: scoring
    features: ["customer_stats:spend", "customer_stats:tier"]
"#;

/// Fails every write after the first `ok` ones: a process killed between chunks.
#[derive(Debug)]
struct Dying {
    inner: Arc<dyn OnlineStore>,
    ok: usize,
    writes: AtomicUsize,
}

#[async_trait]
impl OnlineStore for Dying {
    async fn write(
        &self,
        table: &str,
        rows: &[OnlineRow],
        marks: &[(String, Bytes)],
    ) -> Result<WriteSummary> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(Error::unavailable("killed"));
        }
        self.inner.write(table, rows, marks).await
    }
    async fn read(&self, table: &str, keys: &[Bytes]) -> Result<Vec<Option<OnlineValue>>> {
        self.inner.read(table, keys).await
    }
    async fn mark(&self, name: &str) -> Result<Option<Bytes>> {
        self.inner.mark(name).await
    }
    async fn drop_table(&self, table: &str) -> Result<()> {
        self.inner.drop_table(table).await
    }
}

/// A random source (from `seed`) written into `dir`, and a feature store over it, read in
/// batches of `batch_rows` rows when given, with [`REPO`] applied; and the time it was made at.
async fn shop(dir: &Path, seed: u64, batch_rows: Option<usize>) -> (FeatureStore, Source, i64) {
    let now = now_ns();
    let src = source(&mut SplitMix64::new(seed), now);
    write_parquet(&dir.join("stats.parquet"), &src.batch());
    let files = ParquetFiles::new(dir);
    let reader: Arc<dyn SourceReader> = match batch_rows {
        Some(n) => Arc::new(Batched(files, n)),
        None => Arc::new(files),
    };
    let fs = FeatureStore::new(Arc::new(MemoryStore::new()), reader);
    fs.registry()
        .apply(&FeatureRepo::from_yaml(REPO).unwrap())
        .await
        .unwrap();
    (fs, src, now)
}

fn entities(ids: &[i64]) -> Vec<(String, Vec<FeatureValue>)> {
    vec![(
        "customer_id".into(),
        ids.iter().map(|&i| FeatureValue::Int64(i)).collect(),
    )]
}

async fn check_against_expectation(
    online: &OnlineFeatures,
    src: &Source,
    start: i64,
    end: i64,
    now: i64,
) {
    let ids: Vec<i64> = (0..45).collect();
    let r = online
        .get_online_features(
            &FeatureSelection::service("scoring"),
            &entities(&ids),
            false,
        )
        .await
        .unwrap();
    assert_eq!(r.feature_names, ["customer_id", "spend", "tier"]);
    let expected = src.latest(start, end);
    let (spend, tier) = (r.get("spend").unwrap(), r.get("tier").unwrap());
    let kinds: std::collections::HashSet<FeatureStatus> = spend.statuses.iter().copied().collect();
    assert_eq!(kinds.len(), 4, "the data exercises every status: {kinds:?}");
    for (j, id) in ids.iter().enumerate() {
        match expected.get(id) {
            None => {
                assert_eq!(spend.statuses[j], FeatureStatus::NotFound, "customer {id}");
                assert_eq!(spend.values[j], FeatureValue::Null);
                assert_eq!(spend.event_timestamps_ns[j], 0);
            }
            Some(&i) => {
                assert_eq!(spend.event_timestamps_ns[j], src.event[i], "customer {id}");
                if now - src.event[i] > 120 * HOUR {
                    assert_eq!(
                        spend.statuses[j],
                        FeatureStatus::OutsideMaxAge,
                        "customer {id}"
                    );
                    assert_eq!(spend.values[j], FeatureValue::Null);
                } else {
                    match src.spend[i] {
                        Some(v) => {
                            assert_eq!(spend.values[j], FeatureValue::Float64(v), "customer {id}");
                            assert_eq!(spend.statuses[j], FeatureStatus::Present);
                        }
                        None => {
                            assert_eq!(spend.statuses[j], FeatureStatus::NullValue, "customer {id}")
                        }
                    }
                    assert_eq!(
                        tier.values[j],
                        FeatureValue::String(src.tier[i].clone()),
                        "customer {id}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialize_then_look_up_with_feasts_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, src, now) = shop(dir.path(), 7, None).await;

    for online in [
        Arc::new(EmbeddedOnlineStore::open(dir.path().join("online.redb")).unwrap())
            as Arc<dyn OnlineStore>,
        Arc::new(MemoryOnlineStore::new()),
    ] {
        // A window that leaves out the first and last days.
        let (start, end) = (now - 216 * HOUR, now - 24 * HOUR);
        let report = fs
            .materialize(
                "shop",
                online.as_ref(),
                start,
                end,
                &MaterializeOptions::default().with_chunk_rows(7),
            )
            .await
            .unwrap();
        let stats = &report.views[0];
        assert_eq!(report.views.len(), 2, "both online views");
        assert!(stats.chunks > 3, "{stats:?}");
        assert_eq!(
            stats.rows_in_window,
            (0..src.id.len())
                .filter(|&i| src.event[i] >= start && src.event[i] <= end)
                .count()
        );
        let client = OnlineFeatures::open(fs.clone(), online.clone(), "shop")
            .await
            .unwrap();
        check_against_expectation(&client, &src, start, end, now).await;

        // Inferred features, full names, a null key, a missing key column.
        let r = client
            .get_online_features(
                &FeatureSelection::features(["customer_all:tier", "customer_stats:tier"]).unwrap(),
                &[(
                    "customer_id".into(),
                    vec![FeatureValue::Int64(3), FeatureValue::Null],
                )],
                true,
            )
            .await
            .unwrap();
        assert_eq!(
            r.feature_names,
            ["customer_id", "customer_all__tier", "customer_stats__tier"]
        );
        assert_eq!(r.results[1].statuses[1], FeatureStatus::NotFound);
        let e = client
            .get_online_features(
                &FeatureSelection::service("scoring"),
                &[("id".into(), vec![FeatureValue::Int64(1)])],
                false,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no join key customer_id"), "{e}");
        let e = client
            .get_online_features(
                &FeatureSelection::features(["customer_stats:nope"]).unwrap(),
                &entities(&[1]),
                false,
            )
            .await
            .unwrap_err();
        assert!(
            e.is_invalid_argument() && e.to_string().contains("nope"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_to_the_same_state_and_incremental_runs_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, mut src, now) = shop(dir.path(), 11, None).await;
    let store = Arc::new(EmbeddedOnlineStore::open(dir.path().join("online.redb")).unwrap());
    let options = MaterializeOptions::default()
        .with_views(["customer_stats"])
        .with_chunk_rows(5);
    let (start, end) = (now - 300 * HOUR, now - 48 * HOUR);

    let dying = Dying {
        inner: store.clone(),
        ok: 4,
        writes: AtomicUsize::new(0),
    };
    let e = fs
        .materialize("shop", &dying, start, end, &options)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("killed"), "{e}");
    let report = fs
        .materialize("shop", store.as_ref(), start, end, &options)
        .await
        .unwrap();
    assert!(
        report.views[0].resumed_after.is_some_and(|n| n > 0),
        "{report:?}"
    );
    let client = OnlineFeatures::open(fs.clone(), store.clone(), "shop")
        .await
        .unwrap();
    check_against_expectation(&client, &src, start, end, now).await;

    // The same state as one uninterrupted run into a fresh store.
    let fresh = Arc::new(MemoryOnlineStore::new());
    fs.materialize("shop", fresh.as_ref(), start, end, &options)
        .await
        .unwrap();
    let fresh_client = OnlineFeatures::open(fs.clone(), fresh.clone(), "shop")
        .await
        .unwrap();
    let ids: Vec<i64> = (0..45).collect();
    let a = client
        .get_online_features(
            &FeatureSelection::service("scoring"),
            &entities(&ids),
            false,
        )
        .await
        .unwrap();
    let b = fresh_client
        .get_online_features(
            &FeatureSelection::service("scoring"),
            &entities(&ids),
            false,
        )
        .await
        .unwrap();
    assert_eq!(a, b);

    // New rows arrive; an incremental run starts where the last one ended.
    src.id.push(0);
    src.event.push(now - HOUR);
    src.created.push(now - HOUR);
    src.spend.push(Some(4242.0));
    src.tier.push("platinum".into());
    write_parquet(&dir.path().join("stats.parquet"), &src.batch());
    let report = fs
        .materialize_incremental("shop", store.as_ref(), now, &options)
        .await
        .unwrap();
    assert_eq!(report.views[0].start_ns, end, "starts at the previous end");
    client.refresh().await.unwrap();
    let r = client
        .get_online_features(
            &FeatureSelection::service("scoring"),
            &entities(&[0]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        r.get("spend").unwrap().values[0],
        FeatureValue::Float64(4242.0)
    );

    // Online values equal a point-in-time retrieval at the same instant (rows inside the ttl).
    let all = Arc::new(MemoryOnlineStore::new());
    fs.materialize("shop", all.as_ref(), i64::MIN / 2, now, &options)
        .await
        .unwrap();
    let online = OnlineFeatures::open(fs.clone(), all.clone(), "shop")
        .await
        .unwrap();
    let r = online
        .get_online_features(
            &FeatureSelection::service("scoring"),
            &entities(&ids),
            false,
        )
        .await
        .unwrap();
    let entity_rows = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampNanosecondArray::from(vec![now; ids.len()]).with_timezone("UTC"))
                as ArrayRef,
        ),
    ])
    .unwrap();
    let hist = fs
        .get_historical_features(
            "shop",
            &[entity_rows],
            &FeatureSelection::service("scoring"),
            HistoricalOptions::default(),
        )
        .await
        .unwrap();
    let h = hist
        .rows
        .column_by_name("spend")
        .unwrap()
        .as_primitive::<Float64Type>();
    let spend = r.get("spend").unwrap();
    for (j, id) in ids.iter().enumerate() {
        let offline = (!h.is_null(j)).then(|| h.value(j));
        let on = match &spend.values[j] {
            FeatureValue::Float64(v) => Some(*v),
            _ => None,
        };
        assert_eq!(on, offline, "customer {id}: {:?}", spend.statuses[j]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_streamed_in_small_batches_materializes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, src, now) = shop(dir.path(), 11, Some(5)).await;
    let online: Arc<dyn OnlineStore> = Arc::new(MemoryOnlineStore::new());
    let (start, end) = (now - 216 * HOUR, now - 24 * HOUR);
    fs.materialize(
        "shop",
        online.as_ref(),
        start,
        end,
        &MaterializeOptions::default().with_chunk_rows(7),
    )
    .await
    .unwrap();
    let client = OnlineFeatures::open(fs, online, "shop").await.unwrap();
    check_against_expectation(&client, &src, start, end, now).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_refresh_picks_up_a_materialization_and_needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, _, now) = shop(dir.path(), 5, None).await;
    let store = Arc::new(MemoryOnlineStore::new());
    // Opened before anything is materialized: the view is not online yet.
    let client = OnlineFeatures::open(fs.clone(), store.clone(), "shop")
        .await
        .unwrap();
    let scoring = FeatureSelection::service("scoring");
    assert!(
        client
            .get_online_features(&scoring, &entities(&[0]), false)
            .await
            .is_err()
    );

    let task = client
        .spawn_refresh(std::time::Duration::from_millis(10))
        .unwrap();
    fs.materialize(
        "shop",
        store.as_ref(),
        now - 300 * HOUR,
        now,
        &MaterializeOptions::default(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if client
            .get_online_features(&scoring, &entities(&[0]), false)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refresher never picked up the materialized view"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(task);

    // Outside a runtime there is nothing to spawn on: a typed error, not a panic.
    let outside = client.clone();
    let e = std::thread::spawn(move || {
        outside
            .spawn_refresh(std::time::Duration::from_secs(1))
            .unwrap_err()
    })
    .join()
    .unwrap();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
}
