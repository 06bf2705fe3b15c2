//! [`RedisOnlineStore`] (feature `redis`): the online store for serving fleets, on Redis.
//!
//! A table is one hash (`<prefix>t:<table>`: entity key → row), marks one more hash
//! (`<prefix>marks`). A row is a 32-character header — event then created time, each as 16 hex
//! digits of the sign-flipped big-endian value, so comparing headers as strings orders rows by
//! (event, created) — followed by the encoded values. A write is one Lua script: it compares
//! each row's header with the stored one and sets the newer, then sets the marks, atomically
//! (Redis runs a script alone); a read is one `HMGET`, so a lookup of a batch of entities is one
//! round trip.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::online::{
    OnlineRow, OnlineStore, OnlineValue, WriteSummary, check_name, check_write,
};
use mlops_core::{Error, Result};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

const WRITE: &str = r"
local n = tonumber(ARGV[1])
local written, skipped = 0, 0
for i = 0, n - 1 do
  local k = ARGV[2 + i * 2]
  local v = ARGV[3 + i * 2]
  local old = redis.call('HGET', KEYS[1], k)
  if old and string.sub(old, 1, 32) > string.sub(v, 1, 32) then
    skipped = skipped + 1
  else
    redis.call('HSET', KEYS[1], k, v)
    written = written + 1
  end
end
local j = 2 + n * 2
while j <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[j], ARGV[j + 1])
  j = j + 2
end
return {written, skipped}
";

/// Online rows in Redis: a hash per table (`<prefix>t:<table>`) and one for marks
/// (`<prefix>marks`); a row is a 32-character header — event then created time, each as 16 hex
/// digits of the sign-flipped big-endian value, so headers compare as the timestamps do —
/// followed by the encoded values. A write is one Lua script that keeps the newer row per key
/// and sets the marks, atomically; a lookup of a batch is one `HMGET`.
#[derive(Clone)]
pub struct RedisOnlineStore {
    conn: ConnectionManager,
    prefix: String,
    url: String,
    script: redis::Script,
}

impl fmt::Debug for RedisOnlineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show the host part only.
        let shown = self.url.rsplit('@').next().unwrap_or_default();
        f.debug_struct("RedisOnlineStore")
            .field("server", &shown)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn redis_err(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        Error::unavailable(format!("redis: {e}")).with_source(e)
    } else {
        Error::backend("redis", e)
    }
}

fn header(event: i64, created: i64) -> String {
    // Flipping the sign bit makes the unsigned order of the bits the signed order of the value.
    format!(
        "{:016x}{:016x}",
        (event as u64) ^ (1 << 63),
        (created as u64) ^ (1 << 63)
    )
}

/// A stored hash value: the 32-byte header, then the row's values.
fn decode_stored(v: Option<Vec<u8>>) -> Result<Option<OnlineValue>> {
    match v {
        None => Ok(None),
        Some(v) => {
            let (event, created) = parse_header(&v)?;
            Ok(Some(OnlineValue::new(
                event,
                created,
                Bytes::copy_from_slice(&v[32..]),
            )))
        }
    }
}

fn parse_header(bytes: &[u8]) -> Result<(i64, i64)> {
    let bad = || Error::corrupt("online row", "redis", "a row without its 32-digit header");
    let h = std::str::from_utf8(bytes.get(..32).ok_or_else(bad)?).map_err(|_| bad())?;
    let e = u64::from_str_radix(&h[..16], 16).map_err(|_| bad())?;
    let c = u64::from_str_radix(&h[16..], 16).map_err(|_| bad())?;
    Ok(((e ^ (1 << 63)) as i64, (c ^ (1 << 63)) as i64))
}

