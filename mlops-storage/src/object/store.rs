use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use mlops_core::store::{
    BlobInfo, ByteStream, Commit, CommitOptions, GetOptions, RefVersion, RefVersions, Store,
    check_range,
};
use mlops_core::{Digest, Error, RefName, Result, Version};
use object_store::buffered::BufWriter;
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use tokio::io::AsyncWriteExt;

use super::open::{DEFAULT_STORE, StoreUrl};
use super::tree::{self, CV_LEN, LEAF, TreeHasher};

/// Where a ref's versions live under its name: a segment no ref name can have (ref name segments
/// may not start with '.', see [`RefName`]).
const VERSIONS_DIR: &str = ".v";
/// The name prefix of the marker of a ref's newest committed version, beside the records.
const HEAD_MARKER: &str = "head-";

/// A durable [`Store`] over any `object_store` backend: a local directory (the default), memory,
/// S3 and S3-compatible servers, Azure Blob Storage or Google Cloud Storage, chosen by URL.
///
/// # Layout
///
/// ```text
/// blobs/<first 2 hex>/<64 hex>          blob content, written once, never changed
/// blobs/<first 2 hex>/<64 hex>.cvs      leaf chaining values of blobs over 1 MiB (ranged verification)
/// refs/<ref name>/.v/<20-digit version>.json   one commit record per version, created with PutMode::Create
/// refs/<ref name>/.v/head-<20-digit version>   empty marker of the newest version committed
/// staging/<uuid>                        uploads in progress (garbage if a writer died)
/// ```
///
/// # How the contract is met
///
/// - A blob is streamed to `staging/` (multipart for large ones; memory stays bounded by
///   object_store's buffer) while it is hashed, then renamed to its content address: a reader
///   never sees a partial blob, and a crashed writer leaves only staging garbage.
/// - Every read is verified. Blobs up to one leaf (1 MiB) are hashed whole; larger blobs are read
///   leaf by leaf, each leaf checked against its chaining value, and the chaining values against
///   the digest — so ranged reads are verified too, and every byte handed out has been checked.
/// - Commits are compare-and-swap by construction: version N+1 is created with
///   [`PutMode::Create`] after checking that version N exists, so of two racing writers exactly
///   one creates it; the other gets [`Error::Conflict`].
/// - A lost record is loud, not a silent rollback. After creating version N a commit leaves an
///   empty marker `head-N` (and removes `head-N-1`), which the listing every read of the latest
///   version already makes shows for free: a marker above the newest record means records were
///   lost (a partial restore, a deleted file), and reads and commits of that ref answer
///   [`Error::Corrupt`] instead of serving the older version or reusing the lost version's number
///   for other content. A crash between the record and its marker leaves version N without a
///   marker of its own (`head-N-1` still stands), so until the ref's next commit the loss of
///   record N alone would go unseen. The marker guards the newest version only: a writer
///   committing on a stale parent whose successor's record was lost could refill that number
///   (verify's lineage check still sees the different content).
pub struct ObjectStoreStore {
    pub(super) inner: Arc<dyn ObjectStore>,
    pub(super) prefix: Path,
    url: StoreUrl,
}

impl fmt::Debug for ObjectStoreStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreStore")
            .field("url", &self.url.to_string())
            .finish()
    }
}

pub(super) fn os_err(
    kind: &'static str,
    name: impl fmt::Display,
) -> impl Fn(object_store::Error) -> Error {
    let name = name.to_string();
    move |e| match e {
        object_store::Error::NotFound { .. } => Error::not_found(kind, &name).with_source(e),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            Error::conflict(kind, &name, "written concurrently by another writer").with_source(e)
        }
        object_store::Error::NotSupported { .. } => Error::not_supported(
            "operation",
            format!("on {kind} {name}"),
            "this object store backend does not offer it",
        )
        .with_source(e),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            Error::permission_denied(kind, &name, "the object store refused access").with_source(e)
        }
        other => Error::backend("object_store", other),
    }
}

