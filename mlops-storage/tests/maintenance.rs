//! `gc` removes exactly the unreachable, old objects; `verify` finds corruption and dangling refs.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use mlops_core::store::{CommitOptions, Store, StoreExt};
use mlops_storage::{GcOptions, MemoryStore, ObjectStoreStore, verify_objects as verify};

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
        report.problems[0].contains("is missing (referenced by r@1)"),
        "{report:?}"
    );
}

/// A local store in a fresh directory with `versions` commits of the ref `name`.
async fn local_ref_with_versions(
    name: &str,
    versions: u8,
) -> (tempfile::TempDir, ObjectStoreStore, mlops_core::RefName) {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let name: mlops_core::RefName = name.parse().unwrap();
    for i in 0..versions {
        let d = store
            .put_bytes(Bytes::from(vec![i; 10]))
            .await
            .unwrap()
            .digest;
        store.commit_next(&name, d, "put").await.unwrap();
    }
    (dir, store, name)
}

/// Losing a ref's newest record (a deleted file, a partial restore) is corruption, not a silent
/// rollback: reads of the latest version, history, verify and the next commit all say so, and
/// the lost version number is never reused for other content.
#[tokio::test]
async fn a_lost_newest_record_is_loud_and_its_version_is_not_reused() {
    use mlops_core::store::RefVersion;
    let (dir, store, name) = local_ref_with_versions("datasets/churn", 3).await;
    let versions = dir.path().join("refs/datasets/churn/.v");
    // One marker: the newest version's.
    let markers: Vec<String> = std::fs::read_dir(&versions)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.starts_with("head-"))
        .collect();
    assert_eq!(markers, [format!("head-{:020}", 3)]);
    assert!(verify(&store).await.unwrap().is_ok());

    std::fs::remove_file(versions.join(format!("{:020}.json", 3))).unwrap();
    let err = store.get_ref(&name, RefVersion::Latest).await.unwrap_err();
    assert!(
        err.is_corrupt() && err.to_string().contains("version 3 was committed"),
        "{err}"
    );
    assert!(store.history(&name).await.unwrap_err().is_corrupt());
    let other = store
        .put_bytes(Bytes::from_static(b"other"))
        .await
        .unwrap()
        .digest;
    let err = store.commit_next(&name, other, "put").await.unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    // An explicit parent does not get around it either.
    let err = store
        .commit(
            &name,
            other,
            CommitOptions::default().with_parent(Some(mlops_core::Version::new(2).unwrap())),
        )
        .await
        .unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    let report = verify(&store).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("datasets/churn") && p.contains("records were lost")),
        "{report:?}"
    );
    // With every record gone, only the marker says the ref existed: it is still listed, and
    // verify still reports it.
    for v in 1..=2u64 {
        std::fs::remove_file(versions.join(format!("{v:020}.json"))).unwrap();
    }
    assert_eq!(
        store.list_refs(None).await.unwrap(),
        std::slice::from_ref(&name)
    );
    let report = verify(&store).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("datasets/churn") && p.contains("records were lost")),
        "{report:?}"
    );
    let err = store
        .get_ref(&name, RefVersion::Exact(mlops_core::Version::FIRST))
        .await
        .unwrap_err();
    assert!(err.is_corrupt(), "{err}");
}

/// A stray record with a huge version number costs one report of the gap before it, not one per
/// missing number (which would never end).
#[tokio::test]
async fn a_huge_gap_is_reported_as_one_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let name: mlops_core::RefName = "datasets/stray".parse().unwrap();
    for i in 0..2u8 {
        let d = store
            .put_bytes(Bytes::from(vec![i; 4]))
            .await
            .unwrap()
            .digest;
        store.commit_next(&name, d, "put").await.unwrap();
    }
    let versions = dir.path().join("refs/datasets/stray/.v");
    std::fs::copy(
        versions.join(format!("{:020}.json", 2)),
        versions.join(format!("{:020}.json", 99_999_999_999u64)),
    )
    .unwrap();
    let report = verify(&store).await.unwrap();
    let gaps: Vec<&String> = report
        .problems
        .iter()
        .filter(|p| p.contains("a gap"))
        .collect();
    assert_eq!(gaps.len(), 1, "{report:?}");
    assert!(
        gaps[0].contains("datasets/stray@3..99999999998"),
        "{gaps:?}"
    );
    // The stray record itself names the version it really is.
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("@99999999999") && p.contains("record says")),
        "{report:?}"
    );
}

/// The latest version is found from the head marker without listing every record, and a marker
/// that lags (its write failed, or a reader came between the record and the marker) never hides
/// a newer record.
#[tokio::test]
async fn a_stale_or_missing_head_marker_never_hides_the_latest_version() {
    use mlops_core::store::RefVersion;
    let (dir, store, name) = local_ref_with_versions("datasets/lagging", 12).await;
    let versions = dir.path().join("refs/datasets/lagging/.v");
    let latest = || async {
        store
            .get_ref(&name, RefVersion::Latest)
            .await
            .unwrap()
            .version
            .get()
    };
    assert_eq!(latest().await, 12);
    // The newest marker is lost and an older one stands in its place.
    std::fs::remove_file(versions.join(format!("head-{:020}", 12))).unwrap();
    std::fs::write(versions.join(format!("head-{:020}", 10)), b"").unwrap();
    assert_eq!(latest().await, 12);
    // No marker at all: the listing answers.
    std::fs::remove_file(versions.join(format!("head-{:020}", 10))).unwrap();
    assert_eq!(latest().await, 12);
    // The next commit writes a marker again, and it is the one read.
    let d = store
        .put_bytes(Bytes::from_static(b"13"))
        .await
        .unwrap()
        .digest;
    store.commit_next(&name, d, "put").await.unwrap();
    assert_eq!(latest().await, 13);
    assert!(verify(&store).await.unwrap().is_ok());
}
