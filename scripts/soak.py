#!/usr/bin/env python3
"""Soak test of `mlops serve`: minutes of hostile, mixed traffic against a real server process.

    python3 scripts/soak.py [--mlops target/release/mlops] [--seconds 120] [--threads 6]

Standard library only. It builds a store with the CLI (a dataset, two registered versions of a
logistic model), starts `mlops serve --model models:/soak@champion` with tight limits, and for
`--seconds` runs, in parallel:

- valid JSON inference requests of 1 to 64 rows, and of 30,000 rows (~0.8 MB);
- invalid ones: malformed JSON, a wrong datatype, a wrong shape, an unknown input, an unknown
  model or version, a path that does not exist, a wrong method;
- oversized bodies (over --max-body-bytes: 413) and bodies that together exceed the memory
  budget (503 with Retry-After);
- slow clients: headers sent a byte at a time, bodies that stall, connections that never send
  anything (the server must close them all);
- hot swaps: the served version alternates between 1 and 2 through the repository API every
  second while requests are in flight.

Every 5 s it prints requests, answers by status, unexpected answers, the server's RSS and open
file descriptors. It fails (exit 1) when the server dies, does not stop cleanly on SIGTERM, or
gives an unexpected answer (a 5xx other than 503, a valid request refused for anything but load,
a non-JSON error body); RSS and descriptors are reported for a person to judge.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = Counter()
        self.statuses = Counter()
        self.unexpected = []
        self.closed_slow = 0
        self.swaps = 0

    def record(self, kind, status, ok, detail=""):
        with self.lock:
            self.by_kind[kind] += 1
            self.statuses[status] += 1
            if not ok:
                self.unexpected.append(f"{kind}: {status} {detail}"[:300])


def request(addr, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def is_json_error(data):
    try:
        return "error" in json.loads(data)
    except Exception:
        return False


def proc_status(pid):
    rss = fds = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return rss, fds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mlops", default=os.path.join(ROOT, "target", "release", "mlops"))
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--threads", type=int, default=6)
    args = ap.parse_args()
    if not os.path.exists(args.mlops):
        sys.exit(f"{args.mlops} does not exist: cargo build --release -p mlops-cli (or pass --mlops)")

    tmp = tempfile.TemporaryDirectory(prefix="mlops-soak-")
    store = os.path.join(tmp.name, "store")
    csv = os.path.join(tmp.name, "soak.csv")
    rng = random.Random(7)
    with open(csv, "w") as f:
        f.write("age,spend,plan,y\n")
        for _ in range(2000):
            age, spend = rng.uniform(18, 80), rng.uniform(0, 500)
            plan = rng.choice(["basic", "pro", "team"])
            f.write(f"{age:.2f},{spend:.2f},{plan},{int(spend > 250) ^ int(rng.random() < 0.1)}\n")
    m = [args.mlops, "--store", store]
    run(m + ["datasets", "put", "soak", csv])
    for epochs in ("3", "5"):
        run(m + ["train", "--data", "soak", "--target", "y", "--model", "logistic",
                 "--epochs", epochs, "--register", "soak"])
    run(m + ["models", "alias", "soak", "champion", "1"])

    max_body, budget = 1 << 20, 2 << 20
    server = subprocess.Popen(
        m + ["serve", "--model", "models:/soak@champion", "--port", "0",
             "--max-body-bytes", str(max_body), "--max-in-flight", "64",
             "--max-body-memory", str(budget), "--client-timeout-s", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addr = None
    for line in server.stdout:
        if line.startswith("listening on http://"):
            host, port = line.split("http://")[1].split()[0].rsplit(":", 1)
            addr = (host, int(port))
            break
    if addr is None:
        sys.exit("the server did not start:\n" + server.stderr.read())
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()

    status, _, data = request(addr, "GET", "/v2/models/soak")
    meta = json.loads(data)
    inputs = meta["inputs"]

    def rows_body(n):
        out = []
        for i in inputs:
            if i["datatype"] == "BYTES":
                d = [rng.choice(["basic", "pro", "team"]) for _ in range(n)]
            else:
                d = [round(rng.uniform(0, 300), 3) for _ in range(n)]
            out.append({"name": i["name"], "shape": [n], "datatype": i["datatype"], "data": d})
        return json.dumps({"inputs": out}).encode()

    stats = Stats()
    stop = threading.Event()
    infer = "/v2/models/soak/infer"
    hdr = {"Content-Type": "application/json"}

    def valid():
        n = rng.randint(1, 64)
        s, h, d = request(addr, "POST", infer, rows_body(n), hdr)
        # Shedding load is allowed (503 with Retry-After); anything else must be an answer.
        ok = s == 200 or (s == 503 and h.get("retry-after") == "1" and is_json_error(d))
        stats.record("valid", s, ok, d[:120])

    def big():
        # Near the size limit: a few at once exceed the memory budget and are shed with 503.
        s, h, d = request(addr, "POST", infer, rows_body(30_000), hdr)
        ok = s == 200 or (s == 503 and h.get("retry-after") == "1" and is_json_error(d))
        stats.record("big", s, ok, d[:120])

    def invalid():
        body = json.loads(rows_body(2))
        case = rng.randrange(8)
        method, path, raw = "POST", infer, None
        if case == 0:
            raw = b'{"inputs": [ {"name": '
        elif case == 1:
            body["inputs"][0]["datatype"] = "INT8" if body["inputs"][0]["datatype"] != "INT8" else "FP32"
        elif case == 2:
            body["inputs"][0]["shape"] = [3]
        elif case == 3:
            body["inputs"][0]["name"] = "nope"
        elif case == 4:
            path = "/v2/models/nope%d/infer" % rng.randrange(10**9)
        elif case == 5:
            path = "/v2/models/soak/versions/99/infer"
        elif case == 6:
            path = "/v2/no/such/%d" % rng.randrange(10**9)
        else:
            method = "PUT"
        raw = raw if raw is not None else json.dumps(body).encode()
        s, h, d = request(addr, method, path, raw, hdr)
        ok = s in (400, 404, 405, 503) and is_json_error(d)
        stats.record("invalid", s, ok, d[:120])

    def oversized():
        try:
            s, h, d = request(addr, "POST", infer, b" " * (max_body + 1), hdr)
            ok = s == 413 and is_json_error(d)
        except (ConnectionError, OSError) as e:
            # The server answers 413 before reading and closes; the client may see the reset.
            s, ok = f"reset ({type(e).__name__})", True
        stats.record("oversized", s, ok)

    def slow():
        kind = rng.randrange(3)
        sock = socket.create_connection(addr, timeout=15)
        try:
            began = time.time()
            closed = False
            try:
                if kind == 0:  # headers a byte at a time, never finished
                    for b in b"POST /v2/models/soak/infer HTTP/1.1\r\nHost: soak\r\n" * 4:
                        sock.send(bytes([b]))
                        time.sleep(0.1)
                        if time.time() - began > 10:
                            break
                elif kind == 1:  # a body that stalls
                    sock.send(b"POST /v2/models/soak/infer HTTP/1.1\r\nHost: soak\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"in")
                # kind 2: says nothing at all
            except (ConnectionError, OSError):
                closed = True  # closed while we were still sending: what a slow client gets
            try:
                while not closed:
                    chunk = sock.recv(4096)
                    if not chunk:
                        closed = True
                        break
            except (ConnectionError, OSError):
                closed = True
            stats.record("slow", "closed" if closed else "open", closed)
            if closed:
                with stats.lock:
                    stats.closed_slow += 1
        finally:
            sock.close()

    def hot_swaps():
        v = 1
        while not stop.is_set():
            v = 2 if v == 1 else 1
            s, h, d = request(addr, "POST", "/v2/repository/models/soak/load",
                              json.dumps({"uri": f"models:/soak/{v}"}).encode(), hdr)
            ok = s == 200 or s == 503
            stats.record("swap", s, ok, d[:120])
            with stats.lock:
                stats.swaps += s == 200
            stop.wait(1.0)

    mix = [valid] * 10 + [big] * 2 + [invalid] * 6 + [oversized] + [slow]

    def worker():
        while not stop.is_set():
            f = rng.choice(mix)
            try:
                f()
            except Exception as e:  # a connection the server should not have dropped
                stats.record(f.__name__, f"exception {type(e).__name__}", False, str(e))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    threads.append(threading.Thread(target=hot_swaps, daemon=True))
    for t in threads:
        t.start()

    began = time.time()
    samples = []
    print(f"soak: mlops serve (pid {server.pid}) on {addr[0]}:{addr[1]} for {args.seconds:.0f} s")
    print(f"{'t/s':>5} {'requests':>9} {'unexpected':>10} {'rss MiB':>8} {'fds':>5}  statuses")
    while time.time() - began < args.seconds:
        time.sleep(min(5, max(0.1, args.seconds - (time.time() - began))))
        if server.poll() is not None:
            break
        rss, fds = proc_status(server.pid)
        with stats.lock:
            total = sum(stats.by_kind.values())
            statuses = dict(sorted(stats.statuses.items(), key=lambda kv: str(kv[0])))
            bad = len(stats.unexpected)
        samples.append((time.time() - began, total, rss))
        print(f"{time.time() - began:5.0f} {total:9d} {bad:10d} {rss / 2**20:8.1f} {fds:5d}  {statuses}",
              flush=True)
    stop.set()
    died = server.poll() is not None
    for t in threads:
        t.join(timeout=20)
    code = None
    if not died:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "did not stop within 30 s of SIGTERM"
    print()
    print(f"requests by kind: {dict(stats.by_kind)}")
    print(f"hot swaps done: {stats.swaps}; slow connections the server closed: {stats.closed_slow}")
    if samples:
        first = next((s for s in samples if s[0] >= 10), samples[0])
        print(f"RSS: {first[2] / 2**20:.1f} MiB at {first[0]:.0f} s, {samples[-1][2] / 2**20:.1f} MiB at "
              f"{samples[-1][0]:.0f} s, peak {max(s[2] for s in samples) / 2**20:.1f} MiB")
    failures = []
    if died:
        failures.append(f"the server died (exit {server.returncode}): {server.stderr.read()[-2000:]}")
    elif code != 0:
        failures.append(f"the server's exit after SIGTERM: {code}")
    if stats.unexpected:
        failures.append(f"{len(stats.unexpected)} unexpected answers, e.g.:\n  " +
                        "\n  ".join(stats.unexpected[:10]))
    tmp.cleanup()
    if failures:
        print("FAILED:\n" + "\n".join(failures))
        sys.exit(1)
    print("ok: no crash, no unexpected answer, clean stop on SIGTERM")


if __name__ == "__main__":
    main()
