//! Connections handed out and taken back without a word to the server: the worker's, for
//! page statements, and the HTTP API's, for apps' inbox requests.
//!
//! sqlx's pool (0.8) sends a connection a round trip (a `Sync`) before handing it out, unless
//! `test_before_acquire` is off, and again whenever it is returned, which cannot be turned
//! off: another wake-up of a PostgreSQL backend, and another send and receive of the
//! process, for every page and every request. Neither needs the check: a statement that
//! ran to its end leaves its session ready for the next, and one whose session broke fails
//! with an error that says so ([`Damage`]); that session is then closed here. A page activity
//! is retried, and pages are idempotent; an inbox request answers 503 and the app asks again.
//! Only a connection abandoned mid-statement gets the round trip, to drain it.
//! docs/performance.md has what this measured.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgDatabaseError, PgSeverity},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::StoreError;

/// A campaign's id and one of its lane numbers.
pub type Lane = (i64, u32);

/// An idle connection that has waited this long is closed when a connection is next asked
/// for, rather than handed out: a network between the process and the server may forget a
/// silent connection. (sqlx's pool closes idle ones after 10 minutes, from a task of its own.)
const IDLE_MAX: Duration = Duration::from_secs(5 * 60);
/// A connection this old is closed when it is next returned (sqlx's default too), so that a
/// backend's caches do not grow for ever.
const AGE_MAX: Duration = Duration::from_secs(30 * 60);
/// The longest an abandoned connection, or one whose statement failed, may take to finish
/// what it was doing and be reused; it holds its place meanwhile, and is closed after.
const DRAIN_MAX: Duration = Duration::from_secs(60);

/// At most `size` connections in use at a time, opened when first needed with the pool's
/// settings, and never closed while they work.
#[derive(Clone)]
pub struct QuietPool(Arc<Shared>);

struct Shared {
    options: PgConnectOptions,
    /// Idle connections, the one returned last at the end.
    idle: Mutex<Vec<Idle>>,
    slots: Arc<Semaphore>,
    /// How long a caller waits for a connection, opening it included (`None`: as long as it
    /// takes).
    wait: Option<Duration>,
}

struct Idle {
    conn: PgConnection,
    /// The lane it last served, if any.
    lane: Option<Lane>,
    opened: Instant,
    since: Instant,
}

impl QuietPool {
    /// Up to `size` connections, with the same settings as `pool`'s.
    pub fn new(pool: &PgPool, size: usize) -> Self {
        Self(Arc::new(Shared {
            options: (*pool.connect_options()).clone(),
            idle: Mutex::new(Vec::with_capacity(size)),
            slots: Arc::new(Semaphore::new(size)),
            wait: None,
        }))
    }

    /// The same, with callers failing with [`sqlx::Error::PoolTimedOut`] when no connection
    /// is theirs within `wait` (waiting for a place and opening one), as sqlx's pool does.
    pub fn waiting_at_most(self, wait: Duration) -> Self {
        self.with(|shared| shared.wait = Some(wait))
    }

    /// The same, with sessions that `pg_stat_activity` shows as `name`.
    pub fn named(self, name: &str) -> Self {
        self.with(|shared| shared.options = shared.options.clone().application_name(name))
    }

    fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::into_inner(self.0).expect("configured before first use");
        change(&mut shared);
        Self(Arc::new(shared))
    }

    /// A connection for one page of `lane`: the idle one that served the lane last if there
    /// is one, else the idle one returned last, else a new one. Waits while `size` are in use.
    ///
    /// Keeping a lane on one session keeps its partitions' relation caches and insert
    /// positions warm in that backend, where a new backend for each page would look them up
    /// again.
    pub async fn get(&self, lane: Lane) -> Result<Lease, sqlx::Error> {
        self.lease(Some(lane)).await
    }

    /// A connection for a statement of no lane: the idle one returned last (the most likely
    /// to be in the CPU's caches), else a new one. Waits while `size` are in use.
    pub async fn any(&self) -> Result<Lease, sqlx::Error> {
        self.lease(None).await
    }

    async fn lease(&self, lane: Option<Lane>) -> Result<Lease, sqlx::Error> {
        match self.0.wait {
            None => self.lease_now(lane).await,
            Some(wait) => tokio::time::timeout(wait, self.lease_now(lane))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?,
        }
    }

    async fn lease_now(&self, lane: Option<Lane>) -> Result<Lease, sqlx::Error> {
        let slot = Arc::clone(&self.0.slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let idle = {
            let mut idle = self.0.idle.lock().expect("never poisoned");
            // Whatever waited too long goes; the oldest wait at the front.
            let stale = idle.partition_point(|i| i.since.elapsed() >= IDLE_MAX);
            idle.drain(..stale).for_each(|i| say_goodbye(i.conn));
            let i = lane.and_then(|lane| idle.iter().rposition(|i| i.lane == Some(lane)));
            match i {
                Some(i) => Some(idle.remove(i)),
                None => idle.pop(),
            }
        };
        let (conn, opened) = match idle {
            Some(Idle { conn, opened, .. }) => (conn, opened),
            None => (
                PgConnection::connect_with(&self.0.options).await?,
                Instant::now(),
            ),
        };
        Ok(Lease {
            conn: Some(conn),
            lane,
            opened,
            home: Arc::clone(&self.0),
            slot: Some(slot),
        })
    }
}

