//! A tamper-evident decision log: OPA's decision-log fields, hash-chained, kept in a [`Store`].
//!
//! # Layout
//!
//! A log is one ref (default [`DEFAULT_LOG`]). Each [`flush`](DecisionLog::flush) writes the
//! pending entries as one JSON Lines blob (a *segment*) and commits it as the ref's next version,
//! so the ref's history is the log in order. Every entry carries `seq` (0, 1, 2, … across
//! segments), `prev_hash` (the previous entry's `hash`; 64 zeros for the first) and `hash`:
//! blake3 of the entry serialised with `hash` empty.
//!
//! # What verification detects
//!
//! [`verify`] re-reads every segment: a changed byte in a stored blob fails the store's own
//! digest check; an entry edited (even with its own hash recomputed), deleted, inserted or moved
//! breaks `seq` or the `prev_hash` link of the entry after it. Cutting entries off the *end*
//! leaves a consistent shorter chain: compare [`LogHead`]s you kept elsewhere
//! ([`DecisionLog::head`], [`VerifyLogReport::head`]) to detect that, as with any hash chain.
//!
//! # Concurrency and crashes
//!
//! Entries are chained in memory as they are recorded and written by `flush`; a writer that
//! loses a commit race to another process re-chains its pending entries on top of the new tail
//! and retries, so the log stays one chain. A crash loses only entries not yet flushed, never
//! the chain: a segment is visible only once its commit lands.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use mlops_core::policy::{Decision, PolicyEngine, PolicyQuery};
use mlops_core::store::{CommitOptions, RefVersion, Store, StoreExt};
use mlops_core::{Error, RefName, Result, Version};
use serde::{Deserialize, Serialize};

/// The ref a log lives under unless another is named.
pub const DEFAULT_LOG: &str = "policy/decisions";

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// OPA's `bundles` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// The policy revision that decided.
    pub revision: String,
}

/// One decision, with OPA's decision-log fields and the chain links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// The decision's id.
    pub decision_id: String,
    /// The decision path, slash-separated as OPA logs it (`mlops/governance`).
    pub path: String,
    /// The input, with masked fields removed.
    pub input: serde_json::Value,
    /// The result document.
    pub result: serde_json::Value,
    /// Whether the action was allowed.
    pub allowed: bool,
    /// Deny reasons.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// When, RFC 3339 with nanoseconds, UTC.
    pub timestamp: String,
    /// The policy revision, under the bundle name `mlops`.
    #[serde(default)]
    pub bundles: BTreeMap<String, BundleInfo>,
    /// Labels of the writer (OPA's `labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// JSON pointers of the fields removed before logging (OPA's `erased`).
    #[serde(default)]
    pub erased: Vec<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// blake3 of this entry serialised with `hash` empty, hex.
    pub hash: String,
}

impl LogEntry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> Result<String> {
        let mut copy = self.clone();
        copy.hash.clear();
        let bytes = serde_json::to_vec(&copy).map_err(|e| Error::backend("serde_json", e))?;
        Ok(blake3::hash(&bytes).to_hex().to_string())
    }
}

/// The end of a log: how many entries and the last hash. Keep it elsewhere to detect truncation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    /// Number of entries.
    pub entries: u64,
    /// Hash of the last entry ([`GENESIS_HASH`] when empty).
    pub hash: String,
}

/// Options of a [`DecisionLog`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogOptions {
    /// JSON pointers (`/input/user/token`, `/result/secret`) removed before an entry is logged;
    /// OPA's `erased`. Pointers must start with `/input` or `/result`.
    pub erase: Vec<String>,
    /// Labels stamped on every entry.
    pub labels: BTreeMap<String, String>,
}

