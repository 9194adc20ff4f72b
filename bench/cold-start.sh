#!/usr/bin/env bash
# Cold start and CPU per invocation of one function, measured behind bench/runtime-stub (a local
# stand-in for the Lambda Runtime API): the stripped binary's size, the time from spawn to the
# first /next poll (min and median of COLD_RUNS fresh processes, one event each), and the CPU per
# invocation over CPU_EVENTS events. Starts its own DynamoDB Local unless AWS_ENDPOINT_URL_DYNAMODB
# is set (then TABLE_NAME, default bench-leads, is created there if missing).
#
# form-webhook's CPU is measured twice: new leads (bench/events/form-new-lead.json, a different
# person per invocation: runtime-stub --unique) and retried deliveries (events/form-json.json
# over and over: after the first, each is the same delivery again).
#
#   bench/cold-start.sh [function]          # default form-webhook
#   COLD_RUNS=5 CPU_EVENTS=2000 EVENTS="events/a.json events/b.json" bench/cold-start.sh lead-api
#   UNIQUE=1 EVENTS=bench/events/form-new-lead.json bench/cold-start.sh   # {{n}}, {{run}} replaced
#   STRICT=1 bench/cold-start.sh            # exit 1 when a target is missed
#   BINARY=/path/to/bootstrap bench/cold-start.sh   # measure a prebuilt binary, no function build
#   PHASES=1 bench/cold-start.sh            # + CPU per new lead by phase (valgrind's callgrind;
#                                           #   SYMBOLS=unstripped binary to skip its build)
#
# Figures are this machine's, not Lambda's: a 256 MB Lambda gets ~1/6 of a vCPU, so expect
# several times these on AWS. Function output goes to target/bench-cold-start/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

fn=${1:-form-webhook}
cold_runs=${COLD_RUNS:-5}
cpu_events=${CPU_EVENTS:-2000}
target_size_mb=6
target_poll_ms=8
target_cpu_ms=0.9
logs=target/bench-cold-start

die() { echo "cold-start: $*" >&2; exit 1; }

if [ -n "${BINARY:-}" ]; then
  [ -x "$BINARY" ] || die "BINARY=$BINARY is not an executable"
  fn=${1:-$(basename "$BINARY")}
else
  [ -d "functions/$fn" ] || die "no function $fn under functions/"
fi
if [ -n "${EVENTS:-}" ]; then
  read -r -a events <<<"$EVENTS"
elif { [ "$fn" = form-webhook ] || [ -n "${BINARY:-}" ]; } && [ -f events/form-json.json ]; then
  events=(events/form-json.json)
else
  die "no default events for $fn: set EVENTS=\"events/x.json ...\""
fi
event_args=()
for e in "${events[@]}"; do
  [ -f "$e" ] || die "no such event file: $e"
  event_args+=(--events "$e")
done

if [ -n "${BINARY:-}" ]; then
  echo "== building runtime-stub (release); measuring $BINARY"
  cargo build --release -q -p runtime-stub
  bin=$BINARY
else
  echo "== building $fn and runtime-stub (release)"
  cargo build --release -q -p "$fn" -p runtime-stub
  bin=target/release/$fn
fi
stub=target/release/runtime-stub
mkdir -p "$logs"

size_bytes=$(stat -c %s "$bin")
size_mb=$(awk -v b="$size_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
echo
echo "== binary"
printf '  %s: %s MB (%s bytes) stripped (%s; the %s MB goal is arm64 as shipped, bench/size.sh)\n' "$bin" "$size_mb" "$size_bytes" "$(uname -m)" "$target_size_mb"
if command -v size >/dev/null 2>&1; then
  size "$bin" | sed 's/^/  /'
fi

# --- DynamoDB ---------------------------------------------------------------------------------
ddb_pid=""
cleanup() {
  if [ -n "$ddb_pid" ]; then
    kill -- "-$ddb_pid" 2>/dev/null || kill "$ddb_pid" 2>/dev/null || true
    wait "$ddb_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  scripts/bootstrap >/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # setsid: DynamoDB Local leads its own process group, stopped as a whole on exit.
  setsid scripts/dynamodb-local "$port" >"$logs/dynamodb.log" 2>&1 &
  ddb_pid=$!
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$ddb_pid" 2>/dev/null || die "DynamoDB Local exited (log: $logs/dynamodb.log)"
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "DynamoDB Local did not start on port $port within 60 s"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
  unset AWS_SESSION_TOKEN AWS_PROFILE
else
  export AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-bench} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-bench}
