use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use mlops_core::store::{
    BlobInfo, ByteStream, Commit, CommitOptions, GetOptions, RefVersion, Store, check_range,
};
use mlops_core::{Digest, Digester, Error, RefName, Result, Version};

use super::lock;

#[derive(Debug, Default)]
struct State {
    blobs: HashMap<Digest, Bytes>,
    refs: BTreeMap<RefName, Vec<Commit>>,
}

/// A [`Store`] in memory: the reference semantics for durable stores. Nothing survives the
/// process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fault injection for tests: flips the first byte of a stored blob (or appends one to an
    /// empty blob) so that the next read must report [`Error::Corrupt`]. Returns false when the
    /// blob is absent.
    pub fn tamper_with(&self, digest: &Digest) -> bool {
        let mut state = lock(&self.state);
        let Some(data) = state.blobs.get_mut(digest) else {
            return false;
        };
        let mut bad = BytesMut::from(&data[..]);
        match bad.first_mut() {
            Some(b) => *b ^= 0xff,
            None => bad.extend_from_slice(b"x"),
        }
        *data = bad.freeze();
        true
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_blob(&self, mut data: ByteStream) -> Result<BlobInfo> {
        let mut buf = BytesMut::new();
        let mut hasher = Digester::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
        }
        let info = BlobInfo {
            digest: hasher.finalize(),
            size: buf.len() as u64,
        };
        lock(&self.state)
            .blobs
            .entry(info.digest)
            .or_insert_with(|| buf.freeze());
        Ok(info)
    }

    async fn get_blob(&self, digest: &Digest, options: GetOptions) -> Result<ByteStream> {
        let data = lock(&self.state)
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| Error::not_found("blob", digest))?;
        if let Some(range) = &options.range {
            check_range(digest, range, data.len() as u64)?;
        }
        if Digest::of(&data) != *digest {
            return Err(Error::corrupt(
                "blob",
                digest,
                "content does not match its digest",
            ));
        }
        let data = match options.range {
            // Both ends were checked against the length above.
            Some(r) => data.slice(r.start as usize..r.end as usize),
            None => data,
        };
        Ok(stream::once(async move { Ok(data) }).boxed())
    }

    async fn head_blob(&self, digest: &Digest) -> Result<BlobInfo> {
        lock(&self.state)
            .blobs
            .get(digest)
            .map(|d| BlobInfo {
                digest: *digest,
                size: d.len() as u64,
            })
            .ok_or_else(|| Error::not_found("blob", digest))
    }

    async fn list_blobs(&self) -> Result<BoxStream<'static, Result<BlobInfo>>> {
        let infos: Vec<Result<BlobInfo>> = lock(&self.state)
            .blobs
            .iter()
            .map(|(d, b)| {
                Ok(BlobInfo {
                    digest: *d,
                    size: b.len() as u64,
                })
            })
            .collect();
        Ok(stream::iter(infos).boxed())
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        lock(&self.state).blobs.remove(digest);
        Ok(())
    }

    async fn commit(
        &self,
        name: &RefName,
        target: Digest,
        options: CommitOptions,
    ) -> Result<Commit> {
        let mut state = lock(&self.state);
        if let Some(missing) = std::iter::once(&target)
            .chain(&options.retains)
            .find(|d| !state.blobs.contains_key(*d))
        {
            return Err(Error::not_found("blob", missing));
        }
        let history = state.refs.entry(name.clone()).or_default();
        let latest = history.last().map(|c| c.version);
        if latest != options.parent {
            let show =
                |v: Option<Version>| v.map_or("no version".to_owned(), |v| format!("version {v}"));
            return Err(Error::conflict(
                "ref",
                name,
                format!(
                    "expected {} to be the latest, found {}",
                    show(options.parent),
                    show(latest)
                ),
            ));
        }
        let version = match latest {
            Some(v) => v.next()?,
            None => Version::FIRST,
        };
        // Time travel needs commit times that never go backwards within a ref.
        let now = mlops_core::time::now_ms();
        let timestamp_ms = history.last().map_or(now, |c| c.timestamp_ms.max(now));
        let commit = Commit {
            name: name.clone(),
            version,
            target,
            retains: options.retains,
            timestamp_ms,
            message: options.message,
            metadata: options.metadata,
        };
        history.push(commit.clone());
        Ok(commit)
    }

    async fn get_ref(&self, name: &RefName, version: RefVersion) -> Result<Commit> {
        let state = lock(&self.state);
        let history = state
            .refs
            .get(name)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::not_found("ref", name))?;
        let found = match version {
            RefVersion::Latest => history.last(),
            RefVersion::Exact(v) => history.iter().find(|c| c.version == v),
            RefVersion::AsOf(ts) => history.iter().rev().find(|c| c.timestamp_ms <= ts),
        };
        found.cloned().ok_or_else(|| {
            let which = match version {
                RefVersion::Latest => String::new(),
                RefVersion::Exact(v) => format!("@{v}"),
                RefVersion::AsOf(ts) => format!(" as of {ts}"),
            };
            Error::not_found("ref", format!("{name}{which}"))
        })
    }

    async fn history(&self, name: &RefName) -> Result<Vec<Commit>> {
        lock(&self.state)
            .refs
            .get(name)
            .filter(|h| !h.is_empty())
            .cloned()
            .ok_or_else(|| Error::not_found("ref", name))
    }

    async fn list_refs(&self, prefix: Option<&RefName>) -> Result<Vec<RefName>> {
        let state = lock(&self.state);
        Ok(state
            .refs
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(n, _)| n)
            .filter(|n| {
                prefix.is_none_or(|p| {
                    n.as_str() == p.as_str()
                        || n.as_str()
                            .strip_prefix(p.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .cloned()
            .collect())
    }
}
