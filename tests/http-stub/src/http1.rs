//! Just enough HTTP/1.1 for local stand-ins: request parsing (Content-Length and chunked bodies,
//! keep-alive) and response writing, over any `BufRead` / `Write` (blocking sockets).

use std::io::{self, BufRead, Read, Write};

/// Largest request line or header line accepted.
pub const MAX_LINE_BYTES: u64 = 16 * 1024;
/// Most header lines accepted in one request.
pub const MAX_HEADERS: usize = 100;
/// Largest request body accepted (Lambda's own response limit is 6 MB; streaming is 20 MB).
pub const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the answer.
    pub fn keep_alive(&self) -> bool {
        let has_token = |token: &str| {
            self.header("connection")
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if self.version == "HTTP/1.0" {
            has_token("keep-alive")
        } else {
            !has_token("close")
        }
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one line ending in LF (CRLF or bare LF), without the line ending. `Ok(None)` at EOF
/// before any byte.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() as u64 > MAX_LINE_BYTES {
            return Err(invalid("line too long"));
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| invalid("line is not UTF-8"))
}

fn require_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    read_line(r)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-request",
        )
    })
}

/// Reads the next request from a connection. `Ok(None)` when the peer closed the connection
/// cleanly between requests.
pub fn read_request<R: BufRead>(r: &mut R) -> io::Result<Option<Request>> {
    // RFC 9112 2.2: ignore empty lines before the request line.
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(invalid(format!("bad request line {line:?}"))),
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(invalid(format!("unsupported version {version:?}")));
    }

    let mut headers = Vec::new();
    loop {
        let line = require_line(r)?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(invalid(format!("bad header name {name:?}")));
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }

    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
    };

    let chunked = req.header("transfer-encoding").is_some_and(|te| {
        te.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    if chunked {
        req.body = read_chunked(r)?;
    } else if let Some(len) = req.header("content-length") {
        let len: u64 = len
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let mut body = Vec::with_capacity(len as usize);
        r.by_ref().take(len).read_to_end(&mut body)?;
        if body.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-body",
            ));
        }
        req.body = body;
    }
    Ok(Some(req))
}

/// Decodes a chunked body (RFC 9112 7.1); trailers are read and dropped.
fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = require_line(r)?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailer section, then the final empty line.
            while !require_line(r)?.is_empty() {}
            return Ok(body);
        }
        if body.len() as u64 + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let start = body.len();
        r.by_ref().take(size).read_to_end(&mut body)?;
        if (body.len() - start) as u64 != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-chunk",
            ));
        }
        if !require_line(r)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes one response with a Content-Length, in a single write.
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    write!(out, "HTTP/1.1 {status} {}\r\n", reason(status))?;
    for (k, v) in headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    write!(out, "Content-Length: {}\r\n", body.len())?;
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse_all(raw: &[u8]) -> io::Result<Vec<Request>> {
        let mut cur = Cursor::new(raw.to_vec());
        let mut out = Vec::new();
        while let Some(req) = read_request(&mut cur)? {
            out.push(req);
        }
        Ok(out)
    }

    #[test]
    fn parses_a_get_without_body() {
        let reqs = parse_all(
            b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: aws-lambda-rust/1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/2018-06-01/runtime/invocation/next");
        assert_eq!(r.header("HOST"), Some("127.0.0.1:9001"));
        assert_eq!(r.header("user-agent"), Some("aws-lambda-rust/1"));
        assert!(r.body.is_empty());
        assert!(r.keep_alive());
    }

    #[test]
    fn parses_pipelined_requests_with_content_length() {
        let raw = b"POST /2018-06-01/runtime/invocation/a/response HTTP/1.1\r\ncontent-length: 5\r\n\r\nhelloGET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n";
        let reqs = parse_all(raw).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].body, b"hello");
        assert_eq!(reqs[1].method, "GET");
    }

    #[test]
    fn parses_chunked_body_with_extensions_and_trailers() {
        let raw = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nLambda-Runtime-Function-Error-Type: x\r\n\r\n";
        let reqs = parse_all(raw).unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body, b"{\"a\":1}");
    }

    #[test]
    fn accepts_bare_lf_and_leading_empty_lines() {
        let reqs = parse_all(b"\r\nGET / HTTP/1.1\nHost:  x \n\n").unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].header("host"), Some("x"));
    }

    #[test]
    fn keep_alive_rules() {
        let get = |v: &str, conn: Option<&str>| {
            let mut raw = format!("GET / {v}\r\n");
            if let Some(c) = conn {
                raw.push_str(&format!("Connection: {c}\r\n"));
            }
            raw.push_str("\r\n");
            parse_all(raw.as_bytes()).unwrap().remove(0).keep_alive()
        };
        assert!(get("HTTP/1.1", None));
        assert!(!get("HTTP/1.1", Some("close")));
        assert!(!get("HTTP/1.1", Some("foo, Close")));
        assert!(!get("HTTP/1.0", None));
        assert!(get("HTTP/1.0", Some("keep-alive")));
    }

    #[test]
    fn clean_eof_is_none_and_truncation_is_an_error() {
        assert!(read_request(&mut Cursor::new(Vec::new()))
            .unwrap()
            .is_none());
        let e = parse_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = parse_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e =
            parse_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn rejects_malformed_requests() {
        for raw in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET noslash HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n",
        ] {
            let e = parse_all(raw).unwrap_err();
            assert_eq!(
                e.kind(),
                io::ErrorKind::InvalidData,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let long = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_LINE_BYTES as usize)
        );
        assert_eq!(
            parse_all(long.as_bytes()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn writes_response_with_content_length() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            202,
            &[("Content-Type", "application/json")],
            b"{}",
            false,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        // What we write, we can read back.
        let mut raw = String::from_utf8(out).unwrap();
        raw = raw.replacen("HTTP/1.1 202 Accepted", "POST /x HTTP/1.1", 1);
        let reqs = parse_all(raw.as_bytes()).unwrap();
        assert_eq!(reqs[0].body, b"{}");
    }
}