impl ObjectStoreStore {
    /// Opens the store at a URL or path (see [`StoreUrl`]); `options` are object_store config
    /// keys (`aws_endpoint`, `aws_allow_http`, …) that override the environment.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Self> {
        let url = StoreUrl::parse(url)?;
        let (inner, prefix) = url.connect(options)?;
        Ok(Self { inner, prefix, url })
    }

    /// Opens a store that must exist already: like [`open`](Self::open), except that a local
    /// directory that is not there is [`Error::NotFound`] instead of a new, empty store (what
    /// commands that only read want: `--store ./typo store verify` must not say "ok").
    pub fn open_existing(url: &str, options: &[(String, String)]) -> Result<Self> {
        let url = StoreUrl::parse(url)?;
        let (inner, prefix) = url.connect_with(options, false)?;
        Ok(Self { inner, prefix, url })
    }

    /// Opens like [`open`](Self::open) after resolving option values written
    /// `secret:<name>` through `secrets` (environment, files, Vault: see `mlops-secrets`), so
    /// credentials need not sit in configuration:
    /// `aws_secret_access_key=secret:storage/s3#secret_key`.
    pub async fn open_with_secrets(
        url: &str,
        options: &[(String, String)],
        secrets: &dyn mlops_core::secret::SecretProvider,
    ) -> Result<Self> {
        let resolved = mlops_core::secret::resolve_options(options, secrets).await?;
        Self::open(url, &resolved)
    }

    /// Opens the default store, [`DEFAULT_STORE`] (`./mlops-data`).
    pub fn open_default() -> Result<Self> {
        Self::open(DEFAULT_STORE, &[])
    }

    /// Wraps an existing object_store backend; everything lives under `prefix`.
    pub fn with_backend(inner: Arc<dyn ObjectStore>, prefix: Path, url: StoreUrl) -> Self {
        Self { inner, prefix, url }
    }

    /// Where this store lives.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    pub(super) fn path<'a>(&self, parts: impl IntoIterator<Item = PathPart<'a>>) -> Path {
        parts
            .into_iter()
            .fold(self.prefix.clone(), |p, part| p.join(part))
    }

    pub(super) fn blob_path(&self, digest: &Digest) -> Path {
        let hex = digest.to_hex();
        self.path([
            PathPart::from("blobs"),
            PathPart::from(hex[..2].to_owned()),
            PathPart::from(hex),
        ])
    }

    pub(super) fn cvs_path(&self, digest: &Digest) -> Path {
        let hex = digest.to_hex();
        self.path([
            PathPart::from("blobs"),
            PathPart::from(hex[..2].to_owned()),
            PathPart::from(format!("{hex}.cvs")),
        ])
    }

    /// `refs/<name segments…>`: where a ref's records are, and the refs below it.
    fn refs_path(&self, name: Option<&RefName>) -> Path {
        let mut parts = vec![PathPart::from("refs")];
        if let Some(name) = name {
            parts.extend(
                name.as_str()
                    .split('/')
                    .map(|s| PathPart::from(s.to_owned())),
            );
        }
        self.path(parts)
    }

    fn ref_dir(&self, name: &RefName) -> Path {
        self.refs_path(Some(name)).join(VERSIONS_DIR)
    }

    fn ref_path(&self, name: &RefName, version: Version) -> Path {
        self.ref_dir(name)
            .join(format!("{:020}.json", version.get()))
    }

    fn head_path(&self, name: &RefName, version: Version) -> Path {
        self.ref_dir(name)
            .join(format!("{HEAD_MARKER}{:020}", version.get()))
    }

    /// Fault injection for tests: overwrites a stored blob's bytes with different ones of the
    /// same length, so the next read must report [`Error::Corrupt`]. Returns false when absent.
    pub async fn tamper_with(&self, digest: &Digest) -> bool {
        let path = self.blob_path(digest);
        let Ok(got) = self.inner.get(&path).await else {
            return false;
        };
        let Ok(data) = got.bytes().await else {
            return false;
        };
        let mut bad = BytesMut::from(&data[..]);
        match bad.first_mut() {
            Some(b) => *b ^= 0xff,
            None => bad.extend_from_slice(b"x"),
        }
        self.inner
            .put(&path, PutPayload::from(bad.freeze()))
            .await
            .is_ok()
    }

    async fn read_commit(&self, name: &RefName, version: Version) -> Result<Commit> {
        let path = self.ref_path(name, version);
        let shown = format!("{name}@{version}");
        let raw = self
            .inner
            .get(&path)
            .await
            .map_err(os_err("ref", &shown))?
            .bytes()
            .await
            .map_err(os_err("ref", &shown))?;
        let commit: Commit = serde_json::from_slice(&raw).map_err(|e| {
            Error::corrupt("ref", &shown, "unreadable commit record").with_source(e)
        })?;
        if commit.name != *name || commit.version != version {
            return Err(Error::corrupt(
                "ref",
                &shown,
                format!("record says {}@{}", commit.name, commit.version),
            ));
        }
        Ok(commit)
    }

    /// The versions of a ref that exist, ascending; [`Error::Corrupt`] when a marker says a newer
    /// version was committed than any record left.
    async fn versions(&self, name: &RefName) -> Result<Vec<Version>> {
        let listed = self.listed(name).await?;
        if listed.lost_tail() {
            let newest = listed.newest_present().map_or(0, Version::get);
            let head = listed.committed.map_or(0, Version::get);
            return Err(Error::corrupt(
                "ref",
                name,
                format!(
                    "version {head} was committed but the newest record left is {newest}: \
                     records were lost; `mlops store verify` lists the damage"
                ),
            ));
        }
        Ok(listed.present)
    }

    /// The records and the head marker a listing of the ref shows, unjudged.
    async fn listed(&self, name: &RefName) -> Result<RefVersions> {
        let dir = self.ref_dir(name);
        let metas: Vec<object_store::ObjectMeta> = self
            .inner
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(os_err("ref", name))?;
        self.judge_listing(name, &metas, None).await
    }

    /// The latest version as its head marker says, without listing the records: the marker's
    /// record is read, and the next version's must not exist (a marker lags its record by a
    /// moment, and may be missing when writing it failed). `None` when that does not settle
    /// it — no marker, its record missing (a loss the full listing reports), or a newer
    /// record — and the caller lists.
    async fn latest_by_marker(&self, name: &RefName) -> Result<Option<Commit>> {
        // Records (`0…`) sort before `head-`, so the listing starts at the markers.
        let offset = self.ref_dir(name).join(HEAD_MARKER);
        let metas = self.list_records_after(name, &offset).await?;
        let Some(head) = newest_marker(&metas) else {
            return Ok(None);
        };
        let commit = match self.read_commit(name, head).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if self.exists(&self.ref_path(name, head.next()?)).await? {
            return Ok(None);
        }
        Ok(Some(commit))
    }

    /// Like [`listed`](Self::listed), for the records above `after` only: record names are
    /// zero-padded version numbers, so a listing from the key of `after` skips every older one
    /// (S3 and GCS skip them server-side; a local directory reads their names but stats none),
    /// and head markers (`head-…`) sort after every record.
    async fn listed_after(&self, name: &RefName, after: Version) -> Result<RefVersions> {
        let metas = self
            .list_records_after(name, &self.ref_path(name, after))
            .await?;
        self.judge_listing(name, &metas, Some(after)).await
    }

    /// The files of a ref's `.v` directory whose keys sort after `offset`.
    async fn list_records_after(
        &self,
        name: &RefName,
        offset: &Path,
    ) -> Result<Vec<object_store::ObjectMeta>> {
        self.inner
            .list_with_offset(Some(&self.ref_dir(name)), offset)
            .try_collect()
            .await
            .map_err(os_err("ref", name))
    }

    /// The records (above `after`, when given) and the newest head marker of a listing.
    async fn judge_listing(
        &self,
        name: &RefName,
        metas: &[object_store::ObjectMeta],
        after: Option<Version>,
    ) -> Result<RefVersions> {
        let mut present: Vec<Version> = metas
            .iter()
            .filter_map(|m| m.location.filename())
            .filter_map(|f| f.strip_suffix(".json"))
            .filter_map(version_number)
            .filter(|v| after.is_none_or(|a| *v > a))
            .collect();
        present.sort();
        let head = newest_marker(metas);
        if let Some(head) = head
            && present.last().is_none_or(|newest| *newest < head)
            && after.is_none_or(|a| head > a)
            // A listing is no snapshot: it can miss a record a racing writer created just
            // before its marker. Only a record that is really absent is a loss.
            && self.exists(&self.ref_path(name, head)).await?
        {
            present.push(head);
        }
        let committed = present.last().copied().max(head);
        Ok(RefVersions::new(present, committed))
    }

    /// Leaves the marker of `version` and removes its parent's. Best effort: the commit is
    /// already durable, and a missing or stale marker only weakens loss detection for this ref
    /// until its next commit (a stale lower marker is ignored: the highest one counts).
    async fn mark_head(&self, name: &RefName, version: Version, parent: Option<Version>) {
        let put = self
            .inner
            .put(&self.head_path(name, version), PutPayload::new())
            .await;
        if let Err(e) = put {
            tracing::warn!(%name, %version, error = %e, "could not write the ref's head marker");
            return;
        }
        if let Some(p) = parent {
            match self.inner.delete(&self.head_path(name, p)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::debug!(%name, error = %e, "could not remove an old head marker"),
            }
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool> {
        match self.inner.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::backend("object_store", e)),
        }
    }

    /// An upload failure; a "not found" on a write means the bucket or container is missing.
    fn upload_err(&self, e: object_store::Error) -> Error {
        match e {
            e @ object_store::Error::NotFound { .. } => Error::not_found(
                "bucket",
                format!("{} (create the bucket or container first)", self.url),
            )
            .with_source(e),
            other => os_err("blob", "upload")(other),
        }
    }

    async fn stage(
        &self,
        mut data: ByteStream,
        staging: &Path,
    ) -> Result<(Digest, u64, Vec<[u8; 32]>)> {
        // 8 MiB parts (S3's minimum is 5 MiB), at most 4 in flight: memory stays bounded whatever
        // the blob's size.
        let mut writer = BufWriter::with_capacity(self.inner.clone(), staging.clone(), 8 << 20)
            .with_max_concurrency(4);
        let mut hasher = TreeHasher::new();
        let mut size = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if let Err(e) = writer.put(chunk).await {
                let _ = writer.abort().await;
                return Err(self.upload_err(e));
            }
        }
        if let Err(e) = writer.shutdown().await {
            // BufWriter reports object_store errors through io::Error; recover the original.
            let e = match e.downcast::<object_store::Error>() {
                Ok(os) => self.upload_err(os),
                Err(io) => Error::backend("object_store", io),
            };
            return Err(e);
        }
        let (digest, cvs) = hasher.finalize();
        Ok((digest, size, cvs))
    }

    /// Streams `range` of a blob larger than one leaf, verifying each leaf before yielding it.
    ///
    /// Leaves are fetched with ranged GETs, a few at a time: on a local disk that reads each leaf
    /// in one call, and on S3 it keeps several requests in flight.
    async fn verified_leaves(
        &self,
        digest: Digest,
        size: u64,
        cvs: Vec<[u8; 32]>,
        range: std::ops::Range<u64>,
    ) -> Result<ByteStream> {
        const IN_FLIGHT: usize = 4;
        let first = range.start / LEAF;
        let last = (range.end - 1) / LEAF;
        let inner = self.inner.clone();
        let path = self.blob_path(&digest);
        let cvs = Arc::new(cvs);
        Ok(stream::iter(first..=last)
            .map(move |leaf| {
                let (inner, path, cvs) = (inner.clone(), path.clone(), cvs.clone());
                let range = range.clone();
                async move {
                    let start = leaf * LEAF;
                    let end = (start + LEAF).min(size);
                    let data = inner
                        .get_range(&path, start..end)
                        .await
                        .map_err(os_err("blob", digest))?;
                    let index = usize::try_from(leaf).unwrap_or(usize::MAX);
                    if data.len() as u64 != end - start
                        || cvs.get(index) != Some(&tree::leaf_cv(leaf, &data))
                    {
                        return Err(Error::corrupt(
                            "blob",
                            digest,
                            format!("bytes {start}..{end} do not match the digest"),
                        ));
                    }
                    let from = range.start.max(start) - start;
                    let to = range.end.min(end) - start;
                    Ok(data.slice(from as usize..to as usize))
                }
            })
            .buffered(IN_FLIGHT)
            .boxed())
    }
}

