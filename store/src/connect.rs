//! Connecting to PostgreSQL and keeping the schema current.

use std::{str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The schema in `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Server-side limit on any one statement.
    pub statement_timeout: Option<Duration>,
    /// Whether the planner may use bitmap scans. The worker's connections exist for the page
    /// statement, which must walk `users` along its primary key from the lane's cursor.
    /// Offered a bitmap scan, PostgreSQL takes it whenever its statistics are missing or
    /// stale (a freshly loaded `users` table), and then every page reads and sorts the lane's
    /// whole remaining id range to keep 500 rows. The one worker statement that wants the GIN
    /// index (counting a small segment) turns them back on for itself.
    pub bitmap_scans: bool,
    /// How this process makes sure the schema is current when it connects.
    pub migrations: MigrationCheck,
    /// Whether a pooled session is pinged before each use. A server answering thousands of
    /// short requests a second does not: the ping is a round trip per request, and a session
    /// that died is found by the request's own statement (a transient error, retried by the
    /// caller) and dropped from the pool.
    pub ping_before_use: bool,
    /// Whether every statement is planned for the values it is run with
    /// (`plan_cache_mode = force_custom_plan`), even when it is prepared once and kept. A
    /// statement on `message_items` that names one user (the inbox) then opens and locks only
    /// that user's partition: a plan kept for any user would lock all of them at each use.
    /// The HTTP API's sessions keep their statements prepared (one round trip a request, no
    /// parsing) and plan them each time. A command runs each statement once or twice, and
    /// the worker's page statements want PostgreSQL's own choice: both leave it.
    pub custom_plans: bool,
}

/// How a process treats the database's schema when it connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationCheck {
    /// Apply what is pending and verify what was applied: `herald migrate`, and a worker
    /// configured to (`HERALD_MIGRATE=true`).
    Apply,
    /// Only check, in one query, that every migration this binary knows is applied
    /// unchanged, and refuse to go on otherwise ([`SchemaError`]). Every other command and
    /// worker: a mistyped `DATABASE_URL` is then an error, not a new schema on the wrong
    /// server.
    Require,
}

impl PoolSettings {
    /// The worker's: `statement_timeout` below the page activity's own timeout.
    pub fn worker(max_connections: u32, statement_timeout: Duration, migrate: bool) -> Self {
        Self {
            max_connections,
            statement_timeout: Some(statement_timeout),
            bitmap_scans: false,
            ping_before_use: true,
            custom_plans: false,
            migrations: if migrate {
                MigrationCheck::Apply
            } else {
                MigrationCheck::Require
            },
        }
    }

    /// A long-lived server's (the HTTP API): no statement runs past `statement_timeout`, so
    /// a slow query cannot hold a session that other requests wait for.
    pub fn server(max_connections: u32, statement_timeout: Duration) -> Self {
        Self {
            max_connections,
            statement_timeout: Some(statement_timeout),
            bitmap_scans: true,
            migrations: MigrationCheck::Require,
            ping_before_use: false,
            custom_plans: true,
        }
    }

    /// A command's: `max_connections` sessions (one for a command that runs its statements
    /// one after another: a larger pool opens a second session for the second statement,
    /// because sqlx returns a connection to the pool asynchronously).
    pub fn cli(max_connections: u32) -> Self {
        Self {
            max_connections,
            statement_timeout: None,
            bitmap_scans: true,
            migrations: MigrationCheck::Require,
            ping_before_use: true,
            custom_plans: false,
        }
    }
}

/// How long a caller waits for a pooled session while all are in use.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect, failing fast (5 s) when the server is not there.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<PgPool, sqlx::Error> {
    // Herald's statements are written for READ COMMITTED, PostgreSQL's default: the frequency
    // cap's exactness rests on a statement that waited for a lock seeing what the holder
    // committed. Asked for on every connection, so a database whose default is stricter
    // changes nothing. (The server splits its startup options at spaces: the one in the
    // value is escaped.)
    let mut options = PgConnectOptions::from_str(url)?
        .application_name("herald")
        .options([("default_transaction_isolation", r"read\ committed")]);
    match settings.statement_timeout {
        Some(t) => {
            // Workers' and servers' statements are short. PostgreSQL JIT-compiles a
            // statement whose estimated cost is high, and a page's per-recipient consent
            // checks inflate the estimate of a 500-row page: compiling it took 300 ms.
            options = options.options([
                ("statement_timeout", format!("{}ms", t.as_millis())),
                ("jit", "off".to_owned()),
            ]);
        }
        // A command's bulk statements (seeding millions of users) take seconds by design
        // and show a progress bar; sqlx's "slow statement" warnings would bury it.
        None => {
            options = options.log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        }
    }
    if !settings.bitmap_scans {
        options = options.options([("enable_bitmapscan", "off")]);
    }
    if settings.custom_plans {
        options = options.options([("plan_cache_mode", "force_custom_plan")]);
    }
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(settings.ping_before_use)
        .connect_with(options)
        .await
}

/// What is wrong with a database's schema, for this binary.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the database has no Herald schema; create it with `herald migrate`")]
    Missing,
    #[error(
        "the database's schema is older than this Herald (migration {0} is not applied); apply it with `herald migrate`"
    )]
    Behind(i64),
    #[error(
        "migration {0} in the database is not the one this Herald has (changed after it was applied); this database belongs to another build of Herald"
    )]
    Changed(i64),
    #[error("migration {0} failed part-way in the database; repair it, then run `herald migrate`")]
    Failed(i64),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("reading the schema's version: {0}")]
    Database(#[from] sqlx::Error),
}

/// Make sure the schema is what this binary needs: apply pending migrations
/// ([`MigrationCheck::Apply`], safe from several processes at once: sqlx holds an advisory
/// lock while it migrates), or only check ([`MigrationCheck::Require`]). Migrations newer than
/// this binary are allowed (docs/operations.md: migrations stay compatible with the release
/// before them, so workers can be rolled after `herald migrate`); `Ok(true)` says there are.
pub async fn migrate(pool: &PgPool, check: MigrationCheck) -> Result<bool, SchemaError> {
    if check == MigrationCheck::Apply {
        MIGRATOR.run(pool).await?;
    }
    let applied: Vec<(i64, Vec<u8>, bool)> =
        match sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            // 42P01: undefined_table, a database that was never migrated.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Err(SchemaError::Missing);
            }
            Err(e) => return Err(e.into()),
        };
    if let Some((version, ..)) = applied.iter().find(|(_, _, ok)| !ok) {
        return Err(SchemaError::Failed(*version));
    }
    for known in MIGRATOR.iter() {
        match applied.iter().find(|(v, ..)| *v == known.version) {
            None if applied.is_empty() => return Err(SchemaError::Missing),
            None => return Err(SchemaError::Behind(known.version)),
            Some((_, checksum, _)) if checksum[..] != known.checksum[..] => {
                return Err(SchemaError::Changed(known.version));
            }
            Some(_) => {}
        }
    }
    Ok(applied
        .iter()
        .any(|(v, ..)| !MIGRATOR.iter().any(|m| m.version == *v)))
}
