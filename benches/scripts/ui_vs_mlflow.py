"""The UI's data API against MLflow's tracking server (the API its UI calls), same data, same
client, one invocation on one machine.

Loads N runs x 20 params x 20 metrics (default 10 000) and one run with a 1M-point metric
history into both an mlops store (through the Python package) and MLflow's sqlite store
(through its SqlAlchemyStore, the code its server writes with), serves them with `mlops ui`
and `mlflow server`, then times, over one keep-alive HTTP connection per server, the median of
--repeat requests of:

1. the runs page's first page (100 runs, newest first);
2. the first page sorted by a metric;
3. the first page filtered (`metrics.m1 > 0.5 AND params.p0 = 'v3'`);
4. the data behind a chart of the 1M-point history: ours `metric-history?points=1000` (LTTB on
   the server), MLflow's `get-history-bulk-interval` with max_results=1000 (what its chart
   view requests; it samples on the server too).

usage: cargo build --release -p mlops-cli && .venv-peers/bin/pip install ./mlops-py
       .venv-peers/bin/python benches/scripts/ui_vs_mlflow.py [--runs 10000] [--points 1000000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait(port: int, path: str, proc: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on {port} did not answer {path}")


def values(i: int, rng: random.Random) -> tuple[dict[str, float], dict[str, str]]:
    metrics = {f"m{k}": rng.random() for k in range(20)}
    params = {f"p{k}": f"v{(i * (k + 1)) % 7}" for k in range(20)}
    return metrics, params


def history(points: int) -> list[tuple[int, float]]:
    rng = random.Random(7)
    return [(step, 1.0 / (1 + step / 1000) + rng.random() * 0.01) for step in range(points)]


def load_mlops(store: str, runs: int, points: int) -> tuple[str, str]:
    import mlops

    t = mlops.Tracker(store)
    exp = t.create_experiment("ui-bench")
    rng = random.Random(1)
    for i in range(runs):
        run = t.create_run(exp, run_name=f"run-{i}", start_time=1_700_000_000_000 + i)
        metrics, params = values(i, rng)
        t.log_batch(run.info.run_id, metrics=metrics, params=params)
        t.set_terminated(run.info.run_id)
    long = t.create_run(exp, run_name="long-history").info.run_id
    for step, value in history(points):
        t.log_metric(long, "loss", value, timestamp=1_700_000_000_000 + step, step=step)
    t.set_terminated(long)  # ending a run makes everything logged durable
    return exp, long


def load_mlflow(db: str, artifacts: str, runs: int, points: int) -> tuple[str, str]:
    """Through MLflow's own SqlAlchemyStore, in process, into the sqlite file its server then
    serves: the same rows its REST API would write, without 10k HTTP round trips to load."""
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db, artifacts)
    exp = store.create_experiment("ui-bench")
    rng = random.Random(1)
    finished = RunStatus.FINISHED
    for i in range(runs):
        run = store.create_run(exp, "bench", 1_700_000_000_000 + i, [], f"run-{i}")
        metrics, params = values(i, rng)
        ts = 1_700_000_000_000
        store.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[],
        )
        store.update_run_info(run.info.run_id, finished, ts + 1, None)
    long = store.create_run(exp, "bench", 1_700_000_000_000, [], "long-history").info.run_id
    batch: list[Metric] = []
    for step, value in history(points):
        batch.append(Metric("loss", value, 1_700_000_000_000 + step, step))
        if len(batch) == 1000:
            store.log_batch(long, metrics=batch, params=[], tags=[])
            batch = []
    if batch:
        store.log_batch(long, metrics=batch, params=[], tags=[])
    store.update_run_info(long, finished, 1_700_000_000_001, None)
    store.engine.dispose()
    return exp, long


class Client:
    """One keep-alive connection (reopened if the server closed it while idle); returns the
    parsed body and checks the status."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def _send(self, method: str, path: str, body: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 1:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data)

    def get(self, path: str) -> Any:
        return self._send("GET", path)

    def post(self, path: str, doc: dict[str, Any]) -> Any:
        return self._send("POST", path, json.dumps(doc))


