//! One HTTP/1.1 exchange on a connection, in the caller's task: the request written in one
//! write, the answer's head parsed with `httparse`, its body skipped to its end (up to
//! [`BODY_MAX`]) so that the connection can carry the next request.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use futures::FutureExt;
use http::{
    StatusCode,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::client::TlsStream;

use super::{BODY_MAX, Failure, Target};

/// The longest answer head (status line and headers) read, as hyper allowed.
const HEAD_MAX: usize = 400 * 1024;

/// The most headers an answer head may have, as hyper allowed.
const HEADERS_MAX: usize = 100;

/// A connection to a receiver, and what was read from it and not yet taken.
pub(super) struct Conn {
    pub(super) stream: Stream,
    pub(super) read: Vec<u8>,
}

pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// How an answer's body ends (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: a 204 or 304 answer.
    Empty,
    Length(u64),
    Chunked,
    /// When the receiver closes the connection.
    Close,
}

/// An answer's head, as read.
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) framing: Framing,
    /// The receiver keeps the connection open after the answer.
    pub(super) keep_alive: bool,
}

/// Why an exchange on a connection failed.
pub(super) enum Broken {
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

/// The request: `POST`, its head and its body, in one buffer for one write.
pub(super) fn request(target: &Target<'_>, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
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
    pub(super) fn new(stream: Stream) -> Self {
        Self {
            stream,
            read: Vec::with_capacity(1024),
        }
    }

    /// Whether an idle connection can carry a request: it has nothing to read, where a
    /// connection the receiver closed reads its end (or stray bytes, which end it too).
    pub(super) fn is_open(&mut self) -> bool {
        let mut byte = [0; 1];
        // Unconstrained: a task that has used its scheduling budget would otherwise be
        // told "not ready" without the socket being asked.
        let read = tokio::task::unconstrained(self.stream.read(&mut byte));
        self.read.is_empty() && read.now_or_never().is_none()
    }

    /// Write the request and read the answer's head (past any 1xx answer).
    pub(super) async fn exchange(&mut self, request: &[u8]) -> Result<Head, Broken> {
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
    pub(super) async fn skip_body(&mut self, framing: Framing) -> bool {
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
