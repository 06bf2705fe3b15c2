//! Historical retrieval checked against Feast itself: random sources with ties on event time
//! broken by created time, late corrections, ttl edges (entity times exactly `ttl` after a
//! row), entities with no rows, entity rows before any row, duplicate entity rows, three views
//! over two entities (one keyed by a string) — and Feast's `get_historical_features` (the
//! DuckDB offline store; see ../shared/specs/feast.md for why not the dask file store) on the
//! same Parquet files must give the same value for every entity row and feature, with
//! `full_feature_names` on and off.
//!
//! Needs a Python with `feast[duckdb]`, named by `MLOPS_TEST_PYTHON` (`./scripts/test` sets it
//! up).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use mlops_features::{
    FeatureRepo, FeatureSelection, FeatureStore, HistoricalOptions, ParquetFiles,
};
use mlops_storage::MemoryStore;
use mlops_testkit::rng::SplitMix64;
use serde_json::{Value, json};

const HOUR_US: i64 = 3_600_000_000;
/// 2026-01-01T00:00:00Z.
const BASE_US: i64 = 1_767_225_600_000_000;

fn ts(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn pick(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n
}

/// Customer stats: hourly event times over 10 days, created 0-59 minutes later, and about one
/// row in five corrected later at the same event time with another value.
fn customer_stats(rng: &mut SplitMix64) -> RecordBatch {
    let (mut id, mut ev, mut cr, mut spend, mut tenure) = (vec![], vec![], vec![], vec![], vec![]);
    for customer in 0..30 {
        for _ in 0..(3 + pick(rng, 8)) {
            let e = BASE_US + (pick(rng, 240) as i64) * HOUR_US;
            let c = e + (pick(rng, 60) as i64) * 60_000_000;
            id.push(customer);
            ev.push(e);
            cr.push(c);
            spend.push((rng.unit() * 1000.0).round() / 10.0);
            tenure.push(pick(rng, 100) as i64);
            if pick(rng, 5) == 0 {
                id.push(customer);
                ev.push(e);
                cr.push(c + HOUR_US);
                spend.push((rng.unit() * 1000.0).round() / 10.0);
                tenure.push(pick(rng, 100) as i64);
            }
        }
    }
    RecordBatch::try_from_iter([
        ("customer_id", Arc::new(Int64Array::from(id)) as ArrayRef),
        ("event_timestamp", ts(ev)),
        ("created", ts(cr)),
        ("spend", Arc::new(Float64Array::from(spend)) as ArrayRef),
        ("tenure", Arc::new(Int64Array::from(tenure)) as ArrayRef),
    ])
    .unwrap()
}

/// Orders: no created column and no ttl; distinct event times per customer.
fn customer_orders(rng: &mut SplitMix64) -> RecordBatch {
    let (mut id, mut ev, mut n, mut channel) = (vec![], vec![], vec![], vec![]);
    for customer in 0..25 {
        let mut hours: Vec<i64> = (0..(1 + pick(rng, 6)))
            .map(|_| pick(rng, 240) as i64)
            .collect();
        hours.sort_unstable();
        hours.dedup();
        for h in hours {
            id.push(customer);
            ev.push(BASE_US + h * HOUR_US + 1_000_000);
            n.push(pick(rng, 20) as i64);
            channel.push(["web", "store", "app"][pick(rng, 3) as usize].to_owned());
        }
    }
    RecordBatch::try_from_iter([
        ("customer_id", Arc::new(Int64Array::from(id)) as ArrayRef),
        ("order_ts", ts(ev)),
        ("n_orders", Arc::new(Int64Array::from(n)) as ArrayRef),
        ("channel", Arc::new(StringArray::from(channel)) as ArrayRef),
    ])
    .unwrap()
}

/// Region risk, keyed by a string; ties broken by created time.
fn region_risk(rng: &mut SplitMix64) -> RecordBatch {
    let (mut id, mut ev, mut cr, mut risk) = (vec![], vec![], vec![], vec![]);
    for region in ["north", "south", "east", "west"] {
        for _ in 0..20 {
            let e = BASE_US + (pick(rng, 120) as i64) * 2 * HOUR_US;
            id.push(region.to_owned());
            ev.push(e);
            cr.push(e + (pick(rng, 7200) as i64) * 1_000_000);
            risk.push((rng.unit() * 100.0).round() / 100.0);
        }
    }
    RecordBatch::try_from_iter([
        ("region_id", Arc::new(StringArray::from(id)) as ArrayRef),
        ("event_timestamp", ts(ev)),
        ("created", ts(cr)),
        ("risk", Arc::new(Float64Array::from(risk)) as ArrayRef),
    ])
    .unwrap()
}

/// Entity rows: customers 0-34 (30-34 have no rows), five regions (one unknown), times on the
/// hour (so equal to event times, and exactly a ttl after some), some before any row, and
/// duplicates.
fn entity_rows(rng: &mut SplitMix64, stats: &RecordBatch) -> RecordBatch {
    let stats_ev = stats
        .column(1)
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let stats_id = stats.column(0).as_primitive::<Int64Type>();
    let (mut id, mut region, mut t) = (vec![], vec![], vec![]);
    for i in 0..240 {
        let (c, when) = match i % 4 {
            // Exactly 24 h (the ttl) after a stats row, or one second more.
            0 | 1 => {
                let r = pick(rng, stats.num_rows() as u64) as usize;
                let extra = if i % 4 == 0 { 0 } else { 1_000_000 };
                (stats_id.value(r), stats_ev.value(r) + 24 * HOUR_US + extra)
            }
            2 => (
                pick(rng, 35) as i64,
                BASE_US + (pick(rng, 260) as i64 - 10) * HOUR_US,
            ),
            _ => (
                pick(rng, 35) as i64,
                BASE_US + (pick(rng, 250) as i64) * HOUR_US + 1_000_000,
            ),
        };
        id.push(c);
        region
            .push(["north", "south", "east", "west", "nowhere"][pick(rng, 5) as usize].to_owned());
        t.push(when);
    }
    // Duplicates of earlier rows.
    for i in 0..10 {
        id.push(id[i * 7]);
        region.push(region[i * 7].clone());
        t.push(t[i * 7]);
    }
    let n = id.len() as i64;
    RecordBatch::try_from_iter([
        ("customer_id", Arc::new(Int64Array::from(id)) as ArrayRef),
        ("region_id", Arc::new(StringArray::from(region)) as ArrayRef),
        ("event_timestamp", ts(t)),
        (
            "row_id",
            Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())) as ArrayRef,
        ),
    ])
    .unwrap()
}

