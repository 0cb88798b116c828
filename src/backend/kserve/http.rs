//! A minimal HTTP/1.1 client over `std::net`: one keep-alive connection, one request at
//! a time, every socket operation bounded by the request's deadline. Enough for the Open
//! Inference Protocol's REST API (Content-Length and chunked bodies, plain http only),
//! with no dependency and errors that say what the server did.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A response: status, headers (names lower-cased) and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The start of the body as text, for error messages.
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }
}

/// At most 200 characters of `body` on one line.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None if one.is_empty() => "(empty body)".to_string(),
        None => one,
    }
}

/// A connection to `host:port`, opened on first use and reopened after the server
/// closes it.
pub struct Client {
    authority: String,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
}

/// Inference responses larger than this are refused: none parity checks is near it.
const MAX_BODY: usize = 1 << 30;

/// Other responses (health, metadata) larger than this are refused: a server streaming
/// without end is stopped long before it has taken much memory.
const MAX_SMALL_BODY: usize = 16 << 20;

/// Header lines a response (or a chunked body's trailer) may have: real servers send a
/// dozen; one sending lines without end is stopped here, not when the deadline comes.
const MAX_HEADERS: usize = 100;

/// Bytes the status line and header lines of a response (or a trailer) may take in all.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// Bytes a chunk-size line may take (hex digits and extensions).
const MAX_CHUNK_LINE: usize = 4 << 10;

impl Client {
    /// A client for `authority` (`host:port`); `timeout` bounds each whole request.
    pub fn new(authority: &str, timeout: Duration) -> Client {
        Client {
            authority: authority.to_string(),
            timeout,
            stream: None,
        }
    }

    /// Sends one request and reads the whole response. A kept-alive connection the
    /// server closed meanwhile is reopened once; any other failure is an error naming
    /// the request and what happened (refused, reset, timed out, malformed).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, String> {
        let deadline = Instant::now() + self.timeout;
        let reused = self.stream.is_some();
        match self.attempt(method, path, headers, body, deadline) {
            Err(Failure::Stale) if reused => {
                self.stream = None;
                self.attempt(method, path, headers, body, deadline)
            }
            other => other,
        }
        .map_err(|f| {
            self.stream = None;
            let what = match f {
                Failure::Stale => "the server closed the connection without answering".into(),
                Failure::Other(m) => m,
            };
            format!("{method} http://{}{path}: {what}", self.authority)
        })
    }

    fn attempt(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        deadline: Instant,
    ) -> Result<Response, Failure> {
        if self.stream.is_none() {
            self.stream = Some(BufReader::new(self.connect(deadline)?));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::Other("no connection".into()));
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.authority,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // One write: one segment for a small request.
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        let sock = stream.get_mut();
        set_deadline(sock, deadline)?;
        sock.write_all(&message)
            .and_then(|_| sock.flush())
            .map_err(|e| io_failure(&e, true))?;
        let limit = if method == "POST" {
            MAX_BODY
        } else {
            MAX_SMALL_BODY
        };
        let response = read_response(stream, deadline, limit)?;
        let closing = response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if closing {
            self.stream = None;
        }
        Ok(response)
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, Failure> {
        let addrs = self
            .authority
            .to_socket_addrs()
            .map_err(|e| Failure::Other(format!("cannot resolve the address: {e}")))?;
        let mut last = Failure::Other("the address resolves to nothing".into());
        for addr in addrs {
            let left = remaining(deadline)?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    // Small requests must not wait for Nagle's delayed ACK.
                    s.set_nodelay(true)
                        .map_err(|e| Failure::Other(e.to_string()))?;
                    return Ok(s);
                }
                Err(e) => last = io_failure(&e, false),
            }
        }
        Err(last)
    }
}

/// Why an attempt failed: `Stale` when a reused connection turned out closed before
/// any byte of a response (worth one retry on a fresh connection).
enum Failure {
    Stale,
    Other(String),
}

fn remaining(deadline: Instant) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(Failure::Other("timed out".into()))
    } else {
        Ok(left)
    }
}

fn set_deadline(sock: &TcpStream, deadline: Instant) -> Result<(), Failure> {
    let left = remaining(deadline)?;
    sock.set_read_timeout(Some(left))
        .and_then(|_| sock.set_write_timeout(Some(left)))
        .map_err(|e| Failure::Other(e.to_string()))
}

