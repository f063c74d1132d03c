//! Connecting to PostgreSQL and keeping the schema current.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Connection, PgConnection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::LedgerError;

/// The migrations in `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The default `DATABASE_URL`: the project-local cluster that `scripts/services up` starts.
pub const DEFAULT_DATABASE_URL: &str = "postgres://herald@127.0.0.1:55432/herald";

#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Server-side limit on any one statement. The worker keeps it below the page activity's
    /// start-to-close timeout, so a stuck statement is abandoned by PostgreSQL before
    /// Temporal retries the page elsewhere.
    pub statement_timeout: Option<Duration>,
    /// Whether the planner may use bitmap scans. The worker's connections exist for the page
    /// statement, which must walk `users` along its primary key from the lane's cursor.
    /// Offered a bitmap scan, PostgreSQL takes it whenever its statistics are missing or
    /// stale (a freshly loaded `users` table, before autovacuum has analyzed it), and then
    /// every page reads and sorts the lane's whole remaining id range to keep 500 rows:
    /// measured, 1,000,000 recipients in 6.5 s instead of 3.2 s. The one worker statement
    /// that wants the GIN index (counting a small segment) turns them back on for itself.
    pub bitmap_scans: bool,
    /// How this process makes sure the schema is current when it connects.
    pub migrations: MigrationCheck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationCheck {
    /// Run the migrator: apply what is pending and verify the checksums of what was applied.
    /// The worker does this once, on start.
    Full,
    /// One query for the newest applied version; the migrator runs only when the database is
    /// behind this binary. The CLI does this on every command: the full check takes an
    /// advisory lock and issues DDL, ~10 ms of server CPU per invocation, which a script
    /// polling `herald status` would take from a running campaign.
    WhenBehind,
}

impl PoolSettings {
    pub fn worker(max_connections: u32) -> Self {
        Self {
            max_connections,
            statement_timeout: Some(Duration::from_secs(4)),
            bitmap_scans: false,
            migrations: MigrationCheck::Full,
        }
    }

    /// One connection: each command runs its statements one after another, and a larger
    /// pool opens a second session for the second statement (sqlx returns a connection to
    /// the pool asynchronously), which doubles what a script polling `herald status` costs
    /// the server.
    pub fn cli() -> Self {
        Self {
            max_connections: 1,
            statement_timeout: None,
            bitmap_scans: true,
            migrations: MigrationCheck::WhenBehind,
        }
    }
}

/// Connect, failing fast (5 s) when the server is not there.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<PgPool, sqlx::Error> {
    let mut options = PgConnectOptions::from_str(url)?.application_name("herald");
    if let Some(t) = settings.statement_timeout {
        options = options.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
    }
    if !settings.bitmap_scans {
        options = options.options([("enable_bitmapscan", "off")]);
    }
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Apply any pending migrations. Safe to run from several processes at once: sqlx holds an
/// advisory lock while it migrates.
pub async fn migrate(
    pool: &PgPool,
    check: MigrationCheck,
) -> Result<(), sqlx::migrate::MigrateError> {
    if check == MigrationCheck::WhenBehind && !is_behind(pool).await {
        return Ok(());
    }
    MIGRATOR.run(pool).await
}

/// Whether this binary knows a migration newer than any the database has applied. A
/// database without the migrations table (never migrated) is behind.
async fn is_behind(pool: &PgPool) -> bool {
    let Some(newest) = MIGRATOR.iter().map(|m| m.version).max() else {
        return false;
    };
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    !matches!(applied, Ok(Some(version)) if version >= newest)
}

/// A campaign's id and one of its lane numbers.
pub type Lane = (i64, u32);

/// The worker's connections for page statements, handed out and taken back without a word
/// to the server.
///
/// sqlx's pool (0.8) sends a connection a round trip (a `Sync`) before handing it out, unless
/// `test_before_acquire` is off, and again whenever it is returned, which cannot be turned
/// off: for the worker, two more wake-ups of a PostgreSQL backend for every page, on the same
/// two cores that run the pages. Measured at 1,000,000 recipients with alternating runs:
/// without the first, median 3.19 s against 3.38 s; without both, a median ratio to the
/// baseline of 1.35× against 1.48×. A page needs no such check. A broken connection fails its statement,
/// the page activity is retried, and pages are idempotent. So the page statement runs on
/// connections kept here: at most `size` at a time, opened when first needed with the pool's
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

    /// A connection for one page of `lane` (a campaign id and a lane number): the idle one
    /// that served the lane last if there is one, else the idle one returned last, else a new
    /// one. Waits while `size` are in use.
    ///
    /// Keeping a lane on one session keeps its partitions' relation caches and insert
    /// positions warm in that backend, where a new backend for each page would look them up
    /// again. Measured: 1,000,000 recipients in a median 2.87 s against 3.04 s (8 alternating
    /// pairs; PostgreSQL 3.94 CPU-s against 4.14).
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
    /// server ended (a restart ends them all, and each would cost a page a retry), and
    /// errors are rare enough that opening fresh connections costs nothing that shows.
    pub fn finish<T>(self, result: &Result<T, LedgerError>) {
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
