//! The [`Store`] conformance suite.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use mlops_core::store::{CommitOptions, GetOptions, RefVersion, Store, StoreExt};
use mlops_core::{Digest, Error, RefName, Version};

use crate::{in_parallel, unique};

/// Corrupts the first stored byte of a blob; resolves to false if the blob is absent.
pub type Tamper<'a> = &'a (dyn Fn(Digest) -> BoxFuture<'static, bool> + Send + Sync);

fn ref_name(prefix: &str) -> RefName {
    unique(prefix).parse().unwrap()
}

async fn put(store: &dyn Store, data: &[u8]) -> Digest {
    store
        .put_bytes(Bytes::copy_from_slice(data))
        .await
        .unwrap()
        .digest
}

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}

/// Runs every clause.
pub async fn run_all(store: &dyn Store, tamper: Tamper<'_>) {
    blobs_round_trip(store).await;
    blob_puts_are_idempotent(store).await;
    missing_blobs_are_not_found(store).await;
    ranged_reads(store).await;
    large_blobs_verify_every_range(store, tamper).await;
    digests_are_verified(store, tamper).await;
    blobs_list_and_delete(store).await;
    refs_round_trip(store).await;
    commits_are_compare_and_swap(store).await;
    commits_need_an_existing_target(store).await;
    concurrent_commits_have_one_winner(store).await;
    concurrent_writers_leave_no_gaps(store).await;
    time_travel(store).await;
    list_refs_by_prefix(store).await;
    ref_children_are_one_level(store).await;
    ref_versions_after_lists_only_newer(store).await;
}

/// A blob reads back byte for byte, whatever the chunking it was written with.
pub async fn blobs_round_trip(store: &dyn Store) {
    let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let chunks: Vec<mlops_core::Result<Bytes>> = data
        .chunks(7_777)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let info = store.put_blob(stream::iter(chunks).boxed()).await.unwrap();
    assert_eq!(
        info.digest,
        Digest::of(&data),
        "digest is blake3 of the content"
    );
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(store.get_bytes(&info.digest).await.unwrap(), data);
    assert_eq!(store.head_blob(&info.digest).await.unwrap(), info);

    let empty = store.put_bytes(Bytes::new()).await.unwrap();
    assert_eq!(empty.size, 0);
    assert!(store.get_bytes(&empty.digest).await.unwrap().is_empty());
}

/// Putting the same bytes twice gives the same digest and succeeds.
pub async fn blob_puts_are_idempotent(store: &dyn Store) {
    let data = unique("idempotent");
    let a = store.put_bytes(Bytes::from(data.clone())).await.unwrap();
    let b = store.put_bytes(Bytes::from(data)).await.unwrap();
    assert_eq!(a, b);
}

/// Absent blobs are `NotFound` with kind "blob".
pub async fn missing_blobs_are_not_found(store: &dyn Store) {
    let missing = Digest::of(unique("never-stored").as_bytes());
    for err in [
        store.get_blob(&missing, GetOptions::default()).await.err(),
        store.head_blob(&missing).await.err(),
    ] {
        match err {
            Some(Error::NotFound { kind: "blob", .. }) => {}
            other => panic!("expected NotFound for blob, got {other:?}"),
        }
    }
    assert!(!store.contains_blob(&missing).await.unwrap());
}

/// Ranges return exactly the requested bytes; ranges past the end are `InvalidArgument`.
pub async fn ranged_reads(store: &dyn Store) {
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let d = put(store, &data).await;
    let read = |r: std::ops::Range<u64>| async move {
        let s = store
            .get_blob(&d, GetOptions::default().with_range(r))
            .await?;
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok::<Vec<u8>, Error>(parts.concat())
    };
    assert_eq!(read(10..20).await.unwrap(), data[10..20].to_vec());
    assert_eq!(read(0..10_000).await.unwrap(), data);
    assert!(read(5..5).await.unwrap().is_empty());
    assert!(read(9_000..10_001).await.unwrap_err().is_invalid_argument());
}

async fn read_range(
    store: &dyn Store,
    d: Digest,
    range: Option<std::ops::Range<u64>>,
) -> mlops_core::Result<Vec<u8>> {
    let mut options = GetOptions::default();
    if let Some(r) = range {
        options = options.with_range(r);
    }
    let parts: Vec<Bytes> = store.get_blob(&d, options).await?.try_collect().await?;
    Ok(parts.concat())
}

