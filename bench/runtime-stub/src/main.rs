//! `runtime-stub`: a tiny local stand-in for the AWS Lambda Runtime API that measures a function
//! binary: time from spawn to the first `/next` poll (cold start), wall time and CPU time per
//! invocation. See `--help`.

mod http;
mod procinfo;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Route;
use http_stub::http1;
use procinfo::{CpuSample, Usage};

const USAGE: &str = "usage: runtime-stub --binary PATH --events FILE [--events FILE ...] [options]

Serves the Lambda Runtime API on 127.0.0.1 to the function binary PATH, hands it the events
round-robin, and reports time to first poll, wall time and CPU time per invocation.

options:
  --count N                  invocations in total (default: one per event file)
  --unique                   replace {{n}} in the events with the invocation's index (4 digits
                             or more, zero-padded) and {{run}} with this run's id (8 hex
                             digits): every invocation a different lead (a new-lead benchmark)
  --env K=V                  extra environment for the function (repeatable; wins over all)
  --name NAME                function name (default: the binary's file name)
  --memory MB                AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default 256)
  --log FILE                 where the function's stdout/stderr go (default /dev/null)
  --timeout SECS             give up after this long (default 120)
  --json                     print the figures as JSON instead of text
  --json-file FILE           also write the figures as JSON to FILE
  --verbose                  log each Runtime API connection to stderr
  --target-first-poll-ms MS  print this target beside the time to first poll
  --target-cpu-ms MS         print this target beside the CPU per invocation

The function inherits this process's environment, plus the standard Lambda variables, plus
dummy AWS credentials and AWS_REGION=us-east-1 where none are set, plus the --env pairs.
Exit status: 0 when every invocation was answered (successes or errors), 1 when the run
failed (the function exited or stalled), 2 on bad arguments.";

const NOTE: &str =
    "CPU figures are the whole function process: runtime client, JSON (de)serialization, \
logging, and whatever the handler does, including the DynamoDB client's request signing, HTTP and \
its round trips' parsing. The stub's own CPU is not counted.";

#[derive(Debug, Clone, PartialEq)]
struct Options {
    binary: PathBuf,
    events: Vec<PathBuf>,
    count: usize,
    env: Vec<(String, String)>,
    name: String,
    memory: u32,
    log: Option<PathBuf>,
    timeout: Duration,
    json: bool,
    json_file: Option<PathBuf>,
    verbose: bool,
    unique: bool,
    target_first_poll_ms: Option<f64>,
    target_cpu_ms: Option<f64>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut binary = None;
    let mut events = Vec::new();
    let mut count = None;
    let mut env = Vec::new();
    let mut name = None;
    let mut memory = 256;
    let mut log = None;
    let mut timeout = Duration::from_secs(120);
    let mut json = false;
    let mut json_file = None;
    let mut verbose = false;
    let mut unique = false;
    let mut target_first_poll_ms = None;
    let mut target_cpu_ms = None;

    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if flag == "--json" {
            json = true;
            continue;
        }
        if flag == "--verbose" {
            verbose = true;
            continue;
        }
        if flag == "--unique" {
            unique = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        let number = |v: String| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: not a number: {v:?}"))
        };
        match flag {
            "--binary" => binary = Some(PathBuf::from(value()?)),
            "--events" => events.push(PathBuf::from(value()?)),
            "--count" => {
                let v = value()?;
                count = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--count: not a positive integer: {v:?}"))?,
                );
            }
            "--env" => {
                let v = value()?;
                let (k, val) = v
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("--env wants K=V, got {v:?}"))?;
                env.push((k.to_string(), val.to_string()));
            }
            "--name" => name = Some(value()?),
            "--memory" => {
                let v = value()?;
                memory = v
                    .parse()
                    .map_err(|_| format!("--memory: not an integer: {v:?}"))?;
            }
            "--log" => log = Some(PathBuf::from(value()?)),
            "--json-file" => json_file = Some(PathBuf::from(value()?)),
            "--timeout" => timeout = Duration::from_secs_f64(number(value()?)?),
            "--target-first-poll-ms" => target_first_poll_ms = Some(number(value()?)?),
            "--target-cpu-ms" => target_cpu_ms = Some(number(value()?)?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let binary = binary.ok_or("--binary is required")?;
    if events.is_empty() {
        return Err("at least one --events FILE is required".into());
    }
    let name = name.unwrap_or_else(|| {
        binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "function".into())
    });
    Ok(Options {
        count: count.unwrap_or(events.len()),
        binary,
        events,
        env,
        name,
        memory,
        log,
        timeout,
        json,
        json_file,
        verbose,
        unique,
        target_first_poll_ms,
        target_cpu_ms,
    })
}

