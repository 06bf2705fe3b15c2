#!/usr/bin/env python3
"""Dataset write/read through the mlops Store versus pyarrow, on the same data, in one run.

    ./scripts/test once (it creates .venv-peers with pyarrow and numpy), or pip install pyarrow numpy
    .venv-peers/bin/python benches/scripts/datasets_vs_pyarrow.py [--rows 20000000]

Generates a table (int64 id, three float64 columns, a low-cardinality string, an int32) of about
1 GiB in memory, saves it once as the common source, then times:

- pyarrow: pq.write_table(zstd) to a local file, then pq.read_table of that file;
- mlops:   Datasets::write into a local-directory store (zstd Parquet parts + column statistics +
           blake3 content addressing + commit), then a full Datasets::read
           (benches/bin/dataset_io.rs, built in release).

Both sides start from the data in memory and write to the same disk. Prints a markdown table with
the times and the ratio (pyarrow time / mlops time: above 1 means mlops is faster).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    segments = np.array([f"segment-{i:02d}" for i in range(40)])
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "x1": pa.array(rng.normal(size=rows)),
        "x2": pa.array(rng.exponential(size=rows)),
        "x3": pa.array(rng.uniform(size=rows)),
        "segment": pa.array(segments[rng.integers(0, len(segments), size=rows)]),
        "label": pa.array(rng.integers(0, 2, size=rows, dtype=np.int32)),
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000_000)
    args = ap.parse_args()

    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "mlops-benches", "--bin", "dataset-io"],
        cwd=ROOT, check=True,
    )
    binary = os.path.join(ROOT, "target", "release", "dataset-io")

    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        table = generate(args.rows)
        source = os.path.join(tmp, "source.parquet")
        pq.write_table(table, source, compression="snappy")

        out = os.path.join(tmp, "pyarrow.parquet")
        t = time.perf_counter()
        pq.write_table(table, out, compression="zstd")
        py_write = time.perf_counter() - t
        del table
        t = time.perf_counter()
        back = pq.read_table(out)
        py_read = time.perf_counter() - t
        assert back.num_rows == args.rows
        py_bytes = os.path.getsize(out)
        del back

        res = subprocess.run([binary, source, os.path.join(tmp, "store")],
                             check=True, capture_output=True, text=True)
        ours = json.loads(res.stdout.strip().splitlines()[-1])
        assert ours["rows"] == args.rows

    gib = ours["in_memory_bytes"] / 2**30
    print(f"dataset: {args.rows:,} rows, {gib:.2f} GiB in memory (Arrow); "
          f"pyarrow file {py_bytes / 2**20:.0f} MiB, mlops parts {ours['stored_bytes'] / 2**20:.0f} MiB "
          f"in {ours['parts']} part(s)\n")
    print("| operation | pyarrow (s) | mlops (s) | ratio (pyarrow / mlops) |")
    print("|---|---|---|---|")
    for op, py, ml in [("write", py_write, ours["write_s"]), ("read", py_read, ours["read_s"])]:
        print(f"| {op} | {py:.2f} | {ml:.2f} | {py / ml:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
