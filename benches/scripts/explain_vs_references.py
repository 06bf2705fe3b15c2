"""Explanations and fairness at native speed, side by side with the references, in one run:

- KernelSHAP: 100 rows x 20 features against 100 background rows, shap's KernelExplainer
  (nsamples "auto" = 2M + 2048, l1_reg=False so both solve the same regression) vs ours;
- permutation importance: 100k rows x 10 features, 5 repeats, accuracy, scikit-learn's
  permutation_importance vs ours;
- group fairness: 1M rows, 8 groups, fairlearn's six disparities (demographic parity,
  equalized odds, equal opportunity; difference and ratio) vs ours.

usage: .venv-bench/bin/python benches/scripts/explain_vs_references.py
           [--shap-rows 100] [--perm-rows 100000] [--fair-rows 1000000] [--repeats 3]

Builds `explain-bench` in release first (cargo). The model is the same on both sides — a
logistic model σ(x·w + b) (KernelSHAP explains its probability; permutation importance scores
its labels x·w + b > 0) evaluated with numpy on the Python side — and every side's data is in
memory before its clock starts. Ours uses every core (rayon); the references run as they do
by default (scikit-learn with n_jobs=None). Prints each ratio and how far the results agree.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "explain-bench")


def ours(*args):
    out = subprocess.run([BIN, *map(str, args)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def best(f, repeats):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return min(times), result


def write_f64(path, a):
    np.ascontiguousarray(a, dtype="<f8").tofile(path)


def kernel(tmp, rows, repeats):
    import shap

    rng = np.random.default_rng(1)
    width = 20
    w = rng.normal(size=width + 1) * 0.5
    x, bg = rng.normal(size=(rows, width)), rng.normal(size=(100, width))

    def f(z):
        return 1.0 / (1.0 + np.exp(-(z @ w[:-1] + w[-1])))

    explainer = shap.KernelExplainer(f, bg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_ref, ref = best(lambda: explainer.shap_values(x, l1_reg=False, silent=True), 1)
    for name, a in [("x", x), ("bg", bg), ("w", w)]:
        write_f64(os.path.join(tmp, f"k_{name}.f64"), a)
    mine = ours("kernel", f"{tmp}/k_x.f64", f"{tmp}/k_bg.f64", width, f"{tmp}/k_w.f64", repeats)
    values = np.array(mine["values"])
    ref = np.asarray(ref).reshape(values.shape)
    # Both sample the coalitions beyond the enumerated sizes, with different generators: the
    # values agree up to sampling error, and both add up exactly.
    corr = np.corrcoef(values.ravel(), ref.ravel())[0, 1]
    return {
        "what": f"KernelSHAP {rows} rows x {width} features, 100 background rows",
        "reference": "shap.KernelExplainer", "ref_s": t_ref, "ours_s": min(mine["times"]),
        "agreement": f"correlation {corr:.6f}, max |diff| {np.abs(values - ref).max():.2e}, "
                     f"our additivity error {mine['additivity_error']:.1e}",
    }


def permutation(tmp, rows, repeats):
    from sklearn.inspection import permutation_importance

    rng = np.random.default_rng(2)
    width = 10
    w = rng.normal(size=width + 1)
    x = rng.normal(size=(rows, width))
    y = ((x @ w[:-1] + w[-1] + rng.normal(size=rows) * 0.5) > 0).astype(float)

    class Logistic:
        """An already fitted model (sklearn's scorer protocol): labels from the margin."""

        def fit(self, X, y):
            return self

        def predict(self, X):
            return ((X @ w[:-1] + w[-1]) > 0).astype(float)

        def score(self, X, y):
            return float(np.mean(self.predict(X) == y))

    model = Logistic()
    t_ref, ref = best(lambda: permutation_importance(model, x, y, n_repeats=5, random_state=0), 1)
    for name, a in [("x", x), ("y", y), ("w", w)]:
        write_f64(os.path.join(tmp, f"p_{name}.f64"), a)
    mine = ours("permutation", f"{tmp}/p_x.f64", f"{tmp}/p_y.f64", width, f"{tmp}/p_w.f64", repeats)
    diff = np.abs(np.array(mine["means"]) - ref.importances_mean).max()
    rank = list(np.argsort(-np.array(mine["means"]))) == list(np.argsort(-ref.importances_mean))
    return {
        "what": f"permutation importance {rows} rows x {width} features, 5 repeats",
        "reference": "sklearn.inspection.permutation_importance", "ref_s": t_ref,
        "ours_s": min(mine["times"]),
        # Different generators shuffle differently; exact equality with given permutations is
        # what tests/references.rs checks.
        "agreement": f"max |mean diff| {diff:.2e} (different shuffles), same ranking: {rank}",
    }


def fairness(tmp, rows, repeats):
    from fairlearn.metrics import (
        demographic_parity_difference, demographic_parity_ratio, equal_opportunity_difference,
        equal_opportunity_ratio, equalized_odds_difference, equalized_odds_ratio,
    )

    rng = np.random.default_rng(3)
    group = rng.choice([f"g{i}" for i in range(8)], size=rows, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    y_true = rng.integers(0, 2, size=rows)
    bias = pd.Series(group).map({f"g{i}": 0.05 * i for i in range(8)}).to_numpy()
    y_pred = (rng.random(rows) < 0.3 + 0.4 * y_true - bias).astype(np.int64)
    table = pa.table({"y_true": y_true, "y_pred": y_pred, "group": group})
    path = os.path.join(tmp, "fair.parquet")
    pq.write_table(table, path)
    metrics = {
        "demographic_parity_difference": demographic_parity_difference,
        "demographic_parity_ratio": demographic_parity_ratio,
        "equalized_odds_difference": equalized_odds_difference,
        "equalized_odds_ratio": equalized_odds_ratio,
        "equal_opportunity_difference": equal_opportunity_difference,
        "equal_opportunity_ratio": equal_opportunity_ratio,
    }

    def reference():
        return {k: f(y_true, y_pred, sensitive_features=group) for k, f in metrics.items()}

    t_ref, ref = best(reference, 1)
    mine = ours("fairness", path, repeats)
    diff = max(abs(mine["disparities"][k] - v) for k, v in ref.items())
    return {
        "what": f"six fairlearn disparities, {rows} rows, 8 groups",
        "reference": "fairlearn.metrics", "ref_s": t_ref, "ours_s": min(mine["times"]),
        "agreement": f"max |diff| {diff:.1e}",
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shap-rows", type=int, default=100)
    p.add_argument("--perm-rows", type=int, default=100_000)
    p.add_argument("--fair-rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "mlops-benches", "--bin", "explain-bench"],
                   cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = [kernel(tmp, a.shap_rows, a.repeats), permutation(tmp, a.perm_rows, a.repeats),
                   fairness(tmp, a.fair_rows, a.repeats)]
    print(f"{os.cpu_count()} cores; ours: best of {a.repeats}; the references: one run each")
    for r in results:
        print(f"{r['what']}: {r['reference']} {r['ref_s']:.3f} s, ours {r['ours_s']:.4f} s "
              f"-> {r['ref_s'] / r['ours_s']:.1f}x; {r['agreement']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
