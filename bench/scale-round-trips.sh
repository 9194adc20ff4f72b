#!/usr/bin/env bash
# Prints DynamoDB round trips of big-lead reads, a day's rollup (gsi1 before the backfill, gsi2
# after), a 400-day metrics read and the review aggregates (issue 13). Starts its own DynamoDB
# Local.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
cargo bench -q -p integration-tests --bench scale_round_trips
