//! The online store: the latest feature row per entity key and table, read in microseconds.
//!
//! The feature store (mlops-features) owns the encodings — tables are `<project>/<view>/<schema
//! fingerprint>`, keys are encoded join-key values, a row's `values` its encoded features — so
//! an [`OnlineStore`] keeps opaque bytes with two timestamps that decide which write wins.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// One row to write: an entity key's values as of an event time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnlineRow {
    /// The encoded entity key.
    pub key: Bytes,
    /// When the values became true, ns since the epoch.
    pub event_ts_ns: i64,
    /// When the row was written at its source, ns (`i64::MIN` when the source has no such
    /// column); breaks ties between rows of one event time.
    pub created_ts_ns: i64,
    /// The encoded values.
    pub values: Bytes,
}

impl OnlineRow {
    /// A row.
    pub fn new(key: Bytes, event_ts_ns: i64, created_ts_ns: i64, values: Bytes) -> Self {
        Self {
            key,
            event_ts_ns,
            created_ts_ns,
            values,
        }
    }

    /// Whether this row replaces `stored`: it is not older, by (event time, created time).
    pub fn replaces(&self, stored: &OnlineValue) -> bool {
        (self.event_ts_ns, self.created_ts_ns) >= (stored.event_ts_ns, stored.created_ts_ns)
    }
}

/// What is stored for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnlineValue {
    /// Event time of the stored row, ns.
    pub event_ts_ns: i64,
    /// Created time of the stored row, ns.
    pub created_ts_ns: i64,
    /// The encoded values.
    pub values: Bytes,
}

impl OnlineValue {
    /// A stored value.
    pub fn new(event_ts_ns: i64, created_ts_ns: i64, values: Bytes) -> Self {
        Self {
            event_ts_ns,
            created_ts_ns,
            values,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteSummary {
    /// Rows stored.
    pub written: usize,
    /// Rows not stored because the stored row of their key is newer.
    pub skipped_older: usize,
}

impl WriteSummary {
    /// A summary.
    pub fn new(written: usize, skipped_older: usize) -> Self {
        Self {
            written,
            skipped_older,
        }
    }
}

/// Latest feature rows per entity key, in named tables, with marks (small named values, such
/// as materialization watermarks) written atomically with them.
///
/// # Contract
///
/// - [`write`](OnlineStore::write) stores each row unless the table holds a newer row for its
///   key (newer: a later event time, or the same event time and a later created time — see
///   [`OnlineRow::replaces`]); an equal row replaces. Within one call, later rows of a key are
///   judged against earlier ones the same way. The rows and the `marks` become visible together
///   or not at all (a crash mid-write leaves the state before the call), and a concurrent
///   writer's rows are never lost: the newer row of a key wins whatever the interleaving.
/// - [`read`](OnlineStore::read) answers, per key in order, the stored value or `None`; an
///   absent table reads as all `None`.
/// - [`read_tables`](OnlineStore::read_tables) answers exactly what a `read` per table would,
///   in order; a store may answer them in one round trip (Redis pipelines them), which is why a
///   lookup spanning several feature views calls it once.
/// - [`mark`](OnlineStore::mark) answers a mark's value, `None` when never written.
/// - [`drop_table`](OnlineStore::drop_table) removes a table's rows (idempotent).
/// - Table and mark names are non-empty UTF-8 of at most 512 bytes; keys may be any bytes.
///
/// # Implementing
///
/// Run `mlops_testkit::online::run_all` against the implementation.
#[async_trait]
pub trait OnlineStore: Debug + Send + Sync + 'static {
    /// Writes rows into `table` (newest per key wins) and `marks`, atomically.
    async fn write(
        &self,
        table: &str,
        rows: &[OnlineRow],
        marks: &[(String, Bytes)],
    ) -> Result<WriteSummary>;

    /// The stored value of each key, in order.
    async fn read(&self, table: &str, keys: &[Bytes]) -> Result<Vec<Option<OnlineValue>>>;

    /// Several tables' reads at once: per `(table, keys)`, what [`read`](Self::read) answers.
    /// By default one `read` after another.
    async fn read_tables(
        &self,
        reads: &[(&str, &[Bytes])],
    ) -> Result<Vec<Vec<Option<OnlineValue>>>> {
        let mut out = Vec::with_capacity(reads.len());
        for (table, keys) in reads {
            out.push(self.read(table, keys).await?);
        }
        Ok(out)
    }

    /// A mark's value.
    async fn mark(&self, name: &str) -> Result<Option<Bytes>>;

    /// Removes every row of `table`.
    async fn drop_table(&self, table: &str) -> Result<()>;
}

macro_rules! forward_online {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<S: OnlineStore + ?Sized> OnlineStore for $ty {
            async fn write(
                &self,
                table: &str,
                rows: &[OnlineRow],
                marks: &[(String, Bytes)],
            ) -> Result<WriteSummary> {
                (**self).write(table, rows, marks).await
            }
            async fn read(&self, table: &str, keys: &[Bytes]) -> Result<Vec<Option<OnlineValue>>> {
                (**self).read(table, keys).await
            }
            async fn read_tables(
                &self,
                reads: &[(&str, &[Bytes])],
            ) -> Result<Vec<Vec<Option<OnlineValue>>>> {
                (**self).read_tables(reads).await
            }
            async fn mark(&self, name: &str) -> Result<Option<Bytes>> {
                (**self).mark(name).await
            }
            async fn drop_table(&self, table: &str) -> Result<()> {
                (**self).drop_table(table).await
            }
        }
    };
}

forward_online!(Arc<S>);
forward_online!(Box<S>);

/// Checks a write's table and mark names against the contract's limits.
pub fn check_write(table: &str, marks: &[(String, Bytes)]) -> Result<()> {
    check_name("table", table)?;
    marks.iter().try_for_each(|(m, _)| check_name("mark", m))
}

/// Checks a table or mark name against the contract's limits.
pub fn check_name(kind: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 512 {
        return Err(crate::Error::invalid(
            kind,
            format!("{kind} names are 1-512 bytes; got {} bytes", name.len()),
        ));
    }
    Ok(())
}
