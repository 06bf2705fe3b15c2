//! The [`Store`] trait: immutable blobs addressed by digest, plus named, versioned refs.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{Digest, RefName, Version};

/// A stream of byte chunks; an `Err` item ends it.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// A stored blob's address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobInfo {
    /// blake3 of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// Options for [`Store::get_blob`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetOptions {
    /// Read only these bytes (end exclusive); `None` reads the whole blob.
    pub range: Option<Range<u64>>,
}

impl GetOptions {
    /// Reads only `range`.
    pub fn with_range(mut self, range: Range<u64>) -> Self {
        self.range = Some(range);
        self
    }
}

/// One version of a ref: "name, at version N, points at blob D".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The ref.
    pub name: RefName,
    /// Its version: 1 for the first commit, then +1 each.
    pub version: Version,
    /// The blob this version points at.
    pub target: Digest,
    /// Other blobs this version keeps alive (the part files a dataset manifest lists, the files
    /// of an artifact tree): garbage collection never removes what a commit retains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retains: Vec<Digest>,
    /// When it was committed, ms since the epoch.
    pub timestamp_ms: i64,
    /// Free-text message.
    pub message: String,
    /// Free key/value metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Options for [`Store::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitOptions {
    /// The version the caller last saw: the commit succeeds only if it is still the latest.
    /// `None` means "the ref must not exist yet".
    pub parent: Option<Version>,
    /// Blobs the commit keeps alive besides its target; each must be stored.
    pub retains: Vec<Digest>,
    /// Message.
    pub message: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

impl CommitOptions {
    /// Expect `parent` to be the latest version.
    pub fn with_parent(mut self, parent: Option<Version>) -> Self {
        self.parent = parent;
        self
    }

