//! blake3 content addressing: the cost every stored byte pays.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use mlops::{Digest, Digester};

fn digest(c: &mut Criterion) {
    let mut group = c.benchmark_group("blake3");
    for (label, size) in [
        ("1KiB", 1usize << 10),
        ("1MiB", 1 << 20),
        ("16MiB", 16 << 20),
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("digest", label), &data, |b, data| {
            b.iter(|| Digest::of(data))
        });
        group.bench_with_input(
            BenchmarkId::new("digest_chunked_64KiB", label),
            &data,
            |b, data| {
                b.iter(|| {
                    let mut h = Digester::new();
                    for chunk in data.chunks(64 << 10) {
                        h.update(chunk);
                    }
                    h.finalize()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, digest);
