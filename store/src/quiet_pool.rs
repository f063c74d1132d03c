//! Connections handed out and taken back without a word to the server: the worker's, for
//! page statements, and the HTTP API's, for apps' inbox requests.
//!
//! sqlx's pool (0.8) sends a connection a round trip (a `Sync`) before handing it out, unless
//! `test_before_acquire` is off, and again whenever it is returned, which cannot be turned
//! off: another wake-up of a PostgreSQL backend, and another send and receive of the
//! process, for every page and every request. Neither needs the check: a broken connection
//! fails its own statement, and is then closed here. A page activity is retried, and pages
//! are idempotent; an inbox request answers 503 and the app asks again. docs/performance.md
//! has what this measured.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A campaign's id and one of its lane numbers.
pub type Lane = (i64, u32);

/// At most `size` connections in use at a time, opened when first needed with the pool's
/// settings, and never closed while they work.
pub struct QuietPool {
    options: PgConnectOptions,
    /// Idle connections, each with the lane it last served (if any), the one returned last at
    /// the end.
    idle: std::sync::Mutex<Vec<(Option<Lane>, PgConnection)>>,
    slots: Semaphore,
    /// How long a caller waits for a connection while `size` are in use (`None`: as long
    /// as it takes).
    wait: Option<Duration>,
}

impl QuietPool {
    /// Up to `size` connections, with the same settings as `pool`'s.
    pub fn new(pool: &PgPool, size: usize) -> Self {
        Self {
            options: (*pool.connect_options()).clone(),
            idle: std::sync::Mutex::new(Vec::with_capacity(size)),
            slots: Semaphore::new(size),
            wait: None,
        }
    }

    /// The same, with callers failing with [`sqlx::Error::PoolTimedOut`] after waiting
    /// `wait` for a connection, as sqlx's pool does.
    pub fn waiting_at_most(self, wait: Duration) -> Self {
        Self {
            wait: Some(wait),
            ..self
        }
    }

    /// A connection for one page of `lane`: the idle one that served the lane last if there
    /// is one, else the idle one returned last, else a new one. Waits while `size` are in use.
    ///
    /// Keeping a lane on one session keeps its partitions' relation caches and insert
    /// positions warm in that backend, where a new backend for each page would look them up
    /// again.
    pub async fn get(&self, lane: Lane) -> Result<Lease<'_>, sqlx::Error> {
        self.lease(Some(lane)).await
    }

    /// A connection for a statement of no lane: the idle one returned last (the most likely
    /// to be in the CPU's caches), else a new one. Waits while `size` are in use.
    pub async fn any(&self) -> Result<Lease<'_>, sqlx::Error> {
        self.lease(None).await
    }

    async fn lease(&self, lane: Option<Lane>) -> Result<Lease<'_>, sqlx::Error> {
        let slot = match self.wait {
            None => self.slots.acquire().await,
            Some(wait) => tokio::time::timeout(wait, self.slots.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?,
        }
        .expect("the semaphore is never closed");
        let idle = {
            let mut idle = self.idle.lock().expect("never poisoned");
            match lane.and_then(|lane| idle.iter().rposition(|(last, _)| *last == Some(lane))) {
                Some(i) => Some(idle.remove(i).1),
                None => idle.pop().map(|(_, conn)| conn),
            }
        };
        let conn = match idle {
            Some(conn) => conn,
            None => PgConnection::connect_with(&self.options).await?,
        };
        Ok(Lease {
            conn,
            lane,
            home: self,
            _slot: slot,
        })
    }
}

/// A connection on loan from [`QuietPool`]. Dropped without [`Lease::finish`] (a page
/// or a request abandoned mid-statement), the connection is closed: its state is unknown.
pub struct Lease<'a> {
    conn: PgConnection,
    lane: Option<Lane>,
    home: &'a QuietPool,
    _slot: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// Return the connection after it produced `result`. It is kept after a success. After
    /// any error it is closed, and so is every idle one: the error may be a session the
    /// server ended (a restart ends them all, and each would cost a page a retry), and even a
    /// FATAL error arrives as a database error, so "the server answered" does not prove the
    /// session survived.
    pub fn finish<T, E>(self, result: &Result<T, E>) {
        let Lease {
            conn, lane, home, ..
        } = self;
        let mut idle = home.idle.lock().expect("never poisoned");
        if result.is_ok() {
            idle.push((lane, conn));
        } else {
            idle.clear();
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}
