//! Online stores: [`MemoryOnlineStore`] (the reference semantics, in process) and
//! [`EmbeddedOnlineStore`] (redb: one ACID file, shared by processes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::online::{
    OnlineRow, OnlineStore, OnlineValue, WriteSummary, check_name, check_write,
};
use mlops_core::{Error, Result};
use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition, TableError,
};

type Tables = HashMap<String, HashMap<Bytes, OnlineValue>>;

/// Online rows in memory: the contract's reference, for tests and short-lived processes.
#[derive(Debug, Default)]
pub struct MemoryOnlineStore {
    state: RwLock<(Tables, HashMap<String, Bytes>)>,
}

impl MemoryOnlineStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> Error {
    Error::unavailable("the online store's lock was poisoned by a panic")
}

#[async_trait]
impl OnlineStore for MemoryOnlineStore {
    async fn write(
        &self,
        table: &str,
        rows: &[OnlineRow],
        marks: &[(String, Bytes)],
    ) -> Result<WriteSummary> {
        check_write(table, marks)?;
        let mut state = self.state.write().map_err(|_| poisoned())?;
        let (tables, all_marks) = &mut *state;
        let t = tables.entry(table.to_owned()).or_default();
        let mut summary = WriteSummary::default();
        for row in rows {
            if t.get(&row.key).is_some_and(|stored| !row.replaces(stored)) {
                summary.skipped_older += 1;
                continue;
            }
            t.insert(
                row.key.clone(),
                OnlineValue::new(row.event_ts_ns, row.created_ts_ns, row.values.clone()),
            );
            summary.written += 1;
        }
        for (m, v) in marks {
            all_marks.insert(m.clone(), v.clone());
        }
        Ok(summary)
    }

    async fn read(&self, table: &str, keys: &[Bytes]) -> Result<Vec<Option<OnlineValue>>> {
        check_name("table", table)?;
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(match state.0.get(table) {
            Some(t) => keys.iter().map(|k| t.get(k).cloned()).collect(),
            None => vec![None; keys.len()],
        })
    }

    async fn mark(&self, name: &str) -> Result<Option<Bytes>> {
        check_name("mark", name)?;
        Ok(self
            .state
            .read()
            .map_err(|_| poisoned())?
            .1
            .get(name)
            .cloned())
    }

    async fn drop_table(&self, table: &str) -> Result<()> {
        check_name("table", table)?;
        self.state.write().map_err(|_| poisoned())?.0.remove(table);
        Ok(())
    }
}

/// The marks' table in the redb file; rows' tables are `t/<table>`.
const MARKS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("marks");

/// Online rows in one redb file: pure Rust, ACID (a write is one transaction, fsynced before it
/// returns), opened in redb's multi-writer mode so a materializing process and serving
/// processes share the file. Writes run on a blocking thread; reads run inline on a snapshot of
/// the table that is reused for up to [`EmbeddedOnlineStore::with_snapshot_age`] (10 ms by
/// default) — a multi-process read transaction costs file-lock system calls, a snapshot lookup
/// a B-tree walk in memory. So another process's writes are visible within that age; this
/// handle's own writes at once (they invalidate its snapshots).
#[derive(Clone)]
pub struct EmbeddedOnlineStore {
    db: Arc<Database>,
    path: PathBuf,
    snapshots: Arc<Mutex<HashMap<String, Snapshot>>>,
    generation: Arc<AtomicU64>,
    max_age: Duration,
}

type RowTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A table as of a read transaction (`None`: it did not exist then).
struct Snapshot {
    taken: Instant,
    generation: u64,
    table: Option<Arc<RowTable>>,
}

impl std::fmt::Debug for EmbeddedOnlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedOnlineStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn redb_err(e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    match e {
        redb::Error::DatabaseAlreadyOpen => Error::unavailable(
            "the online store file is open in another process that does not share it",
        ),
        redb::Error::Corrupted(m) => Error::corrupt("online store", "redb file", m),
        other => Error::backend("redb", other),
    }
}

fn table_def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

fn encode(row: &OnlineRow) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + row.values.len());
    v.extend_from_slice(&row.event_ts_ns.to_le_bytes());
    v.extend_from_slice(&row.created_ts_ns.to_le_bytes());
    v.extend_from_slice(&row.values);
    v
}

fn decode(bytes: &[u8]) -> Result<OnlineValue> {
    let (event, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| Error::corrupt("online row", "redb file", "shorter than its header"))?;
    let (created, values) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| Error::corrupt("online row", "redb file", "shorter than its header"))?;
    Ok(OnlineValue::new(
        i64::from_le_bytes(*event),
        i64::from_le_bytes(*created),
        Bytes::copy_from_slice(values),
    ))
}