/// The environment the function gets on top of the inherited one: (variable, value, only when
/// unset in the inherited environment).
fn lambda_env(opts: &Options, api: &str, run_id: u64) -> Vec<(String, String, bool)> {
    let mut env: Vec<(String, String, bool)> = vec![
        ("AWS_LAMBDA_RUNTIME_API", api.to_string(), false),
        ("AWS_LAMBDA_FUNCTION_NAME", opts.name.clone(), false),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            opts.memory.to_string(),
            false,
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into(), false),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", opts.name),
            false,
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("runtime-stub/[$LATEST]{run_id:016x}"),
            false,
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into(), false),
        ("_HANDLER", "bootstrap".into(), false),
        ("LAMBDA_TASK_ROOT", "/var/task".into(), false),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into(), false),
        ("TZ", ":UTC".into(), false),
        ("AWS_REGION", "us-east-1".into(), true),
        ("AWS_DEFAULT_REGION", "us-east-1".into(), true),
        // Never let an SDK wander off to the instance metadata service.
        ("AWS_EC2_METADATA_DISABLED", "true".into(), true),
    ]
    .into_iter()
    .map(|(k, v, d)| (k.to_string(), v, d))
    .collect();
    // Lambda always provides credentials; dummy ones keep the SDK's chain local.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "AKIDRUNTIMESTUB"),
            ("AWS_SECRET_ACCESS_KEY", "runtime-stub-secret"),
            ("AWS_SESSION_TOKEN", "runtime-stub-session"),
        ] {
            env.push((k.into(), v.into(), false));
        }
    }
    env
}

// ---------------------------------------------------------------------------------------------
// Server state

#[derive(Default)]
struct State {
    pid: Option<i32>,
    next_index: usize,
    outstanding: HashMap<String, usize>,
    delivered: Vec<Option<Instant>>,
    finished: Vec<Option<Instant>>,
    connections: usize,
    successes: usize,
    errors: usize,
    rejected: usize,
    first_response: Option<(&'static str, Vec<u8>)>,
    first_error: Option<Vec<u8>>,
    init_error: Option<Vec<u8>>,
    status_codes: BTreeMap<String, usize>,
    first_poll: Option<Instant>,
    cpu_first_poll: Option<CpuSample>,
    cpu_second_poll: Option<CpuSample>,
    all_done: Option<Instant>,
    child_exit: Option<Result<(i32, Usage), String>>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    events: Vec<Vec<u8>>,
    /// `--unique`: the events' `{{n}}` and `{{run}}` are replaced per invocation.
    unique: bool,
    count: usize,
    arn: String,
    run_id: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(g).unwrap_or_else(|e| e.into_inner())
    }
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A small PRNG seed for ids (uniqueness comes from the invocation index).
fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = t ^ ((std::process::id() as u64) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The event with `{{n}}` replaced by the invocation's index (zero-padded to 4 digits, so it can
/// end a phone number) and `{{run}}` by the run's id: a different person per invocation, and
/// per run when a table outlives the run.
fn unique_event(event: &[u8], run_id: u64, index: usize) -> Vec<u8> {
    String::from_utf8_lossy(event)
        .replace("{{n}}", &format!("{index:04}"))
        .replace("{{run}}", &format!("{:08x}", run_id as u32))
        .into_bytes()
}

/// A UUID-shaped request id, unique per invocation of this run.
fn request_id(run_id: u64, index: usize) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (run_id >> 32) as u32,
        (run_id >> 16) as u16,
        (run_id >> 4) & 0xfff,
        run_id & 0xfff,
        index as u64 & 0xffff_ffff_ffff
    )
}

fn trace_id(run_id: u64, index: usize) -> String {
    format!(
        "Root=1-{:08x}-{:08x}{:016x};Parent={:016x};Sampled=0",
        (epoch_ms() / 1000) as u32,
        (run_id >> 32) as u32,
        index,
        run_id ^ index as u64
    )
}

