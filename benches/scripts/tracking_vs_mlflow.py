#!/usr/bin/env python3
"""Experiment tracking: mlops' StoreTracker versus MLflow's Python client, same workloads, one run.

    .venv-peers/bin/python benches/scripts/tracking_vs_mlflow.py [--scale 1.0]

MLflow runs with its file store (MLFLOW_ALLOW_FILE_STORE=true) and its sqlite store, both local
and in process (no server, MLflow's fastest setups); mlops runs StoreTracker on a local directory
(benches/bin/tracker_bench.rs, release). Every workload is timed end to end, including ending the
run (our durability point). Workloads: one-by-one log_metric calls; metric points logged in
batches of 1000; runs with 10 params + 10 metrics each; one filtered, ordered search over many
runs. The slowest MLflow cases run on fewer calls and are reported per call, so the ratio compares
like with like. Prints a markdown table; ratio = MLflow time / mlops time per operation.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

warnings.simplefilter("ignore")
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mlflow_workload(uri, workload, n):
    c = MlflowClient(tracking_uri=uri)
    exp = c.create_experiment("bench")
    t = time.perf_counter()
    timed = None
    if workload == "log_metric":
        run = c.create_run(exp).info.run_id
        for i in range(n):
            c.log_metric(run, "m", float(i), step=i)
        c.set_terminated(run)
    elif workload == "batched":
        run = c.create_run(exp).info.run_id
        for start in range(0, n, 1000):
            c.log_batch(run, metrics=[Metric("m", float(i), 1, i) for i in range(start, min(n, start + 1000))])
        c.set_terminated(run)
    elif workload == "runs":
        for r in range(n):
            run = c.create_run(exp).info.run_id
            c.log_batch(run, metrics=[Metric(f"m{i}", float(r), 1, 0) for i in range(10)],
                        params=[Param(f"p{i}", str(r)) for i in range(10)])
            c.set_terminated(run)
    elif workload == "search":
        for r in range(n):
            run = c.create_run(exp).info.run_id
            c.log_batch(run, metrics=[Metric("acc", (r % 100) / 100, 1, 0)],
                        params=[Param("model", "mlp" if r % 3 == 0 else "logistic")])
        s = time.perf_counter()
        hits = c.search_runs([exp], "metrics.acc > 0.9 and params.model = 'mlp'",
                             order_by=["metrics.acc DESC"], max_results=50000)
        timed = time.perf_counter() - s
        assert len(hits) > 0
    total = time.perf_counter() - t
    return timed if timed is not None else total


def ours(tmp, workload, n):
    binary = os.path.join(ROOT, "target", "release", "tracker-bench")
    out = subprocess.run([binary, os.path.join(tmp, f"store-{workload}"), workload, str(n)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload size")
    args = ap.parse_args()
    s = args.scale
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "mlops-benches", "--bin", "tracker-bench"],
                   cwd=ROOT, check=True)
    # (workload, unit, our n, file-store n, sqlite n): per-unit times are compared.
    plan = [
        ("log_metric", "call", int(10_000 * s), int(10_000 * s), int(1_000 * s)),
        ("batched", "point", int(1_000_000 * s), int(1_000_000 * s), int(100_000 * s)),
        ("runs", "run", int(100 * s), int(100 * s), int(100 * s)),
        ("search", "search", int(10_000 * s), int(10_000 * s), int(2_000 * s)),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workload, unit, n_ours, n_file, n_sql in plan:
            per = lambda secs, n: secs if workload == "search" else secs / n  # noqa: E731
            t_ours = per(ours(tmp, workload, n_ours), n_ours)
            t_file = per(mlflow_workload("file://" + os.path.join(tmp, f"mlruns-{workload}"), workload, n_file), n_file)
            t_sql = per(mlflow_workload("sqlite:///" + os.path.join(tmp, f"{workload}.db"), workload, n_sql), n_sql)
            rows.append((workload, unit, n_ours, n_file, n_sql, t_ours, t_file, t_sql))
    print("| workload | n (mlops / file / sqlite) | mlops per unit | MLflow file store | MLflow sqlite | ratio file | ratio sqlite |")
    print("|---|---|---|---|---|---|---|")
    fmt = lambda x: f"{x * 1e6:.1f} µs" if x < 1e-3 else f"{x * 1e3:.2f} ms"  # noqa: E731
    for w, unit, a, b, c, t_ours, t_file, t_sql in rows:
        label = "one search" if w == "search" else f"per {unit}"
        print(f"| {w} ({label}) | {a} / {b} / {c} | {fmt(t_ours)} | {fmt(t_file)} | {fmt(t_sql)} | "
              f"{t_file / t_ours:.0f}× | {t_sql / t_ours:.0f}× |")


if __name__ == "__main__":
    sys.exit(main())
