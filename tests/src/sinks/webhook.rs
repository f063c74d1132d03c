//! A webhook receiver for tests and benchmarks: a small HTTP/1.1 server (keep-alive) that
//! checks each request's Standard Webhooks signature, records every delivery it accepts by
//! its `webhook-id`, and can be told to fail a share of requests: 500, 429 with
//! `Retry-After`, no answer (the sender times out), or a dropped connection.
//!
//! Written on tokio directly rather than with a framework so that it can drop a connection
//! mid-request, as a crashing receiver does, and so that it costs the benchmark little.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

use super::{Accepted, Draws, accept, standard::Verifier};

/// Shares of requests to fail, each from 0.0 to 1.0, drawn in this order.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub status_500: f64,
    pub status_429: f64,
    /// The `Retry-After` of a 429, in seconds.
    pub retry_after_secs: u32,
    /// Hold the request this long, then answer 503 (past the sender's timeout, it has given
    /// up: the delivery is not accepted).
    pub hang: f64,
    pub hang_for: Duration,
    /// Close the connection without answering.
    pub drop: f64,
    /// Answer every request with this status (e.g. 410), after the shares above.
    pub always: Option<u16>,
    /// Answer accepted deliveries with a body far too long to read.
    pub long_body: Option<LongBody>,
}

/// A receiver's answer that a sender must not read whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongBody {
    /// `content-length: 200000000`, and that many bytes.
    Huge,
    /// Chunked, without end.
    Endless,
}

/// One signed request as it came, for a verifier of another make.
#[derive(Clone, Debug)]
pub struct Signed {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

/// How many signed requests a sink keeps whole ([`WebhookSink::signed`]).
const SIGNED_KEPT: usize = 50;

/// What one accepted delivery said.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: serde_json::Value,
    pub timestamp: u64,
}

struct State {
    /// Accepted deliveries by `webhook-id`.
    accepted: Accepted<Received>,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    bad_signatures: AtomicU64,
    failed: AtomicU64,
    draws: Draws,
    /// When each request came in, in order.
    arrivals: Mutex<Vec<Instant>>,
    /// The first signed requests, whole.
    signed: Mutex<Vec<Signed>>,
}

#[derive(Clone)]
pub struct WebhookSink {
    pub addr: SocketAddr,
    verifier: Arc<Verifier>,
    state: Arc<State>,
}