def timed(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = f()  # warm-ups, and the answer to check
    f()
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--mlops", default=str(ROOT / "target/release/mlops"))
    args = p.parse_args()
    if not Path(args.mlops).exists():
        print(f"{args.mlops} is missing: cargo build --release -p mlops-cli", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = str(work / "store")
        t0 = time.time()
        exp, long = load_mlops(store, args.runs, args.points)
        print(f"loaded mlops store in {time.time() - t0:.0f} s", flush=True)
        t0 = time.time()
        db = f"sqlite:///{work}/mlflow.db"
        mexp, mlong = load_mlflow(db, str(work / "artifacts"), args.runs, args.points)
        print(f"loaded MLflow's sqlite store in {time.time() - t0:.0f} s", flush=True)
        ui_port, mlflow_port = free_port(), free_port()
        procs.append(subprocess.Popen([args.mlops, "--store", store, "ui", "--port", str(ui_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env = dict(os.environ, DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true")
        procs.append(subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
             "--port", str(mlflow_port), "--workers", "1",
             "--backend-store-uri", db, "--artifacts-destination", str(work / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        wait(ui_port, "/static/mlops.css", procs[0])
        wait(mlflow_port, "/health", procs[1])
        time.sleep(10)  # let both servers finish starting (MLflow's workers) before timing

        ours, theirs = Client(ui_port), Client(mlflow_port)
        q = urllib.parse.quote
        filt = "metrics.m1 > 0.5 AND params.p0 = 'v3'"
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[Any], int], Callable[[Any], int]]] = [
            ("runs: first page (100)",
             lambda: ours.get(f"/api/runs?experiment_ids={exp}&max_results=100"),
             lambda: theirs.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [mexp], "max_results": 100}),
             lambda r: len(r["runs"]), lambda r: len(r["runs"])),
            ("runs: sorted by a metric",
             lambda: ours.get(f"/api/runs?experiment_ids={exp}&max_results=100&order_by={q('metrics.m0 DESC')}"),
             lambda: theirs.post("/api/2.0/mlflow/runs/search",
                                 {"experiment_ids": [mexp], "max_results": 100, "order_by": ["metrics.m0 DESC"]}),
             lambda r: len(r["runs"]), lambda r: len(r["runs"])),
            ("runs: filtered",
             lambda: ours.get(f"/api/runs?experiment_ids={exp}&max_results=100&filter={q(filt)}"),
             lambda: theirs.post("/api/2.0/mlflow/runs/search",
                                 {"experiment_ids": [mexp], "max_results": 100, "filter": filt}),
             lambda r: len(r["runs"]), lambda r: len(r["runs"])),
            (f"chart data: {args.points:,}-point history",
             lambda: ours.get(f"/api/runs/{long}/metric-history?key=loss&points=1000"),
             lambda: theirs.get(f"/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={mlong}"
                                f"&metric_key=loss&max_results=1000"),
             lambda r: len(r["points"]), lambda r: len(r.get("metrics", []))),
        ]
        print(f"\n{'request':<34} {'mlops':>10} {'MLflow':>10} {'ratio':>8}   items (ours / MLflow)")
        for name, mine, other, n_mine, n_other in cases:
            a, ra = timed(mine, args.repeat)
            b, rb = timed(other, args.repeat)
            print(f"{name:<34} {a:>8.2f}ms {b:>8.2f}ms {b / a:>7.1f}x   {n_mine(ra)} / {n_other(rb)}", flush=True)
        print(f"\n{args.runs} runs x 20 params x 20 metrics; median of {args.repeat} after 3 warm-ups; "
              "one keep-alive connection each; MLflow server with --workers 1 on sqlite")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