/// The `statusCode` of an API Gateway style response body, if it has one.
fn status_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"statusCode\"")? + "\"statusCode\"".len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    (!digits.is_empty()).then_some(digits)
}

fn handle_connection(shared: Arc<Shared>, stream: TcpStream, verbose: bool) {
    let number = {
        let mut st = shared.lock();
        st.connections += 1;
        st.connections
    };
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut served = 0;
    let end = serve_connection(&shared, stream, &mut served);
    if verbose {
        eprintln!(
            "runtime-stub: connection #{number} from {peer}: {served} request(s), then {end}"
        );
    }
}

/// Serves requests until the connection ends; returns how it ended.
fn serve_connection(shared: &Shared, stream: TcpStream, served: &mut usize) -> String {
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return "could not clone the socket".into();
    };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(write_half);
    const JSON: (&str, &str) = ("Content-Type", "application/json");
    loop {
        let req = match http1::read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return "closed by the client".into(),
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    let body = format!("{{\"errorMessage\":{}}}", json_string(&e.to_string()));
                    let _ =
                        http1::write_response(&mut writer, 400, &[JSON], body.as_bytes(), false);
                }
                return format!("read error: {e}");
            }
        };
        *served += 1;
        let now = Instant::now();
        let keep_alive = req.keep_alive();
        let reply = |w: &mut BufWriter<TcpStream>, status: u16, body: &str| {
            http1::write_response(w, status, &[JSON], body.as_bytes(), keep_alive)
        };
        let result = match http::route(&req.method, &req.target) {
            Route::Next => {
                let mut st = shared.lock();
                while st.pid.is_none() && !st.shutdown {
                    st = shared.wait(st);
                }
                let pid = st.pid.unwrap_or(0);
                if st.first_poll.is_none() {
                    st.first_poll = Some(now);
                    st.cpu_first_poll = Some(procinfo::sample(pid));
                }
                if st.next_index >= shared.count {
                    // All events handed out: hold the poll until the run is torn down.
                    while !st.shutdown {
                        st = shared.wait(st);
                    }
                    return "a held poll, dropped at shutdown".into();
                }
                let index = st.next_index;
                st.next_index += 1;
                if index == 1 {
                    st.cpu_second_poll = Some(procinfo::sample(pid));
                }
                let id = request_id(shared.run_id, index);
                st.outstanding.insert(id.clone(), index);
                st.delivered[index] = Some(Instant::now());
                drop(st);
                let deadline = (epoch_ms() + 30_000).to_string();
                let trace = trace_id(shared.run_id, index);
                let event = &shared.events[index % shared.events.len()];
                let unique;
                let event = if shared.unique {
                    unique = unique_event(event, shared.run_id, index);
                    &unique
                } else {
                    event
                };
                http1::write_response(
                    &mut writer,
                    200,
                    &[
                        JSON,
                        ("Lambda-Runtime-Aws-Request-Id", &id),
                        ("Lambda-Runtime-Deadline-Ms", &deadline),
                        ("Lambda-Runtime-Invoked-Function-Arn", &shared.arn),
                        ("Lambda-Runtime-Trace-Id", &trace),
                    ],
                    event,
                    keep_alive,
                )
            }
            Route::Response(id) | Route::Error(id) => {
                let ok = matches!(http::route(&req.method, &req.target), Route::Response(_));
                let mut st = shared.lock();
                match st.outstanding.remove(id) {
                    None => {
                        st.rejected += 1;
                        drop(st);
                        reply(
                            &mut writer,
                            400,
                            "{\"errorMessage\":\"unknown or already answered request id\",\"errorType\":\"InvalidRequestID\"}",
                        )
                    }
                    Some(index) => {
                        st.finished[index] = Some(now);
                        if ok {
                            st.successes += 1;
                            if let Some(code) = status_code(&req.body) {
                                *st.status_codes.entry(code).or_default() += 1;
                            }
                        } else {
                            st.errors += 1;
                            if st.first_error.is_none() {
                                st.first_error = Some(req.body.clone());
                            }
                        }
                        if index == 0 {
                            let kind = if ok { "response" } else { "error" };
                            st.first_response = Some((kind, req.body));
                        }
                        if st.successes + st.errors == shared.count {
                            st.all_done = Some(now);
                            shared.cv.notify_all();
                        }
                        drop(st);
                        reply(&mut writer, 202, "{\"status\":\"OK\"}")
                    }
                }
            }
            Route::InitError => {
                let mut st = shared.lock();
                if st.init_error.is_none() {
                    st.init_error = Some(req.body);
                }
                drop(st);
                reply(&mut writer, 202, "{\"status\":\"OK\"}")
            }
            Route::MethodNotAllowed => reply(
                &mut writer,
                405,
                "{\"errorMessage\":\"method not allowed\"}",
            ),
            Route::NotFound => reply(&mut writer, 404, "{\"errorMessage\":\"not found\"}"),
        };
        if let Err(e) = result {
            return format!("write error: {e}");
        }
        if !keep_alive {
            return "closed after a request without keep-alive".into();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// Kills the child if the stub unwinds before reaping it.
struct KillGuard(i32, bool);

impl Drop for KillGuard {
    fn drop(&mut self) {
        if self.1 {
            procinfo::kill(self.0);
        }
    }
}

enum Outcome {
    Completed,
    ChildExited,
    TimedOut,
}

struct Run {
    outcome: Outcome,
    spawned: Instant,
    state: State,
}

fn run(opts: &Options) -> Result<Run, String> {
    let events = opts
        .events
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    let api = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listener's address: {e}"))?
        .to_string();
    let run_id = seed();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            delivered: vec![None; opts.count],
            finished: vec![None; opts.count],
            ..State::default()
        }),
        cv: Condvar::new(),
        events,
        unique: opts.unique,
        count: opts.count,
        arn: format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            opts.name
        ),
        run_id,
    });

    {
        let shared = Arc::clone(&shared);
        let verbose = opts.verbose;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || handle_connection(shared, stream, verbose));
            }
        });
    }

    let log = match &opts.log {
        Some(p) => File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?,
        None => File::create("/dev/null").map_err(|e| format!("cannot open /dev/null: {e}"))?,
    };
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot duplicate the log file: {e}"))?;
    let mut cmd = Command::new(&opts.binary);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    for (k, v, only_if_unset) in lambda_env(opts, &api, run_id) {
        if !only_if_unset || std::env::var_os(&k).is_none() {
            cmd.env(k, v);
        }
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }

    let spawned = Instant::now();
    // Reaped below with wait4, which also gives the child's rusage.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.binary.display()))?;
    let pid = child.id() as i32;
    let mut guard = KillGuard(pid, true);
    shared.lock().pid = Some(pid);
    shared.cv.notify_all();

    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let r = procinfo::wait4(pid).map_err(|e| format!("wait4: {e}"));
            shared.lock().child_exit = Some(r);
            shared.cv.notify_all();
        });
    }

    let deadline = spawned + opts.timeout;
    let mut st = shared.lock();
    let outcome = loop {
        if st.all_done.is_some() {
            break Outcome::Completed;
        }
        if st.child_exit.is_some() {
            break Outcome::ChildExited;
        }
        let now = Instant::now();
        if now >= deadline {
            break Outcome::TimedOut;
        }
        st = shared
            .cv
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    };
    // SIGTERM first, as Lambda shuts a sandbox down: a function ends at once, and a profiler
    // wrapping it (valgrind, bench/cold-start.sh's phases) writes its data; SIGKILL after 10 s.
    for (signal, wait) in [(procinfo::terminate as fn(i32), 10), (procinfo::kill, 2)] {
        if st.child_exit.is_some() {
            break;
        }
        signal(pid);
        let reap_deadline = Instant::now() + Duration::from_secs(wait);
        while st.child_exit.is_none() && Instant::now() < reap_deadline {
            st = shared
                .cv
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    guard.1 = st.child_exit.is_none();
    let state = std::mem::take(&mut *st);
    // Release the held polls (after the take, which resets the flag).
    st.shutdown = true;
    shared.cv.notify_all();
    drop(st);
    drop(guard);
    Ok(Run {
        outcome,
        spawned,
        state,
    })
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Debug, Default, Clone, PartialEq)]
struct Figures {
    invocations: usize,
    event_files: usize,
    connections: usize,
    first_poll_ms: Option<f64>,
    cpu_before_first_poll_ms: Option<f64>,
    cpu_before_first_poll_stat_ms: Option<f64>,
    cpu_source: &'static str,
    first_invocation_ms: Option<f64>,
    first_invocation_cpu_ms: Option<f64>,
    invoke_ms_mean: Option<f64>,
    invoke_ms_p50: Option<f64>,
    invoke_ms_p99: Option<f64>,
    invoke_ms_max: Option<f64>,
    cycle_ms_mean: Option<f64>,
    cpu_user_ms: Option<f64>,
    cpu_sys_ms: Option<f64>,
    cpu_total_ms: Option<f64>,
    cpu_per_invocation_ms: Option<f64>,
    cpu_per_invocation_after_first_ms: Option<f64>,
    max_rss_mb: Option<f64>,
    successes: usize,
    errors: usize,
    rejected: usize,
    status_codes: BTreeMap<String, usize>,
    first_response_kind: Option<&'static str>,
    first_response: Option<String>,
    first_error: Option<String>,
    init_error: Option<String>,
    child_exit: Option<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn figures(opts: &Options, run: &Run) -> Figures {
    let st = &run.state;
    let n = opts.count;
    let mut f = Figures {
        invocations: n,
        event_files: opts.events.len(),
        connections: st.connections,
        successes: st.successes,
        errors: st.errors,
        rejected: st.rejected,
        status_codes: st.status_codes.clone(),
        cpu_source: st
            .cpu_first_poll
            .map(|s| s.source())
            .unwrap_or("unavailable"),
        ..Figures::default()
    };
    let text = |b: &Vec<u8>| String::from_utf8_lossy(b).into_owned();
    f.first_response_kind = st.first_response.as_ref().map(|(k, _)| *k);
    f.first_response = st.first_response.as_ref().map(|(_, b)| text(b));
    f.first_error = st.first_error.as_ref().map(text);
    f.init_error = st.init_error.as_ref().map(text);

    f.first_poll_ms = st.first_poll.map(|t| ms(t - run.spawned));
    f.cpu_before_first_poll_ms = st.cpu_first_poll.and_then(|s| s.best_ms());
    f.cpu_before_first_poll_stat_ms = st.cpu_first_poll.and_then(|s| s.stat_ms);

    // Wall time of invocation i: event sent -> response read.
    fn wall(st: &State, i: usize) -> Option<f64> {
        match (st.delivered.get(i), st.finished.get(i)) {
            (Some(Some(a)), Some(Some(b))) => Some(ms(*b - *a)),
            _ => None,
        }
    }
    f.first_invocation_ms = wall(st, 0);
    let mut after: Vec<f64> = (1..n).filter_map(|i| wall(st, i)).collect();
    if !after.is_empty() {
        f.invoke_ms_mean = Some(after.iter().sum::<f64>() / after.len() as f64);
        after.sort_by(f64::total_cmp);
        f.invoke_ms_p50 = percentile(&after, 50.0);
        f.invoke_ms_p99 = percentile(&after, 99.0);
        f.invoke_ms_max = after.last().copied();
    }
    if let (Some(Some(first)), Some(Some(last))) = (st.finished.first(), st.finished.last()) {
        if n > 1 {
            f.cycle_ms_mean = Some(ms(*last - *first) / (n - 1) as f64);
        }
    }

    match &st.child_exit {
        Some(Ok((status, usage))) => {
            f.child_exit = Some(procinfo::describe_status(*status));
            f.cpu_user_ms = Some(usage.user_ms);
            f.cpu_sys_ms = Some(usage.sys_ms);
            f.cpu_total_ms = Some(usage.total_ms());
            f.max_rss_mb = Some(usage.max_rss_kb as f64 / 1024.0);
            if matches!(run.outcome, Outcome::Completed) {
                if let Some(pre) = f.cpu_before_first_poll_ms {
                    f.cpu_per_invocation_ms = Some((usage.total_ms() - pre) / n as f64);
                }
                let second = st.cpu_second_poll.and_then(|s| s.best_ms());
                if let (Some(second), true) = (second, n > 1) {
                    f.cpu_per_invocation_after_first_ms =
                        Some((usage.total_ms() - second) / (n - 1) as f64);
                    f.first_invocation_cpu_ms = f.cpu_before_first_poll_ms.map(|pre| second - pre);
                }
            }
        }
        Some(Err(e)) => f.child_exit = Some(e.clone()),
        None => f.child_exit = Some("not reaped".into()),
    }
    f
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.3} ms"),
        None => "n/a".into(),
    }
}