impl LogOptions {
    /// Removes the field at `pointer` before logging.
    pub fn erase(mut self, pointer: impl Into<String>) -> Self {
        self.erase.push(pointer.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

#[derive(Debug)]
struct Pending {
    entries: Vec<LogEntry>,
    /// The log's version the pending entries follow.
    base: Option<Version>,
    /// Hash and next seq after the last entry (stored or pending).
    tail_hash: String,
    next_seq: u64,
}

/// A hash-chained decision log in a [`Store`].
pub struct DecisionLog {
    store: Arc<dyn Store>,
    name: RefName,
    options: LogOptions,
    pending: Mutex<Pending>,
    flushing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionLog")
            .field("name", &self.name)
            .field("erase", &self.options.erase)
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// Opens (or starts) the log at ref `name`.
    pub async fn open(store: Arc<dyn Store>, name: &RefName, options: LogOptions) -> Result<Self> {
        for p in &options.erase {
            if !(p.starts_with("/input") || p.starts_with("/result")) {
                return Err(Error::invalid(
                    "erase pointer",
                    format!("{p:?} must start with /input or /result"),
                ));
            }
        }
        let (base, head) = tail(store.as_ref(), name).await?;
        Ok(Self {
            store,
            name: name.clone(),
            options,
            pending: Mutex::new(Pending {
                entries: Vec::new(),
                base,
                tail_hash: head.hash,
                next_seq: head.entries,
            }),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    /// Opens the log at [`DEFAULT_LOG`].
    pub async fn open_default(store: Arc<dyn Store>) -> Result<Self> {
        let name = RefName::new(DEFAULT_LOG)?;
        Self::open(store, &name, LogOptions::default()).await
    }

    /// The ref the log lives under.
    pub fn name(&self) -> &RefName {
        &self.name
    }

    /// The head including entries not yet flushed.
    pub fn head(&self) -> LogHead {
        let p = self.lock();
        LogHead {
            entries: p.next_seq,
            hash: p.tail_hash.clone(),
        }
    }

    /// Entries recorded but not yet flushed.
    pub fn pending(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a decision (chained in memory; durable after [`flush`](Self::flush)).
    pub fn record(&self, query: &PolicyQuery, decision: &Decision) -> Result<()> {
        let mut doc = serde_json::json!({"input": query.input, "result": decision.result});
        let mut erased = Vec::new();
        for pointer in &self.options.erase {
            if remove_pointer(&mut doc, pointer) {
                erased.push(pointer.clone());
            }
        }
        let (input, result) = match doc {
            serde_json::Value::Object(mut o) => (
                o.remove("input").unwrap_or_default(),
                o.remove("result").unwrap_or_default(),
            ),
            _ => (serde_json::Value::Null, serde_json::Value::Null),
        };
        let mut bundles = BTreeMap::new();
        if let Some(revision) = &decision.revision {
            bundles.insert(
                "mlops".to_string(),
                BundleInfo {
                    revision: revision.clone(),
                },
            );
        }
        let path = query
            .path
            .trim()
            .trim_start_matches("data.")
            .replace('.', "/");
        let mut p = self.lock();
        let mut entry = LogEntry {
            seq: p.next_seq,
            decision_id: decision.decision_id.clone(),
            path,
            input,
            result,
            allowed: decision.allowed,
            reasons: decision.reasons.clone(),
            timestamp: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            bundles,
            labels: self.options.labels.clone(),
            erased,
            prev_hash: p.tail_hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash()?;
        p.tail_hash = entry.hash.clone();
        p.next_seq += 1;
        p.entries.push(entry);
        Ok(())
    }

    /// Writes every pending entry as one segment. Returns how many were written. On an error
    /// the entries stay pending, so a later flush writes them.
    pub async fn flush(&self) -> Result<usize> {
        let _one_at_a_time = self.flushing.lock().await;
        for _attempt in 0..64 {
            let (batch, base) = {
                let p = self.lock();
                if p.entries.is_empty() {
                    return Ok(0);
                }
                (p.entries.clone(), p.base)
            };
            let mut body = Vec::new();
            for e in &batch {
                serde_json::to_writer(&mut body, e).map_err(|e| Error::backend("serde_json", e))?;
                body.push(b'\n');
            }
            let blob = self.store.put_bytes(Bytes::from(body)).await?;
            let (first, last) = match (batch.first(), batch.last()) {
                (Some(f), Some(l)) => (f, l),
                _ => return Ok(0),
            };
            let options = CommitOptions::default()
                .with_parent(base)
                .with_message(format!("{} decisions", batch.len()))
                .with_metadata("first_seq", first.seq.to_string())
                .with_metadata("entries", (last.seq + 1).to_string())
                .with_metadata("head", last.hash.clone());
            match self.store.commit(&self.name, blob.digest, options).await {
                Ok(commit) => {
                    let mut p = self.lock();
                    p.entries.drain(..batch.len());
                    p.base = Some(commit.version);
                    return Ok(batch.len());
                }
                Err(e) if e.is_conflict() => {
                    // Another writer appended: chain what is pending onto its tail.
                    let (base, head) = tail(self.store.as_ref(), &self.name).await?;
                    let mut p = self.lock();
                    p.base = base;
                    let mut prev = head.hash;
                    let mut seq = head.entries;
                    for entry in &mut p.entries {
                        entry.seq = seq;
                        entry.prev_hash = prev;
                        entry.hash = entry.compute_hash()?;
                        prev = entry.hash.clone();
                        seq += 1;
                    }
                    p.tail_hash = prev;
                    p.next_seq = seq;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(
            "decision log",
            &self.name,
            "gave up after 64 commit races with other writers",
        ))
    }

    /// Every flushed entry, in order (not verified: use [`verify`] for that).
    pub async fn entries(&self) -> Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        for commit in history(self.store.as_ref(), &self.name).await? {
            let bytes = self.store.get_bytes(&commit.target).await?;
            for (line, text) in bytes.split(|b| *b == b'\n').enumerate() {
                if text.is_empty() {
                    continue;
                }
                let entry: LogEntry = serde_json::from_slice(text).map_err(|e| {
                    Error::corrupt(
                        "decision log",
                        &self.name,
                        format!("segment {} line {}", commit.version, line + 1),
                    )
                    .with_source(e)
                })?;
                out.push(entry);
            }
        }
        Ok(out)
    }
}

async fn history(store: &dyn Store, name: &RefName) -> Result<Vec<mlops_core::Commit>> {
    match store.history(name).await {
        Ok(h) => Ok(h),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The latest version and head of the log as stored.
async fn tail(store: &dyn Store, name: &RefName) -> Result<(Option<Version>, LogHead)> {
    let commit = match store.get_ref(name, RefVersion::Latest).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => {
            return Ok((
                None,
                LogHead {
                    entries: 0,
                    hash: GENESIS_HASH.to_string(),
                },
            ));
        }
        Err(e) => return Err(e),
    };
    let bytes = store.get_bytes(&commit.target).await?;
    let last = bytes
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| Error::corrupt("decision log", name, "the latest segment is empty"))?;
    let entry: LogEntry = serde_json::from_slice(last)
        .map_err(|e| Error::corrupt("decision log", name, "latest segment").with_source(e))?;
    Ok((
        Some(commit.version),
        LogHead {
            entries: entry.seq + 1,
            hash: entry.hash,
        },
    ))
}

/// Removes the value at a JSON pointer; true when something was removed.
fn remove_pointer(doc: &mut serde_json::Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let target = if parent.is_empty() {
        Some(doc)
    } else {
        doc.pointer_mut(parent)
    };
    match target {
        Some(serde_json::Value::Object(o)) => o.remove(&last).is_some(),
        Some(serde_json::Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Where verification found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadEntry {
    /// The segment (the log ref's version).
    pub segment: u64,
    /// 1-based line in the segment (0 when the whole segment is unreadable).
    pub line: usize,
    /// The entry's `seq` as stored, when readable.
    pub seq: Option<u64>,
    /// The entry's decision id, when readable.
    pub decision_id: Option<String>,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} line {}", self.segment, self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq}")?;
            if let Some(id) = &self.decision_id {
                write!(f, ", decision {id}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyLogReport {
    /// Segments read.
    pub segments: u64,
    /// Entries that verified, before the first bad one.
    pub verified: u64,
    /// The head of the verified chain.
    pub head: LogHead,
    /// The first bad entry, if any.
    pub first_bad: Option<BadEntry>,
}

impl VerifyLogReport {
    /// True when every entry verified.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Verifies the chain of the log at `name`, stopping at the first bad entry.
pub async fn verify(store: &dyn Store, name: &RefName) -> Result<VerifyLogReport> {
    let mut report = VerifyLogReport {
        segments: 0,
        verified: 0,
        head: LogHead {
            entries: 0,
            hash: GENESIS_HASH.to_string(),
        },
        first_bad: None,
    };
    let commits = store.history(name).await?;
    for commit in commits {
        report.segments += 1;
        let segment = commit.version.get();
        let bytes = match store.get_bytes(&commit.target).await {
            Ok(b) => b,
            Err(e) if e.is_corrupt() || e.is_not_found() => {
                report.first_bad = Some(BadEntry {
                    segment,
                    line: 0,
                    seq: None,
                    decision_id: None,
                    problem: format!("segment unreadable: {e}"),
                });
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        for (i, text) in bytes.split(|b| *b == b'\n').enumerate() {
            if text.is_empty() {
                continue;
            }
            let bad = |seq, id, problem: String| BadEntry {
                segment,
                line: i + 1,
                seq,
                decision_id: id,
                problem,
            };
            let entry: LogEntry = match serde_json::from_slice(text) {
                Ok(e) => e,
                Err(e) => {
                    report.first_bad = Some(bad(None, None, format!("not a log entry: {e}")));
                    return Ok(report);
                }
            };
            let id = Some(entry.decision_id.clone());
            let problem = if entry.seq != report.head.entries {
                Some(format!(
                    "seq is {}, expected {} (an entry was removed, inserted or moved)",
                    entry.seq, report.head.entries
                ))
            } else if entry.prev_hash != report.head.hash {
                Some("prev_hash does not match the previous entry's hash (an earlier entry was changed, removed or moved)".to_string())
            } else if entry.compute_hash()? != entry.hash {
                Some("hash does not match the entry's content (the entry was edited)".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                report.first_bad = Some(bad(Some(entry.seq), id, problem));
                return Ok(report);
            }
            report.verified += 1;
            report.head = LogHead {
                entries: entry.seq + 1,
                hash: entry.hash,
            };
        }
    }
    Ok(report)
}

/// A [`PolicyEngine`] that records every decision it makes in a [`DecisionLog`] (call
/// [`DecisionLog::flush`] to make them durable, or let [`crate::Governed`] do it).
#[derive(Debug)]
pub struct Logged<P> {
    inner: P,
    log: Arc<DecisionLog>,
}

impl<P: PolicyEngine> Logged<P> {
    /// Logs `inner`'s decisions to `log`.
    pub fn new(inner: P, log: Arc<DecisionLog>) -> Self {
        Self { inner, log }
    }

    /// The log.
    pub fn log(&self) -> &Arc<DecisionLog> {
        &self.log
    }
}

impl<P: PolicyEngine> PolicyEngine for Logged<P> {
    fn evaluate(&self, query: &PolicyQuery) -> Result<Decision> {
        let decision = self.inner.evaluate(query)?;
        self.log.record(query, &decision)?;
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_remove_fields_and_array_items() {
        let mut doc =
            json!({"input": {"user": {"token": "t", "name": "n"}, "a/b": 1, "list": [1, 2]}});
        assert!(remove_pointer(&mut doc, "/input/user/token"));
        assert!(remove_pointer(&mut doc, "/input/a~1b"));
        assert!(remove_pointer(&mut doc, "/input/list/0"));
        assert!(!remove_pointer(&mut doc, "/input/missing"));
        assert!(!remove_pointer(&mut doc, "/input/list/9"));
        assert_eq!(doc, json!({"input": {"user": {"name": "n"}, "list": [2]}}));
    }
}
