//! Herald's control layer: the use cases every front end calls (the `herald` CLI, the HTTP
//! API and its dashboard). Each returns typed results and a [`ControlError`] whose
//! [`Fault`] says whose fault it is; front ends parse their input and print or serialize the
//! result, and hold no orchestration and no SQL.
//!
//! - [`config`]: the one configuration of every binary, with its environment variables.
//! - [`temporal`]: connecting to Temporal.
//! - [`launch`]: launching a campaign, its fields checked once for every front end.
//! - [`audiences`]: saved audiences.
//! - [`requests`]: pause, resume and cancel (recorded in the campaign's row, then signalled).
//! - [`deliveries`]: an external campaign's report, and retrying its failed deliveries.
//! - [`campaigns`]: a campaign's status, the list, and watching one live.
//! - [`consent`]: categories, opt-outs and preferences, one-click unsubscribe, suppressions.
//! - [`inbox`]: a user's inbox, its unread badge, and marking messages read.
//! - [`preview`]: a campaign rendered for chosen users, and test sends.
//! - [`page`]: keyset pagination of lists.
//! - [`users`]: users from the API, and test users.
//! - [`import`]: importing users from CSV or NDJSON.
//! - [`keys`]: named API keys with scopes, and the dashboard's server-side sessions.
//! - [`recovery`]: a new run for a campaign whose workflow is gone.
//! - [`error`]: the errors ([`ControlError`]).

pub mod audiences;
pub mod campaigns;
pub mod config;
pub mod consent;
pub mod deliveries;
pub mod error;
pub mod import;
pub mod inbox;
pub mod keys;
pub mod launch;
pub mod page;
pub mod preview;
pub mod process;
pub mod recovery;
pub mod requests;
pub mod temporal;
pub mod users;

pub use campaigns::History;
pub use config::Config;
pub use error::{ControlError, Result};
pub use herald_store::{
    Fault, StoreError,
    audience::{self, Preview},
    campaigns::{CampaignView, RequestMade, StatusChange, WaveView},
    inbox::{InboxItem, ReadFilter},
    report::Report,
    sends::retry_offered,
    status::{Request, offers},
};

use herald_store::{
    PgPool,
    connect::{self, PoolSettings},
    quiet_pool::QuietPool,
};
use temporalio_client::Client;
use tokio::sync::{Mutex, OnceCell, broadcast};

/// Connect to PostgreSQL and check its schema (or migrate it, if `settings` say so), failing
/// with a hint when the server is not there or the schema is not this binary's.
pub async fn connect_database(config: &Config, settings: &PoolSettings) -> Result<PgPool> {
    config.check()?;
    let url = error::redact(&config.database_url);
    let pool = connect::connect(&config.database_url, settings)
        .await
        .map_err(|source| ControlError::DatabaseUnreachable {
            url: url.clone(),
            source,
        })?;
    if connect::migrate(&pool, settings.migrations).await? {
        tracing::warn!(
            database = %url,
            "the database's schema has migrations newer than this build; upgrade it (docs/operations.md, upgrades)"
        );
    }
    Ok(pool)
}

/// The `application_name` of the HTTP API's sessions for apps' inbox requests (the others
/// are `herald`).
pub const APPS_SESSION_NAME: &str = "herald-apps";

/// A front end's handle on Herald: the database, and Temporal once a use case needs it.
pub struct Control {
    config: Config,
    db: PgPool,
    temporal: OnceCell<Client>,
    /// Status changes, shared by every watch (`campaigns`).
    changes: Mutex<Option<broadcast::Sender<std::sync::Arc<str>>>>,
    /// The campaigns being watched, each read once per look for all its watches.
    watched: std::sync::Arc<campaigns::Watched>,
    /// The database's time zone names, read when users are first checked.
    time_zones: OnceCell<std::sync::Arc<std::collections::HashSet<String>>>,
    /// Inbox campaigns' content, compiled, for rendering inboxes (`inbox`).
    templates: inbox::TemplateCache,
    /// The key of unsubscribe links, read when first needed (`consent`).
    unsubscribe: OnceCell<herald_wire::UnsubscribeKey>,
    /// A server's sessions for apps' inbox requests, the most frequent it answers
    /// (`inbox`); `None` in a command, which uses `db`.
    apps: Option<QuietPool>,
}

impl Control {
    /// Connect to the database with up to `sessions` connections. Temporal is reached when a
    /// use case first needs it.
    pub async fn connect(config: Config, sessions: u32) -> Result<Self> {
        Self::connect_with(config, PoolSettings::cli(sessions)).await
    }

    /// Connect and apply any pending migrations (`herald migrate`).
    pub async fn migrate(config: Config) -> Result<Self> {
        let mut settings = PoolSettings::cli(1);
        settings.migrations = connect::MigrationCheck::Apply;
        Self::connect_with(config, settings).await
    }

    async fn connect_with(config: Config, settings: PoolSettings) -> Result<Self> {
        let db = connect_database(&config, &settings).await?;
        Ok(Self {
            apps: None,
            config,
            db,
            temporal: OnceCell::new(),
            changes: Mutex::new(None),
            watched: Default::default(),
            time_zones: OnceCell::new(),
            templates: Default::default(),
            unsubscribe: OnceCell::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connect to the database for a long-lived server with up to `sessions` connections
    /// (the HTTP API).
    ///
    /// Apps' inbox requests have up to `sessions` more of their own, handed out without
    /// sqlx's round trip to check each (`store::quiet_pool`), waited for (and opened) within
    /// as long as the pool's (5 s), and named [`APPS_SESSION_NAME`] in `pg_stat_activity`.
    pub async fn serve(
        config: Config,
        sessions: u32,
        statement_timeout: std::time::Duration,
    ) -> Result<Self> {
        let mut control =
            Self::connect_with(config, PoolSettings::server(sessions, statement_timeout)).await?;
        control.apps = Some(
            QuietPool::new(&control.db, sessions as usize)
                .named(APPS_SESSION_NAME)
                .waiting_at_most(connect::ACQUIRE_TIMEOUT),
        );
        Ok(control)
    }

    /// Whether both services answer now: PostgreSQL a query, Temporal a call.
    pub async fn ready(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.db)
            .await
            .map_err(|source| ControlError::DatabaseUnreachable {
                url: error::redact(&self.config.database_url),
                source,
            })?;
        temporal::ping(self.temporal().await?, &self.config).await
    }

    async fn temporal(&self) -> Result<&Client> {
        self.temporal
            .get_or_try_init(|| temporal::connect(&self.config))
            .await
    }
}
