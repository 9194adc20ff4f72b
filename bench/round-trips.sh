#!/usr/bin/env bash
# Prints DynamoDB round trips per ingest outcome (new, returning, duplicate, late) and the CPU
# per submission of the pure ingest path (criterion). Starts its own DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
echo "== DynamoDB round trips per operation"
cargo bench -q -p integration-tests --bench round_trips
echo
echo "== CPU per submission: fields -> normalized submission (criterion)"
cargo bench -q -p leadflow-shared --bench normalize -- --noplot 2>&1 | grep -E "time:|^[a-z].*->|phone" || true
