//! Connecting to PostgreSQL and keeping the schema current.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

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
}

impl PoolSettings {
    pub fn worker(max_connections: u32) -> Self {
        Self {
            max_connections,
            statement_timeout: Some(Duration::from_secs(4)),
        }
    }

    pub fn cli() -> Self {
        Self {
            max_connections: 4,
            statement_timeout: None,
        }
    }
}

/// Connect, failing fast (5 s) when the server is not there.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<PgPool, sqlx::Error> {
    let mut options = PgConnectOptions::from_str(url)?.application_name("herald");
    if let Some(t) = settings.statement_timeout {
        options = options.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
    }
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Apply any pending migrations. Safe to run from several processes at once: sqlx holds an
/// advisory lock while it migrates.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
