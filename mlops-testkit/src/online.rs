//! The [`OnlineStore`] conformance suite: one function per clause of its contract.

use bytes::Bytes;
use mlops_core::online::{OnlineRow, OnlineStore};

use crate::{in_parallel, unique};

fn row(key: &str, event: i64, created: i64, values: &str) -> OnlineRow {
    OnlineRow::new(
        Bytes::copy_from_slice(key.as_bytes()),
        event,
        created,
        Bytes::copy_from_slice(values.as_bytes()),
    )
}

fn key(k: &str) -> Bytes {
    Bytes::copy_from_slice(k.as_bytes())
}

async fn values(store: &dyn OnlineStore, table: &str, keys: &[&str]) -> Vec<Option<String>> {
    let keys: Vec<Bytes> = keys.iter().map(|k| key(k)).collect();
    store
        .read(table, &keys)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.map(|v| String::from_utf8(v.values.to_vec()).unwrap()))
        .collect()
}

/// Runs every clause (under a multi-threaded tokio runtime).
pub async fn run_all(store: &dyn OnlineStore) {
    rows_round_trip(store).await;
    absent_tables_and_keys_read_as_none(store).await;
    older_rows_do_not_replace_newer(store).await;
    within_a_write_the_newest_row_of_a_key_wins(store).await;
    tables_are_separate_and_drop(store).await;
    marks_are_written_with_rows(store).await;
    concurrent_writers_keep_the_newest(store).await;
    many_keys_in_one_write(store).await;
    reads_of_several_tables_answer_as_reads(store).await;
    bad_names_are_invalid(store).await;
}

/// `read_tables` answers what a `read` per table does, in order (an absent table included).
pub async fn reads_of_several_tables_answer_as_reads(store: &dyn OnlineStore) {
    let (a, b, absent) = (unique("many-a"), unique("many-b"), unique("many-absent"));
    store
        .write(&a, &[row("k1", 1, 1, "a1"), row("k2", 2, 2, "a2")], &[])
        .await
        .unwrap();
    store
        .write(&b, &[row("k2", 3, 3, "b2")], &[])
        .await
        .unwrap();
    let (ka, kb, kx) = (
        vec![key("k2"), key("nope"), key("k1")],
        vec![key("k1"), key("k2")],
        vec![key("k1")],
    );
    let reads: Vec<(&str, &[Bytes])> = vec![(&a, &ka), (&b, &kb), (&absent, &kx), (&a, &[])];
    let got = store.read_tables(&reads).await.unwrap();
    assert_eq!(got.len(), 4);
    for ((table, keys), answer) in reads.iter().zip(&got) {
        assert_eq!(
            *answer,
            store.read(table, keys).await.unwrap(),
            "read_tables differs from read for {table}"
        );
    }
    assert_eq!(
        got[0]
            .iter()
            .map(|v| v.as_ref().map(|v| v.values.clone()))
            .collect::<Vec<_>>(),
        [
            Some(Bytes::from_static(b"a2")),
            None,
            Some(Bytes::from_static(b"a1"))
        ]
    );
    assert_eq!(got[2], [None]);
}

