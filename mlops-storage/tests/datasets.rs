//! Versioned Parquet datasets: round trips, projection, statistics, schema changes, import and
//! export, concurrent writers, and garbage collection that keeps what versions retain.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::{TryStreamExt, stream};
use mlops_core::store::RefVersion;
use mlops_core::{DatasetName, Version};
use mlops_storage::dataset::BatchStream;
use mlops_storage::{
    Datasets, GcOptions, ObjectStoreStore, ReadOptions, SchemaPolicy, WriteOptions, verify,
};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("plan", DataType::Utf8, true),
        Field::new("spend", DataType::Float64, true),
    ]))
}

fn batch(from: i64, rows: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..from + rows).collect();
    let plans: Vec<Option<&str>> = ids
        .iter()
        .map(|i| match i % 4 {
            0 => Some("basic"),
            1 => Some("pro"),
            2 => None,
            _ => Some("team"),
        })
        .collect();
    let spend: Vec<f64> = ids.iter().map(|i| *i as f64 * 1.5).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(plans)),
            Arc::new(Float64Array::from(spend)),
        ],
    )
    .unwrap()
}

fn batches(
    n: usize,
    rows: i64,
) -> impl futures::Stream<Item = mlops_core::Result<RecordBatch>> + Send {
    stream::iter((0..n).map(move |i| Ok(batch(i as i64 * rows, rows))))
}

fn local() -> (tempfile::TempDir, Datasets) {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    (dir, Datasets::new(Arc::new(store)))
}

async fn collect(s: BatchStream) -> Vec<RecordBatch> {
    s.batches.try_collect().await.unwrap()
}

fn name(s: &str) -> DatasetName {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_version_reads_back_exactly_across_parts() {
    let (_dir, ds) = local();
    let opts = WriteOptions::default()
        .with_part_bytes(16 * 1024)
        .with_row_group_rows(1000)
        .with_metadata("license", "CC-BY-4.0")
        .with_metadata("pii", "none");
    let v = ds
        .write(&name("churn"), schema(), batches(10, 2000), opts)
        .await
        .unwrap();
    assert_eq!(v.version, Version::FIRST);
    let m = &v.manifest;
    assert_eq!(m.rows, 20_000);
    assert!(
        m.parts.len() > 1,
        "small part size gives several parts: {}",
        m.parts.len()
    );
    assert_eq!(m.parts.iter().map(|p| p.rows).sum::<u64>(), 20_000);
    assert_eq!(
        m.metadata.get("license").map(String::as_str),
        Some("CC-BY-4.0")
    );
    let id = &m.columns[0];
    assert_eq!(
        (id.min.clone(), id.max.clone()),
        (Some(0.into()), Some(19_999.into()))
    );
    assert_eq!(id.null_count, 0);
    let plan = &m.columns[1];
    assert_eq!(plan.null_count, 5_000);
    assert_eq!(plan.distinct_estimate, Some(3));
    assert_eq!(plan.min, Some("basic".into()));

    let back = collect(
        ds.read(&name("churn"), RefVersion::Latest, ReadOptions::default())
            .await
            .unwrap(),
    )
    .await;
    let rows: usize = back.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 20_000);
    let all = arrow::compute::concat_batches(&schema(), &back).unwrap();
    let want: Vec<RecordBatch> = batches(10, 2000).try_collect().await.unwrap();
    assert_eq!(
        all,
        arrow::compute::concat_batches(&schema(), &want).unwrap()
    );
}

#[tokio::test]
async fn projection_keeps_the_requested_order_and_names_unknown_columns() {
    let (_dir, ds) = local();
    ds.write(
        &name("p"),
        schema(),
        batches(2, 10),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let s = ds
        .read(
            &name("p"),
            RefVersion::Latest,
            ReadOptions::default().with_columns(["spend", "id"]),
        )
        .await
        .unwrap();
    let names: Vec<String> = s.schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, vec!["spend", "id"]);
    let b = collect(s).await;
    assert_eq!(b[0].num_columns(), 2);
    assert_eq!(b[0].schema().field(0).name(), "spend");
    let err = ds
        .read(
            &name("p"),
            RefVersion::Latest,
            ReadOptions::default().with_columns(["nope"]),
        )
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_argument() && err.to_string().contains("\"nope\""),
        "{err}"
    );
    let missing = ds
        .read(&name("absent"), RefVersion::Latest, ReadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            mlops_core::Error::NotFound {
                kind: "dataset",
                ..
            }
        ),
        "{missing}"
    );
}

