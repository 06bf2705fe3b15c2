"""The reference side of tests/scipy.rs: scores the cases it wrote with scipy and with
Evidently's own stat-test functions, and writes the results as JSON.

usage: python oracle.py MANIFEST.json RESULTS.json
"""
import json
import sys

import numpy as np
import pandas as pd
from scipy import stats

from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.calculations.stattests.registry import _get_default_stattest
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
from evidently.legacy.core import ColumnType

TESTS = {
    "ks": _ks_stat_test,
    "chisquare": _chi_stat_test,
    "z": _z_stat_test,
    "wasserstein": _wasserstein_distance_norm,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
}

manifest = json.load(open(sys.argv[1]))
results = []
for case in manifest["cases"]:
    a = np.fromfile(case["reference"], dtype="<f8")
    b = np.fromfile(case["current"], dtype="<f8")
    if case["kind"] == "categorical":
        ref = pd.Series([f"c{int(v)}" for v in a])
        cur = pd.Series([f"c{int(v)}" for v in b])
        ftype = ColumnType.Categorical
    else:
        ref, cur = pd.Series(a), pd.Series(b)
        ftype = ColumnType.Numerical
    out = {"name": case["name"], "scores": {}}
    for test in case["tests"]:
        score, _ = TESTS[test](ref, cur, ftype, 0.05)
        out["scores"][test] = float(score)
    if case["kind"] == "numerical":
        ks = stats.ks_2samp(a, b)
        out["ks_statistic"] = float(ks.statistic)
        out["ks_pvalue"] = float(ks.pvalue)
        out["wasserstein_distance"] = float(stats.wasserstein_distance(a, b))
    out["default_test"] = _get_default_stattest(ref, cur, ftype).name
    results.append(out)
json.dump(results, open(sys.argv[2], "w"))
