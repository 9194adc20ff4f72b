# Shared by scripts/run-local, scripts/dev and bench scripts: start and stop the local stack.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL_DIR="$ROOT/.local"
mkdir -p "$LOCAL_DIR"
PIDS=()

free_port() {
  "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for_port() { # port, what, seconds
  local port=$1 what=$2 secs=${3:-60}
  for _ in $(seq 1 $((secs * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "error: $what did not start on port $port within ${secs}s (log: $LOCAL_DIR)" >&2
  return 1
}

stop_all() {
  for pid in "${PIDS[@]}"; do
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# Starts the local DynamoDB (moto, requests serialized: scripts/local-dynamodb) and exports what
# the SDK needs to reach it: the standard AWS_ENDPOINT_URL_DYNAMODB, a region, dummy credentials.
start_dynamodb() {
  local port
  port=$(free_port)
  setsid "$ROOT/.venv/bin/python" "$ROOT/scripts/local-dynamodb" -H 127.0.0.1 -p "$port" \
    >"$LOCAL_DIR/dynamodb.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "local DynamoDB" 60
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true
  echo "local DynamoDB: $AWS_ENDPOINT_URL_DYNAMODB (log: .local/dynamodb.log)"
}

# The functions' configuration for the local stack, including the test secrets the signed
# samples in events/ were made with (see events/README.md). Never real secrets.
write_env_file() {
  cat >"$LOCAL_DIR/functions.env" <<ENV
TABLE_NAME=$TABLE_NAME
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_EC2_METADATA_DISABLED=true
DEFAULT_COUNTRY=US
FORM_ALLOWED_ORIGINS=https://www.example.com
LEAD_API_KEYS=local-dev-key
RUST_LOG=info
ENV
  if [ -f "$ROOT/events/local.env" ]; then cat "$ROOT/events/local.env" >>"$LOCAL_DIR/functions.env"; fi
}

start_functions() { # port
  local port=$1
  cd "$ROOT"
  # setsid: the watcher and the functions it spawns form one process group, stopped together.
  setsid cargo lambda watch -A 127.0.0.1 -P "$port" --env-file "$LOCAL_DIR/functions.env" \
    >"$LOCAL_DIR/watch.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "cargo lambda watch" 120
  echo "functions: http://127.0.0.1:$port/lambda-url/<function>/... (log: .local/watch.log)"
}