impl Shared {
    fn put_back(&self, conn: PgConnection, lane: Option<Lane>, opened: Instant) {
        if opened.elapsed() >= AGE_MAX {
            return say_goodbye(conn);
        }
        let mut idle = self.idle.lock().expect("never poisoned");
        idle.push(Idle {
            conn,
            lane,
            opened,
            since: Instant::now(),
        });
    }
}

/// Close a healthy connection the polite way (PostgreSQL logs a connection that just goes),
/// in the background.
fn say_goodbye(conn: PgConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(tokio::time::timeout(Duration::from_secs(5), conn.close()));
    }
}

/// What an error says about the session it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// None: the server answered the statement with an error (a statement timeout, a
    /// constraint) or the answer was refused here, and the session is ready for the next.
    None,
    /// This session may be unusable: close it.
    Session,
    /// The server or the way to it went away (a restart, a failover, a broken network):
    /// close every idle session too, each of which would otherwise cost a retry.
    Server,
}

impl Damage {
    /// What `e`, a statement's error, says about its session.
    pub fn of(e: &sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                let severity = db
                    .try_downcast_ref::<PgDatabaseError>()
                    .map(PgDatabaseError::severity);
                // Operator intervention (57P…: a shutdown, a restart, a session idle past
                // `idle_session_timeout`, which ends every idle one alike).
                if code.starts_with("57P") || severity == Some(PgSeverity::Panic) {
                    Self::Server
                } else if code.starts_with("08")
                    // A prepared statement the schema changed under, for good; no transaction.
                    || matches!(&*code, "0A000" | "26000" | "25P02")
                    // A FATAL error ends its session; any other is not PostgreSQL's own.
                    || severity != Some(PgSeverity::Error)
                {
                    Self::Session
                } else {
                    Self::None
                }
            }
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => Self::Server,
            sqlx::Error::RowNotFound => Self::None,
            // A value that did not decode, and the rest: nothing shows the session is still
            // in step with the server, so it is not kept.
            _ => Self::Session,
        }
    }
}

/// A statement's result, as far as its session is concerned.
pub trait SessionResult {
    /// The database's error, if the statement ended in one. Herald's own answers (an
    /// unknown campaign, a page claimed by another run) come after a statement that ran to
    /// its end, as a success does.
    fn database_error(&self) -> Option<&sqlx::Error>;
}

impl<T> SessionResult for Result<T, sqlx::Error> {
    fn database_error(&self) -> Option<&sqlx::Error> {
        self.as_ref().err()
    }
}

impl<T> SessionResult for Result<T, StoreError> {
    fn database_error(&self) -> Option<&sqlx::Error> {
        match self {
            Err(StoreError::Database(e) | StoreError::ScanTimedOut(e)) => Some(e),
            Ok(_) | Err(_) => None,
        }
    }
}

/// A connection on loan from [`QuietPool`]. Dropped without [`Lease::finish`] (a page
/// or a request abandoned mid-statement), it keeps its place while it drains (a round trip
/// that waits out the statement, at most [`DRAIN_MAX`]), then goes back or is closed.
pub struct Lease {
    conn: Option<PgConnection>,
    lane: Option<Lane>,
    opened: Instant,
    home: Arc<Shared>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Lease {
    /// Return the connection after it produced `result`: kept unless the result says the
    /// session or the server broke ([`Damage`]), in which case it is closed, and after the
    /// server broke every idle one with it. A session kept after an error first drains, as
    /// an abandoned one does: a transaction the error ended still holds its locks until the
    /// `ROLLBACK` that sqlx queued reaches the server.
    pub fn finish(mut self, result: &impl SessionResult) {
        match result.database_error().map(Damage::of) {
            None => {
                let conn = self.conn.take().expect("finished once");
                self.home.put_back(conn, self.lane, self.opened);
            }
            Some(Damage::None) => {} // drained on drop
            Some(Damage::Session) => drop(self.conn.take()),
            Some(Damage::Server) => {
                drop(self.conn.take());
                self.home.idle.lock().expect("never poisoned").clear();
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (home, lane, opened, slot) = (
            Arc::clone(&self.home),
            self.lane,
            self.opened,
            self.slot.take(),
        );
        runtime.spawn(async move {
            // A round trip waits out what the session was doing; the error that ended an
            // abandoned statement comes first, and another round trip follows it.
            let drained = tokio::time::timeout(DRAIN_MAX, async {
                loop {
                    match conn.ping().await {
                        Ok(()) => return true,
                        Err(e) if Damage::of(&e) == Damage::None => continue,
                        Err(_) => return false,
                    }
                }
            });
            if let Ok(true) = drained.await {
                home.put_back(conn, lane, opened);
            }
            drop(slot);
        });
    }
}

impl std::ops::Deref for Lease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("not finished")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("not finished")
    }
}
