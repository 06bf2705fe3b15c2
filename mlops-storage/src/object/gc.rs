//! Garbage collection for [`ObjectStoreStore`].

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use mlops_core::store::Store;
use mlops_core::{Digest, Error, Result};
use object_store::path::PathPart;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::Serialize;

use super::open::StoreUrl;
use super::store::{ObjectStoreStore, os_err};

/// Options for [`ObjectStoreStore::gc`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// Objects younger than this are never removed, whatever references them: a writer that
    /// uploaded a blob and has not committed yet is safe for this long. Default: one hour.
    pub grace: Duration,
    /// Report what would be removed without removing it.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(3600),
            dry_run: false,
        }
    }
}

impl GcOptions {
    /// Sets the grace period.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Only reports.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What [`ObjectStoreStore::gc`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Blobs some commit points at or retains.
    pub reachable: usize,
    /// Unreachable blobs left alone because they are younger than the grace period.
    pub young: usize,
    /// Unreachable blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed by removing them (and their chaining values).
    pub bytes_freed: u64,
    /// Abandoned uploads removed from `staging/`.
    pub staging_removed: usize,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl ObjectStoreStore {
    /// Removes blobs that no commit of any ref points at or retains, and abandoned uploads, once
    /// they are older than the grace period.
    ///
    /// Safe against concurrent writers: blobs are listed before refs, so a blob committed during
    /// the collection is either seen as reachable or is younger than the grace period (every
    /// `put_blob` refreshes the blob's modification time, even when the content was already
    /// stored). A writer must commit within the grace period of its upload.
    pub async fn gc(&self, options: GcOptions) -> Result<GcReport> {
        let cutoff = SystemTime::now()
            .checked_sub(options.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let is_old = |m: &ObjectMeta| SystemTime::from(m.last_modified) < cutoff;
        let list = |part: &'static str| {
            let prefix = self.path([PathPart::from(part)]);
            async move {
                self.inner
                    .list(Some(&prefix))
                    .try_collect::<Vec<ObjectMeta>>()
                    .await
                    .map_err(|e| Error::backend("object_store", e))
            }
        };
        // Blobs first, refs second: see the method docs.
        let blob_objects = list("blobs").await?;
        let staging = list("staging").await?;
        let mut reachable: BTreeSet<Digest> = BTreeSet::new();
        for name in self.list_refs(None).await? {
            for commit in self.history(&name).await? {
                reachable.insert(commit.target);
                reachable.extend(commit.retains);
            }
        }
        let mut report = GcReport {
            reachable: reachable.len(),
            dry_run: options.dry_run,
            ..GcReport::default()
        };
        let stored: BTreeSet<Digest> = blob_objects
            .iter()
            .filter_map(|m| m.location.filename()?.parse().ok())
            .collect();
        for meta in &blob_objects {
            let Some(file) = meta.location.filename() else {
                continue;
            };
            let (digest, is_cvs) = match file.strip_suffix(".cvs") {
                Some(hex) => (hex.parse::<Digest>(), true),
                None => (file.parse::<Digest>(), false),
            };
            let Ok(digest) = digest else { continue };
            if reachable.contains(&digest) {
                continue;
            }
            // Chaining values go with their blob; orphans (blob already gone) go on their own.
            if is_cvs && stored.contains(&digest) {
                continue;
            }
            if !is_old(meta) {
                if !is_cvs {
                    report.young += 1;
                }
                continue;
            }
            if !is_cvs {
                report.removed.push(digest);
            }
            report.bytes_freed += meta.size;
            if !options.dry_run {
                let path = if is_cvs {
                    self.cvs_path(&digest)
                } else {
                    self.blob_path(&digest)
                };
                match self.inner.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(os_err("blob", digest)(e)),
                }
            }
        }
        if let StoreUrl::Local(dir) = self.url() {
            // object_store's local backend writes `<path>#<n>` temporaries and renames them into
            // place; a writer killed in between leaves them behind, unlisted. Collect them too.
            report.staging_removed += remove_local_temporaries(dir, cutoff, options.dry_run)?;
        }
        for meta in staging.iter().filter(|m| is_old(m)) {
            report.staging_removed += 1;
            if !options.dry_run {
                match self.inner.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::backend("object_store", e)),
                }
            }
        }
        Ok(report)
    }
}

/// Whether a file name is an object_store local temporary: `<name>#<digits>`.
fn is_local_temporary(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn remove_local_temporaries(
    dir: &std::path::Path,
    cutoff: SystemTime,
    dry_run: bool,
) -> Result<usize> {
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("store directory", "read", &d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("store directory", "read", &d, e))?;
            let kind = entry
                .file_type()
                .map_err(|e| Error::io("store file", "read", entry.path(), e))?;
            if kind.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if kind.is_file() && old && name.to_str().is_some_and(is_local_temporary) {
                removed += 1;
                if !dry_run {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(Error::io("temporary file", "remove", entry.path(), e));
                        }
                    }
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_temporaries_are_recognised() {
        assert!(super::is_local_temporary("abc#1"));
        assert!(super::is_local_temporary("00000000000000000003.json#12"));
        assert!(!super::is_local_temporary("abc"));
        assert!(!super::is_local_temporary("abc#"));
        assert!(!super::is_local_temporary("abc#x1"));
    }
}
