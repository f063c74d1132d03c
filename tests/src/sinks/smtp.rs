//! An SMTP receiver for tests and benchmarks: enough of RFC 5321 for a relay client (EHLO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT). It records each accepted message by its
//! `Message-ID`, and can answer a share of messages with 451 (try again later) or 550
//! (mailbox unavailable) at the end of DATA, as relays do.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

use super::{Accepted, Draws, accept};

/// Shares of messages to refuse, each from 0.0 to 1.0.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub reply_451: f64,
    pub reply_550: f64,
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then_some(v.trim())
            })
    }
}

struct State {
    /// Accepted messages by `Message-ID`.
    accepted: Accepted<Mail>,
    faults: Mutex<Faults>,
    refused: AtomicU64,
    draws: Draws,
    /// When each message began (its `MAIL FROM`), in order.
    arrivals: Mutex<Vec<Instant>>,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl SmtpSink {
    pub async fn start(addr: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let sink = Self {
            addr: listener.local_addr()?,
            state: Arc::new(State {
                accepted: Accepted::new(),
                faults: Mutex::default(),
                refused: AtomicU64::default(),
                draws: Draws::default(),
                arrivals: Mutex::default(),
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

    /// `HERALD_SMTP_URL` for this sink.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Distinct messages accepted (by `Message-ID`).
    pub fn delivered(&self) -> usize {
        self.state.accepted.distinct()
    }

    pub fn duplicates(&self) -> u64 {
        self.state.accepted.duplicates()
    }

    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::Relaxed)
    }

    /// Messages begun after `at`.
    pub fn messages_after(&self, at: Instant) -> usize {
        let arrivals = self.state.arrivals.lock().unwrap();
        arrivals.len() - arrivals.partition_point(|t| *t <= at)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.accepted.items()
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        write.write_all(b"220 herald-sink ESMTP ready\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if read.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &str = match verb.as_str() {
                "EHLO" => "250-herald-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n",
                "HELO" => "250 herald-sink\r\n",
                "MAIL" => {
                    self.state.arrivals.lock().unwrap().push(Instant::now());
                    from = address(&command);
                    to.clear();
                    "250 OK\r\n"
                }
                "RCPT" => {
                    to.push(address(&command));
                    "250 OK\r\n"
                }
                "DATA" => {
                    write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if read.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        // Undo dot-stuffing.
                        let l = line.strip_prefix('.').unwrap_or(&line);
                        data.push_str(&l.replace("\r\n", "\n"));
                    }
                    let mail = Mail {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                    };
                    self.accept(mail)
                }
                "RSET" => {
                    from.clear();
                    to.clear();
                    "250 OK\r\n"
                }
                "NOOP" => "250 OK\r\n",
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 command not implemented\r\n",
            };
            write.write_all(reply.as_bytes()).await?;
        }
    }

    /// The reply to a message's end of DATA.
    fn accept(&self, mail: Mail) -> &'static str {
        let faults = self.state.faults.lock().unwrap().clone();
        let draw = self.state.draws.next();
        if draw < faults.reply_451 {
            self.state.refused.fetch_add(1, Ordering::Relaxed);
            return "451 4.3.0 try again later\r\n";
        }
        if draw < faults.reply_451 + faults.reply_550 {
            self.state.refused.fetch_add(1, Ordering::Relaxed);
            return "550 5.1.1 mailbox unavailable\r\n";
        }
        let id = mail.header("Message-ID").unwrap_or_default().to_owned();
        self.state.accepted.record(id, mail);
        "250 OK queued\r\n"
    }
}

/// The address in `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_default()
}
