#!/usr/bin/env bash
# Prints DynamoDB capacity units per operation beside its round trips: by AWS's published
# formula (item sizes before and after each request) and as DynamoDB Local reports them
# (ReturnConsumedCapacity=INDEXES, asked only by the bench's meter, never in production).
# Starts its own DynamoDB Local. UNITS_OUT=<file> also writes the figures as JSON (bench/cost.sh
# reads them); UNITS_DEBUG=1 prints each request and the size of every item written
# (UNITS_DEBUG=items: every attribute's size too).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
source bench/lib.sh
export_absolute UNITS_OUT
echo "== DynamoDB capacity units per operation"
# The handlers print their EMF metric lines on stdout; only the table is shown.
cargo bench -q -p integration-tests --bench capacity_units | grep -v '^{"_aws"'