    /// Keeps `digests` alive with this commit.
    pub fn with_retains(mut self, digests: impl IntoIterator<Item = Digest>) -> Self {
        self.retains.extend(digests);
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Which version of a ref to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefVersion {
    /// The newest.
    #[default]
    Latest,
    /// Exactly this version.
    Exact(Version),
    /// The newest committed at or before this time (ms since the epoch): time travel.
    AsOf(i64),
}

/// Immutable blobs by digest plus named, versioned refs with compare-and-swap commits.
///
/// Everything stored is a blob addressed by its blake3 [`Digest`]; names point at blobs through
/// ref commits. Nothing is ever rewritten in place, so readers never see a half-written object.
///
/// # Contract
///
/// - **Blobs.** [`put_blob`](Store::put_blob) stores a stream and returns its digest and size; it
///   is idempotent (the same bytes give the same digest, and storing them again is a no-op that
///   succeeds). A blob is visible only once completely written. [`get_blob`](Store::get_blob)
///   returns only bytes that belong to the blob with that digest: if stored bytes do not verify,
///   the stream yields [`Error::Corrupt`] (as its last item — callers must not trust data until the
///   stream has ended without error). An absent blob is [`Error::NotFound`] with kind `"blob"`. A
///   range past the end is [`Error::InvalidArgument`].
/// - **Refs.** [`commit`](Store::commit) creates version `parent + 1` (or 1 when `parent` is
///   `None`) of a ref, atomically: when another writer has committed in the meantime, it fails with
///   [`Error::Conflict`] and changes nothing; of N concurrent commits on one parent exactly one
///   wins. Versions have no gaps and no duplicates. The target blob and every blob the commit
///   [`retains`](CommitOptions::retains) must exist ([`Error::NotFound`] otherwise), so refs never
///   dangle; garbage collection keeps all of them.
/// - **Reads of refs.** [`get_ref`](Store::get_ref) reads the latest, an exact version, or the
///   newest at or before a time; an absent ref or version is [`Error::NotFound`] with kind `"ref"`.
///   [`history`](Store::history) lists every version in ascending order.
///   [`list_refs`](Store::list_refs) lists names under a `/`-segment prefix, sorted.
/// - **Deletion** is only for garbage collection: [`delete_blob`](Store::delete_blob) is
///   idempotent, and a ref whose target was deleted reads as [`Error::NotFound`] for the blob.
///
/// # Implementing
///
/// Implement the required methods; conveniences come from [`StoreExt`]. Run
/// `mlops_testkit::store::run_all` against the implementation, and against an `Arc<dyn Store>` of
/// it.
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// Stores a blob from a stream of chunks.
    async fn put_blob(&self, data: ByteStream) -> Result<BlobInfo>;

    /// Streams a blob (or a range of it), verified against its digest.
    async fn get_blob(&self, digest: &Digest, options: GetOptions) -> Result<ByteStream>;

    /// The size of a stored blob; [`Error::NotFound`] when absent.
    async fn head_blob(&self, digest: &Digest) -> Result<BlobInfo>;

    /// Every stored blob, in no particular order.
    async fn list_blobs(&self) -> Result<BoxStream<'static, Result<BlobInfo>>>;

    /// Removes a blob (garbage collection only). Removing an absent blob succeeds.
    async fn delete_blob(&self, digest: &Digest) -> Result<()>;

    /// Commits a new version of `name` pointing at `target`, compare-and-swap on `options.parent`.
    async fn commit(
        &self,
        name: &RefName,
        target: Digest,
        options: CommitOptions,
    ) -> Result<Commit>;

    /// Reads one version of a ref.
    async fn get_ref(&self, name: &RefName, version: RefVersion) -> Result<Commit>;

    /// Every version of a ref, oldest first; [`Error::NotFound`] when the ref does not exist.
    async fn history(&self, name: &RefName) -> Result<Vec<Commit>>;

    /// Names of refs equal to or under `prefix` (whole `/` segments), sorted; all when `None`.
    async fn list_refs(&self, prefix: Option<&RefName>) -> Result<Vec<RefName>>;

    /// Which versions of `name` have a commit record, and the newest version the store knows
    /// was committed — without judging gaps or losses, so that verification and repair can walk
    /// a damaged ref record by record (where [`history`](Store::history) and reads of the latest
    /// version answer [`Error::Corrupt`]). Empty for a ref that does not exist.
    ///
    /// The default reads [`history`](Store::history); a store that can lose records (files on
    /// disk, objects in a bucket) overrides it with what it lists.
    async fn ref_versions(&self, name: &RefName) -> Result<RefVersions> {
        match self.history(name).await {
            Ok(history) => {
                let present: Vec<Version> = history.iter().map(|c| c.version).collect();
                Ok(RefVersions {
                    committed: present.last().copied(),
                    present,
                })
            }
            Err(e) if e.is_not_found() => Ok(RefVersions::default()),
            Err(e) => Err(e),
        }
    }

    /// [`ref_versions`](Store::ref_versions) for a reader that has seen `name` up to `after`:
    /// `present` holds only the versions above it, `committed` is as there. A store that lists
    /// from a key overrides it to skip the older records (S3 and GCS skip them server-side; a
    /// local directory still reads their names, but no metadata), so that following a long ref
    /// costs little more than what is new.
    async fn ref_versions_after(&self, name: &RefName, after: Version) -> Result<RefVersions> {
        let mut listed = self.ref_versions(name).await?;
        listed.present.retain(|v| *v > after);
        Ok(listed)
    }

    /// The names one `/` segment below `prefix` that refs exist at or under, sorted: what
    /// [`list_refs`](Store::list_refs) answers, each cut to one segment more than `prefix`. A
    /// store with directory-like listings overrides it to read one level, without listing every
    /// version of every ref below (a reader that knows its refs' layout, such as the tracker's
    /// `tracker/segments/<writer>`, then pays per ref, not per version). Such a store may also
    /// answer a name whose refs are gone where its backend keeps empty directories: a caller
    /// reads each name and skips one that has no versions.
    async fn list_ref_children(&self, prefix: &RefName) -> Result<Vec<RefName>> {
        let depth = prefix.as_str().split('/').count() + 1;
        let mut out = std::collections::BTreeSet::new();
        for name in self.list_refs(Some(prefix)).await? {
            let child: Vec<&str> = name.as_str().split('/').take(depth).collect();
            if child.len() == depth {
                out.insert(RefName::new(child.join("/"))?);
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// What [`Store::ref_versions`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefVersions {
    /// Versions whose commit records exist, ascending (a gap is a lost record).
    pub present: Vec<Version>,
    /// The newest version committed, as far as the store knows: above the last present one
    /// when the newest records were lost.
    pub committed: Option<Version>,
}

impl RefVersions {
    /// Versions and what is known about them.
    pub fn new(present: Vec<Version>, committed: Option<Version>) -> Self {
        Self { present, committed }
    }

    /// The newest version with a record.
    pub fn newest_present(&self) -> Option<Version> {
        self.present.last().copied()
    }

    /// Whether the newest committed versions have no record left.
    pub fn lost_tail(&self) -> bool {
        self.committed > self.newest_present()
    }
}

/// Conveniences over [`Store`], for every implementation.
#[async_trait]
pub trait StoreExt: Store {
    /// Stores bytes already in memory.
    async fn put_bytes(&self, data: Bytes) -> Result<BlobInfo> {
        self.put_blob(futures::stream::once(async move { Ok(data) }).boxed())
            .await
    }

    /// Reads a whole blob into memory, verified.
    async fn get_bytes(&self, digest: &Digest) -> Result<Bytes> {
        let stream = self.get_blob(digest, GetOptions::default()).await?;
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
        for c in chunks {
            out.extend_from_slice(&c);
        }
        Ok(out.freeze())
    }

    /// Commits `target` as the next version after the latest one the store has now (the first
    /// version if the ref is new). Still compare-and-swap: a concurrent writer makes it fail with
    /// [`Error::Conflict`].
    async fn commit_next(&self, name: &RefName, target: Digest, message: &str) -> Result<Commit> {
        self.commit_latest(name, target, CommitOptions::default().with_message(message))
            .await
    }

    /// Like [`commit_next`](StoreExt::commit_next), with every commit option but the parent,
    /// which is the latest version now.
    async fn commit_latest(
        &self,
        name: &RefName,
        target: Digest,
        options: CommitOptions,
    ) -> Result<Commit> {
        let parent = match self.get_ref(name, RefVersion::Latest).await {
            Ok(c) => Some(c.version),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        self.commit(name, target, options.with_parent(parent)).await
    }

    /// Whether a blob is stored.
    async fn contains_blob(&self, digest: &Digest) -> Result<bool> {
        match self.head_blob(digest).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Verifies a range request against a blob size; shared by implementations.
pub fn check_range(digest: &Digest, range: &Range<u64>, size: u64) -> Result<()> {
    if range.start > range.end || range.end > size {
        return Err(Error::invalid(
            "range",
            format!(
                "{}..{} is outside blob {digest} of {size} bytes",
                range.start, range.end
            ),
        ));
    }
    Ok(())
}

macro_rules! forward_store {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<S: Store + ?Sized> Store for $ty {
            async fn put_blob(&self, data: ByteStream) -> Result<BlobInfo> {
                (**self).put_blob(data).await
            }
            async fn get_blob(&self, digest: &Digest, options: GetOptions) -> Result<ByteStream> {
                (**self).get_blob(digest, options).await
            }
            async fn head_blob(&self, digest: &Digest) -> Result<BlobInfo> {
                (**self).head_blob(digest).await
            }
            async fn list_blobs(&self) -> Result<BoxStream<'static, Result<BlobInfo>>> {
                (**self).list_blobs().await
            }
            async fn delete_blob(&self, digest: &Digest) -> Result<()> {
                (**self).delete_blob(digest).await
            }
            async fn commit(
                &self,
                name: &RefName,
                target: Digest,
                options: CommitOptions,
            ) -> Result<Commit> {
                (**self).commit(name, target, options).await
            }
            async fn get_ref(&self, name: &RefName, version: RefVersion) -> Result<Commit> {
                (**self).get_ref(name, version).await
            }
            async fn history(&self, name: &RefName) -> Result<Vec<Commit>> {
                (**self).history(name).await
            }
            async fn list_refs(&self, prefix: Option<&RefName>) -> Result<Vec<RefName>> {
                (**self).list_refs(prefix).await
            }
            async fn ref_versions(&self, name: &RefName) -> Result<RefVersions> {
                (**self).ref_versions(name).await
            }
            async fn ref_versions_after(
                &self,
                name: &RefName,
                after: Version,
            ) -> Result<RefVersions> {
                (**self).ref_versions_after(name, after).await
            }
            async fn list_ref_children(&self, prefix: &RefName) -> Result<Vec<RefName>> {
                (**self).list_ref_children(prefix).await
            }
        }
    };
}

forward_store!(Arc<S>);
forward_store!(Box<S>);
