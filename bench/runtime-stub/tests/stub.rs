//! End-to-end runs of the stub: against a binary that never polls, and against a tiny Runtime
//! API client written in bash (its /dev/tcp), so no Lambda function needs building.

use std::path::{Path, PathBuf};
use std::process::Command;

const STUB: &str = env!("CARGO_BIN_EXE_runtime-stub");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runtime-stub-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// The value of `"key": value` on its own line of the stub's JSON report.
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let prefix = format!("\"{key}\": ");
    json.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        .trim_end_matches(',')
}

#[test]
fn child_that_never_polls_is_a_clean_error() {
    let dir = scratch("true");
    let event = write(&dir.join("e.json"), "{}");
    let out = Command::new(STUB)
        .args(["--binary", "/bin/true", "--events"])
        .arg(&event)
        .args(["--timeout", "30"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("child exited before first poll (exit code 0)"),
        "stderr: {stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_arguments_exit_2() {
    let out = Command::new(STUB).args(["--count", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(STUB)
        .args(["--binary", "/nonexistent/fn", "--events", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A Runtime API client in bash: one keep-alive connection; answers every third event with
/// an error and echoes the others. Exits 1 at once if the Lambda environment is incomplete.
const FAKE_RUNTIME: &str = r#"#!/usr/bin/env bash
set -euo pipefail
: "${AWS_LAMBDA_FUNCTION_NAME:?}" "${AWS_LAMBDA_FUNCTION_VERSION:?}" "${AWS_LAMBDA_FUNCTION_MEMORY_SIZE:?}"
[ "${STUB_TEST_VAR:-}" = "a=b" ] || { echo "STUB_TEST_VAR not passed" >&2; exit 1; }
echo "fake runtime starting" >&2
exec 3<>"/dev/tcp/${AWS_LAMBDA_RUNTIME_API%:*}/${AWS_LAMBDA_RUNTIME_API##*:}"
read_answer() {  # sets id, body
  local line len=0
  id=
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in
      lambda-runtime-aws-request-id:*) id=${line#*: } ;;
      content-length:*) len=${line#*: } ;;
    esac
  done
  body=
  if [ "$len" -gt 0 ]; then IFS= read -r -N "$len" body <&3; fi
}
n=0
while true; do
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: stub\r\n\r\n' >&3
  read_answer
  [ -n "$id" ] || { echo "no request id" >&2; exit 1; }
  n=$((n + 1))
  if [ $((n % 3)) -eq 0 ]; then
    path=error out='{"errorMessage":"every third","errorType":"Test"}'
  else
    path=response out=$body
  fi
  printf 'POST /2018-06-01/runtime/invocation/%s/%s HTTP/1.1\r\nHost: stub\r\nContent-Length: %d\r\n\r\n%s' \
    "$id" "$path" "${#out}" "$out" >&3
  read_answer
done
"#;

#[test]
fn serves_events_round_robin_and_measures() {
    let dir = scratch("fake");
    let runtime = write(&dir.join("bootstrap"), FAKE_RUNTIME);
    Command::new("chmod")
        .arg("+x")
        .arg(&runtime)
        .status()
        .unwrap();
    let e1 = write(&dir.join("one.json"), r#"{"statusCode":200,"n":1}"#);
    let e2 = write(&dir.join("two.json"), r#"{"statusCode":201,"n":2}"#);
    let log = dir.join("child.log");
    let out = Command::new(STUB)
        .arg("--binary")
        .arg(&runtime)
        .arg("--events")
        .arg(&e1)
        .arg("--events")
        .arg(&e2)
        .args([
            "--count",
            "6",
            "--env",
            "STUB_TEST_VAR=a=b",
            "--json",
            "--timeout",
            "60",
        ])
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");

    assert_eq!(json_field(&stdout, "ok"), "true");
    assert_eq!(json_field(&stdout, "invocations"), "6");
    assert_eq!(json_field(&stdout, "successes"), "4");
    assert_eq!(json_field(&stdout, "errors"), "2");
    assert_eq!(json_field(&stdout, "rejected"), "0");
    assert_eq!(json_field(&stdout, "connections"), "1");
    // Invocations 1, 2, 4, 5 echo events one, two, two, one.
    assert_eq!(
        json_field(&stdout, "status_codes"),
        r#"{"200": 2, "201": 2}"#
    );
    assert_eq!(
        json_field(&stdout, "first_response"),
        r#""{\"statusCode\":200,\"n\":1}""#
    );
    // Ended as Lambda ends a sandbox: SIGTERM (SIGKILL only if that did not end it).
    assert_eq!(
        json_field(&stdout, "child_exit"),
        r#""killed by signal 15""#
    );
    for key in [
        "first_poll_ms",
        "cpu_before_first_poll_ms",
        "cpu_total_ms",
        "cpu_per_invocation_ms",
        "invoke_ms_p50",
    ] {
        let v: f64 = json_field(&stdout, key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {stdout}"));
        assert!(v >= 0.0, "{key} = {v}");
    }
    let first_poll: f64 = json_field(&stdout, "first_poll_ms").parse().unwrap();
    assert!(first_poll > 0.0 && first_poll < 30_000.0);
    // The child's stderr went to the log, not to the report.
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("fake runtime starting"));
    assert!(!stdout.contains("fake runtime starting"));
    let _ = std::fs::remove_dir_all(&dir);
}
