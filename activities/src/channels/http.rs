//! The webhook channel's HTTP/1.1 client: one POST on a kept-alive connection, nothing else.
//!
//! A general client (reqwest) spent more of the worker's time per delivery than the request
//! itself, and so, after it, did hyper's connection API: a task per connection, and channels
//! between it and the send. This one does an exchange in the send's own task: it keeps, per
//! origin, a stack of idle connections; a send takes one (or opens one), writes the request
//! in one write, reads the answer's head, and reads at most [`BODY_MAX`] of its body, giving
//! the connection back only if the body was read to its end and the receiver keeps it open.
//!
//! Every connection goes only where the policy allows: names are resolved here and the
//! addresses the policy refuses are dropped before connecting (so DNS cannot turn a public
//! name into 127.0.0.1); an address in the URL is checked as it is.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::FutureExt;
use herald_wire::{Destinations, WebhookUrl, webhooks::Host};
use http::{
    StatusCode,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use url::Position;

/// The most of a receiver's answer that is read. Herald needs only its status; a longer
/// body is cut off by closing the connection.
pub const BODY_MAX: usize = 4 * 1024;

/// The longest answer head (status line and headers) read, as hyper allowed.
const HEAD_MAX: usize = 400 * 1024;

/// The most headers an answer head may have, as hyper allowed.
const HEADERS_MAX: usize = 100;

/// An idle connection is closed after this long unused.
const IDLE_MAX: Duration = Duration::from_secs(60);

/// Where one POST goes, as the client reads it from the URL without copying it.
struct Target<'a> {
    url: &'a WebhookUrl,
    https: bool,
    /// The `Host` header: the host as the URL has it, with a port that is not the scheme's.
    authority: &'a str,
    /// The path with its query.
    path: &'a str,
}

impl<'a> Target<'a> {
    fn new(url: &'a WebhookUrl) -> Self {
        let u = url.url();
        Self {
            url,
            https: u.scheme() == "https",
            authority: &u[Position::BeforeHost..Position::AfterPort],
            path: &u[Position::BeforePath..Position::AfterQuery],
        }
    }
}

/// What a POST came to.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// Why a POST got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The policy refuses every address of the destination.
    #[error("{0}")]
    Forbidden(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Network(String),
}

pub struct Client {
    destinations: Arc<Destinations>,
    tls: TlsConnector,
    timeout: Duration,
    connect_timeout: Duration,
    max_idle: usize,
    idle: Arc<Mutex<Pool>>,
}

/// Idle connections by scheme (http, https) and authority, newest last.
#[derive(Default)]
struct Pool([HashMap<String, Vec<Idle>>; 2]);

impl Pool {
    /// Close the connections idle for longer than [`IDLE_MAX`], and forget origins left
    /// with none.
    fn sweep(&mut self) {
        for origins in &mut self.0 {
            origins.retain(|_, stack| {
                stack.retain(|idle| idle.since.elapsed() < IDLE_MAX);
                !stack.is_empty()
            });
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A connection to a receiver, and what was read from it and not yet taken.
struct Conn {
    stream: Stream,
    read: Vec<u8>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// How an answer's body ends (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body: a 204 or 304 answer.
    Empty,
    Length(u64),
    Chunked,
    /// When the receiver closes the connection.
    Close,
}

/// An answer's head, as read.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// The receiver keeps the connection open after the answer.
    keep_alive: bool,
}

/// Why an exchange on a connection failed.
enum Broken {
    /// The request could not be written: the receiver had closed the connection (on a
    /// kept-alive one, while it was idle), and has not read the request.
    Unsent(String),
    Failed(Failure),
}

impl From<Broken> for Failure {
    fn from(broken: Broken) -> Self {
        match broken {
            Broken::Unsent(e) => Failure::Network(e),
            Broken::Failed(failure) => failure,
        }
    }
}

impl Client {
    pub fn new(
        destinations: Arc<Destinations>,
        timeout: Duration,
        max_idle: usize,
    ) -> Result<Self, String> {
        use rustls_platform_verifier::ConfigVerifierExt;
        let mut tls = rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let idle = Arc::new(Mutex::new(Pool::default()));
        // Connections left idle when sends stop are closed after a while, not kept open
        // for as long as the receiver keeps them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = Arc::downgrade(&idle);
            runtime.spawn(async move {
                let mut every = tokio::time::interval(IDLE_MAX / 2);
                loop {
                    every.tick().await;
                    let Some(pool) = pool.upgrade() else { return };
                    pool.lock().expect("the connection pool").sweep();
                }
            });
        }
        Ok(Self {
            destinations,
            tls: TlsConnector::from(Arc::new(tls)),
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(5)),
            max_idle,
            idle,
        })
    }