impl WebhookSink {
    /// Listen on `addr` (port 0: any) and verify signatures with `secret`.
    pub async fn start(addr: &str, secret: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let sink = Self {
            addr: listener.local_addr()?,
            verifier: Arc::new(Verifier::new(secret).map_err(anyhow::Error::msg)?),
            state: Arc::new(State {
                accepted: Accepted::new(),
                faults: Mutex::default(),
                requests: AtomicU64::default(),
                bad_signatures: AtomicU64::default(),
                failed: AtomicU64::default(),
                draws: Draws::default(),
                arrivals: Mutex::default(),
                signed: Mutex::default(),
            }),
        };
        let serving = sink.clone();
        accept(listener, move |stream| {
            let sink = serving.clone();
            async move {
                let _ = sink.serve(stream).await;
            }
        });
        Ok(sink)
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Distinct deliveries accepted.
    pub fn delivered(&self) -> usize {
        self.state.accepted.distinct()
    }

    /// Accepted deliveries beyond the first of each id.
    pub fn duplicates(&self) -> u64 {
        self.state.accepted.duplicates()
    }

    /// How many times `id` was accepted.
    pub fn times(&self, id: &str) -> u32 {
        self.state.accepted.times(id)
    }

    pub fn received(&self, id: &str) -> Option<Received> {
        self.state.accepted.first(id)
    }

    pub fn ids(&self) -> Vec<String> {
        self.state.accepted.ids()
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn bad_signatures(&self) -> u64 {
        self.state.bad_signatures.load(Ordering::Relaxed)
    }

    /// Requests that came in after `at`.
    pub fn requests_after(&self, at: Instant) -> usize {
        let arrivals = self.state.arrivals.lock().unwrap();
        arrivals.len() - arrivals.partition_point(|t| *t <= at)
    }

    /// The first signed requests, whole, as they came.
    pub fn signed(&self) -> Vec<Signed> {
        self.state.signed.lock().unwrap().clone()
    }

    /// Requests answered with a failure (or not at all) on purpose.
    pub fn failed(&self) -> u64 {
        self.state.failed.load(Ordering::Relaxed)
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::with_capacity(16 * 1024, read);
        let mut buf = Vec::with_capacity(4096);
        loop {
            let Some(request) = read_request(&mut read, &mut buf).await? else {
                return Ok(());
            };
            self.state.requests.fetch_add(1, Ordering::Relaxed);
            self.state.arrivals.lock().unwrap().push(Instant::now());
            match self.answer(&request).await {
                Some(Reply::Text(response)) => write.write_all(response.as_bytes()).await?,
                // Written until the sender hangs up.
                Some(Reply::Long(long)) => return write_long(&mut write, long).await,
                None => return Ok(()), // dropped on purpose
            }
        }
    }

    /// The response to one request; `None` drops the connection.
    async fn answer(&self, request: &Request) -> Option<Reply> {
        let long = self.state.faults.lock().unwrap().long_body;
        let text = self.reply(request).await?;
        let accepted = request.header("webhook-id").is_some() && text.starts_with("HTTP/1.1 200");
        Some(match long {
            Some(long) if accepted => Reply::Long(long),
            _ => Reply::Text(text),
        })
    }

    async fn reply(&self, request: &Request) -> Option<String> {
        let (id, ts, sig) = match (
            request.header("webhook-id"),
            request.header("webhook-timestamp"),
            request.header("webhook-signature"),
        ) {
            (Some(id), Some(ts), Some(sig)) => (id, ts, sig),
            _ => {
                // Not a webhook (a load generator's baseline request): answer it plainly.
                return Some(response(200, "OK", ""));
            }
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let timestamp: u64 = ts.parse().unwrap_or_default();
        if !self.verifier.verify(id, ts, sig, &request.body, now) {
            self.state.bad_signatures.fetch_add(1, Ordering::Relaxed);
            return Some(response(
                401,
                "Unauthorized",
                r#"{"error":"bad signature"}"#,
            ));
        }
        {
            let mut signed = self.state.signed.lock().unwrap();
            if signed.len() < SIGNED_KEPT {
                signed.push(Signed {
                    id: id.to_owned(),
                    timestamp: ts.to_owned(),
                    signature: sig.to_owned(),
                    body: request.body.clone(),
                });
            }
        }
        let faults = self.state.faults.lock().unwrap().clone();
        let draw = self.state.draws.next();
        let mut edge = faults.status_500;
        if draw < edge {
            self.state.failed.fetch_add(1, Ordering::Relaxed);
            return Some(response(500, "Internal Server Error", ""));
        }
        edge += faults.status_429;
        if draw < edge {
            self.state.failed.fetch_add(1, Ordering::Relaxed);
            return Some(format!(
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: {}\r\ncontent-length: 0\r\n\r\n",
                faults.retry_after_secs
            ));
        }
        edge += faults.hang;
        if draw < edge {
            self.state.failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(faults.hang_for).await;
            return Some(response(503, "Service Unavailable", ""));
        }
        edge += faults.drop;
        if draw < edge {
            self.state.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if let Some(status) = faults.always {
            self.state.failed.fetch_add(1, Ordering::Relaxed);
            return Some(response(status, "Refused", ""));
        }
        let body = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        self.state
            .accepted
            .record(id.to_owned(), Received { body, timestamp });
        Some(response(200, "OK", ""))
    }
}

enum Reply {
    Text(String),
    Long(LongBody),
}

/// Answer 200 with a body that does not end soon, until the sender hangs up.
async fn write_long<W: AsyncWriteExt + Unpin>(
    write: &mut W,
    long: LongBody,
) -> std::io::Result<()> {
    const HUGE: usize = 200_000_000;
    let chunk = vec![b'x'; 64 * 1024];
    match long {
        LongBody::Huge => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n");
            write.write_all(head.as_bytes()).await?;
            for _ in 0..HUGE / chunk.len() {
                write.write_all(&chunk).await?;
            }
        }
        LongBody::Endless => {
            write
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            loop {
                write.write_all(&framed).await?;
            }
        }
    }
    Ok(())
}

fn response(status: u16, reason: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

struct Request {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one request (head and `content-length` body); `None` when the peer closed.
async fn read_request<R: AsyncReadExt + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
        let mut chunk = [0u8; 8192];
        let n = read.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let start = head_end + 4;
    while buf.len() < start + length {
        let mut chunk = [0u8; 8192];
        let n = read.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[start..start + length].to_vec();
    buf.drain(..start + length);
    Ok(Some(Request { headers, body }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
