//! Directory trees (a model folder, a report) stored as a manifest of blobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use mlops_core::store::{Commit, CommitOptions, RefVersion, Store, StoreExt};
use mlops_core::{ArtifactPath, Digest, Error, ModelArtifact, RefName, Result};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

/// The tree manifest format this crate writes and reads.
pub const TREE_FORMAT: &str = "mlops.tree/1";

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// The file's blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// A directory tree: relative paths to blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// [`TREE_FORMAT`].
    pub format: String,
    /// Free-form kind, e.g. a model flavor.
    pub kind: String,
    /// Files by path.
    pub files: BTreeMap<ArtifactPath, TreeEntry>,
}

impl Tree {
    /// Total bytes of the files.
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|e| e.size).sum()
    }
}

/// A stored tree: its manifest's digest and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredTree {
    /// Digest of the manifest blob: the tree's address.
    pub digest: Digest,
    /// The manifest.
    pub tree: Tree,
}

/// Directory trees on any [`Store`]: put a folder, get it back by digest or through a ref.
#[derive(Debug, Clone)]
pub struct Artifacts {
    store: Arc<dyn Store>,
}

/// Read buffer for streaming files into the store.
const CHUNK: usize = 1 << 20;

impl Artifacts {
    /// Trees stored in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Stores every regular file under `dir`, streamed, and the manifest listing them. Symbolic
    /// links are refused (they could point outside the tree).
    pub async fn put_dir(&self, dir: &Path, kind: &str) -> Result<StoredTree> {
        let mut files = BTreeMap::new();
        for (rel, path) in list_files(dir)? {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| Error::io("file", "open", &path, e))?;
            let shown = path.clone();
            let chunks = stream::unfold(Some(file), move |file| {
                let shown = shown.clone();
                async move {
                    let mut file = file?;
                    let mut buf = vec![0u8; CHUNK];
                    match file.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            Some((Ok(Bytes::from(buf)), Some(file)))
                        }
                        Err(e) => Some((Err(Error::io("file", "read", &shown, e)), None)),
                    }
                }
            });
            let info = self.store.put_blob(chunks.boxed()).await?;
            files.insert(
                rel,
                TreeEntry {
                    digest: info.digest,
                    size: info.size,
                },
            );
        }
        self.put_manifest(Tree {
            format: TREE_FORMAT.to_owned(),
            kind: kind.to_owned(),
            files,
        })
        .await
    }

    /// Stores an in-memory model artifact as a tree of kind `model:<flavor>`.
    pub async fn put_model(&self, artifact: &ModelArtifact) -> Result<StoredTree> {
        let mut files = BTreeMap::new();
        for (path, data) in &artifact.files {
            let info = self.store.put_bytes(data.clone()).await?;
            files.insert(
                path.clone(),
                TreeEntry {
                    digest: info.digest,
                    size: info.size,
                },
            );
        }
        self.put_manifest(Tree {
            format: TREE_FORMAT.to_owned(),
            kind: format!("model:{}", artifact.flavor),
            files,
        })
        .await
    }

    async fn put_manifest(&self, tree: Tree) -> Result<StoredTree> {
        let json = serde_json::to_vec_pretty(&tree).map_err(|e| Error::backend("serde_json", e))?;
        let digest = self.store.put_bytes(Bytes::from(json)).await?.digest;
        Ok(StoredTree { digest, tree })
    }

    /// Reads a tree's manifest.
    pub async fn tree(&self, digest: &Digest) -> Result<Tree> {
        let raw = self.store.get_bytes(digest).await?;
        let tree: Tree = serde_json::from_slice(&raw)
            .map_err(|e| Error::corrupt("tree", digest, "unreadable manifest").with_source(e))?;
        if tree.format != TREE_FORMAT {
            return Err(Error::not_supported(
                "tree format",
                format!("{:?}", tree.format),
                format!("this version reads {TREE_FORMAT}"),
            ));
        }
        Ok(tree)
    }

    /// One file of a tree, verified.
    pub async fn read_file(&self, tree: &Tree, path: &str) -> Result<Bytes> {
        let entry = tree
            .files
            .get(path)
            .ok_or_else(|| Error::not_found("artifact", path))?;
        self.store.get_bytes(&entry.digest).await
    }

    /// Reads a tree of kind `model:<flavor>` back into a [`ModelArtifact`].
    pub async fn get_model(&self, digest: &Digest) -> Result<ModelArtifact> {
        let tree = self.tree(digest).await?;
        let flavor = tree.kind.strip_prefix("model:").ok_or_else(|| {
            Error::invalid(
                "tree",
                format!("{digest} is a {:?} tree, not a model", tree.kind),
            )
        })?;
        let mut artifact = ModelArtifact::new(flavor);
        for (path, entry) in &tree.files {
            artifact
                .files
                .insert(path.clone(), self.store.get_bytes(&entry.digest).await?);
        }
        Ok(artifact)
    }

    /// Writes a tree's files under `out` (created if missing). Each file is written to a
    /// temporary name and renamed, so a failure leaves no partial file.
    pub async fn get_dir(&self, digest: &Digest, out: &Path) -> Result<Tree> {
        let tree = self.tree(digest).await?;
        for (path, entry) in &tree.files {
            // ArtifactPath has no `..`, absolute or empty segments: the target stays under `out`.
            let target: PathBuf = path
                .as_str()
                .split('/')
                .fold(out.to_path_buf(), |p, s| p.join(s));
            let parent = target.parent().unwrap_or(out);
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("output directory", "create", parent, e))?;
            let data = self.store.get_bytes(&entry.digest).await?;
            let tmp = tempfile::NamedTempFile::new_in(parent)
                .map_err(|e| Error::io("output directory", "write", parent, e))?;
            std::fs::write(tmp.path(), &data)
                .map_err(|e| Error::io("output file", "write", tmp.path(), e))?;
            tmp.persist(&target)
                .map_err(|e| Error::io("output file", "write", &target, e.error))?;
        }
        Ok(tree)
    }

    /// Commits a stored tree as the next version of `name`, retaining every file.
    pub async fn commit(
        &self,
        name: &RefName,
        stored: &StoredTree,
        message: &str,
    ) -> Result<Commit> {
        let options = CommitOptions::default()
            .with_retains(stored.tree.files.values().map(|e| e.digest))
            .with_message(message)
            .with_metadata("kind", stored.tree.kind.clone());
        self.store.commit_latest(name, stored.digest, options).await
    }

    /// The tree a ref points at.
    pub async fn resolve(&self, name: &RefName, at: RefVersion) -> Result<StoredTree> {
        let commit = self.store.get_ref(name, at).await?;
        Ok(StoredTree {
            digest: commit.target,
            tree: self.tree(&commit.target).await?,
        })
    }
}

