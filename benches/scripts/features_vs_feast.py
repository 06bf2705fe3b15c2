#!/usr/bin/env python3
"""The feature store: mlops versus Feast 0.67 on the same files, one run.

    .venv-peers/bin/python benches/scripts/features_vs_feast.py [--entity-rows 1000000]
        [--source-rows 1000000] [--calls 2000] [--bench target/release/features-bench]
        [--mlops target/release/mlops]

Data: three feature views over Parquet sources of --source-rows rows each (customer stats with a
created column and a 24 h ttl, customer orders with no ttl, region risk keyed by a second entity
with a 7-day ttl), timestamps in µs over 60 days, and --entity-rows entity rows with labels.

- historical: `get_historical_features` of 6 features from the 3 views for every entity row
  (Feast: its DuckDB offline store, `.to_df()`; mlops: `features-bench historical`, Parquet out),
  then every value of both results compared (NaN and null are equal);
- materialize: every view over the whole window into the online store (Feast: sqlite; mlops:
  the embedded redb store), source rows per second;
- online, in process: `get_online_features` of 3 features, and of a 10-feature profile view,
  for 1 entity, --calls times, and of the profile for a batch of 100 entities (Feast: `FeatureStore.get_online_features` in Python; mlops:
  `features-bench online`), each sequence once unmeasured first (a serving process's steady state);
- online over HTTP: the same JSON request to `feast serve -w 1` and `mlops features serve`, one
  keep-alive connection, p50/p99: from this process (Python's http.client), then from a minimal
  Rust client (`features-bench http`), the same client for both servers each time.

ratio = Feast / mlops for times, mlops / Feast for rows per second: above 1 means mlops is
better. Build the binaries first: cargo build --release -p mlops-benches --bin features-bench -p
mlops-cli.
"""
import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone

