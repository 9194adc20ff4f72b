#!/usr/bin/env bash
# Cost per million leads: AWS's on-demand prices (us-east-1, stated with their date in
# bench/cost.py) applied to the measured capacity units (bench/units.sh, run here first unless
# target/bench/units.json exists or UNITS_FRESH=0), the rescore figures of bench/rescore.sh
# (target/bench/rescore.json, when present) and the CPU per webhook of bench/cold-start.sh
# (when present). Prints a Markdown table; every assumption is an environment variable listed
# under the table (e.g. DDB_MS=10 TABLE_LEADS=5000000 bench/cost.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
if [ ! -f target/bench/units.json ] || [ "${UNITS_FRESH:-0}" = 1 ]; then
  UNITS_OUT=target/bench/units.json bench/units.sh >/dev/null
fi
python3 bench/cost.py