    /// POST `body` with `headers` (besides `host`, `content-length` and `user-agent`, which
    /// are added here) and read the answer, all within the client's timeout.
    ///
    /// The answer is its status line and headers: once they are in, the request counts as
    /// answered, whatever becomes of the body. The body is read in the time left, to reuse
    /// the connection; a body that does not end in time only costs the connection, never
    /// the answer (which would send the message again).
    pub async fn post(
        &self,
        url: &WebhookUrl,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, Failure> {
        let target = Target::new(url);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let request = request(&target, &headers, &body);
        let exchange = self.exchange(&target, &request);
        let (mut conn, head) = tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| Failure::Timeout(self.timeout))??;
        if head.keep_alive
            && let Ok(true) = tokio::time::timeout_at(deadline, conn.skip_body(head.framing)).await
            && conn.read.is_empty()
        {
            self.checkin(&target, conn);
        }
        Ok(Answer {
            status: head.status,
            headers: head.headers,
        })
    }

    /// Send the request on a pooled or new connection, up to the answer's head.
    async fn exchange(&self, target: &Target<'_>, request: &[u8]) -> Result<(Conn, Head), Failure> {
        let (mut conn, reused) = self.checkout(target).await?;
        match conn.exchange(request).await {
            Ok(head) => Ok((conn, head)),
            // A kept-alive connection the receiver closed while it was idle, found closed
            // as the request was written: it goes on a new connection. A request that was
            // written is never sent again here: the receiver may have acted on it, and a
            // failure is the page's to retry, as an attempt.
            Err(Broken::Unsent(_)) if reused => {
                let mut fresh = self.connect(target).await?;
                let head = fresh.exchange(request).await?;
                Ok((fresh, head))
            }
            Err(broken) => Err(broken.into()),
        }
    }

    /// An idle connection to the target's origin that is still open, or a new one; and
    /// whether it was idle.
    async fn checkout(&self, target: &Target<'_>) -> Result<(Conn, bool), Failure> {
        loop {
            let idle = {
                let mut pool = self.idle.lock().expect("the connection pool");
                pool.0[usize::from(target.https)]
                    .get_mut(target.authority)
                    .and_then(Vec::pop)
            };
            let Some(Idle { mut conn, since }) = idle else {
                return Ok((self.connect(target).await?, false));
            };
            if since.elapsed() < IDLE_MAX && conn.is_open() {
                return Ok((conn, true));
            }
        }
    }

    fn checkin(&self, target: &Target<'_>, conn: Conn) {
        let idle = Idle {
            conn,
            since: Instant::now(),
        };
        let mut pool = self.idle.lock().expect("the connection pool");
        let pool = &mut pool.0[usize::from(target.https)];
        match pool.get_mut(target.authority) {
            Some(stack) if stack.len() < self.max_idle => stack.push(idle),
            Some(_) => {}
            None => {
                pool.insert(target.authority.to_owned(), vec![idle]);
            }
        }
    }

    async fn connect(&self, target: &Target<'_>) -> Result<Conn, Failure> {
        let (host, port) = target.url.host_port();
        let addrs = self.resolve(&host, port).await?;
        let stream = self.connect_any(&addrs).await?;
        let _ = stream.set_nodelay(true);
        let stream = if target.https {
            let name = match host {
                Host::Ip(ip) => ServerName::IpAddress(ip.into()),
                Host::Name(name) => ServerName::try_from(name.clone())
                    .map_err(|e| Failure::Connect(format!("{name}: {e}")))?,
            };
            let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(name, stream))
                .await
                .map_err(|_| Failure::Timeout(self.connect_timeout))?
                .map_err(|e| Failure::Connect(format!("TLS: {e}")))?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(stream)
        };
        Ok(Conn {
            stream,
            read: Vec::with_capacity(1024),
        })
    }

    /// A TCP connection to the first of `addrs` that answers. Each address has its share of
    /// the connect timeout (at least a second), so that one that drops packets (an IPv6
    /// route that goes nowhere) leaves time for the next.
    async fn connect_any(&self, addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
        let share = (self.connect_timeout / addrs.len().max(1) as u32).max(Duration::from_secs(1));
        let mut failure = Failure::Connect("no address to connect to".into());
        for addr in addrs {
            failure = match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => Failure::Connect(e.to_string()),
                Err(_) => Failure::Timeout(share),
            };
        }
        Err(failure)
    }

    /// The addresses of the destination the policy allows; a name that resolves to none
    /// of them, or an address the policy refuses, is [`Failure::Forbidden`].
    async fn resolve(&self, host: &Host, port: u16) -> Result<Vec<SocketAddr>, Failure> {
        let policy = &self.destinations;
        let name = match host {
            Host::Ip(ip) => {
                policy
                    .check(host, port, &[])
                    .map_err(|refused| Failure::Forbidden(refused.0))?;
                return Ok(vec![SocketAddr::new(*ip, port)]);
            }
            Host::Name(name) => name,
        };
        policy
            .refuse_service(host, port)
            .map_err(|refused| Failure::Forbidden(refused.0))?;
        let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| Failure::Connect(format!("{name}: {e}")))?
            .collect();
        let service = |a: &SocketAddr| policy.refuse_service(&Host::Ip(a.ip()), port).is_err();
        let by_name = policy.allows_name(name);
        let allowed: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| !service(a) && (by_name || policy.allows_ip(a.ip())))
            .collect();
        if allowed.is_empty() {
            let ips: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
            return Err(Failure::Forbidden(match policy.check(host, port, &ips) {
                Err(refused) => refused.0,
                Ok(()) => format!("{name} resolves to no address"),
            }));
        }
        Ok(allowed)
    }
}