fi
export AWS_EC2_METADATA_DISABLED=true
export TABLE_NAME=${TABLE_NAME:-bench-leads}
echo
echo "== DynamoDB: $AWS_ENDPOINT_URL_DYNAMODB, table $TABLE_NAME"
cargo build -q -p leadflow-tools
target/debug/leadflow create-tables --template template.yaml --name LeadsTable="$TABLE_NAME" | sed 's/^/  /'

# The function's configuration as template.yaml and scripts/lib.sh give it, plus the test
# secrets the signed samples were made with (events/local.env, if any).
env_args=(--env DEFAULT_COUNTRY=US --env FORM_ALLOWED_ORIGINS=https://www.example.com
  --env FORM_HONEYPOT_FIELD=_gotcha --env RUST_LOG=info)
if [ -f events/local.env ]; then
  while IFS= read -r line; do
    case "$line" in '' | '#'*) continue ;; *=*) env_args+=(--env "$line") ;; esac
  done <events/local.env
fi

field() { # key, json text: a scalar from the stub's one-key-per-line JSON
  printf '%s\n' "$2" | sed -n "s/^ *\"$1\": *\\([^,]*\\),\\{0,1\\}\$/\\1/p"
}

# --- time to first poll ---------------------------------------------------------------------
echo
echo "== time to first poll: $cold_runs fresh processes, 1 event each (${events[0]})"
polls=()
for i in $(seq 1 "$cold_runs"); do
  json=$("$stub" --binary "$bin" "${event_args[@]}" --count 1 --json "${env_args[@]}" \
    --log "$logs/$fn-cold-$i.log")
  poll=$(field first_poll_ms "$json")
  polls+=("$poll")
  printf '  run %d: first poll %8.3f ms   CPU before it %7.3f ms   first invocation %7.3f ms   %s ok, %s error\n' \
    "$i" "$poll" "$(field cpu_before_first_poll_ms "$json")" "$(field first_invocation_ms "$json")" \
    "$(field successes "$json")" "$(field errors "$json")"