/// Every regular file under `dir`, by relative `/` path, sorted.
fn list_files(dir: &Path) -> Result<Vec<(ArtifactPath, PathBuf)>> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io("directory", "read", dir, e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(
            "directory",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let io = |p: &Path, e: std::io::Error| Error::io("directory", "read", p, e);
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let entry = entry.map_err(|e| io(&d, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io(&path, e))?;
            if kind.is_symlink() {
                return Err(Error::invalid(
                    "directory",
                    format!(
                        "{} is a symbolic link; copy the target into the tree instead",
                        path.display()
                    ),
                ));
            }
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).map_err(|_| {
                Error::invalid(
                    "directory",
                    format!("{} escapes {}", path.display(), dir.display()),
                )
            })?;
            let parts: Option<Vec<&str>> =
                rel.components().map(|c| c.as_os_str().to_str()).collect();
            let parts = parts.ok_or_else(|| {
                Error::invalid(
                    "file name",
                    format!("{} is not valid UTF-8", path.display()),
                )
            })?;
            out.push((ArtifactPath::new(parts.join("/"))?, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Model versions registered with [`Artifacts::model_source`] as their `source` are fetched
/// from this store.
#[async_trait::async_trait]
impl mlops_core::model::ArtifactSource for Artifacts {
    async fn fetch(&self, version: &mlops_core::ModelVersion) -> Result<ModelArtifact> {
        let digest = version
            .source
            .strip_prefix(MODEL_SOURCE_PREFIX)
            .ok_or_else(|| {
                Error::not_supported(
                    "model source",
                    format!("{:?}", version.source),
                    format!(
                        "{} v{} is not in this store (expected {MODEL_SOURCE_PREFIX}<digest>)",
                        version.name, version.version
                    ),
                )
            })?
            .parse::<Digest>()
            .map_err(|_| {
                Error::invalid(
                    "model source",
                    format!("{:?} names no digest", version.source),
                )
            })?;
        self.get_model(&digest).await
    }
}

/// Stores models as trees; the source is `tree:<digest>` ([`Artifacts::model_source`]).
#[async_trait::async_trait]
impl mlops_core::model::ModelSink for Artifacts {
    async fn store_model(&self, artifact: &ModelArtifact) -> Result<String> {
        Ok(Self::model_source(&self.put_model(artifact).await?))
    }
}

/// Prefix of the `source` of model versions whose artifact is a tree in the store.
pub const MODEL_SOURCE_PREFIX: &str = "tree:";

impl Artifacts {
    /// The `source` to register for a model stored with [`put_model`](Self::put_model):
    /// `tree:<digest>`, which [`ArtifactSource::fetch`](mlops_core::model::ArtifactSource) reads.
    pub fn model_source(tree: &StoredTree) -> String {
        format!("{MODEL_SOURCE_PREFIX}{}", tree.digest)
    }
}