/// The request: `POST`, its head and its body, in one buffer for one write.
fn request(target: &Target<'_>, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(target.authority.as_bytes());
    out.extend_from_slice(b"\r\nuser-agent: ");
    out.extend_from_slice(USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

const USER_AGENT: &str = concat!("herald/", env!("CARGO_PKG_VERSION"));

impl Conn {
    /// Whether an idle connection can carry a request: it has nothing to read, where a
    /// connection the receiver closed reads its end (or stray bytes, which end it too).
    fn is_open(&mut self) -> bool {
        let mut byte = [0; 1];
        // Unconstrained: a task that has used its scheduling budget would otherwise be
        // told "not ready" without the socket being asked.
        let read = tokio::task::unconstrained(self.stream.read(&mut byte));
        self.read.is_empty() && read.now_or_never().is_none()
    }

    /// Write the request and read the answer's head (past any 1xx answer).
    async fn exchange(&mut self, request: &[u8]) -> Result<Head, Broken> {
        let written = match self.stream.write_all(request).await {
            Ok(()) => self.stream.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            return Err(Broken::Unsent(e.to_string()));
        }
        loop {
            let head = self.head().await?;
            if !head.status.is_informational() {
                return Ok(head);
            }
        }
    }

    /// Read and parse one answer head.
    async fn head(&mut self) -> Result<Head, Broken> {
        let failed = |e: String| Broken::Failed(Failure::Network(e));
        loop {
            let mut slots = [httparse::EMPTY_HEADER; HEADERS_MAX];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.read) {
                Ok(httparse::Status::Complete(length)) => {
                    let head = Head::of(&parsed).map_err(failed)?;
                    self.read.drain(..length);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if self.read.len() < HEAD_MAX => {}
                Ok(httparse::Status::Partial) => {
                    return Err(failed("the answer's head is too long".into()));
                }
                Err(e) => return Err(failed(format!("a malformed answer: {e}"))),
            }
            match self.fill().await {
                Ok(0) if self.read.is_empty() => {
                    return Err(failed(
                        "the receiver closed the connection without answering".into(),
                    ));
                }
                Ok(0) => {
                    return Err(failed(
                        "the receiver closed the connection mid-answer".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(failed(e.to_string())),
            }
        }
    }

    /// Read the rest of an answer's body, up to [`BODY_MAX`]: whether it ended (so that
    /// the connection may carry the next request). A longer body is left unread, which
    /// closes the connection.
    async fn skip_body(&mut self, framing: Framing) -> bool {
        match framing {
            Framing::Empty => true,
            Framing::Close => false,
            Framing::Length(length) => {
                length <= BODY_MAX as u64 && self.take(length as usize).await.is_some()
            }
            Framing::Chunked => self.skip_chunks().await.is_some(),
        }
    }

    /// Skip a chunked body (RFC 9112, section 7.1), its trailers included; every byte of
    /// it (sizes, extensions, data, trailers) counts towards [`BODY_MAX`].
    async fn skip_chunks(&mut self) -> Option<()> {
        let mut read: usize = 0;
        let mut count = |n: usize| {
            read = read.saturating_add(n);
            (read <= BODY_MAX).then_some(())
        };
        loop {
            let line = self.line().await?;
            count(line.len() + 2)?;
            let size = line.split(|&b| b == b';').next()?;
            let size = std::str::from_utf8(size).ok()?.trim();
            let size = usize::from_str_radix(size, 16).ok()?;
            count(size)?;
            if size == 0 {
                // Trailers, to an empty line.
                loop {
                    let trailer = self.line().await?;
                    count(trailer.len() + 2)?;
                    if trailer.is_empty() {
                        return Some(());
                    }
                }
            }
            self.take(size).await?;
            if !self.line().await?.is_empty() {
                return None;
            }
        }
    }

    /// Take one line (without its CRLF) off what was read, reading more as needed.
    async fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.read.windows(2).position(|w| w == b"\r\n") {
                let line = self.read[..end].to_vec();
                self.read.drain(..end + 2);
                return Some(line);
            }
            if self.read.len() > BODY_MAX || self.fill().await.ok()? == 0 {
                return None;
            }
        }
    }

    /// Take `n` bytes off what was read, reading more as needed.
    async fn take(&mut self, n: usize) -> Option<()> {
        while self.read.len() < n {
            if self.fill().await.ok()? == 0 {
                return None;
            }
        }
        self.read.drain(..n);
        Some(())
    }

    /// Read what the connection has into `read`; 0 at its end.
    async fn fill(&mut self) -> io::Result<usize> {
        self.read.reserve(4096);
        self.stream.read_buf(&mut self.read).await
    }
}

impl Head {
    fn of(parsed: &httparse::Response<'_, '_>) -> Result<Self, String> {
        let status = parsed
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or("an answer without a valid status")?;
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        // The status is the answer: a header that does not parse is left out, not held
        // against it.
        for header in parsed.headers.iter() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(header.name.as_bytes()),
                HeaderValue::from_bytes(header.value),
            ) {
                headers.append(name, value);
            }
        }
        let has = |name: HeaderName, token: &str| {
            headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        // Chunked only when it is the last coding; otherwise the body ends with the
        // connection.
        let chunked = headers
            .get_all(http::header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        let close = has(http::header::CONNECTION, "close");
        // One length, however many times it is given; lengths that differ leave the
        // body's end unknown.
        let mut lengths = headers
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .flat_map(|v| v.to_str().ok().map(|v| v.split(',')).into_iter().flatten())
            .map(|v| v.trim().parse::<u64>().ok());
        let first = lengths.next();
        let length = match first {
            Some(Some(n)) if lengths.all(|other| other == Some(n)) => Some(Ok(n)),
            Some(_) => Some(Err(())),
            None => None,
        };
        let framing = if status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status.is_informational()
        {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if headers.contains_key(http::header::TRANSFER_ENCODING) {
            Framing::Close
        } else if let Some(Ok(length)) = length {
            Framing::Length(length)
        } else {
            Framing::Close
        };
        Ok(Self {
            status,
            keep_alive: parsed.version == Some(1) && !close,
            headers,
            framing,
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A receiver on loopback that answers every request on a connection with `answer`,
    /// counting the connections it accepted.
    async fn receiver(answer: &'static [u8]) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0; 4096];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        seen.extend_from_slice(&buf[..n]);
                        // Each test request has a body of "{}" after its headers.
                        while let Some(end) = find(&seen, b"\r\n\r\n{}") {
                            seen.drain(..end + 6);
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn client(allow: &str) -> Client {
        client_with(Destinations::parse(allow).unwrap(), Duration::from_secs(5))
    }

    fn client_with(policy: Destinations, timeout: Duration) -> Client {
        super::super::install_crypto();
        Client::new(Arc::new(policy), timeout, 4).unwrap()
    }

    /// Posts to the receiver on `port`, by address and by name, are refused by the policy.
    async fn forbidden(client: &Client, port: u16) {
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            let failure = post(client, &url).await.err().unwrap();
            assert!(matches!(failure, Failure::Forbidden(_)), "{url}: {failure}");
        }
    }

    async fn post(client: &Client, url: &str) -> Result<Answer, Failure> {
        let url = WebhookUrl::parse(url).unwrap();
        client.post(&url, HeaderMap::new(), b"{}".to_vec()).await
    }

    #[tokio::test]
    async fn a_connection_carries_one_request_after_another() {
        let (port, accepted) = receiver(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let client = client("loopback");
        for _ in 0..3 {
            let answer = post(&client, &format!("http://127.0.0.1:{port}/hook?x=1")).await;
            assert_eq!(answer.unwrap().status, StatusCode::OK);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_to_its_end_and_its_connection_kept() {
        let (port, accepted) = receiver(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\nz: 1\r\n\r\n",
        )
        .await;
        let client = client("loopback");
        for _ in 0..3 {
            let answer = post(&client, &format!("http://127.0.0.1:{port}/")).await;
            assert_eq!(answer.unwrap().status, StatusCode::OK);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_that_closes_its_connection_is_not_followed_on_it() {
        let (port, accepted) =
            receiver(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
        let client = client("loopback");
        for _ in 0..2 {
            let answer = post(&client, &format!("http://127.0.0.1:{port}/")).await;
            assert_eq!(answer.unwrap().status, StatusCode::NO_CONTENT);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// A receiver that answers the first request of each connection, then reads one more
    /// and closes the connection without answering it (at once, with `close_at_once`),
    /// counting connections and requests.
    async fn one_answer_a_connection(
        close_at_once: bool,
    ) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (count, seen_requests) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let requests = seen_requests.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0; 4096];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        seen.extend_from_slice(&buf[..n]);
                        if find(&seen, b"\r\n\r\n{}").is_some() {
                            requests.fetch_add(1, Ordering::SeqCst);
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            let _ = socket.write_all(ok).await;
                            break;
                        }
                    }
                    if !close_at_once && let Ok(1..) = socket.read(&mut buf).await {
                        requests.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        (port, accepted, requests)
    }

    #[tokio::test]
    async fn a_connection_the_receiver_closed_while_idle_is_not_used_again() {
        let (port, accepted, requests) = one_answer_a_connection(true).await;
        let client = client("loopback");
        for _ in 0..3 {
            let answer = post(&client, &format!("http://127.0.0.1:{port}/")).await;
            assert_eq!(answer.unwrap().status, StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    /// A request that went out and got no answer is a failure, never sent again here: the
    /// receiver may have acted on it.
    #[tokio::test]
    async fn a_request_read_and_left_unanswered_is_not_sent_again() {
        let (port, accepted, requests) = one_answer_a_connection(false).await;
        let client = client("loopback");
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(post(&client, &url).await.unwrap().status, StatusCode::OK);
        let failure = post(&client, &url).await.err().unwrap();
        assert!(matches!(failure, Failure::Network(_)), "{failure}");
        assert_eq!(
            (
                accepted.load(Ordering::SeqCst),
                requests.load(Ordering::SeqCst)
            ),
            (1, 2)
        );
        assert_eq!(post(&client, &url).await.unwrap().status, StatusCode::OK);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_long_answer_is_cut_off_and_its_connection_closed() {
        let long: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 500 Oops\r\ncontent-length: {n}\r\n\r\n{}",
                "x".repeat(BODY_MAX + 1),
                n = BODY_MAX + 1
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let (port, accepted) = receiver(long).await;
        let client = client("loopback");
        for _ in 0..2 {
            let answer = post(&client, &format!("http://127.0.0.1:{port}/")).await;
            assert_eq!(answer.unwrap().status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_whose_body_stalls_is_still_the_answer() {
        // The head says 200, and the body never comes: the message was delivered, and a
        // retry would deliver it twice.
        let (port, accepted) = receiver(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhal").await;
        let policy = Destinations::parse("loopback").unwrap();
        let client = client_with(policy, Duration::from_millis(300));
        for _ in 0..2 {
            let answer = post(&client, &format!("http://127.0.0.1:{port}/")).await;
            assert_eq!(answer.unwrap().status, StatusCode::OK);
        }
        // Its connection, with the rest of the body owed, is not used again.
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn what_the_policy_refuses_is_forbidden_before_connecting() {
        let (port, accepted) = receiver(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        forbidden(&client("public"), port).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 0);

        // Herald's own services stay out of reach when the policy allows their network,
        // by a name that resolves to them as by their address.
        let policy = Destinations::parse("loopback")
            .unwrap()
            .with_service(Host::Ip("127.0.0.1".parse().unwrap()), port)
            .with_service(Host::Ip("::1".parse().unwrap()), port);
        forbidden(&client_with(policy, Duration::from_secs(5)), port).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_receiver_that_is_not_there_or_speaks_no_tls_cannot_be_connected_to() {
        // A plain HTTP server answers a TLS hello with plain HTTP.
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = plain.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = plain.accept().await {
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let client = client("loopback");
        let failure = post(&client, &format!("https://127.0.0.1:{port}/")).await;
        let failure = failure.err().unwrap();
        assert!(
            matches!(failure, Failure::Connect(ref e) if e.starts_with("TLS")),
            "{failure}"
        );

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let failure = post(&client, &format!("http://127.0.0.1:{port}/")).await;
        let failure = failure.err().unwrap();
        assert!(matches!(failure, Failure::Connect(_)), "{failure}");
        assert!(
            failure.to_string().starts_with("cannot connect: "),
            "{failure}"
        );
    }
}
