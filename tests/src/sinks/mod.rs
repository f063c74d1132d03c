//! Real receivers for the external channels, started by the tests themselves (and by
//! `herald-sink` for a person or a benchmark): a webhook endpoint and an SMTP relay that
//! record what they accept and fail on request.

pub mod smtp;
pub mod standard;
pub mod webhook;

pub use smtp::SmtpSink;
pub use webhook::WebhookSink;

/// The webhook signing secret of every test app, workers and CLI alike: `whsec_` and the
/// base64 of 32 bytes, as the standard has it.
pub const WEBHOOK_SECRET: &str = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5YWI=";

/// The sender of every test app's e-mail.
pub const EMAIL_FROM: &str = "Herald Tests <herald@example.test>";

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::net::{TcpListener, TcpStream};

/// Accept connections on `listener` for ever, each served by `serve` in a task of its own,
/// on a runtime of the receiver's own ([`crate::on_own_runtime`]).
fn accept<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = listener.into_std().expect("a bound listener");
    crate::on_own_runtime("receiver", move || async move {
        let listener = TcpListener::from_std(listener).expect("the receiver's listener");
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream));
            }
        }
    });
}

/// What a receiver accepted, by delivery id: how many times each, and the first one.
struct Accepted<T>(Mutex<HashMap<String, (u32, T)>>);

impl<T: Clone> Accepted<T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn record(&self, id: String, item: T) {
        self.0
            .lock()
            .unwrap()
            .entry(id)
            .and_modify(|(n, _)| *n += 1)
            .or_insert((1, item));
    }

    /// Distinct ids accepted.
    fn distinct(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Acceptances beyond the first of each id.
    fn duplicates(&self) -> u64 {
        self.0
            .lock()
            .unwrap()
            .values()
            .map(|(n, _)| u64::from(n - 1))
            .sum()
    }

    fn times(&self, id: &str) -> u32 {
        self.0.lock().unwrap().get(id).map_or(0, |(n, _)| *n)
    }

    fn first(&self, id: &str) -> Option<T> {
        self.0.lock().unwrap().get(id).map(|(_, t)| t.clone())
    }

    fn ids(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }

    fn items(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap()
            .values()
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// Numbers in [0, 1), spread evenly over consecutive draws (a Weyl sequence, n·φ mod 1), so
/// that "fail 10%" fails every tenth request or so, not in clusters.
#[derive(Default)]
struct Draws(AtomicU64);

impl Draws {
    fn next(&self) -> f64 {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        (n as f64 * 0.618_033_988_749_895).fract()
    }
}