/// Blobs of several MiB stream back whole and in any range (including ranges that straddle
/// internal chunk boundaries), and a corrupted byte is caught by every read that covers it.
pub async fn large_blobs_verify_every_range(store: &dyn Store, tamper: Tamper<'_>) {
    const MIB: u64 = 1 << 20;
    let size = 3 * MIB + MIB / 2 + 17;
    let data: Vec<u8> = (0..size)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    let chunks: Vec<mlops_core::Result<Bytes>> = data
        .chunks(300_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let info = store.put_blob(stream::iter(chunks).boxed()).await.unwrap();
    assert_eq!(info.digest, Digest::of(&data));
    assert_eq!(info.size, size);
    let d = info.digest;
    assert_eq!(read_range(store, d, None).await.unwrap(), data);
    for r in [
        0..1,
        MIB - 3..MIB + 3,
        MIB..2 * MIB,
        2 * MIB - 1..3 * MIB + 1,
        size - 5..size,
        0..size,
    ] {
        let want = data[r.start as usize..r.end as usize].to_vec();
        assert_eq!(
            read_range(store, d, Some(r.clone())).await.unwrap(),
            want,
            "range {r:?}"
        );
    }
    assert!(
        tamper(d).await,
        "the tamper hook must find a blob that was just stored"
    );
    for r in [None, Some(0..10), Some(MIB - 1..MIB + 1)] {
        match read_range(store, d, r.clone()).await {
            Err(e) if e.is_corrupt() => {}
            other => panic!(
                "a read of {r:?} covering a corrupted byte must be Corrupt, got {:?}",
                other.map(|v| v.len())
            ),
        }
    }
    store.delete_blob(&d).await.unwrap();
}

/// Stored bytes that no longer match their digest read as `Corrupt`, never as data.
pub async fn digests_are_verified(store: &dyn Store, tamper: Tamper<'_>) {
    let d = put(store, unique("to-be-corrupted").as_bytes()).await;
    assert!(
        tamper(d).await,
        "the tamper hook must find a blob that was just stored"
    );
    let result = async {
        let s = store.get_blob(&d, GetOptions::default()).await?;
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok::<_, Error>(parts)
    }
    .await;
    match result {
        Err(e) if e.is_corrupt() => {}
        other => panic!("a tampered blob must read as Corrupt, got {other:?}"),
    }
}

/// Every stored blob is listed; deleting is idempotent.
pub async fn blobs_list_and_delete(store: &dyn Store) {
    let d = put(store, unique("listed").as_bytes()).await;
    let all: Vec<Digest> = store
        .list_blobs()
        .await
        .unwrap()
        .map_ok(|b| b.digest)
        .try_collect()
        .await
        .unwrap();
    assert!(all.contains(&d), "list_blobs must include a stored blob");
    store.delete_blob(&d).await.unwrap();
    assert!(!store.contains_blob(&d).await.unwrap());
    store.delete_blob(&d).await.unwrap();
}

/// Versions count from 1; latest, exact and history read back what was committed.
pub async fn refs_round_trip(store: &dyn Store) {
    let name = ref_name("datasets/round-trip");
    let a = put(store, b"version one").await;
    let b = put(store, b"version two").await;
    let c1 = store
        .commit(
            &name,
            a,
            CommitOptions::default()
                .with_message("first")
                .with_metadata("source", "test"),
        )
        .await
        .unwrap();
    assert_eq!(c1.version, Version::FIRST);
    assert_eq!(c1.target, a);
    assert_eq!(c1.metadata.get("source").map(String::as_str), Some("test"));
    let c2 = store.commit_next(&name, b, "second").await.unwrap();
    assert_eq!(c2.version, v(2));
    assert_eq!(store.get_ref(&name, RefVersion::Latest).await.unwrap(), c2);
    assert_eq!(
        store.get_ref(&name, RefVersion::Exact(v(1))).await.unwrap(),
        c1
    );
    let history = store.history(&name).await.unwrap();
    assert_eq!(history, vec![c1, c2]);
    match store.get_ref(&name, RefVersion::Exact(v(3))).await {
        Err(Error::NotFound { kind: "ref", .. }) => {}
        other => panic!("a missing version is NotFound for ref, got {other:?}"),
    }
    let missing = ref_name("never-committed");
    assert!(
        store
            .get_ref(&missing, RefVersion::Latest)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(store.history(&missing).await.unwrap_err().is_not_found());
    // What verification walks: every version present, the newest committed, nothing judged.
    let listed = store.ref_versions(&name).await.unwrap();
    assert_eq!(listed.present, [v(1), v(2)]);
    assert_eq!(listed.committed, Some(v(2)));
    assert!(!listed.lost_tail());
    let none = store.ref_versions(&missing).await.unwrap();
    assert!(none.present.is_empty() && none.committed.is_none());
}

/// A commit against a stale parent is `Conflict` and changes nothing.
pub async fn commits_are_compare_and_swap(store: &dyn Store) {
    let name = ref_name("cas");
    let a = put(store, b"cas a").await;
    store
        .commit(&name, a, CommitOptions::default())
        .await
        .unwrap();
    // "Must not exist yet" on an existing ref.
    let err = store
        .commit(&name, a, CommitOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "expected Conflict, got {err}");
    // A stale parent.
    store
        .commit(&name, a, CommitOptions::default().with_parent(Some(v(1))))
        .await
        .unwrap();
    let err = store
        .commit(&name, a, CommitOptions::default().with_parent(Some(v(1))))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "expected Conflict, got {err}");
    // A parent from the future.
    let err = store
        .commit(&name, a, CommitOptions::default().with_parent(Some(v(9))))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "expected Conflict, got {err}");
    assert_eq!(
        store.history(&name).await.unwrap().len(),
        2,
        "failed commits change nothing"
    );
}

