#!/usr/bin/env bash
# Prints DynamoDB round trips per referral-review operation (referrals, referral codes, reviews,
# Trustpilot events), measured through the handler against a DynamoDB Local it starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
echo "== DynamoDB round trips per referral-review operation"
# The handler prints its EMF metric lines on stdout; only the table is shown.
cargo bench -q -p integration-tests --bench referral_round_trips | grep -v '^{"_aws"'
