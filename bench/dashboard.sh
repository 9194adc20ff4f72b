#!/usr/bin/env bash
# The dashboard's cost: DynamoDB round trips, answer size and time for a 400-day range against
# DynamoDB Local (tests/dashboard.rs prints them), then the CPU to build and render the page
# for 30 and 400 days (criterion).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
echo "== 400-day range through the handler (DynamoDB Local)"
cargo test -q -p integration-tests --test dashboard a_400_day_range -- --nocapture 2>&1 |
  grep -E "^400-day|test result" || true
echo
echo "== CPU to build and render the page (criterion)"
cargo bench -q -p lead-api --bench dashboard -- --noplot 2>&1 | grep -E "time:|^dashboard" || true