#[async_trait]
impl Store for ObjectStoreStore {
    async fn put_blob(&self, data: ByteStream) -> Result<BlobInfo> {
        let staging = self.path([
            PathPart::from("staging"),
            PathPart::from(mlops_core::id::random_uuid().simple().to_string()),
        ]);
        let (digest, size, cvs) = self.stage(data, &staging).await?;
        let final_path = self.blob_path(&digest);
        // When the same content is already stored, the rename below still replaces it (with
        // identical bytes): that refreshes its modification time, so a concurrent `gc` whose grace
        // period protects fresh blobs cannot delete a blob a writer is about to commit.
        if !cvs.is_empty() {
            // Chaining values first: a visible blob always has them. They are a pure function of
            // the content, so racing writers write identical bytes.
            let raw: Vec<u8> = cvs.concat();
            self.inner
                .put(&self.cvs_path(&digest), PutPayload::from(raw))
                .await
                .map_err(os_err("blob", digest))?;
        }
        self.inner
            .rename(&staging, &final_path)
            .await
            .map_err(os_err("blob", digest))?;
        Ok(BlobInfo { digest, size })
    }

    async fn get_blob(&self, digest: &Digest, options: GetOptions) -> Result<ByteStream> {
        let path = self.blob_path(digest);
        let meta = self
            .inner
            .head(&path)
            .await
            .map_err(os_err("blob", digest))?;
        let size = meta.size;
        let range = options.range.unwrap_or(0..size);
        check_range(digest, &range, size)?;
        if tree::leaf_count(size) == 1 {
            let data = self
                .inner
                .get(&path)
                .await
                .map_err(os_err("blob", digest))?
                .bytes()
                .await
                .map_err(os_err("blob", digest))?;
            if Digest::of(&data) != *digest {
                return Err(Error::corrupt(
                    "blob",
                    digest,
                    "content does not match its digest",
                ));
            }
            let data = data.slice(range.start as usize..range.end as usize);
            return Ok(stream::once(async move { Ok(data) }).boxed());
        }
        let raw = match self.inner.get(&self.cvs_path(digest)).await {
            Ok(r) => r.bytes().await.map_err(os_err("blob", digest))?,
            Err(e @ object_store::Error::NotFound { .. }) => {
                return Err(
                    Error::corrupt("blob", digest, "its chaining values are missing")
                        .with_source(e),
                );
            }
            Err(e) => return Err(os_err("blob", digest)(e)),
        };
        let cvs = tree::decode_cvs(&raw)
            .filter(|c| c.len() as u64 == tree::leaf_count(size))
            .ok_or_else(|| Error::corrupt("blob", digest, "its chaining values are malformed"))?;
        if tree::root_from_cvs(&cvs) != Some(*digest) {
            return Err(Error::corrupt(
                "blob",
                digest,
                "its chaining values do not match the digest",
            ));
        }
        debug_assert_eq!(raw.len(), cvs.len() * CV_LEN);
        if range.is_empty() {
            return Ok(stream::empty().boxed());
        }
        self.verified_leaves(*digest, size, cvs, range).await
    }