warnings.simplefilter("ignore")
os.environ.setdefault("FEAST_USAGE", "False")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE_US = int(datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000
HOUR_US = 3_600_000_000
FEATURES = [
    "customer_stats:spend",
    "customer_stats:tenure",
    "customer_stats:score",
    "customer_orders:n_orders",
    "customer_orders:amount",
    "region_risk:risk",
]
ONLINE_FEATURES = ["customer_stats:spend", "customer_stats:tenure", "customer_stats:score"]
# The in-process goal is stated for 1 entity x 10 features: a profile view of 10.
PROFILE = [f"p{i}" for i in range(10)]
WIDE_FEATURES = [f"customer_profile:{f}" for f in PROFILE]


def ts(us):
    return pa.array(us, type=pa.timestamp("us", tz="UTC"))


def generate(dir, n_rows, n_entities, rng):
    customers = max(n_rows // 10, 10)
    regions = 1000
    hours = 60 * 24
    ev = BASE_US + rng.integers(0, hours, n_rows) * HOUR_US
    stats = pa.table({
        "customer_id": rng.integers(0, customers, n_rows),
        "event_timestamp": ts(ev),
        # Created times are unique (+ the row's index in µs): no two rows tie on both
        # timestamps, where either engine may pick either row.
        "created": ts(ev + rng.integers(0, 3600, n_rows) * 1_000_000 + np.arange(n_rows)),
        "spend": np.round(rng.random(n_rows) * 1000, 2),
        "tenure": rng.integers(0, 120, n_rows),
        "score": rng.random(n_rows),
    })
    # Unique order times (no created column to break ties).
    ev2 = BASE_US + rng.permutation(hours * 3600)[:n_rows] * 1_000_000
    orders = pa.table({
        "customer_id": rng.integers(0, customers, n_rows),
        "order_ts": ts(ev2),
        "n_orders": rng.integers(0, 50, n_rows),
        "amount": np.round(rng.random(n_rows) * 500, 2),
    })
    ev3 = BASE_US + rng.integers(0, hours * 60, n_rows) * 60_000_000
    risk = pa.table({
        "region_id": rng.integers(0, regions, n_rows),
        "event_timestamp": ts(ev3),
        "created": ts(ev3 + rng.integers(0, 600, n_rows) * 1_000_000 + np.arange(n_rows)),
        "risk": rng.random(n_rows),
    })
    entities = pa.table({
        "customer_id": rng.integers(0, int(customers * 1.05), n_entities),
        "region_id": rng.integers(0, regions, n_entities),
        "event_timestamp": ts(BASE_US + rng.integers(0, hours * 3600, n_entities) * 1_000_000),
        "row_id": np.arange(n_entities),
        "label": rng.integers(0, 2, n_entities),
    })
    # Two rows per customer, the later one online.
    profile = pa.table({
        "customer_id": np.tile(np.arange(customers), 2),
        "event_timestamp": ts(BASE_US + rng.integers(0, hours, 2 * customers) * HOUR_US),
        **{f: rng.random(2 * customers) for f in PROFILE},
    })
    for name, t in [("stats", stats), ("orders", orders), ("risk", risk), ("profile", profile),
                    ("entities", entities)]:
        pq.write_table(t, os.path.join(dir, f"{name}.parquet"))
    pq.write_table(pa.table({"customer_id": np.arange(customers)}), os.path.join(dir, "online_keys.parquet"))
    return customers


OURS_YAML = """project: bench
entities:
  - {name: customer, join_keys: [customer_id]}
  - {name: region, join_keys: [region_id]}
sources:
  - {name: stats_source, path: stats.parquet, timestamp_field: event_timestamp, created_timestamp_column: created}
  - {name: orders_source, path: orders.parquet, timestamp_field: order_ts}
  - {name: risk_source, path: risk.parquet, timestamp_field: event_timestamp, created_timestamp_column: created}
  - {name: profile_source, path: profile.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: customer_stats
    entities: [customer]
    ttl: 24h
    source: stats_source
    schema: [{name: spend, dtype: Float64}, {name: tenure, dtype: Int64}, {name: score, dtype: Float64}]
  - name: customer_orders
    entities: [customer]
    source: orders_source
    schema: [{name: n_orders, dtype: Int64}, {name: amount, dtype: Float64}]
  - name: region_risk
    entities: [region]
    ttl: 7days
    source: risk_source
    schema: [{name: risk, dtype: Float64}]
  - name: customer_profile
    entities: [customer]
    source: profile_source
    schema: [""" + ", ".join(f"{{name: {f}, dtype: Float64}}" for f in PROFILE) + """]
"""


def feast_store(dir):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64, Int64

    repo = os.path.join(dir, "feast_repo")
    os.makedirs(os.path.join(repo, "data"), exist_ok=True)
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write("project: bench\nregistry: data/registry.db\nprovider: local\n"
                "offline_store:\n  type: duckdb\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
                "entity_key_serialization_version: 3\n")
    customer = Entity(name="customer", join_keys=["customer_id"])
    region = Entity(name="region", join_keys=["region_id"])
    p = lambda n: os.path.join(dir, n)
    stats_src = FileSource(name="stats_source", path=p("stats.parquet"), timestamp_field="event_timestamp", created_timestamp_column="created")
    orders_src = FileSource(name="orders_source", path=p("orders.parquet"), timestamp_field="order_ts")
    risk_src = FileSource(name="risk_source", path=p("risk.parquet"), timestamp_field="event_timestamp", created_timestamp_column="created")
    profile_src = FileSource(name="profile_source", path=p("profile.parquet"), timestamp_field="event_timestamp")
    views = [
        FeatureView(name="customer_stats", entities=[customer], ttl=timedelta(hours=24), source=stats_src,
                    schema=[Field(name="customer_id", dtype=Int64), Field(name="spend", dtype=Float64), Field(name="tenure", dtype=Int64), Field(name="score", dtype=Float64)]),
        FeatureView(name="customer_orders", entities=[customer], ttl=timedelta(0), source=orders_src,
                    schema=[Field(name="customer_id", dtype=Int64), Field(name="n_orders", dtype=Int64), Field(name="amount", dtype=Float64)]),
        FeatureView(name="region_risk", entities=[region], ttl=timedelta(days=7), source=risk_src,
                    schema=[Field(name="region_id", dtype=Int64), Field(name="risk", dtype=Float64)]),
        FeatureView(name="customer_profile", entities=[customer], ttl=timedelta(0), source=profile_src,
                    schema=[Field(name="customer_id", dtype=Int64), *[Field(name=f, dtype=Float64) for f in PROFILE]]),
    ]
    with contextlib.redirect_stdout(sys.stderr):
        store = FeatureStore(repo_path=repo)
        store.apply([customer, region, stats_src, orders_src, risk_src, profile_src, *views])
    return store, repo


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(ours_path, theirs_df):
    ours = pq.read_table(ours_path).to_pandas().sort_values("row_id").reset_index(drop=True)
    theirs = theirs_df.sort_values("row_id").reset_index(drop=True)
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    mismatches = 0
    for ref in FEATURES:
        col = ref.split(":")[1]
        a = pd.to_numeric(ours[col], errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(theirs[col], errors="coerce").to_numpy(dtype=float)
        both_nan = np.isnan(a) & np.isnan(b)
        close = np.isclose(a, b, rtol=1e-12, atol=0)
        mismatches += int((~(both_nan | close)).sum())
    return mismatches


def percentiles(lat):
    lat = sorted(lat)
    return lat[len(lat) // 2], lat[int(round((len(lat) - 1) * 0.99))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(port, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} never healthy")


def http_latency(port, calls, customers):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    for i in range(calls):
        body = json.dumps({"features": ONLINE_FEATURES, "entities": {"customer_id": [i * 7919 % customers]}})
        t = time.perf_counter()
        conn.request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t)
        assert r.status == 200, r.status
    return percentiles(lat)


def row(area, feast, ours, ratio):
    print(f"{area:<44} Feast {feast:<28} mlops {ours:<28} ratio {ratio}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entity-rows", type=int, default=1_000_000)
    ap.add_argument("--source-rows", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--no-historical", action="store_true", help="skip the training-set comparison")
    ap.add_argument("--bench", default=os.path.join(ROOT, "target/release/features-bench"))
    ap.add_argument("--mlops", default=os.path.join(ROOT, "target/release/mlops"))
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    dir = tempfile.mkdtemp(prefix="features-bench-")
    try:
        customers = generate(dir, args.source_rows, args.entity_rows, rng)
        with open(os.path.join(dir, "features.yaml"), "w") as f:
            f.write(OURS_YAML)
        with open(os.path.join(dir, "features.json"), "w") as f:
            json.dump(FEATURES, f)
        store, repo = feast_store(dir)
        print(f"{args.entity_rows} entity rows, 4 views (3 of {args.source_rows} rows), {customers} customers", flush=True)

        # Historical retrieval.
        if not args.no_historical:
            entity_df = pd.read_parquet(os.path.join(dir, "entities.parquet"))
            t = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):
                theirs = store.get_historical_features(entity_df=entity_df, features=FEATURES).to_df()
            feast_s = time.perf_counter() - t
            ours = run_json([args.bench, "historical", dir])
            mismatches = compare(os.path.join(dir, "ours.parquet"), theirs)
            row("historical (%d values compared)" % (len(FEATURES) * args.entity_rows),
                f"{feast_s:.2f} s", f"{ours['seconds']:.3f} s", f"{feast_s / ours['seconds']:.1f}x, {mismatches} mismatches")

        # Materialization.
        end = datetime.now(timezone.utc)
        start = datetime(2026, 9, 1, tzinfo=timezone.utc)
        t = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            store.materialize(start, end)
        feast_m = time.perf_counter() - t
        ours_m = run_json([args.bench, "materialize", dir])
        rows = 3 * args.source_rows + 2 * customers
        row("materialize (%d source rows)" % rows, f"{rows / feast_m:,.0f} rows/s ({feast_m:.1f} s)",
            f"{ours_m['rows'] / ours_m['seconds']:,.0f} rows/s ({ours_m['seconds']:.2f} s)",
            f"{(ours_m['rows'] / ours_m['seconds']) / (rows / feast_m):.1f}x")

        # Online, in process.
        for features, batch in ((ONLINE_FEATURES, 1), (WIDE_FEATURES, 1), (WIDE_FEATURES, 100)):
            # The same sequence twice, the first pass unmeasured (as features-bench does).
            for measured in (False, True):
                lat = []
                for i in range(args.calls if batch == 1 else args.calls // 10):
                    ids = [(i * 7919 + j) % customers for j in range(batch)]
                    t = time.perf_counter()
                    store.get_online_features(features=features, entity_rows=[{"customer_id": k} for k in ids])
                    lat.append(time.perf_counter() - t)
            f50, f99 = percentiles(lat)
            # Ours is cheap to sample: 10x the calls, for a steadier p99.
            calls = 10 * args.calls if batch == 1 else args.calls
            o = run_json([args.bench, "online", dir, str(calls), ",".join(features), str(batch)])
            row(f"online in process, {batch} entity x {len(features)} features (p50/p99)",
                f"{f50 * 1e6:.0f} / {f99 * 1e6:.0f} us", f"{o['p50_us']:.1f} / {o['p99_us']:.1f} us",
                f"{f50 * 1e6 / o['p50_us']:.0f}x / {f99 * 1e6 / o['p99_us']:.0f}x")

        # Online over HTTP.
        feast_port, our_port = free_port(), free_port()
        feast_bin = os.path.join(os.path.dirname(sys.executable), "feast")
        # Its own session, so that its worker processes stop with it (os.killpg below).
        # No access log, and no worker restart every ~1000 requests (its default), which would
        # close our keep-alive connection mid-run.
        fp = subprocess.Popen([feast_bin, "serve", "-h", "127.0.0.1", "-p", str(feast_port), "-w", "1",
                               "--no-access-log", "--max-requests", "100000000"],
                              cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        op = subprocess.Popen([args.mlops, "--store", os.path.join(dir, "store"), "features", "serve", "--project", "bench",
                               "--port", str(our_port), "--online", os.path.join(dir, "online.redb"), "--root", dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_health(feast_port, fp)
            wait_health(our_port, op)
            http_latency(feast_port, 100, customers)
            http_latency(our_port, 100, customers)
            f50, f99 = http_latency(feast_port, args.calls, customers)
            o50, o99 = http_latency(our_port, args.calls, customers)
            row("HTTP, 1 entity x 3 features, Python client",
                f"{f50 * 1e3:.3f} / {f99 * 1e3:.3f} ms", f"{o50 * 1e3:.3f} / {o99 * 1e3:.3f} ms",
                f"{f50 / o50:.1f}x / {f99 / o99:.1f}x")
            # The same requests from a minimal Rust client (features-bench http): what is left
            # is the server and the loopback.
            for features in (ONLINE_FEATURES, WIDE_FEATURES):
                spec = [str(args.calls), ",".join(features), str(customers)]
                f = run_json([args.bench, "http", str(feast_port), *spec])
                o = run_json([args.bench, "http", str(our_port), *spec])
                row(f"HTTP, 1 entity x {len(features)} features, Rust client",
                    f"{f['p50_us'] / 1e3:.3f} / {f['p99_us'] / 1e3:.3f} ms",
                    f"{o['p50_us'] / 1e3:.3f} / {o['p99_us'] / 1e3:.3f} ms",
                    f"{f['p50_us'] / o['p50_us']:.1f}x / {f['p99_us'] / o['p99_us']:.1f}x")
        finally:
            os.killpg(fp.pid, signal.SIGTERM)
            op.terminate()
            for p in (fp, op):
                p.wait()
    finally:
        shutil.rmtree(dir, ignore_errors=True)


if __name__ == "__main__":
    main()