/// A commit may only point at, and retain, stored blobs; what it retains reads back.
pub async fn commits_need_an_existing_target(store: &dyn Store) {
    let name = ref_name("dangling");
    let missing = Digest::of(unique("absent").as_bytes());
    match store.commit(&name, missing, CommitOptions::default()).await {
        Err(Error::NotFound { kind: "blob", .. }) => {}
        other => panic!("a commit to a missing blob is NotFound for blob, got {other:?}"),
    }
    let present = put(store, b"present").await;
    let part = put(store, b"a part file").await;
    match store
        .commit(
            &name,
            present,
            CommitOptions::default().with_retains([part, missing]),
        )
        .await
    {
        Err(Error::NotFound { kind: "blob", .. }) => {}
        other => panic!("retaining a missing blob is NotFound for blob, got {other:?}"),
    }
    assert!(
        store
            .get_ref(&name, RefVersion::Latest)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let c = store
        .commit(
            &name,
            present,
            CommitOptions::default().with_retains([part]),
        )
        .await
        .unwrap();
    assert_eq!(c.retains, vec![part]);
    assert_eq!(
        store
            .get_ref(&name, RefVersion::Latest)
            .await
            .unwrap()
            .retains,
        vec![part]
    );
}

/// Sixteen concurrent commits on one parent: exactly one wins, the rest get `Conflict`.
pub async fn concurrent_commits_have_one_winner(store: &dyn Store) {
    let name = ref_name("race");
    let base = put(store, b"race base").await;
    store
        .commit(&name, base, CommitOptions::default())
        .await
        .unwrap();
    let targets: Vec<Digest> = {
        let mut out = Vec::new();
        for i in 0..16 {
            out.push(put(store, format!("racer {i}").as_bytes()).await);
        }
        out
    };
    let results = in_parallel(16, |i| {
        let (name, target) = (name.clone(), targets[i]);
        async move {
            store
                .commit(
                    &name,
                    target,
                    CommitOptions::default().with_parent(Some(Version::FIRST)),
                )
                .await
        }
    });
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one concurrent commit must win: {results:?}"
    );
    for r in &results {
        if let Err(e) = r {
            assert!(e.is_conflict(), "losers get Conflict, got {e}");
        }
    }
    let latest = store.get_ref(&name, RefVersion::Latest).await.unwrap();
    assert_eq!(latest.version, v(2));
    assert_eq!(latest.target, winners[0].target);
}

/// Sixteen writers that retry on `Conflict` produce versions 1..=16 with no gaps or duplicates.
pub async fn concurrent_writers_leave_no_gaps(store: &dyn Store) {
    let name = ref_name("writers");
    let target = put(store, b"writers").await;
    let versions = in_parallel(16, |_| {
        let name = name.clone();
        async move {
            loop {
                match store.commit_next(&name, target, "retrying writer").await {
                    Ok(c) => return c.version.get(),
                    Err(e) if e.is_conflict() => tokio::task::yield_now().await,
                    Err(e) => panic!("unexpected error from a racing writer: {e}"),
                }
            }
        }
    });
    let got: BTreeSet<u64> = versions.iter().copied().collect();
    assert_eq!(
        got,
        (1..=16).collect::<BTreeSet<_>>(),
        "versions {versions:?}"
    );
    let history: Vec<u64> = store
        .history(&name)
        .await
        .unwrap()
        .iter()
        .map(|c| c.version.get())
        .collect();
    assert_eq!(history, (1..=16).collect::<Vec<_>>());
}