    async fn head_blob(&self, digest: &Digest) -> Result<BlobInfo> {
        let meta = self
            .inner
            .head(&self.blob_path(digest))
            .await
            .map_err(os_err("blob", digest))?;
        Ok(BlobInfo {
            digest: *digest,
            size: meta.size,
        })
    }

    async fn list_blobs(&self) -> Result<BoxStream<'static, Result<BlobInfo>>> {
        let prefix = self.path([PathPart::from("blobs")]);
        let listing = self.inner.list(Some(&prefix));
        Ok(listing
            .map_err(|e| Error::backend("object_store", e))
            .try_filter_map(|meta| async move {
                Ok(meta
                    .location
                    .filename()
                    .and_then(|f| f.parse::<Digest>().ok())
                    .map(|digest| BlobInfo {
                        digest,
                        size: meta.size,
                    }))
            })
            .boxed())
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        for path in [self.blob_path(digest), self.cvs_path(digest)] {
            match self.inner.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(os_err("blob", digest)(e)),
            }
        }
        Ok(())
    }

    async fn commit(
        &self,
        name: &RefName,
        target: Digest,
        options: CommitOptions,
    ) -> Result<Commit> {
        for digest in std::iter::once(&target).chain(&options.retains) {
            if !self.exists(&self.blob_path(digest)).await? {
                return Err(Error::not_found("blob", digest));
            }
        }
        let now = mlops_core::time::now_ms();
        let (version, timestamp_ms) = match options.parent {
            None => (Version::FIRST, now),
            Some(parent) => {
                let prev = match self.read_commit(name, parent).await {
                    Ok(c) => c,
                    Err(e) if e.is_not_found() => {
                        return Err(Error::conflict(
                            "ref",
                            name,
                            format!(
                                "expected version {parent} to be the latest, but it does not exist"
                            ),
                        ));
                    }
                    Err(e) => return Err(e),
                };
                // Time travel needs commit times that never go backwards within a ref.
                (parent.next()?, prev.timestamp_ms.max(now))
            }
        };
        // The marker of this version exists when it was committed before: by a writer that won
        // the race (its record exists: a conflict), or before a loss (it does not: corruption).
        if self.exists(&self.head_path(name, version)).await? {
            if self.exists(&self.ref_path(name, version)).await? {
                let expected = options
                    .parent
                    .map_or("no version".to_owned(), |p| format!("version {p}"));
                return Err(Error::conflict(
                    "ref",
                    name,
                    format!("expected {expected} to be the latest, but version {version} exists"),
                ));
            }
            return Err(Error::corrupt(
                "ref",
                name,
                format!(
                    "version {version} was committed before but its record is missing: \
                     records were lost; `mlops store verify` lists the damage"
                ),
            ));
        }
        let commit = Commit {
            name: name.clone(),
            version,
            target,
            retains: options.retains,
            timestamp_ms,
            message: options.message,
            metadata: options.metadata,
        };
        let json = serde_json::to_vec(&commit).map_err(|e| Error::backend("serde_json", e))?;
        let put = self
            .inner
            .put_opts(
                &self.ref_path(name, version),
                PutPayload::from(json),
                PutMode::Create.into(),
            )
            .await;
        match put {
            Ok(_) => {
                self.mark_head(name, version, options.parent).await;
                Ok(commit)
            }
            Err(
                e @ (object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }),
            ) => {
                let expected = options
                    .parent
                    .map_or("no version".to_owned(), |p| format!("version {p}"));
                Err(Error::conflict(
                    "ref",
                    name,
                    format!("expected {expected} to be the latest, but version {version} exists"),
                )
                .with_source(e))
            }
            Err(e) => Err(os_err("ref", name)(e)),
        }
    }

    async fn get_ref(&self, name: &RefName, version: RefVersion) -> Result<Commit> {
        match version {
            RefVersion::Exact(v) => match self.read_commit(name, v).await {
                // A version at or below one committed since was made once: its record is lost
                // (corruption), not a version that was never made (a caller's mistake).
                Err(e) if e.is_not_found() => match self.listed(name).await {
                    // Created between the read and the listing: read it again.
                    Ok(listed) if listed.present.contains(&v) => self.read_commit(name, v).await,
                    Ok(listed) if listed.committed.is_some_and(|c| c >= v) => Err(Error::corrupt(
                        "ref",
                        format!("{name}@{v}"),
                        format!(
                            "the commit record is missing but version {} was committed: records were lost; `mlops store verify` lists the damage",
                            listed.committed.map_or(v, |c| c)
                        ),
                    )),
                    _ => Err(e),
                },
                other => other,
            },
            RefVersion::Latest => {
                if let Some(commit) = self.latest_by_marker(name).await? {
                    return Ok(commit);
                }
                let latest = self
                    .versions(name)
                    .await?
                    .pop()
                    .ok_or_else(|| Error::not_found("ref", name))?;
                self.read_commit(name, latest).await
            }
            RefVersion::AsOf(ts) => {
                for v in self.versions(name).await?.into_iter().rev() {
                    let c = self.read_commit(name, v).await?;
                    if c.timestamp_ms <= ts {
                        return Ok(c);
                    }
                }
                Err(Error::not_found("ref", format!("{name} as of {ts}")))
            }
        }
    }

    async fn history(&self, name: &RefName) -> Result<Vec<Commit>> {
        let versions = self.versions(name).await?;
        if versions.is_empty() {
            return Err(Error::not_found("ref", name));
        }
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            out.push(self.read_commit(name, v).await?);
        }
        Ok(out)
    }

    async fn ref_versions(&self, name: &RefName) -> Result<RefVersions> {
        self.listed(name).await
    }

    async fn ref_versions_after(&self, name: &RefName, after: Version) -> Result<RefVersions> {
        self.listed_after(name, after).await
    }

    async fn list_ref_children(&self, prefix: &RefName) -> Result<Vec<RefName>> {
        let dir = self.refs_path(Some(prefix));
        let listing = match self.inner.list_with_delimiter(Some(&dir)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(Error::backend("object_store", e)),
        };
        let mut out = BTreeSet::new();
        for child in listing.common_prefixes {
            let Some(last) = child.filename() else {
                continue;
            };
            let segment = decode(last);
            // `.v` holds the versions of `prefix` itself, which is no child of it.
            if segment == VERSIONS_DIR {
                continue;
            }
            if let Ok(name) = RefName::new(format!("{prefix}/{segment}")) {
                out.insert(name);
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn list_refs(&self, prefix: Option<&RefName>) -> Result<Vec<RefName>> {
        let root = self.refs_path(prefix);
        let skip = self.prefix.parts().count() + 1;
        let metas: Vec<object_store::ObjectMeta> = self
            .inner
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| Error::backend("object_store", e))?;
        let mut names = BTreeSet::new();
        for meta in metas {
            let parts: Vec<String> = meta
                .location
                .parts()
                .skip(skip)
                .map(|p| decode(p.as_ref()))
                .collect();
            // <name segments…>/.v/<version>.json, or only a head marker when every record of
            // the ref was lost (still a ref: reads of it answer Corrupt, verify reports it).
            if let [name @ .., dir, file] = parts.as_slice()
                && dir == VERSIONS_DIR
                && (file.ends_with(".json") || file.starts_with(HEAD_MARKER))
                && let Ok(name) = RefName::new(name.join("/"))
            {
                names.insert(name);
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// Undoes object_store's percent-encoding of path parts.
/// A record's or marker's zero-padded version number.
fn version_number(n: &str) -> Option<Version> {
    n.parse::<u64>().ok().and_then(|n| Version::new(n).ok())
}

/// The highest head marker among a ref's listed files.
fn newest_marker(metas: &[object_store::ObjectMeta]) -> Option<Version> {
    metas
        .iter()
        .filter_map(|m| m.location.filename())
        .filter_map(|f| f.strip_prefix(HEAD_MARKER))
        .filter_map(version_number)
        .max()
}

fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}
