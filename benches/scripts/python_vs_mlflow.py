"""The Python package against the Python tools it replaces, in one invocation on one machine:

1. tracking: `mlops.log_metric` vs `mlflow.log_metric`, one call at a time, per call, end to end
   (start the run, log, end it — durable), against MLflow's default sqlite store and its file
   store;
2. `import mlops` vs `import mlflow`, each in a fresh interpreter;
3. drift on a 100k x 25 pandas frame: `mlops.detect` vs Evidently's DataDriftPreset, and whether
   every column decision agrees;
4. serving from Python: `Server.infer` per call (one row) vs MLflow's pyfunc `predict` of a
   scikit-learn model loaded in process, per call.

usage: .venv-peers/bin/pip install ./mlops-py      # a release build: numbers are meaningless in debug
       .venv-peers/bin/python benches/scripts/python_vs_mlflow.py [--calls 200000] [--mlflow-calls 300]

Each MLflow measurement runs in its own interpreter (its import and set-up outside the timed
part), so one tool's state never slows the other.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MLFLOW_LOGGING = r"""
import json, os, sys, time
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("bench")
n = int(sys.argv[2])
with mlflow.start_run():                       # warm: the first run creates tables and folders
    mlflow.log_metric("warm", 1.0)
t = time.perf_counter()
with mlflow.start_run():
    for i in range(n):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "calls": n}))
"""

IMPORT = r"""
import sys, time
t = time.perf_counter()
__import__(sys.argv[1])
print(time.perf_counter() - t)
"""


def python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def import_seconds(module: str, repeats: int) -> float:
    env_code = "import os; os.environ['DO_NOT_TRACK']='1'\n" + IMPORT
    return min(float(python(env_code, module)) for _ in range(repeats))


def mlops_logging(calls: int, store: str) -> float:
    import mlops

    mlops.set_store(store)
    mlops.set_experiment("bench")
    with mlops.start_run():
        mlops.log_metric("warm", 1.0)
    t = time.perf_counter()
    with mlops.start_run():
        for i in range(calls):
            mlops.log_metric("loss", 1.0 / (i + 1), step=i)
    return (time.perf_counter() - t) / calls


def drift(rows: int) -> None:
    spec = importlib.util.spec_from_file_location("drift_vs_evidently", HERE / "drift_vs_evidently.py")
    assert spec is not None and spec.loader is not None
    reference_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference_script)
    import numpy as np

    import mlops

    ref, cur = reference_script.make_data(rows, np.random.default_rng(7))
    evidently_seconds, theirs = reference_script.evidently_run(ref, cur)
    times, full = [], []
    for _ in range(5):
        t = time.perf_counter()
        report = mlops.detect(ref, cur)
        times.append(time.perf_counter() - t)
        report.to_dict()  # the histograms of every column, as the HTML page needs them
        full.append(time.perf_counter() - t)
    ours = {c: (r["test"], r["drifted"]) for c, r in report.columns.items()}
    disagree = [c for c in theirs if ours.get(c) != (theirs[c][0], theirs[c][2])]
    median, median_full = statistics.median(times), statistics.median(full)
    print(f"drift, {rows} rows x {ref.shape[1]} columns (pandas frames in; medians of 5):")
    print(f"  Evidently DataDriftPreset   {evidently_seconds:9.3f} s")
    print(f"  mlops.detect                {median:9.3f} s (decisions; pandas → Arrow included)  {evidently_seconds / median:6.1f}x")
    print(f"  ... + report.to_dict()      {median_full:9.3f} s (with every column's histogram)    {evidently_seconds / median_full:6.1f}x")
    print(f"  column decisions agree:     {'yes, all ' + str(len(theirs)) if not disagree else 'NO: ' + ', '.join(disagree)}")


def serving(calls: int, tmp: str) -> None:
    import numpy as np
    import pandas as pd

    import mlops

    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["y"] = frame.a - frame.b > 0
    model = mlops.train(frame, "y", "logistic", epochs=5)
    server = mlops.Server()
    server.load_model("m", model)
    row = {"a": np.array([0.3]), "b": np.array([-0.2])}
    for _ in range(1000):
        server.infer("m", row)
    t = time.perf_counter()
    for _ in range(calls):
        server.infer("m", row)
    ours = (time.perf_counter() - t) / calls

    code = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
import numpy as np, pandas as pd, mlflow.pyfunc, mlflow.sklearn
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(3)
x = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
y = x.a - x.b > 0
path = os.path.join(sys.argv[1], "sk")
mlflow.sklearn.save_model(LogisticRegression().fit(x, y), path)
model = mlflow.pyfunc.load_model(path)
row = pd.DataFrame({"a": [0.3], "b": [-0.2]})
for _ in range(200):
    model.predict(row)
n = int(sys.argv[2])
t = time.perf_counter()
for _ in range(n):
    model.predict(row)
print(json.dumps({"per_call": (time.perf_counter() - t) / n}))
"""
    theirs = json.loads(python(code, tmp, str(max(calls // 20, 500))))["per_call"]
    print("serving from Python, one row per call, in process:")
    print(f"  MLflow pyfunc (scikit-learn) predict  {theirs * 1e6:9.1f} µs/call")
    print(f"  mlops Server.infer (candle logistic)  {ours * 1e6:9.1f} µs/call")
    print(f"  ratio                                 {theirs / ours:9.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000, help="mlops.log_metric calls")
    ap.add_argument("--mlflow-calls", type=int, default=300, help="mlflow.log_metric calls (sqlite)")
    ap.add_argument("--file-calls", type=int, default=2000, help="mlflow.log_metric calls (file store)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--infer-calls", type=int, default=50_000)
    args = ap.parse_args()

    import mlops

    if mlops._native.__build_profile__ != "release":
        print("the installed mlops is a debug build: pip install ./mlops-py (release) first")
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = json.loads(
            python(MLFLOW_LOGGING, f"sqlite:///{tmp}/mlflow.db", str(args.mlflow_calls))
        )
        files = json.loads(python(MLFLOW_LOGGING, Path(tmp, "mlruns").as_uri(), str(args.file_calls)))
        ours = mlops_logging(args.calls, os.path.join(tmp, "mlops-data"))
        per_sqlite = sqlite["seconds"] / sqlite["calls"]
        per_files = files["seconds"] / files["calls"]
        print("log_metric one call at a time, end to end (run started, logged, ended durable):")
        print(f"  mlflow, sqlite store  {per_sqlite * 1e6:10.1f} µs/call ({sqlite['calls']} calls)")
        print(f"  mlflow, file store    {per_files * 1e6:10.1f} µs/call ({files['calls']} calls)")
        print(f"  mlops                 {ours * 1e6:10.2f} µs/call ({args.calls} calls)")
        print(f"  ratio vs sqlite       {per_sqlite / ours:10.0f}x")
        print(f"  ratio vs file store   {per_files / ours:10.0f}x")

        ours_import = import_seconds("mlops", 5)
        theirs_import = import_seconds("mlflow", 3)
        print("import, fresh interpreter (best of 5 / 3):")
        print(f"  import mlflow         {theirs_import * 1e3:10.1f} ms")
        print(f"  import mlops          {ours_import * 1e3:10.1f} ms")
        print(f"  ratio                 {theirs_import / ours_import:10.1f}x")

        drift(args.rows)
        serving(args.infer_calls, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
