//! Connecting to PostgreSQL and keeping the schema current.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationCheck {
    /// Run the migrator: apply what is pending and verify the checksums of what was applied.
    /// The worker does this once, on start.
    Full,
    /// One query for the newest applied version; the migrator runs only when the database is
    /// behind this binary. The CLI does this on every command, because the full check takes
    /// an advisory lock and issues DDL, which a script polling `herald status` would take
    /// from a running campaign.
    WhenBehind,
}

impl PoolSettings {
    /// The worker's: `statement_timeout` below the page activity's own timeout.
    pub fn worker(max_connections: u32, statement_timeout: Duration) -> Self {
        Self {
            max_connections,
            statement_timeout: Some(statement_timeout),
            bitmap_scans: false,
            migrations: MigrationCheck::Full,
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
