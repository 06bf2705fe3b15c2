# Real peers for the tests: a Python venv with the reference tools, and servers on 127.0.0.1.
# Sourced by scripts/test; every server started here is stopped by its PID on exit.

PEERS_VENV="${PEERS_VENV:-.venv-peers}"
# Pinned so a fresh machine gets what the tests were written against.
PEERS_PACKAGES=("moto[server]==5.2.5" "pyarrow==25.0.1" "polars==2.1.0" "numpy==2.4.6" "mlflow==3.17.2")
PEER_PIDS=()

stop_peers() {
  for pid in "${PEER_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
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
