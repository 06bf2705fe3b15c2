//! `ObjectStoreStore` on a local directory: streaming a blob in (hash + write + rename) and out
//! (read + leaf-by-leaf verification).

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use futures::{StreamExt, TryStreamExt, stream};
use mlops::storage::ObjectStoreStore;
use mlops::store::{GetOptions, Store};

const CHUNK: usize = 1 << 20;

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let mut group = c.benchmark_group("object-store-local");
    group.sample_size(10);
    for mib in [16usize, 64] {
        let chunks: Vec<Bytes> = (0..mib)
            .map(|i| Bytes::from(vec![(i % 251) as u8; CHUNK]))
            .collect();
        group.throughput(Throughput::Bytes((mib * CHUNK) as u64));
        group.bench_with_input(
            BenchmarkId::new("put_blob", format!("{mib}MiB")),
            &chunks,
            |b, chunks| {
                b.iter(|| {
                    let s = stream::iter(chunks.clone().into_iter().map(Ok)).boxed();
                    runtime.block_on(store.put_blob(s)).unwrap()
                })
            },
        );
        let digest = runtime
            .block_on(store.put_blob(stream::iter(chunks.clone().into_iter().map(Ok)).boxed()))
            .unwrap()
            .digest;
        group.bench_function(BenchmarkId::new("get_blob", format!("{mib}MiB")), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let s = store
                        .get_blob(&digest, GetOptions::default())
                        .await
                        .unwrap();
                    s.try_fold(0usize, |n, c| async move { Ok(n + c.len()) })
                        .await
                        .unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, store);
