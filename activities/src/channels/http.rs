//! The webhook channel's HTTP/1.1 client: one POST on a kept-alive connection, nothing else.
//!
//! A general client (reqwest) spent more of the worker's time per delivery than the request
//! itself: per-request URL handling, client and connector clones, a pool keyed by clones of
//! the origin. This one keeps, per origin, a stack of idle connections; a send takes one (or
//! opens one), writes the request, reads the status and at most [`BODY_MAX`] of the answer,
//! and gives the connection back only if the answer was read to its end.
//!
//! Every connection goes only where the policy allows: names are resolved here and the
//! addresses the policy refuses are dropped before connecting (so DNS cannot turn a public
//! name into 127.0.0.1); an address in the URL is checked as it is.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use herald_wire::{Destinations, WebhookUrl, webhooks::Host};
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode,
    body::Incoming,
    client::conn::http1::{self, SendRequest},
    header::{HeaderMap, HeaderValue},
};
use hyper_util::rt::TokioIo;
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
    sender: SendRequest<Full<Bytes>>,
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
        let exchange = self.exchange(&target, headers, body);
        let (sender, response) = tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| Failure::Timeout(self.timeout))??;
        let (parts, body) = response.into_parts();
        if let Ok(true) = tokio::time::timeout_at(deadline, read_to_end(body)).await {
            self.checkin(&target, sender);
        }
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
        })
    }

    /// Send the request on a pooled or new connection, up to the answer's head.
    async fn exchange(
        &self,
        target: &Target<'_>,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(SendRequest<Full<Bytes>>, Response<Incoming>), Failure> {
        let host = HeaderValue::from_str(target.authority)
            .map_err(|_| Failure::Network(format!("bad host {:?}", target.authority)))?;
        headers.insert(hyper::header::HOST, host);
        headers.insert(hyper::header::USER_AGENT, USER_AGENT.clone());
        let mut request = Request::post(target.path)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Network(format!("bad request: {e}")))?;
        *request.headers_mut() = headers;

        // A kept-alive connection the receiver closed meanwhile gives the request back
        // unsent; it goes once more on a new connection.
        let (mut sender, reused) = self.checkout(target).await?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut e) => match e.take_message() {
                Some(request) if reused => {
                    let (mut fresh, _) = self.connect(target).await?;
                    let response = fresh.send_request(request).await.map_err(network)?;
                    sender = fresh;
                    response
                }
                _ => return Err(network(e.into_error())),
            },
        };
        Ok((sender, response))
    }

    /// An idle connection to the target's origin that still works, or a new one.
    async fn checkout(
        &self,
        target: &Target<'_>,
    ) -> Result<(SendRequest<Full<Bytes>>, bool), Failure> {
        loop {
            let idle = {
                let mut pool = self.idle.lock().expect("the connection pool");
                pool.0[usize::from(target.https)]
                    .get_mut(target.authority)
                    .and_then(Vec::pop)
            };
            let Some(Idle { mut sender, since }) = idle else {
                return self.connect(target).await;
            };
            if since.elapsed() < IDLE_MAX && sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
    }

    fn checkin(&self, target: &Target<'_>, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let idle = Idle {
            sender,
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

    async fn connect(
        &self,
        target: &Target<'_>,
    ) -> Result<(SendRequest<Full<Bytes>>, bool), Failure> {
        let (host, port) = target.url.host_port();
        let addrs = self.resolve(&host, port).await?;
        let stream = self.connect_any(&addrs).await?;
        let _ = stream.set_nodelay(true);
        let sender = if target.https {
            let name = match host {
                Host::Ip(ip) => ServerName::IpAddress(ip.into()),
                Host::Name(name) => ServerName::try_from(name.clone())
                    .map_err(|e| Failure::Connect(format!("{name}: {e}")))?,
            };
            let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(name, stream))
                .await
                .map_err(|_| Failure::Timeout(self.connect_timeout))?
                .map_err(|e| Failure::Connect(format!("TLS: {e}")))?;
            handshake(TokioIo::new(tls)).await?
        } else {
            handshake(TokioIo::new(stream)).await?
        };
        Ok((sender, false))
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

static USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("herald/", env!("CARGO_PKG_VERSION")));

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, Failure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io)
        .await
        .map_err(|e| Failure::Connect(root_cause(&e)))?;
    tokio::spawn(async move {
        // Ends when the connection closes, or when its last sender is dropped.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Read an answer's body to its end, up to [`BODY_MAX`]: whether it was (so that its
/// connection may carry the next request). A longer or endless one is dropped unread, which
/// closes the connection.
async fn read_to_end(mut body: Incoming) -> bool {
    use hyper::body::Body;
    if body.size_hint().lower() > BODY_MAX as u64 {
        return false;
    }
    let mut read = 0;
    loop {
        match body.frame().await {
            None => return true,
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > BODY_MAX {
                    return false;
                }
            }
            Some(Err(_)) => return false,
        }
    }
}

fn network(e: hyper::Error) -> Failure {
    Failure::Network(root_cause(&e))
}

/// The innermost error: hyper's own message is often only "connection error".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
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