fn target_note(v: Option<f64>, target: Option<f64>) -> String {
    match (v, target) {
        (Some(v), Some(t)) => format!(
            "   target < {t} ms: {}",
            if v < t { "ok" } else { "MISSED" }
        ),
        _ => String::new(),
    }
}

fn clip(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}...", one_line.chars().take(max).collect::<String>())
    }
}

fn text_report(opts: &Options, f: &Figures) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row(
        "spawn -> first /next poll",
        format!(
            "{}{}",
            fmt_ms(f.first_poll_ms),
            target_note(f.first_poll_ms, opts.target_first_poll_ms)
        ),
    );
    row(
        "CPU before first poll",
        format!(
            "{}   ({}; /proc stat: {})",
            fmt_ms(f.cpu_before_first_poll_ms),
            f.cpu_source,
            fmt_ms(f.cpu_before_first_poll_stat_ms)
        ),
    );
    row(
        "first invocation",
        format!(
            "{} wall, {} CPU",
            fmt_ms(f.first_invocation_ms),
            fmt_ms(f.first_invocation_cpu_ms)
        ),
    );
    if f.invocations > 1 {
        row(
            "wall per invocation after 1st",
            format!(
                "{} mean, {} p50, {} p99, {} max   (event sent -> response read)",
                fmt_ms(f.invoke_ms_mean),
                fmt_ms(f.invoke_ms_p50),
                fmt_ms(f.invoke_ms_p99),
                fmt_ms(f.invoke_ms_max)
            ),
        );
        row(
            "cycle per invocation after 1st",
            format!(
                "{}   (response -> response, incl. the next poll)",
                fmt_ms(f.cycle_ms_mean)
            ),
        );
    }
    row(
        "child CPU total",
        format!(
            "{}   (user {}, sys {})",
            fmt_ms(f.cpu_total_ms),
            fmt_ms(f.cpu_user_ms),
            fmt_ms(f.cpu_sys_ms)
        ),
    );
    row(
        "CPU per invocation",
        format!(
            "{}   ((total - before first poll) / {}){}",
            fmt_ms(f.cpu_per_invocation_ms),
            f.invocations,
            target_note(f.cpu_per_invocation_ms, opts.target_cpu_ms)
        ),
    );
    if f.invocations > 1 {
        row(
            "CPU per invocation after 1st",
            fmt_ms(f.cpu_per_invocation_after_first_ms),
        );
    }
    row(
        "max RSS",
        f.max_rss_mb
            .map(|m| format!("{m:.1} MB"))
            .unwrap_or_else(|| "n/a".into()),
    );
    let mut answers = format!("{} ok, {} error", f.successes, f.errors);
    if f.rejected > 0 {
        answers.push_str(&format!(", {} rejected (unknown request id)", f.rejected));
    }
    if !f.status_codes.is_empty() {
        let codes: Vec<String> = f
            .status_codes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        answers.push_str(&format!("   (statusCode {})", codes.join(", ")));
    }
    row("responses", answers);
    row("runtime API connections", f.connections.to_string());
    if let (Some(kind), Some(body)) = (f.first_response_kind, &f.first_response) {
        row(&format!("first {kind}"), clip(body, 240));
    }
    if let (Some(body), false) = (&f.first_error, f.first_response_kind == Some("error")) {
        row("first error", clip(body, 240));
    }
    if let Some(body) = &f.init_error {
        row("init error", clip(body, 240));
    }
    row("child", f.child_exit.clone().unwrap_or_default());

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!(
        "runtime-stub: {} ({}), {} invocation(s) over {} event file(s)\n",
        opts.name,
        opts.binary.display(),
        f.invocations,
        f.event_files
    );
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    out.push_str(&format!("  note: {NOTE}\n"));
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_report(opts: &Options, f: &Figures, error: Option<&str>) -> String {
    let num = |v: Option<f64>| {
        v.map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "null".into())
    };
    let string = |v: Option<&str>| v.map(json_string).unwrap_or_else(|| "null".into());
    let codes: Vec<String> = f
        .status_codes
        .iter()
        .map(|(c, n)| format!("{}: {n}", json_string(c)))
        .collect();
    let fields: Vec<(&str, String)> = vec![
        ("ok", (error.is_none()).to_string()),
        ("error", string(error)),
        ("function", json_string(&opts.name)),
        ("binary", json_string(&opts.binary.display().to_string())),
        ("invocations", f.invocations.to_string()),
        ("event_files", f.event_files.to_string()),
        ("connections", f.connections.to_string()),
        ("first_poll_ms", num(f.first_poll_ms)),
        ("cpu_before_first_poll_ms", num(f.cpu_before_first_poll_ms)),
        (
            "cpu_before_first_poll_stat_ms",
            num(f.cpu_before_first_poll_stat_ms),
        ),
        ("cpu_source", json_string(f.cpu_source)),
        ("first_invocation_ms", num(f.first_invocation_ms)),
        ("first_invocation_cpu_ms", num(f.first_invocation_cpu_ms)),
        ("invoke_ms_mean", num(f.invoke_ms_mean)),
        ("invoke_ms_p50", num(f.invoke_ms_p50)),
        ("invoke_ms_p99", num(f.invoke_ms_p99)),
        ("invoke_ms_max", num(f.invoke_ms_max)),
        ("cycle_ms_mean", num(f.cycle_ms_mean)),
        ("cpu_user_ms", num(f.cpu_user_ms)),
        ("cpu_sys_ms", num(f.cpu_sys_ms)),
        ("cpu_total_ms", num(f.cpu_total_ms)),
        ("cpu_per_invocation_ms", num(f.cpu_per_invocation_ms)),
        (
            "cpu_per_invocation_after_first_ms",
            num(f.cpu_per_invocation_after_first_ms),
        ),
        ("max_rss_mb", num(f.max_rss_mb)),
        ("successes", f.successes.to_string()),
        ("errors", f.errors.to_string()),
        ("rejected", f.rejected.to_string()),
        ("status_codes", format!("{{{}}}", codes.join(", "))),
        ("first_response_kind", string(f.first_response_kind)),
        ("first_response", string(f.first_response.as_deref())),
        ("first_error", string(f.first_error.as_deref())),
        ("init_error", string(f.init_error.as_deref())),
        ("child_exit", string(f.child_exit.as_deref())),
        ("note", json_string(NOTE)),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  {}: {v}", json_string(k)))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

fn failure_message(opts: &Options, run: &Run, f: &Figures) -> Option<String> {
    let exit = f.child_exit.as_deref().unwrap_or("unknown status");
    let answered = f.successes + f.errors;
    let log = match &opts.log {
        Some(p) => format!("; its output is in {}", p.display()),
        None => "; rerun with --log FILE to see its output".into(),
    };
    let init = f
        .init_error
        .as_deref()
        .map(|e| format!("; init error: {}", clip(e, 300)))
        .unwrap_or_default();
    match run.outcome {
        Outcome::Completed => None,
        Outcome::ChildExited if f.first_poll_ms.is_none() => Some(format!(
            "child exited before first poll ({exit}){init}{log}"
        )),
        Outcome::ChildExited => Some(format!(
            "child exited after {answered} of {} responses ({exit}){init}{log}",
            f.invocations
        )),
        Outcome::TimedOut if f.first_poll_ms.is_none() => Some(format!(
            "timed out after {:.0} s waiting for the first poll{log}",
            opts.timeout.as_secs_f64()
        )),
        Outcome::TimedOut => Some(format!(
            "timed out after {:.0} s with {answered} of {} responses{log}",
            opts.timeout.as_secs_f64(),
            f.invocations
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("runtime-stub: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !Path::new(&opts.binary).exists() {
        eprintln!("runtime-stub: no such binary: {}", opts.binary.display());
        return ExitCode::from(2);
    }
    let run = match run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime-stub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let f = figures(&opts, &run);
    let failure = failure_message(&opts, &run, &f);
    if let Some(path) = &opts.json_file {
        if let Err(e) = std::fs::write(path, json_report(&opts, &f, failure.as_deref())) {
            eprintln!("runtime-stub: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout().lock();
    let printed = if opts.json {
        out.write_all(json_report(&opts, &f, failure.as_deref()).as_bytes())
    } else if failure.is_none() {
        out.write_all(text_report(&opts, &f).as_bytes())
    } else {
        Ok(())
    };
    let _ = printed.and_then(|_| out.flush());
    match failure {
        None => ExitCode::SUCCESS,
        Some(msg) => {
            eprintln!("runtime-stub: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let o = parse_args(&args(&[
            "--binary",
            "target/release/form-webhook",
            "--events",
            "a.json",
            "--events=b.json",
            "--count",
            "2000",
            "--env",
            "TABLE_NAME=t",
            "--env=X=a=b",
            "--json",
            "--verbose",
            "--target-cpu-ms",
            "1.0",
        ]))
        .unwrap();
        assert_eq!(o.binary, PathBuf::from("target/release/form-webhook"));
        assert_eq!(
            o.events,
            vec![PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
        assert_eq!(o.count, 2000);
        assert_eq!(
            o.env,
            vec![
                ("TABLE_NAME".into(), "t".into()),
                ("X".into(), "a=b".into())
            ]
        );
        assert_eq!(o.name, "form-webhook");
        assert_eq!(o.memory, 256);
        assert!(o.json);
        assert!(o.verbose);
        assert_eq!(o.target_cpu_ms, Some(1.0));
        assert_eq!(o.target_first_poll_ms, None);

        let o = parse_args(&args(&[
            "--binary", "/bin/f", "--events", "a", "--events", "b",
        ]))
        .unwrap();
        assert_eq!(o.count, 2, "defaults to one invocation per event file");
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["--events", "a"][..],
            &["--binary", "b"],
            &["--binary", "b", "--events", "a", "--count", "0"],
            &["--binary", "b", "--events", "a", "--env", "NOEQUALS"],
            &["--binary", "b", "--events", "a", "--bogus"],
            &["--binary", "b", "--events"],
            &["--binary", "b", "--events", "a", "--timeout", "-1"],
        ] {
            let e = parse_args(&args(bad)).unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
        assert_eq!(parse_args(&args(&["--help"])).unwrap_err(), "");
    }

    #[test]
    fn lambda_env_has_what_config_from_env_needs() {
        let o = parse_args(&args(&["--binary", "/x/fn", "--events", "e"])).unwrap();
        let env = lambda_env(&o, "127.0.0.1:1234", 7);
        let get = |k: &str| {
            env.iter()
                .find(|(n, _, _)| n == k)
                .map(|(_, v, _)| v.as_str())
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:1234"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("fn"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/fn"));
        assert!(get("AWS_LAMBDA_LOG_STREAM_NAME").is_some());
        assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    }

    #[test]
    fn unique_events_differ_per_invocation_and_run() {
        let event = br#"{"body": "{\"email\": \"lead-{{run}}-{{n}}@example.com\", \"phone\": \"+1 415 555 {{n}}\"}"}"#;
        let first = String::from_utf8(unique_event(event, 0xab12_cd34, 7)).unwrap();
        assert_eq!(
            first,
            r#"{"body": "{\"email\": \"lead-ab12cd34-0007@example.com\", \"phone\": \"+1 415 555 0007\"}"}"#
        );
        assert_ne!(unique_event(event, 0xab12_cd34, 8), first.as_bytes());
        assert_eq!(unique_event(b"no tokens", 1, 2), b"no tokens");
    }

    #[test]
    fn request_ids_are_unique_and_uuid_shaped() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|i| request_id(0xdead_beef_0123_4567, i))
            .collect();
        assert_eq!(ids.len(), 1000);
        let id = request_id(seed(), 5);
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
        assert!(trace_id(1, 2).starts_with("Root=1-"));
    }

    #[test]
    fn finds_status_codes() {
        assert_eq!(
            status_code(br#"{"statusCode":200,"body":"x"}"#).as_deref(),
            Some("200")
        );
        assert_eq!(
            status_code(br#"{ "statusCode" : 502 }"#).as_deref(),
            Some("502")
        );
        assert_eq!(status_code(br#"{"statusCode":"x"}"#), None);
        assert_eq!(status_code(b"hello"), None);
    }

    #[test]
    fn percentiles_and_json_escaping() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