/// Rows read back with their timestamps, keys in the order asked, binary keys included.
pub async fn rows_round_trip(store: &dyn OnlineStore) {
    let table = unique("round-trip");
    let binary = OnlineRow::new(
        Bytes::from_static(&[0, 255, 1, 0]),
        7,
        i64::MIN,
        Bytes::from_static(b"bin"),
    );
    let summary = store
        .write(
            &table,
            &[row("a", 10, 11, "A"), row("b", 20, 21, "B"), binary],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(summary.written, 3);
    assert_eq!(summary.skipped_older, 0);
    let read = store
        .read(
            &table,
            &[
                key("b"),
                key("missing"),
                key("a"),
                Bytes::from_static(&[0, 255, 1, 0]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(read.len(), 4);
    let b = read[0].as_ref().unwrap();
    assert_eq!(
        (b.event_ts_ns, b.created_ts_ns, &b.values[..]),
        (20, 21, &b"B"[..])
    );
    assert!(read[1].is_none());
    assert_eq!(read[2].as_ref().unwrap().values, Bytes::from_static(b"A"));
    let bin = read[3].as_ref().unwrap();
    assert_eq!((bin.event_ts_ns, bin.created_ts_ns), (7, i64::MIN));
    assert!(store.read(&table, &[]).await.unwrap().is_empty());
}

/// A table never written, and keys never written, read as `None`.
pub async fn absent_tables_and_keys_read_as_none(store: &dyn OnlineStore) {
    let table = unique("absent");
    assert_eq!(values(store, &table, &["x", "y"]).await, [None, None]);
    assert_eq!(store.mark(&unique("no-mark")).await.unwrap(), None);
}

/// A row older than the stored one (by event time, then created time) is skipped; an equal or
/// newer one replaces it.
pub async fn older_rows_do_not_replace_newer(store: &dyn OnlineStore) {
    let table = unique("newer-wins");
    store
        .write(&table, &[row("k", 100, 5, "v100")], &[])
        .await
        .unwrap();
    let s = store
        .write(&table, &[row("k", 99, 50, "v99")], &[])
        .await
        .unwrap();
    assert_eq!((s.written, s.skipped_older), (0, 1));
    assert_eq!(values(store, &table, &["k"]).await, [Some("v100".into())]);
    let s = store
        .write(&table, &[row("k", 100, 4, "older created")], &[])
        .await
        .unwrap();
    assert_eq!((s.written, s.skipped_older), (0, 1));
    store
        .write(&table, &[row("k", 100, 6, "later created")], &[])
        .await
        .unwrap();
    assert_eq!(
        values(store, &table, &["k"]).await,
        [Some("later created".into())]
    );
    store
        .write(&table, &[row("k", 100, 6, "equal")], &[])
        .await
        .unwrap();
    assert_eq!(values(store, &table, &["k"]).await, [Some("equal".into())]);
    store
        .write(&table, &[row("k", 101, i64::MIN, "v101")], &[])
        .await
        .unwrap();
    assert_eq!(values(store, &table, &["k"]).await, [Some("v101".into())]);
}

/// Several rows of one key in one call: the newest wins whatever their order.
pub async fn within_a_write_the_newest_row_of_a_key_wins(store: &dyn OnlineStore) {
    let table = unique("one-call");
    let s = store
        .write(
            &table,
            &[
                row("k", 3, 0, "three"),
                row("k", 5, 0, "five"),
                row("k", 4, 0, "four"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(s.written + s.skipped_older, 3);
    assert_eq!(values(store, &table, &["k"]).await, [Some("five".into())]);
}

/// Tables do not share keys; dropping one leaves the others (and is idempotent).
pub async fn tables_are_separate_and_drop(store: &dyn OnlineStore) {
    let (a, b) = (unique("table-a"), unique("table-b"));
    store
        .write(&a, &[row("k", 1, 0, "in a")], &[])
        .await
        .unwrap();
    store
        .write(&b, &[row("k", 1, 0, "in b")], &[])
        .await
        .unwrap();
    assert_eq!(values(store, &a, &["k"]).await, [Some("in a".into())]);
    store.drop_table(&a).await.unwrap();
    store.drop_table(&a).await.unwrap();
    assert_eq!(values(store, &a, &["k"]).await, [None]);
    assert_eq!(values(store, &b, &["k"]).await, [Some("in b".into())]);
    store.drop_table(&unique("never-written")).await.unwrap();
}

/// Marks are written with a call's rows (also with no rows) and read back; a later value
/// replaces an earlier one.
pub async fn marks_are_written_with_rows(store: &dyn OnlineStore) {
    let (table, mark) = (unique("marked"), unique("watermark"));
    store
        .write(
            &table,
            &[row("k", 1, 0, "v")],
            &[(mark.clone(), Bytes::from_static(b"one"))],
        )
        .await
        .unwrap();
    assert_eq!(
        store.mark(&mark).await.unwrap(),
        Some(Bytes::from_static(b"one"))
    );
    store
        .write(&table, &[], &[(mark.clone(), Bytes::from_static(b"two"))])
        .await
        .unwrap();
    assert_eq!(
        store.mark(&mark).await.unwrap(),
        Some(Bytes::from_static(b"two"))
    );
    assert_eq!(values(store, &table, &["k"]).await, [Some("v".into())]);
}

/// Sixteen writers race on the same keys with different event times: each key ends with the
/// newest row, and no write fails.
pub async fn concurrent_writers_keep_the_newest(store: &dyn OnlineStore) {
    let table = unique("race");
    let keys: Vec<String> = (0..8).map(|k| format!("key-{k}")).collect();
    let results = in_parallel(16, |i| {
        let (table, keys) = (table.clone(), keys.clone());
        async move {
            // Writer i writes event time (i * 7) % 16 for every key: a permutation of 0..16.
            let t = ((i * 7) % 16) as i64;
            let rows: Vec<OnlineRow> = keys
                .iter()
                .map(|k| row(k, t, 0, &format!("t{t}")))
                .collect();
            store.write(&table, &rows, &[]).await
        }
    });
    for r in results {
        r.unwrap();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = values(store, &table, &refs).await;
    assert!(got.iter().all(|v| v.as_deref() == Some("t15")), "{got:?}");
}

/// Ten thousand keys in one call, read back in one call.
pub async fn many_keys_in_one_write(store: &dyn OnlineStore) {
    let table = unique("many");
    let rows: Vec<OnlineRow> = (0..10_000)
        .map(|i| row(&format!("k{i}"), i, 0, &format!("v{i}")))
        .collect();
    let s = store.write(&table, &rows, &[]).await.unwrap();
    assert_eq!(s.written, 10_000);
    let keys: Vec<Bytes> = (0..10_000).rev().map(|i| key(&format!("k{i}"))).collect();
    let read = store.read(&table, &keys).await.unwrap();
    for (j, v) in read.iter().enumerate() {
        let i = 9_999 - j;
        assert_eq!(v.as_ref().unwrap().values, Bytes::from(format!("v{i}")));
    }
}

/// Empty and over-long table names are invalid arguments.
pub async fn bad_names_are_invalid(store: &dyn OnlineStore) {
    let e = store
        .write("", &[row("k", 1, 0, "v")], &[])
        .await
        .unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    let e = store.read(&"x".repeat(513), &[key("k")]).await.unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
}