fn io_failure(e: &std::io::Error, before_response: bool) -> Failure {
    use std::io::ErrorKind::*;
    match e.kind() {
        WouldBlock | TimedOut => Failure::Other("timed out".into()),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof if before_response => {
            Failure::Stale
        }
        ConnectionRefused => Failure::Other("connection refused".into()),
        ConnectionReset => Failure::Other("connection reset by the server".into()),
        UnexpectedEof => Failure::Other("the server closed the connection mid-response".into()),
        _ => Failure::Other(e.to_string()),
    }
}

/// Reads a line (without CRLF) within the deadline: `None` when no line end comes within
/// `max` bytes, else the line and the bytes it took on the wire. `first` marks the status
/// line, where an immediate end of stream means the server closed an idle connection.
fn read_line(
    r: &mut BufReader<TcpStream>,
    deadline: Instant,
    first: bool,
    max: usize,
) -> Result<Option<(String, usize)>, Failure> {
    set_deadline(r.get_ref(), deadline)?;
    let mut line = Vec::new();
    let n = r
        .take(max as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_failure(&e, first))?;
    if n == 0 {
        return Err(if first {
            Failure::Stale
        } else {
            Failure::Other("the server closed the connection mid-response".into())
        });
    }
    if n > max {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some((String::from_utf8_lossy(&line).into_owned(), n)))
}

/// [`read_line`] for a line of at most `max` bytes; a longer one is an error naming `what`.
fn read_short_line(
    r: &mut BufReader<TcpStream>,
    deadline: Instant,
    max: usize,
    what: &str,
) -> Result<String, Failure> {
    read_line(r, deadline, false, max)?
        .map(|(line, _)| line)
        .ok_or_else(|| Failure::Other(format!("{what}: over {max} bytes (parity's limit)")))
}

/// Reads header lines up to the empty line that ends them: at most [`MAX_HEADERS`] lines
/// and `budget` bytes (what the status line left of [`MAX_HEAD_BYTES`]), so a server that
/// sends lines without end is stopped at once; `what` names them in errors (`response
/// headers`, `chunked trailer`). Names are lower-cased; lines without a colon are ignored.
fn read_headers(
    r: &mut BufReader<TcpStream>,
    deadline: Instant,
    mut budget: usize,
    what: &str,
) -> Result<Vec<(String, String)>, Failure> {
    let mut headers = Vec::new();
    for _ in 0..=MAX_HEADERS {
        let Some((line, n)) = read_line(r, deadline, false, budget)? else {
            return Err(Failure::Other(format!(
                "{what}: over {} KiB (parity's limit)",
                MAX_HEAD_BYTES >> 10
            )));
        };
        if line.is_empty() {
            return Ok(headers);
        }
        budget -= n;
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Err(Failure::Other(format!(
        "{what}: more than {MAX_HEADERS} lines (parity's limit)"
    )))
}

fn read_exact(
    r: &mut BufReader<TcpStream>,
    n: usize,
    deadline: Instant,
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    let start = out.len();
    out.resize(start + n, 0);
    let mut filled = start;
    while filled < out.len() {
        set_deadline(r.get_ref(), deadline)?;
        match r.read(&mut out[filled..]) {
            Ok(0) => {
                return Err(Failure::Other(format!(
                    "the server closed the connection after {} of {n} body bytes",
                    filled - start
                )))
            }
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(&e, false)),
        }
    }
    Ok(())
}

