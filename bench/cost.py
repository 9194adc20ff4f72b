#!/usr/bin/env python3
"""Cost per million leads from the measured figures and AWS's published on-demand prices.

Inputs (written by the benches; bench/cost.sh runs bench/units.sh first when the units are missing):
  target/bench/units.json         capacity units, round trips and bytes stored per operation
                                  (tests/benches/capacity_units.rs, AWS's formula)
  target/bench/rescore.json       rescore units per lead and page times (bench/rescore.sh, optional)
  target/bench-cold-start/form-webhook-cpu.json   CPU per webhook (bench/cold-start.sh, optional)
  template.yaml                   memory sizes of the functions

Every assumption is a variable (see ASSUMPTIONS below) and printed with the table. Prices are
us-east-1, on-demand, standard table class, arm64 Lambda (PRICES below, with their sources and
date); PRICE_<NAME>=<dollars> overrides one.
"""

import json
import math
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# us-east-1 list prices as published on AWS's pricing pages (aws.amazon.com/lambda/pricing,
# /api-gateway/pricing, /dynamodb/pricing/on-demand, /eventbridge/pricing), last checked
# 2026-11-30; DynamoDB's on-demand request prices are those of the 2024-11-01 reduction (50%).
PRICES = {
    "lambda_arm_gb_s": 0.0000133334,  # first 7.5 billion GB-s a month
    "lambda_request": 0.20 / 1e6,
    "http_api_request": 1.00 / 1e6,  # first 300 million a month, per 512 KB
    "ddb_write_unit": 0.625 / 1e6,  # on-demand write request unit
    "ddb_read_unit": 0.125 / 1e6,  # on-demand read request unit
    "ddb_storage_gb_month": 0.25,  # after the first 25 GB (free tier not counted)
    "eventbridge_event": 1.00 / 1e6,  # custom events, per 64 KB
}
PRICES_DATE = "2026-11-30 (DynamoDB on-demand since 2024-11-01)"


def env(name, default):
    v = os.environ.get(name)
    return type(default)(v) if v not in (None, "") else default


ASSUMPTIONS = {
    # 1: a cancelled transaction (a returning person's first attempt, a retried delivery) is
    # billed like refused conditional writes (each action its item's size, 2x); 0: free.
    "CANCELLED_BILLED": env("CANCELLED_BILLED", 1),
    # The mix of webhook deliveries.
    "MIX_NEW": env("MIX_NEW", 0.70),
    "MIX_RETURNING": env("MIX_RETURNING", 0.25),
    "MIX_RETRIED": env("MIX_RETRIED", 0.05),
    # DynamoDB's latency per request seen from Lambda in the same region (ms): single-item
    # requests are typically single-digit ms, transactions a little more.
    "DDB_MS": env("DDB_MS", 8.0),
    # CPU per webhook on this machine (ms); read from bench/cold-start.sh when it ran.
    "CPU_MS": env("CPU_MS", 0.0),
    # Lambda gives 1 vCPU at 1,769 MB, proportionally less below.
    "VCPU_MB": env("VCPU_MB", 1769.0),
    # How much slower one Graviton vCPU runs this code than this machine's core (1 = same).
    "CPU_SCALE": env("CPU_SCALE", 1.0),
    # Cold starts: share of invocations, and their billed init (ms, billed since 2025-08-01).
    "COLD_RATE": env("COLD_RATE", 0.01),
    "INIT_MS": env("INIT_MS", 60.0),
    # The table the hourly rescore scans, and how many of its leads change per run.
    "TABLE_LEADS": env("TABLE_LEADS", 1000000),
    "RESCORE_RUNS_PER_MONTH": env("RESCORE_RUNS_PER_MONTH", 720),
    "RESCORE_CHANGED": env("RESCORE_CHANGED", -1.0),  # -1: the bench's share
    # A 1 MB Scan page on DynamoDB (ms); the segments read concurrently.
    "SCAN_PAGE_MS": env("SCAN_PAGE_MS", 150.0),
    "RESCORE_SEGMENTS": env("RESCORE_SEGMENTS", 8),
    # Rollups: day recomputes a month (hourly today + daily the last 7 days), leads a month,
    # touches per lead, bytes per sharded day-index entry, rollup rows written per day.
    "ROLLUP_DAYS_PER_MONTH": env("ROLLUP_DAYS_PER_MONTH", 24 * 30 + 7 * 30),
    "LEADS_PER_MONTH": env("LEADS_PER_MONTH", 1000000),
    "TOUCHES_PER_LEAD": env("TOUCHES_PER_LEAD", 1.4),
    "DAY_ENTRY_BYTES": env("DAY_ENTRY_BYTES", 260),
    "ROLLUP_ROWS_PER_DAY": env("ROLLUP_ROWS_PER_DAY", 60),
    # lead-events: records per invocation (the template's BatchSize), its CPU per record (ms).
    "STREAM_BATCH": env("STREAM_BATCH", 25),
    "STREAM_CPU_MS": env("STREAM_CPU_MS", 1.0),
}


