#!/usr/bin/env python3
"""Per-phase CPU of one webhook from two callgrind profiles of the same function binary.

bench/cold-start.sh (PHASES=1) runs the function under `valgrind --tool=callgrind` behind the
Runtime API stand-in twice, with FEW and MANY events. Each phase is the inclusive instruction
count (Ir) of the functions that make it up; the difference between the two runs divided by
MANY - FEW is the cost of one more webhook, with the cold start (phone metadata, CA
certificates, first connection) cancelled out. Instructions are apportioned to milliseconds
with the CPU per invocation measured natively (`--cpu-ms`), so each phase is printed as its share
and as an estimate in ms. Valgrind's CPU has no SHA extensions, so SHA-256 (request signing)
is counted in software: its share is an upper bound.

    bench/cpu_phases.py FEW.out MANY.out FEW MANY [--cpu-ms MS] [--json FILE]
"""

import json
import re
import subprocess
import sys

# (label, depth, patterns): a phase is the sum of the inclusive counts of the functions whose
# demangled names match one of its patterns (the functions must not call one another). Depth
# indents the report: a phase is part of the nearest shallower phase above it.
PHASES = [
    ("one invocation (Runtime API client: event in, answer out)", 0,
     [r"^lambda_runtime::runtime::process_invocation::\{\{closure\}\}$"]),
    ("JSON parse into structs (the API Gateway event)", 1,
     [r"^<&mut serde_json::de::Deserializer<R> as serde_core::de::Deserializer>::deserialize_struct$"]),
    ("request handler (routing, auth, body, normalize, store)", 1,
     [r"^form_webhook::form::handle::\{\{closure\}\}$"]),
    ("form body to fields", 2,
     [r"^form_webhook::form::flatten$"]),
    ("normalize (email, phone, consent, channel)", 2,
     [r"^leadflow::normalize::normalize$"]),
    ("building the items (create_items / merge_items)", 2,
     [r"^leadflow::store::ingest::<impl leadflow::store::Store>::(create|merge)_items$"]),
    ("DynamoDB call (SDK orchestrator, excl. connection I/O)", 2,
     [r"^aws_smithy_runtime::client::orchestrator::invoke_with_stop_point::\{\{closure\}\}::\{\{closure\}\}::\{\{closure\}\}$"]),
    ("request serialization (JSON)", 3,
     [r"RequestSerializer as aws_smithy_runtime_api::client::ser_de::SerializeRequest>::serialize_input$"]),
    ("SigV4 signing", 3,
     [r"^<aws_runtime::auth::sigv4::SigV4Signer as aws_smithy_runtime_api::client::auth::Sign>::sign_http_request$"]),
    ("endpoint resolution", 3,
     [r"::config::endpoint::DowncastParams<T> as aws_smithy_runtime_api::client::endpoint::ResolveEndpoint>::resolve_endpoint$"]),
    ("interceptors (user agent, retries, clock skew, metrics...)", 3,
     [r"^<aws_smithy_runtime_api::client::interceptors::SharedInterceptor as aws_smithy_runtime_api::client::interceptors::Intercept>::"]),
    ("response deserialization", 3,
     [r"ResponseDeserializer as aws_smithy_runtime_api::client::ser_de::DeserializeResponse>::deserialize_nonstreaming"]),
    ("request log line (tracing JSON)", 1,
     [r"^<tracing_subscriber::fmt::fmt_layer::Layer<S,N,E,W> as tracing_subscriber::layer::Layer<S>>::on_event$"]),
    ("metrics record (EMF: JSON value to text)", 1,
     [r"^serde_json::value::ser::<impl serde_core::ser::Serialize for serde_json::value::Value>::serialize$"]),
    ("stdout writes (the log line and the EMF record)", 1,
     [r"^<std::io::stdio::StdoutLock as std::io::Write>::write_all$"]),
    ("HTTP/1 connections (hyper: Runtime API and DynamoDB)", 0,
     [r"^hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_(read|write|flush)$"]),
    ("phone number parse (inside normalize)", 0,
     [r"^leadflow::normalize::parse_phone$"]),
    ("allocator (malloc, free, realloc), everywhere", 0,
     [r"^(malloc|free|realloc|calloc)$"]),
]

LINE = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$")


def inclusive(profile):
    """{function: inclusive Ir} and the program total, from callgrind_annotate."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", profile],
        check=True, capture_output=True, text=True).stdout
    costs, total = {}, None
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir, rest = int(m.group(1).replace(",", "")), m.group(2)
        if rest.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        # "file:function [object]": the file is ???, or a path (./malloc/..., /rustc/...).
        rest = re.sub(r"\s\[[^\]]*\]$", "", rest)
        rest = re.sub(r"^(\?\?\?|[./][^:]*):", "", rest)
        costs[rest] = costs.get(rest, 0) + ir
    if total is None:
        sys.exit(f"cpu_phases: no PROGRAM TOTALS in {profile}")
    return costs, total


def phase_cost(costs, patterns):
    rx = [re.compile(p) for p in patterns]
    return sum(ir for name, ir in costs.items() if any(r.search(name) for r in rx))


def main(argv):
    args = argv[1:]
    cpu_ms, json_file = None, None
    while "--cpu-ms" in args or "--json" in args:
        for flag in ("--cpu-ms", "--json"):
            if flag in args:
                i = args.index(flag)
                value = args[i + 1]
                del args[i:i + 2]
                if flag == "--cpu-ms":
                    cpu_ms = float(value)
                else:
                    json_file = value
    if len(args) != 4:
        sys.exit(__doc__)
    few_out, many_out, few, many = args[0], args[1], int(args[2]), int(args[3])
    if many <= few:
        sys.exit("cpu_phases: MANY must be larger than FEW")
    (c1, t1), (c2, t2) = inclusive(few_out), inclusive(many_out)
    n = many - few
    per_event = (t2 - t1) / n
    rows = []
    for label, depth, patterns in PHASES:
        ir = (phase_cost(c2, patterns) - phase_cost(c1, patterns)) / n
        rows.append({"phase": label, "depth": depth, "ir": round(ir),
                     "share": ir / per_event if per_event else 0.0,
                     "ms": (ir / per_event * cpu_ms) if cpu_ms and per_event else None})
    print(f"  one more webhook: {per_event:,.0f} instructions (callgrind, {many} - {few} events)"
          + (f" = {cpu_ms:.3f} ms CPU measured natively" if cpu_ms else ""))
    print(f"  {'phase':<66} {'instructions':>13} {'share':>7}" + ("   est. ms" if cpu_ms else ""))
    for r in rows:
        label = "  " * r["depth"] + r["phase"]
        line = f"  {label:<66} {r['ir']:>13,} {r['share'] * 100:6.1f}%"
        if r["ms"] is not None:
            line += f"   {r['ms']:7.3f}"
        print(line)
    print("  (indented phases are part of the one above; the allocator and HTTP rows overlap the"
          " others; SHA-256 runs without CPU extensions under valgrind)")
    if json_file:
        with open(json_file, "w") as f:
            json.dump({"instructions_per_webhook": round(per_event), "cpu_ms": cpu_ms,
                       "phases": rows}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
