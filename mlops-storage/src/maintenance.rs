//! Store maintenance: `verify` (an fsck for any [`Store`]).

use std::collections::BTreeSet;

use futures::TryStreamExt;
use mlops_core::store::{GetOptions, Store};
use mlops_core::{Digest, Result};
use serde::Serialize;

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Refs checked.
    pub refs: usize,
    /// Commit records read.
    pub commits: usize,
    /// Blobs read back and checked against their digests.
    pub blobs: usize,
    /// Bytes read back.
    pub bytes: u64,
    /// Every problem, in the order found; empty when the store is sound.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a whole store: every commit record of every ref reads, versions run 1..=N without gaps,
/// every blob a commit points at or retains exists, and every stored blob reads back matching its
/// digest. Problems are collected, not returned as errors; an `Err` means the store could not be
/// read at all.
pub async fn verify(store: &dyn Store) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut referenced: BTreeSet<Digest> = BTreeSet::new();
    for name in store.list_refs(None).await? {
        report.refs += 1;
        let history = match store.history(&name).await {
            Ok(h) => h,
            Err(e) => {
                report.problems.push(format!("ref {name}: {e}"));
                continue;
            }
        };
        for (i, commit) in history.iter().enumerate() {
            report.commits += 1;
            if commit.version.get() != i as u64 + 1 {
                report.problems.push(format!(
                    "ref {name}: version {} where {} was expected (a gap or duplicate)",
                    commit.version,
                    i + 1
                ));
            }
            referenced.insert(commit.target);
            referenced.extend(commit.retains.iter().copied());
        }
    }
    let stored: Vec<_> = store.list_blobs().await?.try_collect().await?;
    let stored_set: BTreeSet<Digest> = stored.iter().map(|b| b.digest).collect();
    for missing in referenced.difference(&stored_set) {
        report.problems.push(format!(
            "blob {missing} is referenced by a commit but missing"
        ));
    }
    for blob in stored {
        report.blobs += 1;
        let read = async {
            let stream = store.get_blob(&blob.digest, GetOptions::default()).await?;
            stream
                .try_fold(0u64, |n, chunk| async move { Ok(n + chunk.len() as u64) })
                .await
        };
        match read.await {
            Ok(n) if n == blob.size => report.bytes += n,
            Ok(n) => report.problems.push(format!(
                "blob {}: read {n} bytes, listed as {}",
                blob.digest, blob.size
            )),
            Err(e) => report.problems.push(format!("blob {}: {e}", blob.digest)),
        }
    }
    Ok(report)
}