def price(name):
    return env("PRICE_" + name.upper(), PRICES[name])


def read_json(path):
    full = os.path.join(ROOT, path)
    if not os.path.exists(full):
        return None
    with open(full) as f:
        return json.load(f)


def memory_sizes():
    """Global MemorySize and the rescore function's, from template.yaml."""
    with open(os.path.join(ROOT, "template.yaml")) as f:
        text = f.read()
    default = int(re.search(r"^Globals:.*?MemorySize:\s*(\d+)", text, re.S | re.M).group(1))
    m = re.search(r"^  RescoreFunction:.*?MemorySize:\s*(\d+)", text, re.S | re.M)
    return default, int(m.group(1)) if m else default


def lambda_cost(invocations, billed_ms, memory_mb):
    gb_s = invocations * billed_ms / 1000.0 * memory_mb / 1024.0
    return invocations * price("lambda_request") + gb_s * price("lambda_arm_gb_s")


def main():
    a = ASSUMPTIONS
    units = read_json("target/bench/units.json")
    if units is None:
        sys.exit("cost: no target/bench/units.json (run bench/cost.sh, which runs bench/units.sh)")
    ops = {u["operation"]: u for u in units}
    rescore = read_json("target/bench/rescore.json")
    cpu = read_json("target/bench-cold-start/form-webhook-cpu.json")
    cpu_ms = a["CPU_MS"] or (cpu or {}).get("cpu_per_invocation_ms") or 1.0
    cpu_source = "CPU_MS" if a["CPU_MS"] else ("bench/cold-start.sh" if cpu else "assumed")
    mem, rescore_mem = memory_sizes()
    share = min(1.0, mem / a["VCPU_MB"])
    rescore_share = min(1.0, rescore_mem / a["VCPU_MB"])

    mix = [
        ("new lead (web form)", a["MIX_NEW"]),
        ("returning lead", a["MIX_RETURNING"]),
        ("retried delivery", a["MIX_RETRIED"]),
    ]
    n = 1e6
    rows = []

    def add(what, dollars, detail):
        rows.append((what, dollars, detail))

    # HTTP API and form-webhook.
    add("API Gateway HTTP API", n * price("http_api_request"), "1 request per delivery")
    inv_ms = 0.0
    for name, share_of in mix:
        trips = ops[name]["round_trips"]
        billed = math.ceil(cpu_ms * a["CPU_SCALE"] / share + trips * a["DDB_MS"])
        inv_ms += share_of * billed
    inv_ms += a["COLD_RATE"] * a["INIT_MS"]
    add(
        "Lambda form-webhook (arm64, %d MB)" % mem,
        lambda_cost(n, inv_ms, mem),
        "%.1f ms billed per delivery (CPU %.2f ms / %.3f vCPU + %.0f ms per DynamoDB request; %.0f%% cold x %.0f ms)"
        % (inv_ms, cpu_ms, share, a["DDB_MS"], 100 * a["COLD_RATE"], a["INIT_MS"]),
    )
    def writes(k):
        u = ops[k]
        return u["write_units"] - (0 if a["CANCELLED_BILLED"] else u.get("refused_write_units", 0))

    wru = sum(s * writes(k) for k, s in mix)
    rru = sum(s * ops[k]["read_units"] for k, s in mix)
    add(
        "DynamoDB writes (ingest)",
        n * wru * price("ddb_write_unit"),
        "%.1f WRU per delivery (new %.0f, returning %.0f, retried %.0f)"
        % (wru, writes(mix[0][0]), writes(mix[1][0]), writes(mix[2][0])),
    )
    if rru:
        add("DynamoDB reads (ingest)", n * rru * price("ddb_read_unit"), "%.2f RRU per delivery" % rru)

    # lead-events: per new lead a consistent GetItem of its announcement marker (1 RRU), the
    # event, the marker put (1 WRU); per returning lead a consistent Query of the partition.
    new = n * a["MIX_NEW"]
    returning = n * a["MIX_RETURNING"]
    part_rru = math.ceil(5000 / 4096)
    stream_records = new + returning
    add(
        "lead-events (stream: announce, rescore merges)",
        lambda_cost(
            stream_records / a["STREAM_BATCH"],
            a["STREAM_BATCH"] * (a["STREAM_CPU_MS"] / share + 2 * a["DDB_MS"]),
            mem,
        )
        + new * (1 * price("ddb_read_unit") + 1 * price("ddb_write_unit") + price("eventbridge_event"))
        + returning * part_rru * price("ddb_read_unit"),
        "new: 1 RRU + 1 WRU + 1 event; returning: %d RRU (Query of a ~5 KB partition)" % part_rru,
    )
    ingest_total = sum(r[1] for r in rows)

    # Storage added by a million leads (a month's worth at 1M/month).
    stored = sum(s * ops[k].get("stored_bytes", 0) for k, s in mix)
    gb = n * stored / 1e9
    storage = gb * price("ddb_storage_gb_month")

    # Hourly rescore of the whole table.
    monthly = []
    if rescore:
        runs = a["RESCORE_RUNS_PER_MONTH"]
        leads = a["TABLE_LEADS"]
        changed = rescore["changed_fraction"] if a["RESCORE_CHANGED"] < 0 else a["RESCORE_CHANGED"]
        rru_run = leads * rescore["read_units_per_lead"]
        wru_run = leads * changed * rescore["write_units_per_changed_lead"]
        pages = leads / max(rescore["leads_per_page"], 1)
        eval_s = pages * rescore["eval_ms_per_page"] * a["CPU_SCALE"] / rescore_share / 1000.0
        io_s = pages * (a["SCAN_PAGE_MS"] + changed * rescore["leads_per_page"] * a["DDB_MS"] / 16) / 1000.0
        wall_s = eval_s + io_s / a["RESCORE_SEGMENTS"]
        dollars = runs * (
            rru_run * price("ddb_read_unit")
            + wru_run * price("ddb_write_unit")
            + lambda_cost(max(1, math.ceil(wall_s / 840)), wall_s * 1000 / max(1, math.ceil(wall_s / 840)), rescore_mem)
        )
        monthly.append(
            (
                "rescore, hourly, %s leads in the table" % f"{leads:,}",
                dollars,
                "per run %.0f RRU (%.3f per lead), %.0f WRU (%.1f%% changed x %.0f), ~%.0f s of a %d MB function"
                % (rru_run, rescore["read_units_per_lead"], wru_run, 100 * changed,
                   rescore["write_units_per_changed_lead"], wall_s, rescore_mem),
            )
        )
    # Rollups.
    roll = ops.get("rollup of one day (this table's day)")
    if roll:
        per_day_entries = a["LEADS_PER_MONTH"] / 30 * (1 + a["TOUCHES_PER_LEAD"])
        rru_day = roll["read_units"] + 0.5 * per_day_entries * a["DAY_ENTRY_BYTES"] / 4096
        wru_day = a["ROLLUP_ROWS_PER_DAY"]
        days = a["ROLLUP_DAYS_PER_MONTH"]
        monthly.append(
            (
                "metrics rollups (%d day recomputes a month)" % days,
                days * (rru_day * price("ddb_read_unit") + wru_day * price("ddb_write_unit"))
                + lambda_cost(days, 35 * a["DDB_MS"] + per_day_entries * 0.002 / share, mem),
                "per day %.0f RRU (%s day-index entries), %d WRU" % (rru_day, f"{per_day_entries:,.0f}", wru_day),
            )
        )
    monthly.append(
        (
            "storage of a million leads (per month, cumulative)",
            storage,
            "%.0f bytes per delivery of the mix with index entries, %.1f GB" % (stored, gb),
        )
    )

    print("## Cost per million leads (us-east-1, on-demand; prices of %s)" % PRICES_DATE)
    print()
    print("| per 1,000,000 webhook deliveries (%.0f%% new, %.0f%% returning, %.0f%% retried) | USD | how |"
          % (100 * a["MIX_NEW"], 100 * a["MIX_RETURNING"], 100 * a["MIX_RETRIED"]))
    print("|---|---:|---|")
    for what, dollars, detail in rows:
        print("| %s | %.2f | %s |" % (what, dollars, detail))
    print("| **ingest total** | **%.2f** | |" % ingest_total)
    print()
    print("| per month | USD | how |")
    print("|---|---:|---|")
    for what, dollars, detail in monthly:
        print("| %s | %.2f | %s |" % (what, dollars, detail))
    print()
    print("Prices: Lambda arm64 $%.10f per GB-s and $%.2f per million requests; HTTP API $%.2f per million;"
          " DynamoDB $%.3f per million write and $%.3f per million read request units, $%.2f per GB-month;"
          " EventBridge $%.2f per million events."
          % (price("lambda_arm_gb_s"), price("lambda_request") * 1e6, price("http_api_request") * 1e6,
             price("ddb_write_unit") * 1e6, price("ddb_read_unit") * 1e6, price("ddb_storage_gb_month"),
             price("eventbridge_event") * 1e6))
    print("Units: AWS's formula from bench/units.sh%s; CPU per webhook %.2f ms (%s)."
          % ("" if rescore else " (no target/bench/rescore.json: rescore left out; run bench/rescore.sh)",
             cpu_ms, cpu_source))
    print("Assumptions: " + ", ".join("%s=%s" % (k, v) for k, v in a.items()))


if __name__ == "__main__":
    main()
