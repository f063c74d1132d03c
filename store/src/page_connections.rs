//! The worker's connections for page statements, handed out and taken back without a word
//! to the server.
//!
//! sqlx's pool (0.8) sends a connection a round trip (a `Sync`) before handing it out, unless
//! `test_before_acquire` is off, and again whenever it is returned, which cannot be turned
//! off: two more wake-ups of a PostgreSQL backend for every page, on the cores that run the
//! pages. A page needs no such check: a broken connection fails its statement, the page
//! activity is retried, and pages are idempotent. So pages run on connections kept here.
//! docs/performance.md has what this and lane affinity measured.

use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A campaign's id and one of its lane numbers.
pub type Lane = (i64, u32);

/// At most `size` connections in use at a time, opened when first needed with the pool's
/// settings, and never closed while they work.
pub struct PageConnections {
    options: PgConnectOptions,
    /// Idle connections, each with the lane it last served, the one returned last at the end.
    idle: std::sync::Mutex<Vec<(Lane, PgConnection)>>,
    slots: Semaphore,
}

impl PageConnections {
    /// Up to `size` connections, with the same settings as `pool`'s.
    pub fn new(pool: &PgPool, size: usize) -> Self {
        Self {
            options: (*pool.connect_options()).clone(),
            idle: std::sync::Mutex::new(Vec::with_capacity(size)),
            slots: Semaphore::new(size),
        }
    }

    /// A connection for one page of `lane`: the idle one that served the lane last if there
    /// is one, else the idle one returned last, else a new one. Waits while `size` are in use.
    ///
    /// Keeping a lane on one session keeps its partitions' relation caches and insert
    /// positions warm in that backend, where a new backend for each page would look them up
    /// again.
    pub async fn get(&self, lane: Lane) -> Result<Lease<'_>, sqlx::Error> {
        let slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let idle = {
            let mut idle = self.idle.lock().expect("never poisoned");
            match idle.iter().rposition(|(last, _)| *last == lane) {
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

/// A connection on loan from [`PageConnections`]. Dropped without [`Lease::finish`] (a page
/// abandoned mid-statement), the connection is closed: its state is unknown.
pub struct Lease<'a> {
    conn: PgConnection,
    lane: Lane,
    home: &'a PageConnections,
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