impl RedisOnlineStore {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`), keys under `prefix`
    /// (`mlops:` when empty). The connection reconnects by itself after a drop.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| Error::invalid("redis url", format!("{e}")))?;
        // Fail fast on a wrong address; reconnects after a drop still retry in the background.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(redis_err)?;
        Ok(Self {
            conn,
            prefix: if prefix.is_empty() {
                "mlops:".to_owned()
            } else {
                prefix.to_owned()
            },
            url: url.to_owned(),
            script: redis::Script::new(WRITE),
        })
    }

    fn table_key(&self, table: &str) -> String {
        format!("{}t:{table}", self.prefix)
    }

    fn marks_key(&self) -> String {
        format!("{}marks", self.prefix)
    }
}

#[async_trait]
impl OnlineStore for RedisOnlineStore {
    async fn write(
        &self,
        table: &str,
        rows: &[OnlineRow],
        marks: &[(String, Bytes)],
    ) -> Result<WriteSummary> {
        check_write(table, marks)?;
        let mut invocation = self.script.key(self.table_key(table));
        invocation.key(self.marks_key()).arg(rows.len());
        for row in rows {
            let mut value = header(row.event_ts_ns, row.created_ts_ns).into_bytes();
            value.extend_from_slice(&row.values);
            invocation.arg(&row.key[..]).arg(value);
        }
        for (m, v) in marks {
            invocation.arg(m.as_str()).arg(&v[..]);
        }
        let mut conn = self.conn.clone();
        let (written, skipped): (usize, usize) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(WriteSummary::new(written, skipped))
    }

    async fn read(&self, table: &str, keys: &[Bytes]) -> Result<Vec<Option<OnlineValue>>> {
        check_name("table", table)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.table_key(table));
        for k in keys {
            cmd.arg(&k[..]);
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> = cmd.query_async(&mut conn).await.map_err(redis_err)?;
        values.into_iter().map(decode_stored).collect()
    }

    async fn read_tables(
        &self,
        reads: &[(&str, &[Bytes])],
    ) -> Result<Vec<Vec<Option<OnlineValue>>>> {
        // One round trip: a pipeline of one HMGET per table (empty reads skipped).
        let mut pipe = redis::pipe();
        for (table, keys) in reads {
            check_name("table", table)?;
            if keys.is_empty() {
                continue;
            }
            let cmd = pipe.cmd("HMGET").arg(self.table_key(table));
            for k in *keys {
                cmd.arg(&k[..]);
            }
        }
        let mut conn = self.conn.clone();
        let answers: Vec<Vec<Option<Vec<u8>>>> = if reads.iter().all(|(_, k)| k.is_empty()) {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(redis_err)?
        };
        let mut answers = answers.into_iter();
        reads
            .iter()
            .map(|(_, keys)| {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let values = answers.next().ok_or_else(|| {
                    Error::corrupt("redis reply", "HMGET", "a pipelined reply is missing")
                })?;
                values.into_iter().map(decode_stored).collect()
            })
            .collect()
    }

    async fn mark(&self, name: &str) -> Result<Option<Bytes>> {
        check_name("mark", name)?;
        let mut conn = self.conn.clone();
        let v: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(self.marks_key())
            .arg(name)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(v.map(Bytes::from))
    }

    async fn drop_table(&self, table: &str) -> Result<()> {
        check_name("table", table)?;
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.table_key(table))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn headers_order_as_their_timestamps() {
        let values = [
            i64::MIN,
            -5,
            -1,
            0,
            1,
            7,
            1_796_294_978_000_000_000,
            i64::MAX,
        ];
        for w in values.windows(2) {
            assert!(header(w[0], 0) < header(w[1], 0), "{w:?}");
            assert!(
                header(w[0], i64::MAX) < header(w[1], i64::MIN),
                "event time first: {w:?}"
            );
            assert!(header(3, w[0]) < header(3, w[1]), "then created: {w:?}");
        }
        for &e in &values {
            assert_eq!(parse_header(header(e, e).as_bytes()).unwrap(), (e, e));
        }
        assert!(parse_header(b"short").unwrap_err().is_corrupt());
    }
}