fn read_response(
    r: &mut BufReader<TcpStream>,
    deadline: Instant,
    limit: usize,
) -> Result<Response, Failure> {
    let too_big = || Failure::Other(format!("response body over {} MiB", limit >> 20));
    let (status_line, taken) = read_line(r, deadline, true, MAX_HEAD_BYTES)?.ok_or_else(|| {
        Failure::Other(format!(
            "status line: over {} KiB (parity's limit)",
            MAX_HEAD_BYTES >> 10
        ))
    })?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            Failure::Other(format!(
                "not an HTTP response: {}",
                excerpt(status_line.as_bytes())
            ))
        })?;
    let mut headers = read_headers(r, deadline, MAX_HEAD_BYTES - taken, "response headers")?;
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    let chunked = find("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    if chunked {
        loop {
            let size_line = read_short_line(r, deadline, MAX_CHUNK_LINE, "chunk-size line")?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| Failure::Other(format!("bad chunk size `{hex}`")))?;
            if body.len().saturating_add(size) > limit {
                return Err(too_big());
            }
            if size == 0 {
                read_headers(r, deadline, MAX_HEAD_BYTES, "chunked trailer")?;
                break;
            }
            read_exact(r, size, deadline, &mut body)?;
            read_short_line(r, deadline, MAX_CHUNK_LINE, "chunk end")?;
        }
    } else if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| Failure::Other(format!("bad Content-Length `{len}`")))?;
        if len > limit {
            return Err(too_big());
        }
        read_exact(r, len, deadline, &mut body)?;
    } else if status != 204 && status != 304 && !(100..200).contains(&status) {
        // No length: the body runs to the end of the connection.
        set_deadline(r.get_ref(), deadline)?;
        r.take(limit as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| io_failure(&e, false))?;
        if body.len() > limit {
            return Err(too_big());
        }
        headers.push(("connection".into(), "close".into()));
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves each connection with `answer(request_count)` and returns the address.
    fn serve(answers: Vec<&'static [u8]>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for (conn, answer) in l.incoming().zip(answers) {
                let mut conn = conn.unwrap();
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                conn.write_all(answer).unwrap();
            }
        });
        addr
    }

    #[test]
    fn reads_content_length_and_chunked_bodies() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ]);
        let mut c = Client::new(&addr, Duration::from_secs(5));
        let r = c.request("GET", "/a", &[], b"").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = c.request("POST", "/b", &[], b"{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"abcde"[..]));
    }

    #[test]
    fn refused_and_timed_out_requests_say_so() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut c = Client::new(&addr, Duration::from_millis(200));
        // Accepted by the kernel, never answered.
        let e = c.request("GET", "/slow", &[], b"").unwrap_err();
        assert!(e.ends_with("/slow: timed out"), "{e}");
        drop(l);
        let e = c.request("GET", "/gone", &[], b"").unwrap_err();
        assert!(e.contains("connection refused"), "{e}");
    }

    /// Answers one request with a status line, then `line` over and over until the
    /// client hangs up; returns the address and how many bytes were sent.
    fn serve_endless(line: &'static [u8]) -> (String, std::thread::JoinHandle<usize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let sent = std::thread::spawn(move || {
            let (mut conn, _) = l.accept().unwrap();
            let _ = conn.read(&mut [0u8; 4096]);
            let mut sent = 0;
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n");
            // Stops when the client closes (or after 1 GiB, should it never).
            while sent < 1 << 30 && conn.write_all(line).is_ok() {
                sent += line.len();
            }
            sent
        });
        (addr, sent)
    }

    #[test]
    fn endless_headers_are_refused_at_once() {
        for (line, why) in [
            (&b"X-Filler: aaaaaaaa\r\n"[..], "more than 100 lines"),
            (&[b'x'; 1024][..], "over 64 KiB"),
        ] {
            let (addr, sent) = serve_endless(line);
            let mut c = Client::new(&addr, Duration::from_secs(30));
            let start = Instant::now();
            let e = c.request("GET", "/v2/health/ready", &[], b"").unwrap_err();
            assert_eq!(
                e,
                format!(
                    "GET http://{addr}/v2/health/ready: response headers: {why} (parity's limit)"
                )
            );
            assert!(start.elapsed() < Duration::from_secs(5), "{e}");
            drop(c);
            // The server's writes stop as soon as the client hangs up: what it sent is
            // bounded by the limits plus what the kernel's socket buffers hold.
            assert!(sent.join().unwrap() < 16 << 20);
        }
    }

    #[test]
    fn a_hundred_headers_and_a_trailer_are_read() {
        let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n".to_vec();
        for i in 1..MAX_HEADERS {
            answer.extend(format!("X-{i}: v\r\n").bytes());
        }
        answer.extend(b"\r\n2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n");
        let addr = serve(vec![answer.leak()]);
        let mut c = Client::new(&addr, Duration::from_secs(5));
        let r = c.request("GET", "/a", &[], b"").unwrap();
        assert_eq!(r.headers.len(), MAX_HEADERS);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"a\n b\tc"), "a b c");
        assert_eq!(excerpt(b""), "(empty body)");
        assert_eq!(excerpt(&[b'x'; 500]).chars().count(), 201);
    }
}
