#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The decision log: OPA's fields, masking, the hash chain, tamper detection on a real local
//! store (edit, delete, reorder, byte flips), concurrent writers, and reopening.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use mlops_core::policy::{Decision, PolicyQuery};
use mlops_core::{Digest, RefName, Store, StoreExt};
use mlops_policy::log::{self, DecisionLog, LogEntry, LogOptions};
use mlops_storage::ObjectStoreStore;
use serde_json::json;

fn decision(i: u64, allowed: bool) -> (PolicyQuery, Decision) {
    let q = PolicyQuery::new(
        "data.mlops.governance",
        json!({"action": "set_alias", "alias": "champion", "model": {"name": "m", "version": i}, "user": {"token": "s3cr3t", "name": "ana"}}),
    );
    let d = Decision {
        decision_id: format!("d-{i}"),
        allowed,
        reasons: if allowed {
            vec![]
        } else {
            vec![format!("reason {i}")]
        },
        result: json!({"deny": if allowed { json!([]) } else { json!([format!("reason {i}")]) }}),
        revision: Some("rev-1".into()),
    };
    (q, d)
}

async fn write_log(store: Arc<dyn Store>, segments: &[u64]) -> DecisionLog {
    let log = DecisionLog::open_default(store).await.unwrap();
    let mut i = 0;
    for &n in segments {
        for _ in 0..n {
            let (q, d) = decision(i, i % 2 == 0);
            log.record(&q, &d).unwrap();
            i += 1;
        }
        assert_eq!(log.flush().await.unwrap(), n as usize);
    }
    log
}

fn local(dir: &Path) -> Arc<dyn Store> {
    Arc::new(ObjectStoreStore::open(dir.to_str().unwrap(), &[]).unwrap())
}

fn ref_file(root: &Path, version: u64) -> PathBuf {
    root.join("refs/policy/decisions/.v")
        .join(format!("{version:020}.json"))
}

/// Replaces segment `version`'s entries with `edit(entries)`, as an attacker with write access
/// to the store would: a new blob, and the ref's commit file pointed at it.
async fn rewrite_segment(root: &Path, version: u64, edit: impl FnOnce(&mut Vec<LogEntry>)) {
    let store = local(root);
    let name = RefName::new(log::DEFAULT_LOG).unwrap();
    let history = store.history(&name).await.unwrap();
    let commit = &history[usize::try_from(version).unwrap() - 1];
    let bytes = store.get_bytes(&commit.target).await.unwrap();
    let mut entries: Vec<LogEntry> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    edit(&mut entries);
    let mut body = Vec::new();
    for e in &entries {
        serde_json::to_writer(&mut body, e).unwrap();
        body.push(b'\n');
    }
    let blob = store.put_bytes(Bytes::from(body)).await.unwrap();
    let path = ref_file(root, version);
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["target"] = json!(blob.digest.to_string());
    std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
}

