"""Serving throughput and latency: our ModelServer against MLServer (Seldon) serving the same
scikit-learn logistic regression, driven by the same native load generator in the same run;
plus our server's overhead with an identity model.

1. The model as our `linear` flavor (coef_/intercept_) against MLServer's scikit-learn runtime,
   REST (wrk when installed, else serve-bench's Rust client; the same one for both).
2. The same model exported to ONNX with skl2onnx (no ZipMap) and served by our server's `onnx`
   flavor (onnxruntime when ORT_DYLIB_PATH names it, else tract) over REST and gRPC, against
   MLServer's scikit-learn runtime over REST and gRPC — every one of the four driven by
   serve-bench's own client (`load`, `load-grpc`: keep-alive HTTP/1.1 connections, HTTP/2
   connections with raw tensor contents, as tritonclient sends them).

usage: python benches/scripts/serving_vs_mlserver.py [--seconds 10] [--connections 32]

Needs a venv with mlserver, mlserver-sklearn, scikit-learn and skl2onnx (it creates .venv-bench
when missing). Everything listens on 127.0.0.1 only.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import shutil

WRK = shutil.which("wrk")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".venv-bench")
# uvloop 0.20+ breaks MLServer 1.7 on Python 3.11 ("no current event loop"): pin the last that works.
PACKAGES = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "scikit-learn==1.9.1", "numpy==2.4.6", "uvloop==0.19.0",
            "skl2onnx==1.20.0", "onnx==1.23.2"]


def venv_python():
    py = os.path.join(VENV, "bin", "python")
    stamp = os.path.join(VENV, ".installed")
    want = " ".join(PACKAGES)
    if not os.path.exists(py) or not os.path.exists(stamp) or open(stamp).read() != want:
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *PACKAGES], check=True)
        open(stamp, "w").write(want)
    return py


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(url, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout}s")


def parse_wrk_latency(text, pct):
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == f"{pct}%":
            v = parts[1]
            for unit, scale in (("us", 1), ("ms", 1000), ("s", 1_000_000)):
                if v.endswith(unit):
                    return float(v[: -len(unit)]) * scale
    return float("nan")


def load(bench, url, payload, connections, seconds):
    """The same client for every server: wrk (C, from Debian's packages) when installed, which
    leaves more of this machine's cores to the servers, else our own Rust client."""
    if WRK:
        body = open(payload).read().replace("\\", "\\\\").replace("'", "\\'")
        script = payload + ".lua"
        with open(script, "w") as f:
            f.write("wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n")
            f.write(f"wrk.body = '{body}'\n")
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "-s", script, "--latency", url],
                             check=True, capture_output=True, text=True).stdout
        rps = next(float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec:"))
        errors = sum(int(l.split()[-1]) for l in out.splitlines() if l.startswith("  Non-2xx"))
        return {"rps": rps, "p50_us": parse_wrk_latency(out, 50), "p99_us": parse_wrk_latency(out, 99),
                "errors": errors, "client": "wrk"}
    out = subprocess.run([bench, "load", url, payload, str(connections), str(seconds)],
                         check=True, capture_output=True, text=True)
    r = json.loads(out.stdout)
    r["client"] = "serve-bench load"
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    py = venv_python()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "mlops-benches", "--bin", "serve-bench"],
                   cwd=ROOT, check=True)
    bench = os.path.join(ROOT, "target", "release", "serve-bench")
    with tempfile.TemporaryDirectory() as tmp:
        # One model, two servers: fit in the bench venv, export for both.
        fit = r'''
import json, sys, os, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.normal(size=(5000, 20)).astype("float32")
y = (X @ rng.normal(size=20) > 0).astype(int)
m = LogisticRegression(max_iter=500).fit(X, y)
d = sys.argv[1]
os.makedirs(os.path.join(d, "mls", "model"), exist_ok=True)
joblib.dump(m, os.path.join(d, "mls", "model", "model.joblib"))
json.dump({"name": "model", "implementation": "mlserver_sklearn.SKLearnModel",
           "parameters": {"uri": "./model.joblib", "version": "1"}},
          open(os.path.join(d, "mls", "model", "model-settings.json"), "w"))
json.dump({"coef": m.coef_.tolist(), "intercept": m.intercept_.tolist(), "link": "sigmoid"},
          open(os.path.join(d, "linear.json"), "w"))
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
onx = convert_sklearn(m, initial_types=[("x", FloatTensorType([None, 20]))], options={id(m): {"zipmap": False}})
open(os.path.join(d, "model.onnx"), "wb").write(onx.SerializeToString())
'''
        subprocess.run([py, "-c", fit, tmp], check=True)
        payload = os.path.join(tmp, "payload.json")
        json.dump({"inputs": [{"name": "x", "shape": [1, 20], "datatype": "FP32", "data": [0.1] * 20}]},
                  open(payload, "w"))

        mls_port, mls_grpc, mls_metrics = free_port(), free_port(), free_port()
        json.dump({"host": "127.0.0.1", "http_port": mls_port, "grpc_port": mls_grpc,
                   "metrics_port": mls_metrics, "debug": False},
                  open(os.path.join(tmp, "mls", "settings.json"), "w"))
        mls = subprocess.Popen([os.path.join(VENV, "bin", "mlserver"), "start", os.path.join(tmp, "mls")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours_port = free_port()
        ours = subprocess.Popen([bench, "serve", str(ours_port), os.path.join(tmp, "linear.json")],
                                stdout=subprocess.DEVNULL)
        servers = [mls, ours]
        try:
            wait_ready(f"http://127.0.0.1:{mls_port}/v2/models/model/ready", mls)
            wait_ready(f"http://127.0.0.1:{ours_port}/v2/models/model/ready", ours)
            url = "/v2/models/model/infer"
            # Warm both up, then measure, same client and settings.
            load(bench, f"http://127.0.0.1:{mls_port}{url}", payload, 4, 1)
            load(bench, f"http://127.0.0.1:{ours_port}{url}", payload, 4, 1)
            m = load(bench, f"http://127.0.0.1:{mls_port}{url}", payload, args.connections, args.seconds)
            o = load(bench, f"http://127.0.0.1:{ours_port}{url}", payload, args.connections, args.seconds)
            ours.terminate()
            ours.wait(timeout=30)

            # The same model as ONNX, REST and gRPC, against MLServer's REST and gRPC, all four
            # with serve-bench's own client.
            onnx_http, onnx_grpc = free_port(), free_port()
            onnx = subprocess.Popen([bench, "serve-onnx", str(onnx_http), str(onnx_grpc), os.path.join(tmp, "model.onnx")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            servers.append(onnx)
            wait_ready(f"http://127.0.0.1:{onnx_http}/v2/models/model/ready", onnx)
            # One row, and a batch of 256 rows (where raw tensors skip JSON both ways).
            batch = os.path.join(tmp, "batch.json")
            json.dump({"inputs": [{"name": "x", "shape": [256, 20], "datatype": "FP32",
                                   "data": [0.1 + i % 7 / 10 for i in range(256 * 20)]}]}, open(batch, "w"))
            native = {}
            for rows, body in ((1, payload), (256, batch)):
                for label, mode, target in (
                    ("MLServer REST", "load", f"http://127.0.0.1:{mls_port}{url}"),
                    ("MLServer gRPC", "load-grpc", f"127.0.0.1:{mls_grpc}"),
                    ("mlops onnx REST", "load", f"http://127.0.0.1:{onnx_http}{url}"),
                    ("mlops onnx gRPC", "load-grpc", f"127.0.0.1:{onnx_grpc}"),
                ):
                    run = lambda c, sec: json.loads(subprocess.run([bench, mode, target, body, str(c), str(sec)],
                                                                   check=True, capture_output=True, text=True).stdout)
                    run(4, 1)
                    native[(rows, label)] = run(args.connections, args.seconds)
            onnx.terminate()
            runtime = onnx.communicate(timeout=30)[1].strip()
        finally:
            for p in servers:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=30)

        ident_port = free_port()
        ident = subprocess.Popen([bench, "serve", str(ident_port), "identity"], stdout=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{ident_port}/v2/models/model/ready", ident)
            load(bench, f"http://127.0.0.1:{ident_port}/v2/models/model/infer", payload, 1, 1)
            one = load(bench, f"http://127.0.0.1:{ident_port}/v2/models/model/infer", payload, 1, args.seconds)
        finally:
            ident.terminate()
            ident.wait(timeout=30)
        inproc = json.loads(subprocess.run([bench, "overhead", str(args.seconds / 2)], check=True,
                                           capture_output=True, text=True).stdout)

    print(f"logistic regression (20 features), {args.connections} connections, {args.seconds:.0f} s each, "
          f"same client for both ({m['client']}):")
    for name, r in (("MLServer 1.7.1", m), ("mlops ModelServer", o)):
        print(f"  {name:20} {r['rps']:10.0f} req/s   p50 {r['p50_us']/1000:7.2f} ms   p99 {r['p99_us']/1000:7.2f} ms   errors {r['errors']}")
    print(f"  ratio {o['rps'] / m['rps']:.1f}x requests/s")
    print(f"the same model as ONNX ({runtime}), REST and gRPC, {args.connections} connections, "
          f"serve-bench's client for all four:")
    for rows in (1, 256):
        print(f" {rows} row(s) per request:")
        for label in ("MLServer REST", "MLServer gRPC", "mlops onnx REST", "mlops onnx gRPC"):
            r = native[(rows, label)]
            print(f"  {label:20} {r['rps']:10.0f} req/s   p50 {r['p50_us']/1000:7.2f} ms   p99 {r['p99_us']/1000:7.2f} ms   errors {r['errors']}")
        n = lambda label: native[(rows, label)]["rps"]
        print(f"  REST ratio {n('mlops onnx REST') / n('MLServer REST'):.1f}x, "
              f"gRPC ratio {n('mlops onnx gRPC') / n('MLServer gRPC'):.1f}x, "
              f"our gRPC / our REST {n('mlops onnx gRPC') / n('mlops onnx REST'):.2f}x")
    print("identity model, server overhead:")
    print(f"  HTTP round trip on loopback, 1 connection: p50 {one['p50_us']} us, p99 {one['p99_us']} us")
    print(f"  in process (ModelServer::infer):           p50 {inproc['p50_us']:.1f} us, p99 {inproc['p99_us']:.1f} us")


if __name__ == "__main__":
    main()
