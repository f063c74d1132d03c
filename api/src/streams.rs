//! Places for event streams: at most `HERALD_API_MAX_STREAMS` open on the server, and at most
//! `HERALD_API_MAX_STREAMS_PER_KEY` for one caller (a key, or the sessions signed in with it),
//! so that one leaky client cannot hold every place. A stream also ends when the key or
//! session it was opened with no longer opens anything (revoked, signed out, expired).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// How often an open stream asks whether its key or session still opens it.
pub const RECHECK_EVERY: Duration = Duration::from_secs(5);

pub struct Streams {
    all: Arc<Semaphore>,
    max: usize,
    per_key: usize,
    /// Streams open per caller name.
    open: Mutex<HashMap<String, usize>>,
}

/// One stream's place, given back when the stream closes.
pub struct StreamPlace {
    _all: OwnedSemaphorePermit,
    name: String,
    streams: Arc<Streams>,
}

impl Streams {
    pub fn new(max: usize, per_key: usize) -> Arc<Self> {
        Arc::new(Self {
            all: Arc::new(Semaphore::new(max)),
            max,
            per_key,
            open: Mutex::default(),
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.max - self.all.available_permits()
    }

    /// A place for one more stream of the caller `name`: 429 when the caller holds all of
    /// its own, 503 when the server's are all taken.
    pub fn place(self: &Arc<Self>, name: &str) -> Result<StreamPlace, ApiError> {
        let mut open = self.open.lock().expect("the stream counts");
        let held = open.get(name).copied().unwrap_or(0);
        if held >= self.per_key {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "key {name:?} has {held} event streams open, as many as one key may \
                     (HERALD_API_MAX_STREAMS_PER_KEY); close one first"
                ),
            ));
        }
        let all = self.all.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "every event stream this server allows is open (HERALD_API_MAX_STREAMS); \
                 close one, or try again later",
            )
        })?;
        open.insert(name.to_owned(), held + 1);
        Ok(StreamPlace {
            _all: all,
            name: name.to_owned(),
            streams: self.clone(),
        })
    }
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("the stream counts");
        if let Some(n) = open.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_share_and_places_come_back() {
        let streams = Streams::new(3, 2);
        let a1 = streams.place("a").unwrap();
        let _a2 = streams.place("a").unwrap();
        assert_eq!(
            streams.place("a").err().unwrap().status,
            StatusCode::TOO_MANY_REQUESTS
        );
        let _b = streams.place("b").unwrap();
        assert_eq!(streams.open(), 3);
        assert_eq!(
            streams.place("c").err().unwrap().status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        drop(a1);
        assert_eq!(streams.open(), 2);
        let _a3 = streams.place("a").unwrap();
        assert!(streams.place("a").is_err());
    }
}
