#!/usr/bin/env python3
"""Tracking servers: `mlops server` versus `mlflow server` (sqlite), same MLflow Python client, one run.

    .venv-peers/bin/python benches/scripts/mlflow_server_vs_mlflow.py [--scale 1.0] [--threads 8]
        [--mlops target/release/mlops]

Both servers run on 127.0.0.1 with their defaults for a local setup: `mlflow server
--backend-store-uri sqlite:///… --serve-artifacts` and `mlops --store DIR server` (a local store
directory). The client is MLflow's own `MlflowClient`, the same code against both. Workloads:

- start: from spawning the server to its first 200 on /health;
- log_batch: N threads, each into its own run, log_batch calls of 10 metrics (--calls each);
- log_metric: N threads, each into its own run, log_metric calls one by one (--calls each);
- runs: N threads create runs with 10 params and 10 metrics each (10k runs at scale 1), which
  the search then runs over;
- search: search_runs with a filter and an order over those runs, first page of 100;
- history: get_metric_history of one metric with 100k points (logged in batches of 1000).

Reports throughput (calls/s), p50/p99 latency per call, and the server's peak RSS (the whole
process tree, sampled from /proc every 100 ms). ratio = MLflow / mlops for times and RSS, mlops /
MLflow for throughput: above 1 means mlops is better. The mlops binary defaults to
target/release/mlops (build it with `cargo build --release -p mlops-cli`), else target/debug/mlops.
"""
import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor

warnings.simplefilter("ignore")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(pid):
    """Resident bytes of a process and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name, argv, port, env=None):
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited with {self.proc.returncode} before it was healthy")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.005)
        self.start_s = time.perf_counter() - t0
        self.peak = tree_rss(self.proc.pid)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, tree_rss(self.proc.pid))

    def stop(self):
        self._stop.set()
        self._sampler.join()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def timed_calls(threads, per_thread, setup, call):
    """Runs `call(state, i)` per_thread times on each of `threads` threads; answers
    (calls per second, sorted latencies in seconds)."""
    states = [setup(t) for t in range(threads)]
    latencies = [[] for _ in range(threads)]

    def work(t):
        lat = latencies[t]
        for i in range(per_thread):
            s = time.perf_counter()
            call(states[t], i)
            lat.append(time.perf_counter() - s)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    wall = time.perf_counter() - t0
    flat = sorted(x for lat in latencies for x in lat)
    return len(flat) / wall, flat


def pct(sorted_xs, q):
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))]


def workloads(url, scale, threads, calls):
    c = MlflowClient(tracking_uri=url)
    exp = c.create_experiment("bench")
    out = {}

    def own_run(_t):
        return c.create_run(exp).info.run_id

    n = max(1, int(calls * scale))
    out["log_batch"] = timed_calls(threads, n, own_run, lambda run, i: c.log_batch(
        run, metrics=[Metric(f"m{k}", float(i * k), 1, i) for k in range(10)]))
    out["log_metric"] = timed_calls(threads, n, own_run,
                                    lambda run, i: c.log_metric(run, "loss", 1.0 / (i + 1), step=i))

    runs = max(threads, int(10_000 * scale))
    per_thread = runs // threads

    def one_run(t, i):
        i = t * per_thread + i
        run = c.create_run(exp).info.run_id
        c.log_batch(run, metrics=[Metric(f"m{k}", float(i % 100) / 100, 1, 0) for k in range(9)]
                    + [Metric("acc", (i % 100) / 100, 1, 0)],
                    params=[Param(f"p{k}", str(i)) for k in range(9)]
                    + [Param("model", "mlp" if i % 3 == 0 else "logistic")])
        c.set_terminated(run)

    out["runs"] = timed_calls(threads, per_thread, lambda t: t, one_run)
    expected = min(100, sum(1 for i in range(threads * per_thread) if i % 100 > 50 and i % 3 == 0))

    def search(_state, _i):
        hits = c.search_runs([exp], "metrics.acc > 0.5 and params.model = 'mlp'",
                             order_by=["metrics.acc DESC"], max_results=100)
        assert len(hits) == expected, (len(hits), expected)

    out["search"] = timed_calls(1, 20, lambda t: None, search)

    points = max(1000, int(100_000 * scale))
    run = c.create_run(exp).info.run_id
    for start in range(0, points, 1000):
        c.log_batch(run, metrics=[Metric("h", float(i), 1, i) for i in range(start, min(points, start + 1000))])

    def history(_state, _i):
        got = c.get_metric_history(run, "h")
        assert len(got) == points, len(got)

    out["history"] = timed_calls(1, 5, lambda t: None, history)
    return out


def run_server(name, argv, port, scale, threads, calls):
    server = Server(name, argv, port)
    try:
        # MLflow's client prints "View run …" per ended run: keep stdout for the table.
        with contextlib.redirect_stdout(sys.stderr):
            results = workloads(server.url, scale, threads, calls)
    finally:
        server.stop()
    return server.start_s, server.peak, results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload size")
    ap.add_argument("--threads", type=int, default=8, help="client threads")
    ap.add_argument("--calls", type=int, default=250,
                    help="log_batch and log_metric calls per thread (times --scale)")
    ap.add_argument("--mlops", help="the mlops binary (default: target/release, else target/debug)")
    args = ap.parse_args()
    binary = args.mlops
    if binary is None:
        for profile in ("release", "debug"):
            candidate = os.path.join(ROOT, "target", profile, "mlops")
            if os.path.exists(candidate):
                binary = candidate
                break
        else:
            raise SystemExit("no mlops binary: cargo build --release -p mlops-cli")
    mlflow_bin = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")

    tmp = tempfile.mkdtemp(prefix="mlflow-server-bench-")
    try:
        p = free_port()
        ours = run_server("mlops", [binary, "--store", os.path.join(tmp, "store"), "server",
                                    "--host", "127.0.0.1", "--port", str(p)], p, args.scale, args.threads, args.calls)
        p = free_port()
        theirs = run_server("mlflow", [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(p),
                                       "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
                                       "--serve-artifacts", "--artifacts-destination", f"{tmp}/artifacts"],
                            p, args.scale, args.threads, args.calls)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"binary: {os.path.relpath(binary, ROOT)}; scale {args.scale}; {args.threads} client threads; "
          f"{args.calls} calls per thread; "
          f"{os.cpu_count()} cores\n")
    print("| measure | mlops server | mlflow server (sqlite) | ratio |")
    print("|---|---|---|---|")
    print(f"| start to first healthy response | {ours[0] * 1e3:.0f} ms | {theirs[0]:.1f} s | "
          f"{theirs[0] / ours[0]:.0f}× |")
    print(f"| peak server RSS | {ours[1] / 2**20:.0f} MiB | {theirs[1] / 2**20:.0f} MiB | "
          f"{theirs[1] / ours[1]:.0f}× |")
    fmt = lambda x: f"{x * 1e6:.0f} µs" if x < 1e-3 else f"{x * 1e3:.1f} ms"  # noqa: E731
    for w, label in [("log_batch", "log_batch of 10 metrics"), ("log_metric", "log_metric"),
                     ("runs", "create run + log_batch(10+10) + end"),
                     ("search", "search_runs, filter + order, first 100"),
                     ("history", "get_metric_history of the long metric")]:
        (a_tp, a), (b_tp, b) = ours[2][w], theirs[2][w]
        rate = lambda x: f"{x:.0f}/s" if x >= 10 else f"{x:.2f}/s"  # noqa: E731
        print(f"| {label}: throughput | {rate(a_tp)} | {rate(b_tp)} | {a_tp / b_tp:.1f}× |")
        print(f"| {label}: p50 / p99 | {fmt(pct(a, 0.5))} / {fmt(pct(a, 0.99))} | "
              f"{fmt(pct(b, 0.5))} / {fmt(pct(b, 0.99))} | {pct(b, 0.5) / pct(a, 0.5):.1f}× / "
              f"{pct(b, 0.99) / pct(a, 0.99):.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
