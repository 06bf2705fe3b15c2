//! `gc` removes exactly the unreachable, old objects; `verify` finds corruption and dangling refs.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use mlops_core::store::{CommitOptions, Store, StoreExt};
use mlops_storage::{GcOptions, MemoryStore, ObjectStoreStore, verify};

#[tokio::test]
async fn gc_removes_only_unreachable_old_blobs_and_abandoned_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let kept = store
        .put_bytes(Bytes::from_static(b"manifest"))
        .await
        .unwrap()
        .digest;
    let part = store
        .put_bytes(Bytes::from(vec![7u8; 3 << 20]))
        .await
        .unwrap()
        .digest;
    let orphan = store
        .put_bytes(Bytes::from(vec![9u8; 2 << 20]))
        .await
        .unwrap()
        .digest;
    store
        .commit(
            &"datasets/d".parse().unwrap(),
            kept,
            CommitOptions::default().with_retains([part]),
        )
        .await
        .unwrap();
    std::fs::create_dir_all(dir.path().join("staging")).unwrap();
    std::fs::write(dir.path().join("staging/abandoned"), b"half an upload").unwrap();

    // Within the grace period nothing goes.
    let young = store.gc(GcOptions::default()).await.unwrap();
    assert_eq!(
        (young.removed.len(), young.young, young.staging_removed),
        (0, 1, 0)
    );

    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = GcOptions::default().with_grace(Duration::ZERO);
    let dry = store.gc(now.clone().with_dry_run(true)).await.unwrap();
    assert_eq!(dry.removed, vec![orphan]);
    assert!(
        store.contains_blob(&orphan).await.unwrap(),
        "a dry run removes nothing"
    );

    let report = store.gc(now).await.unwrap();
    assert_eq!(report.removed, vec![orphan]);
    assert_eq!(report.reachable, 2);
    assert_eq!(report.staging_removed, 1);
    assert!(report.bytes_freed >= 2 << 20, "{report:?}");
    assert!(!store.contains_blob(&orphan).await.unwrap());
    assert!(store.contains_blob(&kept).await.unwrap());
    assert_eq!(
        store.get_bytes(&part).await.unwrap().len(),
        3 << 20,
        "retained blobs survive"
    );
    assert!(!dir.path().join("staging/abandoned").exists());
    assert!(verify(&store).await.unwrap().is_ok());
}

#[tokio::test]
async fn verify_reports_corrupt_blobs_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let good = store
        .put_bytes(Bytes::from_static(b"fine"))
        .await
        .unwrap()
        .digest;
    let bad = store
        .put_bytes(Bytes::from(vec![1u8; 1 << 21]))
        .await
        .unwrap()
        .digest;
    store
        .commit(
            &"a".parse().unwrap(),
            good,
            CommitOptions::default().with_retains([bad]),
        )
        .await
        .unwrap();
    let report = verify(&store).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.refs, report.commits, report.blobs), (1, 1, 2));
    assert!(store.tamper_with(&bad).await);
    let report = verify(&store).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].contains(&bad.to_hex()), "{report:?}");
}

#[tokio::test]
async fn verify_reports_blobs_missing_under_a_ref() {
    let store = MemoryStore::new();
    let target = store
        .put_bytes(Bytes::from_static(b"t"))
        .await
        .unwrap()
        .digest;
    store
        .commit(&"r".parse().unwrap(), target, CommitOptions::default())
        .await
        .unwrap();
    assert!(verify(&store).await.unwrap().is_ok());
    store.delete_blob(&target).await.unwrap();
    let report = verify(&store).await.unwrap();
    assert!(
        report.problems[0].contains("referenced by a commit but missing"),
        "{report:?}"
    );
}
