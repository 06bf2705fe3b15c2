"""Drift at native speed: Evidently's DataDriftPreset against ours on the same 100k x 25 data,
and scipy's ks_2samp against ours on 1M vs 1M, in one invocation. Prints the ratios and whether
every column decision agrees.

usage: .venv-peers/bin/python benches/scripts/drift_vs_evidently.py [--rows 100000] [--ks-n 1000000]

Builds `drift-bench` in release first (cargo), times Evidently and scipy in this process on data
already in memory, and times ours inside the Rust binary on the same data (files written here),
so neither side pays for start-up or file reading.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Evidently's method names -> (our test name, drift when score <= / < / >= threshold)
METHODS = {
    "K-S p_value": ("ks", "le"),
    "chi-square p_value": ("chisquare", "lt"),
    "Z-test p_value": ("z", "lt"),
    "Wasserstein distance (normed)": ("wasserstein", "ge"),
    "Jensen-Shannon distance": ("jensenshannon", "ge"),
    "PSI": ("psi", "ge"),
}


def make_data(rows, rng):
    ref, cur = {}, {}
    for i in range(20):
        kind = i % 4
        shift = 0.05 * (i % 5)  # a quarter of the columns unchanged, others shifted a little or more
        if kind == 0:
            ref[f"num{i}"] = rng.normal(0, 1, rows)
            cur[f"num{i}"] = rng.normal(shift, 1, rows)
        elif kind == 1:
            ref[f"num{i}"] = rng.exponential(1.0, rows)
            cur[f"num{i}"] = rng.exponential(1.0 + shift, rows)
        elif kind == 2:
            ref[f"num{i}"] = rng.uniform(0, 10, rows)
            cur[f"num{i}"] = rng.uniform(shift * 10, 10, rows)
        else:
            ref[f"num{i}"] = np.round(rng.normal(50, 10, rows))
            cur[f"num{i}"] = np.round(rng.normal(50 + shift * 20, 10, rows))
    for j in range(5):
        cats = [f"c{k}" for k in range(3 + 2 * j)]
        p = np.ones(len(cats)) / len(cats)
        q = p.copy()
        q[0] += 0.02 * j
        q /= q.sum()
        ref[f"cat{j}"] = rng.choice(cats, rows, p=p)
        cur[f"cat{j}"] = rng.choice(cats, rows, p=q)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def evidently_run(ref, cur):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    t = time.perf_counter()
    result = Report([DataDriftPreset()]).run(cur, ref)
    elapsed = time.perf_counter() - t
    decisions = {}
    for m in result.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            test, op = METHODS[cfg["method"]]
            score, thr = m["value"], cfg["threshold"]
            drifted = {"le": score <= thr, "lt": score < thr, "ge": score >= thr}[op]
            decisions[cfg["column"]] = (test, score, drifted)
    return elapsed, decisions


def ours(mode, a, b, repeats):
    out = subprocess.run(
        [os.path.join(ROOT, "target", "release", "drift-bench"), mode, a, b, str(repeats)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--ks-n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "mlops-benches", "--bin", "drift-bench"],
                   cwd=ROOT, check=True)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        ref, cur = make_data(args.rows, rng)
        rp, cp = os.path.join(tmp, "ref.parquet"), os.path.join(tmp, "cur.parquet")
        pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), rp)
        pq.write_table(pa.Table.from_pandas(cur, preserve_index=False), cp)

        ev_time, ev = evidently_run(ref, cur)
        me = ours("drift", rp, cp, args.repeats)
        mine = {c["column"]: (c["test"], c["score"], c["drifted"]) for c in me["columns"]}
        disagree = [
            f"{col}: evidently {ev[col]} ours {mine.get(col)}"
            for col in ev
            if col not in mine or ev[col][0] != mine[col][0] or ev[col][2] != mine[col][2]
        ]
        drifted = sum(1 for v in ev.values() if v[2])
        print(f"data drift, {args.rows} rows x {ref.shape[1]} columns ({drifted} drifted per Evidently):")
        print(f"  Evidently DataDriftPreset  {ev_time:8.3f} s")
        print(f"  mlops StatDetector         {me['median_s']:8.3f} s (median of {args.repeats}; best {me['best_s']:.3f} s)")
        print(f"  ratio                      {ev_time / me['median_s']:8.1f}x")
        print(f"  column decisions agree:    {'yes, all ' + str(len(ev)) if not disagree else 'NO'}")
        for d in disagree:
            print("    " + d)

        n = args.ks_n
        a = rng.normal(0, 1, n)
        b = rng.normal(0.002, 1, n)
        ap_, bp_ = os.path.join(tmp, "a.f64"), os.path.join(tmp, "b.f64")
        a.astype("<f8").tofile(ap_)
        b.astype("<f8").tofile(bp_)
        best = None
        for _ in range(3):
            t = time.perf_counter()
            r = stats.ks_2samp(a, b)
            e = time.perf_counter() - t
            best = e if best is None else min(best, e)
        mk = ours("ks", ap_, bp_, args.repeats)
        same = abs(mk["pvalue"] - r.pvalue) <= 1e-9 * max(abs(r.pvalue), 1e-300) and mk["statistic"] == r.statistic
        print(f"two-sample KS, {n} vs {n}:")
        print(f"  scipy ks_2samp             {best:8.3f} s (best of 3)")
        print(f"  mlops ks_2samp            {mk['best_s']:8.3f} s (best of {args.repeats}, sorting included)")
        print(f"  ratio                      {best / mk['best_s']:8.1f}x")
        print(f"  same statistic and p-value: {'yes' if same else 'NO'} (p = {r.pvalue:.6g} vs {mk['pvalue']:.6g})")
        return 0 if not disagree and same else 1


if __name__ == "__main__":
    sys.exit(main())