done
read -r poll_min poll_median < <(printf '%s\n' "${polls[@]}" | sort -g | awk '
  { a[NR] = $1 }
  END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f %.3f\n", a[1], m }')
printf '  min %s ms, median %s ms   target < %s ms\n' "$poll_min" "$poll_median" "$target_poll_ms"

# --- CPU per invocation ---------------------------------------------------------------------
# cpu_run LABEL UNIQUE(0|1) EVENT...: one process, $cpu_events events; sets cpu_per, cpu_errors.
cpu_run() {
  local label=$1 unique=() args=() e
  [ "$2" = 1 ] && unique=(--unique)
  shift 2
  for e in "$@"; do args+=(--events "$e"); done
  echo
  echo "== CPU per invocation, $label: $cpu_events events in one process ($*)"
  "$stub" --binary "$bin" "${args[@]}" "${unique[@]}" --count "$cpu_events" "${env_args[@]}" \
    --log "$logs/$fn-cpu.log" --json-file "$logs/$fn-cpu.json" \
    --target-first-poll-ms "$target_poll_ms" --target-cpu-ms "$target_cpu_ms" | sed 's/^/  /'
  local json
  json=$(cat "$logs/$fn-cpu.json")
  cpu_per=$(field cpu_per_invocation_ms "$json")
  cpu_errors=$(field errors "$json")
  if [ "$cpu_errors" != 0 ]; then
    echo "  warning: $cpu_errors invocation(s) answered with a Lambda error (log: $logs/$fn-cpu.log)" >&2
  fi
}
cpu_label="CPU per invocation"
if [ -z "${EVENTS:-}" ] && { [ "$fn" = form-webhook ] || [ -n "${BINARY:-}" ]; }; then
  cpu_run "retried deliveries" 0 events/form-json.json
  retried_cpu=$cpu_per
  cpu_run "new leads" 1 bench/events/form-new-lead.json
  cpu_label="CPU per new lead"
else
  cpu_run events "${UNIQUE:-0}" "${events[@]}"
fi

# --- per-phase breakdown (PHASES=1) ---------------------------------------------------------
# The function under callgrind, FEW then MANY new leads, each run on its own fresh table; the
# difference is one more webhook's instructions per phase (bench/cpu_phases.py), apportioned to
# the CPU per new lead measured above. Needs symbols: an unstripped build of the same profile.
phases_run() { # count table out
  target/debug/leadflow create-tables --template template.yaml --name LeadsTable="$2" >/dev/null
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s --dump-instr=no %s\n' \
    "$3" "$symbols" >"$3.sh"
  chmod +x "$3.sh"
  TABLE_NAME=$2 "$stub" --binary "$3.sh" --events bench/events/form-new-lead.json --unique \
    --count "$1" --timeout 1800 "${env_args[@]}" --log "$3.log" --json-file "$3.json" >/dev/null ||
    die "the callgrind run of $1 events failed (log: $3.log)"
}
if [ "${PHASES:-0}" = 1 ]; then
  [ "$fn" = form-webhook ] || die "PHASES=1 knows form-webhook's phases only"
  command -v valgrind >/dev/null || die "PHASES=1 needs valgrind (apt-get install valgrind)"
  few=${PHASES_FEW:-20} many=${PHASES_MANY:-120}
  if [ -n "${SYMBOLS:-}" ]; then
    symbols=$SYMBOLS
  else
    echo
    echo "== building $fn with symbols (release profile, not stripped) for the phases"
    CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -q -p "$fn"
    symbols=$logs/$fn.symbols
    cp "target/release/$fn" "$symbols"
  fi
  echo
  echo "== CPU per new lead by phase: callgrind, $few and $many events (a few minutes)"
  phases_run "$few" "$TABLE_NAME-phases-$few" "$logs/callgrind-$few"
  phases_run "$many" "$TABLE_NAME-phases-$many" "$logs/callgrind-$many"
  python3 bench/cpu_phases.py "$logs/callgrind-$few" "$logs/callgrind-$many" "$few" "$many" \
    --cpu-ms "$cpu_per" --json "$logs/$fn-phases.json"
fi

# --- summary --------------------------------------------------------------------------------
verdict() { # value, target
  awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 < t + 0) ? "ok" : "MISSED" }'
}
missed=0
echo
echo "== $fn against the targets"
# The size goal is the arm64 binary as `sam build` ships it (bench/size.sh); this machine's
# build is shown beside it for reference only (x86 links with PIE, arm64 without).
printf '  %-28s %10s %-2s   (%s, this machine; the 6 MB goal is arm64 as shipped: bench/size.sh)\n' \
  "stripped size" "$size_mb" MB "$(uname -m)"
for row in "time to first poll (median)|$poll_median|ms|$target_poll_ms" \
  "$cpu_label|$cpu_per|ms|$target_cpu_ms"; do
  IFS='|' read -r what value unit target <<<"$row"
  v=$(verdict "$value" "$target")
  [ "$v" = ok ] || missed=$((missed + 1))
  printf '  %-28s %10s %-2s   target < %-8s %s\n' "$what" "$value" "$unit" "$target $unit" "$v"
done
if [ -n "${retried_cpu:-}" ]; then
  printf '  %-28s %10s %-2s\n' "CPU per retried delivery" "$retried_cpu" ms
fi
echo "  (CPU includes the runtime client, JSON, logging and the DynamoDB client's signing and HTTP;"
echo "   time to first poll includes whatever the function does at init, e.g. a DynamoDB warm-up call)"
if [ "${STRICT:-0}" = 1 ] && [ "$missed" -gt 0 ]; then
  exit 1
fi
