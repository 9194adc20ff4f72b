//! Local HTTP/1.1 stand-ins, std only: [`http1`] reads requests and writes responses (the
//! Lambda Runtime API stand-in, `bench/runtime-stub`, serves with it), and [`Stub`] is a
//! small server on loopback answering each request as the test says: the platform APIs (Meta
//! Graph, LinkedIn, HubSpot's CRM) that the real client code is run against, in unit and
//! integration tests.

pub mod http1;

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the stand-in answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Status and JSON body.
    Json(u16, String),
    /// The same after a pause of this many milliseconds, so concurrent requests overlap.
    Delayed(u64, u16, String),
    /// Never answers (the connection stays open a minute): the client's timeout must fire.
    Hang,
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as on the request line.
    pub target: String,
    /// By lowercase name (a repeated header keeps its last value).
    pub headers: BTreeMap<String, String>,
    /// The request body as text (lossy: the stand-ins receive JSON and form bodies).
    pub body: String,
}

#[derive(Default)]
struct Seen {
    recorded: Vec<Recorded>,
    /// Requests being answered now, and the most at once so far.
    in_flight: usize,
    max_in_flight: usize,
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A server on 127.0.0.1 (a free port), one thread per connection, one request per connection
/// (`Connection: close`). It runs until the test process exits.
pub struct Stub {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    seen: Arc<Mutex<Seen>>,
    served: Arc<AtomicUsize>,
}

impl Stub {
    /// Starts a server answering each request by its target (path and query).
    pub fn start(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Stub {
        Stub::start_with_headers(move |req: &Recorded| reply(&req.target))
    }

    /// The same, answering by the whole request: an API that checks a bearer token or a
    /// version header answers as the real one does without them.
    pub fn start_with_headers(reply: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let base_url = format!("http://{}", listener.local_addr().expect("its address"));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let served = Arc::new(AtomicUsize::new(0));
        let reply: Arc<Handler> = Arc::new(reply);
        let (s, n) = (seen.clone(), served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (reply, seen, served) = (reply.clone(), s.clone(), n.clone());
                std::thread::spawn(move || answer(stream, &*reply, &seen, &served));
            }
        });
        Stub {
            base_url,
            seen,
            served,
        }
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// How many requests it has read.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// The most requests it was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(stream: TcpStream, reply: &Handler, seen: &Mutex<Seen>, served: &AtomicUsize) {
    let lock = || seen.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let req = match http1::read_request(&mut BufReader::new(read_half)) {
        Ok(Some(req)) => req,
        _ => return,
    };
    served.fetch_add(1, Ordering::SeqCst);
    let recorded = Recorded {
        method: req.method.clone(),
        target: req.target.clone(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
    };
    {
        let mut s = lock();
        s.recorded.push(recorded.clone());
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
    }
    let (status, body) = match reply(&recorded) {
        Reply::Json(status, body) => (status, body),
        Reply::Delayed(ms, status, body) => {
            std::thread::sleep(Duration::from_millis(ms));
            (status, body)
        }
        Reply::Hang => {
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
    };
    lock().in_flight -= 1;
    let mut w = BufWriter::new(stream);
    let _ = http1::write_response(
        &mut w,
        status,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(base: &str, target: &str) -> String {
        let addr = base.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\nX-Test: 1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn answers_records_and_counts_overlap() {
        let stub = Stub::start(|target| match target {
            "/slow" => Reply::Delayed(200, 200, "{}".into()),
            _ => Reply::Json(404, r#"{"error":1}"#.into()),
        });
        let answer = get(&stub.base_url, "/nope?x=1");
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        assert!(answer.ends_with(r#"{"error":1}"#), "{answer}");
        let base = stub.base_url.clone();
        let slow: Vec<_> = (0..3)
            .map(|_| {
                let base = base.clone();
                std::thread::spawn(move || get(&base, "/slow"))
            })
            .collect();
        for t in slow {
            assert!(t.join().unwrap().starts_with("HTTP/1.1 200 OK"));
        }
        assert_eq!(stub.served(), 4);
        assert_eq!(stub.max_in_flight(), 3);
        let first = &stub.requests()[0];
        assert_eq!(first.target, "/nope?x=1");
        assert_eq!(first.headers["x-test"], "1");
    }

    #[test]
    fn answers_by_headers_too() {
        let stub = Stub::start_with_headers(|req| match req.headers.get("x-test") {
            Some(v) if v == "1" => Reply::Json(200, "{}".into()),
            _ => Reply::Json(401, "{}".into()),
        });
        assert!(get(&stub.base_url, "/").starts_with("HTTP/1.1 200 OK"));
        let addr = stub.base_url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    }
}