/// `AsOf(t)` reads the newest version committed at or before `t`.
pub async fn time_travel(store: &dyn Store) {
    let name = ref_name("travel");
    let a = put(store, b"travel a").await;
    let b = put(store, b"travel b").await;
    let c1 = store
        .commit(&name, a, CommitOptions::default())
        .await
        .unwrap();
    // Make sure the second commit lands on a later millisecond.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let c2 = store.commit_next(&name, b, "later").await.unwrap();
    assert!(
        c2.timestamp_ms >= c1.timestamp_ms,
        "commit times never go backwards"
    );
    let at = |t| store.get_ref(&name, RefVersion::AsOf(t));
    assert_eq!(at(c2.timestamp_ms).await.unwrap().version, c2.version);
    if c2.timestamp_ms > c1.timestamp_ms {
        assert_eq!(at(c2.timestamp_ms - 1).await.unwrap().version, c1.version);
    }
    assert!(at(c1.timestamp_ms - 1).await.unwrap_err().is_not_found());
}

/// Prefixes match whole `/` segments; results are sorted.
pub async fn list_refs_by_prefix(store: &dyn Store) {
    let root = unique("tree");
    let d = put(store, b"tree").await;
    for n in ["a/x", "a/y", "ab/z", "a"] {
        let name: RefName = format!("{root}/{n}").parse().unwrap();
        store
            .commit(&name, d, CommitOptions::default())
            .await
            .unwrap();
    }
    let root = root.as_str();
    let under = |p: &str| {
        let p: RefName = format!("{root}/{p}").parse().unwrap();
        async move {
            store
                .list_refs(Some(&p))
                .await
                .unwrap()
                .into_iter()
                .map(|n| n.as_str()[root.len() + 1..].to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(under("a").await, vec!["a", "a/x", "a/y"]);
    assert_eq!(under("ab").await, vec!["ab/z"]);
    let all = store.list_refs(None).await.unwrap();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "list_refs is sorted");
    assert_eq!(
        all.iter().filter(|n| n.as_str().starts_with(root)).count(),
        4
    );
}

/// `list_ref_children` answers the names one segment below a prefix that refs exist at or
/// under, sorted: never the prefix itself, never deeper names.
pub async fn ref_children_are_one_level(store: &dyn Store) {
    let root = unique("children");
    let d = put(store, b"children").await;
    for n in ["a", "a/x", "a/x/deep", "a/y", "b/z/deeper", "c"] {
        let name: RefName = format!("{root}/{n}").parse().unwrap();
        store
            .commit(&name, d, CommitOptions::default())
            .await
            .unwrap();
    }
    let children = |p: String| async move {
        let p: RefName = p.parse().unwrap();
        store
            .list_ref_children(&p)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        children(root.to_string()).await,
        [
            format!("{root}/a"),
            format!("{root}/b"),
            format!("{root}/c")
        ]
    );
    assert_eq!(
        children(format!("{root}/a")).await,
        [format!("{root}/a/x"), format!("{root}/a/y")]
    );
    assert_eq!(children(format!("{root}/b")).await, [format!("{root}/b/z")]);
    assert!(children(format!("{root}/c")).await.is_empty());
    assert!(children(format!("{root}/none")).await.is_empty());
}

/// `ref_versions_after` lists the versions above the one given, with the newest committed.
pub async fn ref_versions_after_lists_only_newer(store: &dyn Store) {
    let name: RefName = unique("after").parse().unwrap();
    let d = put(store, b"after").await;
    let mut parent = None;
    for _ in 0..12 {
        let c = store
            .commit(&name, d, CommitOptions::default().with_parent(parent))
            .await
            .unwrap();
        parent = Some(c.version);
    }
    let v = |n: u64| Version::new(n).unwrap();
    let listed = store.ref_versions_after(&name, v(9)).await.unwrap();
    assert_eq!(listed.present, [v(10), v(11), v(12)]);
    assert_eq!(listed.committed, Some(v(12)));
    let listed = store.ref_versions_after(&name, v(12)).await.unwrap();
    assert!(listed.present.is_empty(), "{listed:?}");
    assert_eq!(listed.committed, Some(v(12)));
    // Past the tenth version the number has another digit: the order is numeric.
    let listed = store.ref_versions_after(&name, v(1)).await.unwrap();
    assert_eq!(listed.present, (2..=12).map(v).collect::<Vec<_>>());
    let missing: RefName = unique("after-missing").parse().unwrap();
    let listed = store.ref_versions_after(&missing, v(1)).await.unwrap();
    assert!(listed.present.is_empty() && listed.committed.is_none());
}