async fn verify(root: &Path) -> log::VerifyLogReport {
    let store = local(root);
    log::verify(store.as_ref(), &RefName::new(log::DEFAULT_LOG).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn entries_carry_opa_fields_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(local(dir.path()), &[3, 2]).await;
    let entries = log.entries().await.unwrap();
    assert_eq!(entries.len(), 5);
    let e = &entries[1];
    assert_eq!(e.decision_id, "d-1");
    assert_eq!(e.path, "mlops/governance");
    assert_eq!(e.input["alias"], "champion");
    assert_eq!(e.result["deny"], json!(["reason 1"]));
    assert_eq!(e.bundles["mlops"].revision, "rev-1");
    assert!(
        e.timestamp.ends_with('Z') && e.timestamp.contains('T'),
        "{}",
        e.timestamp
    );
    assert_eq!(
        e.timestamp.split('.').nth(1).unwrap().len(),
        10,
        "nanoseconds: {}",
        e.timestamp
    );
    assert_eq!(entries[0].prev_hash, log::GENESIS_HASH);
    for w in entries.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    let report = verify(dir.path()).await;
    assert!(report.is_ok());
    assert_eq!((report.segments, report.verified), (2, 5));
    assert_eq!(report.head, log.head());
}

#[tokio::test]
async fn masked_fields_never_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let name = RefName::new("policy/masked").unwrap();
    let log = DecisionLog::open(
        Arc::clone(&store),
        &name,
        LogOptions::default()
            .erase("/input/user/token")
            .erase("/input/absent")
            .label("app", "test"),
    )
    .await
    .unwrap();
    let (q, d) = decision(0, true);
    log.record(&q, &d).unwrap();
    log.flush().await.unwrap();
    let e = &log.entries().await.unwrap()[0];
    assert_eq!(e.input["user"], json!({"name": "ana"}));
    assert_eq!(e.erased, vec!["/input/user/token"]);
    assert_eq!(e.labels["app"], "test");
    // Not anywhere on disk either.
    for file in walk(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cr3t"),
            "{}",
            file.display()
        );
    }
    let err = DecisionLog::open(store, &name, LogOptions::default().erase("/data/x"))
        .await
        .unwrap_err();
    assert!(err.is_invalid_argument());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn an_edited_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_log(local(dir.path()), &[3, 3]).await;
    rewrite_segment(dir.path(), 2, |e| e[1].allowed = !e[1].allowed).await;
    let bad = verify(dir.path()).await.first_bad.unwrap();
    assert_eq!((bad.segment, bad.line, bad.seq), (2, 2, Some(4)));
    assert_eq!(bad.decision_id.as_deref(), Some("d-4"));
    assert!(bad.problem.contains("edited"), "{bad}");
}

#[tokio::test]
async fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    write_log(local(dir.path()), &[4]).await;
    rewrite_segment(dir.path(), 1, |e| {
        e[1].reasons = vec!["nothing to see".into()];
        e[1].hash = e[1].compute_hash().unwrap();
    })
    .await;
    let report = verify(dir.path()).await;
    let bad = report.first_bad.unwrap();
    assert_eq!(bad.seq, Some(2));
    assert!(bad.problem.contains("prev_hash"), "{bad}");
    assert_eq!(report.verified, 2);
}

#[tokio::test]
async fn a_deleted_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_log(local(dir.path()), &[2, 3]).await;
    rewrite_segment(dir.path(), 2, |e| {
        e.remove(1);
    })
    .await;
    let bad = verify(dir.path()).await.first_bad.unwrap();
    assert_eq!((bad.segment, bad.line, bad.seq), (2, 2, Some(4)));
    assert!(bad.problem.contains("expected 3"), "{bad}");
}

#[tokio::test]
async fn reordered_entries_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_log(local(dir.path()), &[5]).await;
    rewrite_segment(dir.path(), 1, |e| e.swap(2, 3)).await;
    let bad = verify(dir.path()).await.first_bad.unwrap();
    assert_eq!((bad.line, bad.seq), (3, Some(3)));
}

#[tokio::test]
async fn flipped_bytes_in_a_segment_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_log(local(dir.path()), &[2, 2]).await;
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let name = RefName::new(log::DEFAULT_LOG).unwrap();
    let target: Digest = store.history(&name).await.unwrap()[0].target;
    assert!(store.tamper_with(&target).await);
    let bad = verify(dir.path()).await.first_bad.unwrap();
    assert_eq!((bad.segment, bad.line), (1, 0));
    assert!(bad.problem.contains("unreadable"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Each writer is its own DecisionLog, as separate processes would be.
            let log = DecisionLog::open_default(store).await.unwrap();
            for i in 0..10 {
                let (q, d) = decision(w * 100 + i, true);
                log.record(&q, &d).unwrap();
                if i % 3 == 2 {
                    log.flush().await.unwrap();
                }
            }
            log.flush().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = verify(dir.path()).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.verified, 40);
    // Reopening continues the chain.
    let log = DecisionLog::open_default(Arc::clone(&store)).await.unwrap();
    assert_eq!(log.head(), report.head);
    let (q, d) = decision(999, false);
    log.record(&q, &d).unwrap();
    log.flush().await.unwrap();
    assert_eq!(verify(dir.path()).await.verified, 41);
}