const REPO: &str = r#"
project: feast_check
entities:
  - name: customer
    join_keys: [customer_id]
  - name: region
    join_keys: [region_id]
sources:
  - name: stats_source
    path: stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
  - name: orders_source
    path: orders.parquet
    timestamp_field: order_ts
  - name: regions_source
    path: regions.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
feature_views:
  - name: customer_stats
    entities: [customer]
    ttl: 24h
    source: stats_source
    schema:
      - {name: spend, dtype: Float64}
      - {name: tenure, dtype: Int64}
  - name: customer_orders
    entities: [customer]
    source: orders_source
    schema:
      - {name: n_orders, dtype: Int64}
      - {name: channel, dtype: String}
  - name: region_risk
    entities: [region]
    ttl: 12h
    source: regions_source
    schema:
      - {name: risk, dtype: Float64}
"#;

const FEATURES: [&str; 5] = [
    "customer_stats:spend",
    "customer_stats:tenure",
    "customer_orders:n_orders",
    "customer_orders:channel",
    "region_risk:risk",
];

/// Our values per row_id: feature name -> JSON value.
fn ours_as_json(
    batch: &RecordBatch,
    names: &[String],
) -> BTreeMap<String, BTreeMap<String, Value>> {
    let row_id = batch
        .column_by_name("row_id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let mut out = BTreeMap::new();
    for r in 0..batch.num_rows() {
        let mut values = BTreeMap::new();
        for n in names {
            let col = batch
                .column_by_name(n)
                .unwrap_or_else(|| panic!("no column {n}"));
            let v = if col.is_null(r) {
                Value::Null
            } else {
                match col.data_type() {
                    DataType::Float64 => json!(col.as_primitive::<Float64Type>().value(r)),
                    DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(r)),
                    DataType::Utf8 => json!(col.as_string::<i32>().value(r)),
                    other => panic!("unexpected type {other}"),
                }
            };
            values.insert(n.clone(), v);
        }
        out.insert(row_id.value(r).to_string(), values);
    }
    out
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historical_features_equal_feasts_value_for_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(0xFEA5);
    let stats = customer_stats(&mut rng);
    let orders = customer_orders(&mut rng);
    let regions = region_risk(&mut rng);
    let entities = entity_rows(&mut rng, &stats);
    write_parquet(&dir.path().join("stats.parquet"), &stats);
    write_parquet(&dir.path().join("orders.parquet"), &orders);
    write_parquet(&dir.path().join("regions.parquet"), &regions);
    let entity_path = dir.path().join("entities.parquet");
    write_parquet(&entity_path, &entities);

    // Ours.
    let repo = FeatureRepo::from_yaml(REPO).unwrap();
    let fs = FeatureStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ParquetFiles::new(dir.path())),
    );
    fs.registry().apply(&repo).await.unwrap();
    let selection = FeatureSelection::features(FEATURES).unwrap();
    let mut ours = BTreeMap::new();
    for full in [true, false] {
        let set = fs
            .get_historical_features(
                "feast_check",
                std::slice::from_ref(&entities),
                &selection,
                HistoricalOptions::default().with_full_feature_names(full),
            )
            .await
            .unwrap();
        assert_eq!(
            set.rows.num_rows(),
            entities.num_rows(),
            "a left join keeps every row"
        );
        assert_eq!(set.lineage.sources.len(), 3);
        let names: Vec<String> = FEATURES
            .iter()
            .map(|f| {
                let (v, n) = f.split_once(':').unwrap();
                if full {
                    format!("{v}__{n}")
                } else {
                    n.to_owned()
                }
            })
            .collect();
        ours.insert(
            if full { "full" } else { "short" },
            ours_as_json(&set.rows, &names),
        );
    }

    // Feast's.
    let views = json!([
        {"name": "customer_stats", "source": "stats_source", "path": dir.path().join("stats.parquet"),
         "timestamp_field": "event_timestamp", "created_timestamp_column": "created", "ttl_seconds": 86400,
         "entities": ["customer"], "keys": [{"name": "customer_id", "dtype": "Int64"}],
         "features": [{"name": "spend", "dtype": "Float64"}, {"name": "tenure", "dtype": "Int64"}]},
        {"name": "customer_orders", "source": "orders_source", "path": dir.path().join("orders.parquet"),
         "timestamp_field": "order_ts", "entities": ["customer"],
         "keys": [{"name": "customer_id", "dtype": "Int64"}],
         "features": [{"name": "n_orders", "dtype": "Int64"}, {"name": "channel", "dtype": "String"}]},
        {"name": "region_risk", "source": "regions_source", "path": dir.path().join("regions.parquet"),
         "timestamp_field": "event_timestamp", "created_timestamp_column": "created", "ttl_seconds": 43200,
         "entities": ["region"], "keys": [{"name": "region_id", "dtype": "String"}],
         "features": [{"name": "risk", "dtype": "Float64"}]},
    ]);
    let case = json!({
        "repo": dir.path().join("feast_repo"),
        "project": "feast_check",
        "entities": [{"name": "customer", "join_keys": ["customer_id"]},
                     {"name": "region", "join_keys": ["region_id"]}],
        "views": views,
        "entity_rows": entity_path,
        "features": FEATURES,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feast_historical.py");
    let feast = mlops_testkit::python::run_json(&script, &case, "feast[duckdb]");

    let mut compared = 0;
    let mut matched_values = 0;
    for which in ["full", "short"] {
        let theirs = feast[which].as_object().unwrap();
        let mine = &ours[which];
        assert_eq!(
            theirs.len(),
            mine.len(),
            "{which}: Feast returned {} rows",
            theirs.len()
        );
        for (row, values) in mine {
            let other = theirs
                .get(row)
                .unwrap_or_else(|| panic!("Feast has no row {row}"));
            for (name, v) in values {
                let w = &other[name];
                assert!(same(v, w), "{which}: row {row} {name}: ours {v}, Feast {w}");
                compared += 1;
                matched_values += usize::from(!v.is_null());
            }
        }
    }
    // The data must exercise both sides: many matches and many nulls.
    assert!(compared == 2 * 250 * 5, "{compared}");
    assert!(
        matched_values > compared / 3,
        "{matched_values} of {compared} non-null"
    );
    assert!(
        matched_values < compared * 9 / 10,
        "{matched_values} of {compared} non-null"
    );
}