impl EmbeddedOnlineStore {
    /// Opens (or creates) the store file at `path`, creating its folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("online store folder", "create", parent, e))?;
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| redb_err(e).context(path.display()))?;
        Ok(Self {
            db: Arc::new(db),
            path,
            snapshots: Arc::new(Mutex::new(HashMap::new())),
            generation: Arc::new(AtomicU64::new(0)),
            max_age: Duration::from_millis(10),
        })
    }

    /// Reuses a read snapshot for at most `age` (zero: a fresh read transaction per read).
    pub fn with_snapshot_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// The table's snapshot, fresh when the cached one is too old or this handle wrote since.
    fn snapshot(&self, name: &str) -> Result<Option<Arc<RowTable>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let now = Instant::now();
        if !self.max_age.is_zero() {
            let cache = self.snapshots.lock().map_err(|_| poisoned())?;
            if let Some(s) = cache.get(name)
                && s.generation == generation
                && now.duration_since(s.taken) < self.max_age
            {
                return Ok(s.table.clone());
            }
        }
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = match txn.open_table(table_def(name)) {
            Ok(t) => Some(Arc::new(t)),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(redb_err(e)),
        };
        if !self.max_age.is_zero() {
            let mut cache = self.snapshots.lock().map_err(|_| poisoned())?;
            cache.insert(
                name.to_owned(),
                Snapshot {
                    taken: now,
                    generation,
                    table: table.clone(),
                },
            );
        }
        Ok(table)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_blocking(
        &self,
        table: &str,
        rows: &[OnlineRow],
        marks: &[(String, Bytes)],
    ) -> Result<WriteSummary> {
        let name = format!("t/{table}");
        let txn = self.db.begin_write().map_err(redb_err)?;
        let mut summary = WriteSummary::default();
        {
            let mut t = txn.open_table(table_def(&name)).map_err(redb_err)?;
            for row in rows {
                let stored = match t.get(&row.key[..]).map_err(redb_err)? {
                    Some(old) => Some(decode(old.value())?),
                    None => None,
                };
                if stored.is_some_and(|s| !row.replaces(&s)) {
                    summary.skipped_older += 1;
                    continue;
                }
                t.insert(&row.key[..], &encode(row)[..]).map_err(redb_err)?;
                summary.written += 1;
            }
            let mut m = txn.open_table(MARKS).map_err(redb_err)?;
            for (k, v) in marks {
                m.insert(k.as_str(), &v[..]).map_err(redb_err)?;
            }
        }
        txn.commit().map_err(redb_err)?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(summary)
    }
}

#[async_trait]
impl OnlineStore for EmbeddedOnlineStore {
    async fn write(
        &self,
        table: &str,
        rows: &[OnlineRow],
        marks: &[(String, Bytes)],
    ) -> Result<WriteSummary> {
        check_write(table, marks)?;
        let this = self.clone();
        let (table, rows, marks) = (table.to_owned(), rows.to_vec(), marks.to_vec());
        tokio::task::spawn_blocking(move || this.write_blocking(&table, &rows, &marks))
            .await
            .map_err(|e| Error::backend("tokio", e))?
    }

    async fn read(&self, table: &str, keys: &[Bytes]) -> Result<Vec<Option<OnlineValue>>> {
        check_name("table", table)?;
        let name = format!("t/{table}");
        let Some(t) = self.snapshot(&name)? else {
            return Ok(vec![None; keys.len()]);
        };
        keys.iter()
            .map(|k| match t.get(&k[..]).map_err(redb_err)? {
                Some(v) => decode(v.value()).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    async fn mark(&self, name: &str) -> Result<Option<Bytes>> {
        check_name("mark", name)?;
        let txn = self.db.begin_read().map_err(redb_err)?;
        let t = match txn.open_table(MARKS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(redb_err(e)),
        };
        Ok(t.get(name)
            .map_err(redb_err)?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }

    async fn drop_table(&self, table: &str) -> Result<()> {
        check_name("table", table)?;
        let this = self.clone();
        let name = format!("t/{table}");
        tokio::task::spawn_blocking(move || {
            let txn = this.db.begin_write().map_err(redb_err)?;
            txn.delete_table(table_def(&name)).map_err(redb_err)?;
            txn.commit().map_err(redb_err)?;
            this.generation.fetch_add(1, Ordering::AcqRel);
            Ok(())
        })
        .await
        .map_err(|e| Error::backend("tokio", e))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_conforms() {
        mlops_testkit::online::run_all(&MemoryOnlineStore::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_store_conforms_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("online/features.redb");
        let store = EmbeddedOnlineStore::open(&path).unwrap();
        mlops_testkit::online::run_all(&store).await;
        let row = OnlineRow::new(Bytes::from_static(b"k"), 1, 2, Bytes::from_static(b"v"));
        store
            .write("persist", &[row], &[("m".into(), Bytes::from_static(b"w"))])
            .await
            .unwrap();
        drop(store);
        let again = EmbeddedOnlineStore::open(&path).unwrap();
        let read = again
            .read("persist", &[Bytes::from_static(b"k")])
            .await
            .unwrap();
        assert_eq!(read[0].as_ref().unwrap().values, Bytes::from_static(b"v"));
        assert_eq!(
            again.mark("m").await.unwrap(),
            Some(Bytes::from_static(b"w"))
        );
        // A second handle in this process shares the file (multi-writer mode).
        let second = EmbeddedOnlineStore::open(&path).unwrap();
        assert!(
            second
                .read("persist", &[Bytes::from_static(b"k")])
                .await
                .unwrap()[0]
                .is_some()
        );
    }
}
