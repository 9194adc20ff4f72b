# Shared by scripts/run-local, scripts/dev and bench scripts: start and stop the local stack.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL_DIR="$ROOT/.local"
mkdir -p "$LOCAL_DIR"
PIDS=()

section() { printf '\n== %s\n' "$*"; }

free_port() {
  "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_is_free() { # port
  "$ROOT/.venv/bin/python" -c 'import socket,sys; socket.socket().bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null
}

wait_for_port() { # port, what, seconds, pid of the server (optional: fail fast if it exits)
  local port=$1 what=$2 secs=${3:-60} pid=${4:-}
  for _ in $(seq 1 $((secs * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $what exited before listening on port $port (log: $LOCAL_DIR)" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "error: $what did not start on port $port within ${secs}s (log: $LOCAL_DIR)" >&2
  return 1
}

# Every server is started with setsid: it leads its own process group (with whatever it spawns,
# e.g. the functions under cargo lambda watch), and the group is stopped as a whole: TERM, then
# KILL for whatever is still there after 5 s.
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do
      if kill -0 -- "-$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 1 ] || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  PIDS=()
  wait 2>/dev/null || true
}

# Starts AWS's DynamoDB Local (scripts/dynamodb-local: in memory, one shared database) on
# DYNAMODB_PORT (default: a free port) and exports what the SDK needs to reach it: the standard
# AWS_ENDPOINT_URL_DYNAMODB, a region, dummy credentials.
start_dynamodb() {
  local port=${DYNAMODB_PORT:-}
  [ -n "$port" ] || port=$(free_port)
  setsid "$ROOT/scripts/dynamodb-local" "$port" >"$LOCAL_DIR/dynamodb.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "DynamoDB Local" 60 "$!"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
  echo "DynamoDB Local: $AWS_ENDPOINT_URL_DYNAMODB (log: .local/dynamodb.log)"
}

# Starts moto's server for what DynamoDB Local does not serve: EventBridge (rescore publishes
# there), SQS (a rule's target, to read the published events back; lead-import's queue) and S3
# (the import bucket). Exports the SDK's standard AWS_ENDPOINT_URL_EVENTBRIDGE,
# AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_S3.
start_events() {
  local port
  port=$(free_port)
  setsid "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOCAL_DIR/moto.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "moto_server (EventBridge, SQS, S3)" 60 "$!"
  export AWS_ENDPOINT_URL_EVENTBRIDGE="http://127.0.0.1:$port" AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
  echo "EventBridge + SQS + S3 (moto_server): $AWS_ENDPOINT_URL_EVENTBRIDGE (log: .local/moto.log)"
}

# Starts the Graph API and LinkedIn API stand-ins (scripts/platform-apis) serving the sample
# leads of events/platform-apis/, and LinkedIn's token endpoint; exports GRAPH_API_URL,
# LINKEDIN_API_URL, LINKEDIN_OAUTH_URL and HUBSPOT_API_URL for the functions.
start_platform_apis() {
  local port
  port=$(free_port)
  setsid "$ROOT/.venv/bin/python" "$ROOT/scripts/platform-apis" "$port" >"$LOCAL_DIR/platform-apis.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "platform API stand-ins" 30 "$!"
  export GRAPH_API_URL="http://127.0.0.1:$port/v21.0" LINKEDIN_API_URL="http://127.0.0.1:$port/rest"
  export HUBSPOT_API_URL="http://127.0.0.1:$port" LINKEDIN_OAUTH_URL="http://127.0.0.1:$port/oauth/v2/accessToken"
  echo "Graph, LinkedIn and HubSpot API stand-ins: http://127.0.0.1:$port (log: .local/platform-apis.log)"
}

# The functions' configuration for the local stack. The platforms' test secrets the samples in
# events/ were made with come from events/local.env, the one file of local test values, appended
# last; `leadflow providers --check` (built by build_functions) fails naming any secret a
# provider declares and that file leaves unset. Test values only, never real secrets.
write_env_file() {
  "$ROOT/target/debug/leadflow" providers --check "$ROOT/events/local.env" || return 1
  cat >"$LOCAL_DIR/functions.env" <<ENV
TABLE_NAME=$TABLE_NAME
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_EC2_METADATA_DISABLED=true
DEFAULT_COUNTRY=US
FORM_ALLOWED_ORIGINS=https://www.example.com
FORM_HONEYPOT_FIELD=_gotcha
# Scopes (shared/src/edge/auth.rs): the dashboard link carries its own dashboard-only key.
LEAD_API_KEYS=local-dev-key:read+write+erase+dashboard,local-dashboard-key:dashboard
PRIVACY_PEPPER=local-dev-privacy-pepper-not-a-secret
# cargo lambda watch sends the constant 600000 as every invocation's deadline (January 1970 as
# epoch milliseconds): rescore then uses its configured timeout, as the template sets it.
FUNCTION_TIMEOUT_SECONDS=900
REFERRAL_API_KEYS=local-dev-key
TRUSTPILOT_KEY=local-trustpilot-key
# The Graph / LinkedIn / HubSpot stand-ins (start_platform_apis); without them a closed loopback
# port: the Meta, LinkedIn and HubSpot CRM event samples then answer 502 upstream_unavailable at
# once, and the test tokens never go to the real APIs.
GRAPH_API_URL=${GRAPH_API_URL:-http://127.0.0.1:9/v21.0}
LINKEDIN_API_URL=${LINKEDIN_API_URL:-http://127.0.0.1:9/rest}
HUBSPOT_API_URL=${HUBSPOT_API_URL:-http://127.0.0.1:9}
LINKEDIN_OAUTH_URL=${LINKEDIN_OAUTH_URL:-http://127.0.0.1:9/oauth/v2/accessToken}
RUST_LOG=info
ENV
  # rescore publishes to the local EventBridge (start_events + scripts/local-events) when there
  # is one; with EVENT_BUS_NAME empty it records changes without publishing.
  if [ -n "${AWS_ENDPOINT_URL_EVENTBRIDGE:-}" ]; then
    printf 'AWS_ENDPOINT_URL_EVENTBRIDGE=%s\nEVENT_BUS_NAME=%s\n' "$AWS_ENDPOINT_URL_EVENTBRIDGE" "${EVENT_BUS_NAME:-default}" \
      >>"$LOCAL_DIR/functions.env"
  else
    echo "EVENT_BUS_NAME=" >>"$LOCAL_DIR/functions.env"
  fi
  # lead-import: the local S3 and its queue (start_events; IMPORT_QUEUE_URL from
  # scripts/local-s3 setup), when the caller set them up.
  if [ -n "${IMPORT_QUEUE_URL:-}" ]; then
    printf 'AWS_ENDPOINT_URL_S3=%s\nAWS_ENDPOINT_URL_SQS=%s\nIMPORT_QUEUE_URL=%s\n' \
      "$AWS_ENDPOINT_URL_S3" "$AWS_ENDPOINT_URL_SQS" "$IMPORT_QUEUE_URL" >>"$LOCAL_DIR/functions.env"
  fi
  cat "$ROOT/events/local.env" >>"$LOCAL_DIR/functions.env"
}

# Builds the leadflow tool and every function the way `cargo lambda watch` will run them:
# `cargo run --bin <function>` selects one package, so cargo resolves that function's own
# feature set; a single `cargo build -p a -p b ...` unifies features across all of them and
# its artifacts would not be reused (the first invocation of each function would then
# recompile much of the AWS SDK, minutes on 2 cores, inside the request).
build_functions() {
  cargo build -q -p leadflow-tools
  local dir
  for dir in "$ROOT"/functions/*/; do
    echo "  $(basename "$dir")"
    cargo build -q --bin "$(basename "$dir")"
  done
}

start_functions() { # port
  local port=$1
  cd "$ROOT" || return
  setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" \
    --env-file "$LOCAL_DIR/functions.env" >"$LOCAL_DIR/watch.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "cargo lambda watch" 120 "$!"
  echo "functions: http://127.0.0.1:$port/lambda-url/<function>/... (log: .local/watch.log)"
}
