#!/usr/bin/env bash
# Rescore figures: CPU per lead for the scoring model (criterion), then a seeded rescore run
# against DynamoDB Local (started by the bench) reporting leads/s (DynamoDB Local's on this
# machine, not DynamoDB's), DynamoDB requests per lead, per page the Scan time, the scoring CPU
# and the write time, and read/write capacity units per lead (AWS's formula and DynamoDB
# Local's figure). RESCORE_BENCH_LEADS (default 100000) sets the table size; RESCORE_OUT and
# RESCORE_PAGES_OUT name files for the figures (JSON, read by bench/cost.sh) and every page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
source bench/lib.sh
export_absolute RESCORE_OUT RESCORE_PAGES_OUT
echo "== CPU per lead: scoring model (criterion)"
cargo bench -q -p leadflow-shared --bench scoring -- --noplot 2>&1 | grep -E "time:|^assess" || true
echo
echo "== Seeded rescore run (${RESCORE_BENCH_LEADS:-100000} leads)"
cargo bench -q -p integration-tests --bench rescore_run
