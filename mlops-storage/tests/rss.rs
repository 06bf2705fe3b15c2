//! A 2 GiB blob goes into a local store and back out, streamed, without the process's memory
//! growing by more than ~100 MiB. Alone in its test binary so that nothing else moves the peak.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use mlops_core::store::{GetOptions, Store};
use mlops_core::{Digest, Digester};
use mlops_storage::ObjectStoreStore;

const SIZE: u64 = 2 << 30;
const CHUNK: usize = 1 << 20;

/// `VmRSS` or `VmHWM` (peak) of this process, in bytes, from /proc (Linux).
fn proc_status(field: &str) -> u64 {
    let status =
        std::fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// Chunk `i`: a fixed pattern stamped with its index, so no two chunks are equal.
fn chunk(i: u64) -> Bytes {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| (0..CHUNK).map(|j| (j % 251) as u8).collect());
    let mut v = pattern.clone();
    v[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_gib_blob_streams_in_and_out_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let baseline = proc_status("VmRSS:");

    let chunks = SIZE / CHUNK as u64;
    let mut expected = Digester::new();
    for i in 0..chunks {
        expected.update(&chunk(i));
    }
    let expected: Digest = expected.finalize();

    let data = stream::iter(0..chunks).map(|i| Ok(chunk(i))).boxed();
    let info = store.put_blob(data).await.unwrap();
    assert_eq!(info.size, SIZE);
    assert_eq!(info.digest, expected);

    let mut read = Digester::new();
    let mut n = 0u64;
    let mut body = store
        .get_blob(&info.digest, GetOptions::default())
        .await
        .unwrap();
    while let Some(part) = body.try_next().await.unwrap() {
        read.update(&part);
        n += part.len() as u64;
    }
    assert_eq!(n, SIZE);
    assert_eq!(read.finalize(), expected);

    let peak = proc_status("VmHWM:");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "baseline RSS {} MiB, peak {} MiB",
        baseline >> 20,
        peak >> 20
    );
    assert!(
        growth < 100 << 20,
        "memory grew by {} MiB moving a 2 GiB blob",
        growth >> 20
    );
}
