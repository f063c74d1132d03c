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

mod exchange;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use exchange::{Broken, Conn, Head, Stream};
use herald_wire::{Destinations, WebhookUrl, webhooks::Host};
use http::{StatusCode, header::HeaderMap};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Position;

/// The most of a receiver's answer that is read. Herald needs only its status; a longer
/// body is cut off by closing the connection.
pub const BODY_MAX: usize = 4 * 1024;

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
        let request = exchange::request(&target, &headers, &body);
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
        Ok(Conn::new(stream))
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
