# Real peers for the tests: a Python venv with the reference tools, and servers on 127.0.0.1.
# Sourced by scripts/test; every server started here is stopped by its PID on exit.

PEERS_VENV="${PEERS_VENV:-.venv-peers}"
# Pinned so a fresh machine gets what the tests were written against.
PEERS_PACKAGES=("moto[server]==5.2.5" "pyarrow==25.0.1" "polars==2.1.0" "numpy==2.4.6" "mlflow==3.17.2" "scipy==1.16.3" "pandas==2.3.3" "evidently==0.7.23" "prometheus-client==0.24.1" "tritonclient[http,grpc]==2.73.0" "scikit-learn==1.9.1" "hera==7.1.0" "fairlearn==0.15.0" "aif360==0.6.1" "shap==0.51.0" "feast[duckdb]==0.67.0" "skl2onnx==1.20.0" "onnx==1.23.2" "onnxruntime==1.32.0" "maturin==1.16.0" "pytest==9.2.0" "mypy==2.4.1" "selenium==4.51.0")
PEER_PIDS=()

stop_peers() {
  for pid in "${PEER_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    # MLflow's server starts a job-runner child that outlives SIGTERM to its parent.
    for child in $(pgrep -P "$pid" 2>/dev/null); do kill "$child" 2>/dev/null; done
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  return 0
}
trap stop_peers EXIT

peers_venv() {
  local stamp="$PEERS_VENV/.installed"
  local want="${PEERS_PACKAGES[*]}"
  if [ ! -x "$PEERS_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "creating $PEERS_VENV with: $want"
    python3 -m venv "$PEERS_VENV"
    "$PEERS_VENV/bin/pip" install --quiet --disable-pip-version-check "${PEERS_PACKAGES[@]}"
    echo "$want" > "$stamp"
  fi
  # The interop tests run the reference tools with this interpreter.
  export MLOPS_TEST_PYTHON="$PWD/$PEERS_VENV/bin/python"
  # onnxruntime for the `onnx` flavor's second runtime: the wheel's own library.
  local ort
  ort="$(ls "$PWD/$PEERS_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -1)"
  if [ -z "$ort" ]; then
    echo "onnxruntime's library is missing from $PEERS_VENV" >&2
    return 1
  fi
  export ORT_DYLIB_PATH="$ort"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until URL answers 200, or fails after $2 seconds.
wait_for() {
  local url="$1" deadline=$((SECONDS + ${2:-60}))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = "200" ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out waiting for $url" >&2
      return 1
    fi
    sleep 0.3
  done
}

# Starts moto's S3-compatible server and exports what the S3 tests read.
start_s3() {
  local port
  port="$(free_port)"
  "$PEERS_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "${TMPDIR:-/tmp}/mlops-moto-$port.log" 2>&1 &
  PEER_PIDS+=("$!")
  wait_for "http://127.0.0.1:$port/moto-api/" 60
  curl -sf -X PUT "http://127.0.0.1:$port/mlops-test" > /dev/null
  export MLOPS_TEST_S3_URL="s3://mlops-test"
  export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  echo "S3 (moto) on 127.0.0.1:$port, bucket mlops-test"
}

# Starts a real MLflow tracking server (sqlite backend, proxied artifacts) and exports its URI.
start_mlflow() {
  local port dir
  port="$(free_port)"
  dir="$(mktemp -d "${TMPDIR:-/tmp}/mlops-mlflow.XXXXXX")"
  DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true "$PEERS_VENV/bin/mlflow" server \
    --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$dir/artifacts" \
    > "$dir/server.log" 2>&1 &
  PEER_PIDS+=("$!")
  # 26-59 s here: poll, don't sleep.
  local deadline=$((SECONDS + 180))
  until [ "$(curl -s "http://127.0.0.1:$port/health")" = "OK" ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "MLflow did not become ready; its log:" >&2
      tail -20 "$dir/server.log" >&2
      return 1
    fi
    sleep 1
  done
  export MLOPS_TEST_MLFLOW_URI="http://127.0.0.1:$port"
  echo "MLflow on 127.0.0.1:$port"
}

# Installs Debian packages with apt-get (updating the lists once if the first try fails).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "$@" > /dev/null 2>&1 \
    || { $sudo apt-get update > /dev/null && $sudo apt-get install -y --no-install-recommends "$@" > /dev/null; }
}

# Chromium and its WebDriver for the UI's browser test (the system's: no browser download).
ensure_chromium() {
  if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
    apt_install chromium chromium-driver
  fi
}

# Starts a real Redis server (installed with apt-get when missing) and exports its URL.
start_redis() {
  command -v redis-server > /dev/null || apt_install redis-server
  local port
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    > "${TMPDIR:-/tmp}/mlops-redis-$port.log" 2>&1 &
  PEER_PIDS+=("$!")
  local deadline=$((SECONDS + 30))
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "Redis did not start; its log:" >&2
      tail -20 "${TMPDIR:-/tmp}/mlops-redis-$port.log" >&2
      return 1
    fi
    sleep 0.2
  done
  export MLOPS_TEST_REDIS_URL="redis://127.0.0.1:$port"
  echo "Redis on 127.0.0.1:$port"
}