#[tokio::test]
async fn schema_changes_are_reported_and_can_be_refused() {
    let (_dir, ds) = local();
    let n = name("evolving");
    ds.write(&n, schema(), batches(1, 5), WriteOptions::default())
        .await
        .unwrap();
    let wider = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("spend", DataType::Float32, true),
        Field::new("region", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        wider.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            Arc::new(arrow::array::Float32Array::from(vec![2.0])),
            Arc::new(StringArray::from(vec!["eu"])),
        ],
    )
    .unwrap();
    let refused = ds
        .write(
            &n,
            wider.clone(),
            stream::iter([Ok(b.clone())]),
            WriteOptions::default().with_schema_policy(SchemaPolicy::MustMatch),
        )
        .await
        .unwrap_err();
    assert!(refused.is_invalid_argument(), "{refused}");
    let msg = refused.to_string();
    assert!(
        msg.contains("+ region: Utf8")
            && msg.contains("- plan: Utf8")
            && msg.contains("~ spend: Float64 -> Float32"),
        "{msg}"
    );
    assert_eq!(
        ds.log(&n).await.unwrap().len(),
        1,
        "a refused commit leaves no version"
    );

    let v2 = ds
        .write(&n, wider, stream::iter([Ok(b)]), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(v2.version.get(), 2);
    let diff = ds.diff(&n, Version::FIRST, v2.version).await.unwrap();
    assert_eq!(
        diff.lines(),
        vec![
            "+ region: Utf8",
            "- plan: Utf8",
            "~ spend: Float64 -> Float32"
        ]
    );
    let old = collect(
        ds.read(
            &n,
            RefVersion::Exact(Version::FIRST),
            ReadOptions::default(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        old[0].num_columns(),
        3,
        "old versions stay readable (time travel)"
    );
}

#[tokio::test]
async fn a_batch_with_the_wrong_schema_fails_the_write_and_leaves_no_version() {
    let (_dir, ds) = local();
    let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let bad =
        RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef]).unwrap();
    let err = ds
        .write(
            &name("bad"),
            schema(),
            stream::iter([Ok(batch(0, 3)), Ok(bad)]),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.is_invalid_argument(), "{err}");
    assert!(ds.log(&name("bad")).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn csv_and_parquet_import_and_parquet_export_round_trip() {
    let (dir, ds) = local();
    let csv = dir.path().join("customers.csv");
    std::fs::write(&csv, "id,plan,spend\n1,basic,10.5\n2,pro,\n3,,7\n").unwrap();
    let v = ds
        .import_file(&name("customers"), &csv, WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(v.manifest.rows, 3);
    assert_eq!(v.manifest.schema[0].data_type, "Int64");
    assert_eq!(v.manifest.schema[2].data_type, "Float64");
    assert!(v.manifest.metadata["source"].ends_with("customers.csv"));

    let out = dir.path().join("export/customers.parquet");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let rows = ds
        .export_parquet(&name("customers"), RefVersion::Latest, &out)
        .await
        .unwrap();
    assert_eq!(rows, 3);
    let again = ds
        .import_file(&name("customers-copy"), &out, WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(again.manifest.schema, v.manifest.schema);
    assert_eq!(again.manifest.columns, v.manifest.columns);

    let missing = ds
        .import_file(
            &name("x"),
            &dir.path().join("nope.csv"),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(missing, mlops_core::Error::NotFound { kind: "file", .. }),
        "{missing}"
    );
    let txt = dir.path().join("data.txt");
    std::fs::write(&txt, "x").unwrap();
    let bad = ds
        .import_file(&name("x"), &txt, WriteOptions::default())
        .await
        .unwrap_err();
    assert!(
        bad.is_invalid_argument() && bad.to_string().contains(".parquet or .csv"),
        "{bad}"
    );
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    let bad = ds
        .import_file(&name("ragged"), &ragged, WriteOptions::default())
        .await
        .unwrap_err();
    assert!(
        bad.is_invalid_argument() && bad.to_string().contains("ragged.csv"),
        "{bad}"
    );
    assert!(ds.log(&name("ragged")).await.unwrap_err().is_not_found());
}

/// The name limit is measured the way the store writes the name: percent-encoded, as one file
/// name on a local filesystem (255 bytes). A name at the limit round-trips; one byte more is
/// refused by the name itself, before any I/O.
#[tokio::test]
async fn names_are_limited_in_bytes_as_stored() {
    // (A lone "." is encoded as "%2E", but no name may be ".".)
    for b in (0u8..=127).filter(|b| *b != b'.') {
        let c = (b as char).to_string();
        assert_eq!(
            mlops_core::id::stored_len(&c),
            object_store::path::PathPart::from(c.as_str())
                .as_ref()
                .len(),
            "{c:?}"
        );
    }
    for s in ["ü", "数据", "🦀", "a b~c", "plain-name_1.2"] {
        assert_eq!(
            mlops_core::id::stored_len(s),
            object_store::path::PathPart::from(s).as_ref().len(),
            "{s:?}"
        );
    }
    let (_dir, ds) = local();
    let longest = format!("{}xyz", "ü".repeat(42));
    assert_eq!(mlops_core::id::stored_len(&longest), 255);
    ds.write(
        &name(&longest),
        schema(),
        batches(1, 3),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(ds.log(&name(&longest)).await.unwrap().len(), 1);
    let err = DatasetName::new(format!("{longest}z")).unwrap_err();
    assert!(
        err.is_invalid_argument() && err.to_string().contains("256 bytes"),
        "{err}"
    );
}

/// A CSV file that would import as something other than what it says is refused, naming why,
/// and writes nothing.
#[tokio::test]
async fn malformed_csv_and_metadata_are_refused_before_anything_is_written() {
    let (dir, ds) = local();
    let cases: [(&str, &str, &str); 4] = [
        ("empty", "", "is empty"),
        ("dup", "a,b,a\n1,2,3\n", "column \"a\" appears twice"),
        ("unnamed", "a,,c\n1,2,3\n", "empty name"),
        (
            "quote",
            "id,note\n1,\"fine\"\n2,\"runs on\n3,x\n",
            "quote opened on line 3 is never closed",
        ),
    ];
    for (stem, text, says) in cases {
        let file = dir.path().join(format!("{stem}.csv"));
        std::fs::write(&file, text).unwrap();
        let err = ds
            .import_file(&name(stem), &file, WriteOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.is_invalid_argument() && err.to_string().contains(says),
            "{stem}: {err}"
        );
        assert!(
            ds.log(&name(stem)).await.unwrap_err().is_not_found(),
            "{stem}"
        );
    }
    // Doubled quotes inside a quoted field are data, not an open quote; so is a quote inside an
    // unquoted field, as the CSV reader reads it.
    let ok = dir.path().join("ok.csv");
    std::fs::write(&ok, "id,note\n1,\"say \"\"hi\"\"\"\n2,12\" pipe\n").unwrap();
    let v = ds
        .import_file(&name("ok"), &ok, WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(v.manifest.rows, 2);

    // The provenance is recorded by the import, never taken from the caller.
    let mut forged = WriteOptions::default();
    forged
        .metadata
        .insert("source".to_owned(), "s3://trusted/elsewhere.csv".to_owned());
    let err = ds
        .import_file(&name("forged"), &ok, forged)
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_argument() && err.to_string().contains("source"),
        "{err}"
    );
    assert!(ds.log(&name("forged")).await.unwrap_err().is_not_found());

    // Keys are names, for writes as for imports.
    let mut odd = WriteOptions::default();
    odd.metadata.insert("bad\nkey".to_owned(), "v".to_owned());
    let err = ds
        .write(&name("odd"), schema(), batches(1, 3), odd)
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_argument() && err.to_string().contains("keys"),
        "{err}"
    );

    // A schema with a repeated column is refused on write too.
    let twice = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("x", DataType::Int64, false),
    ]));
    let err = ds
        .write(
            &name("twice"),
            twice,
            stream::empty(),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    assert!(ds.log(&name("twice")).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn an_empty_dataset_keeps_its_schema() {
    let (_dir, ds) = local();
    let v = ds
        .write(
            &name("empty"),
            schema(),
            stream::empty(),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(v.manifest.rows, 0);
    let s = ds
        .read(&name("empty"), RefVersion::Latest, ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(s.schema.fields().len(), 3);
    assert_eq!(
        collect(s)
            .await
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        0
    );
    // Read whole, it is one empty batch that still carries the columns.
    let (_, all) = ds
        .read_all(&name("empty"), RefVersion::Latest)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].num_rows(), 0);
    assert_eq!(all[0].schema(), schema());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_each_get_their_own_version() {
    let (_dir, ds) = local();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let ds = ds.clone();
            tokio::spawn(async move {
                ds.write(
                    &name("shared"),
                    schema(),
                    batches(1, 10 + i),
                    WriteOptions::default(),
                )
                .await
                .unwrap()
                .version
                .get()
            })
        })
        .collect();
    let mut versions = Vec::new();
    for w in writers {
        versions.push(w.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    let log = ds.log(&name("shared")).await.unwrap();
    let mut rows: Vec<u64> = log.iter().map(|v| v.manifest.rows).collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        (10..18).collect::<Vec<_>>(),
        "every writer's data is a version"
    );
}

#[tokio::test]
async fn gc_keeps_every_part_a_version_retains() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap());
    let ds = Datasets::new(store.clone());
    let opts = WriteOptions::default().with_part_bytes(8 * 1024);
    ds.write(&name("kept"), schema(), batches(4, 1000), opts.clone())
        .await
        .unwrap();
    ds.write(&name("kept"), schema(), batches(2, 1000), opts)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = store
        .gc(GcOptions::default().with_grace(Duration::ZERO))
        .await
        .unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    for v in ds.log(&name("kept")).await.unwrap() {
        let read = collect(
            ds.read(
                &name("kept"),
                RefVersion::Exact(v.version),
                ReadOptions::default(),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(
            read.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
            v.manifest.rows
        );
    }
    assert!(verify(store.clone()).await.unwrap().is_ok());
    let listed = ds.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version.get(), 2);
}
