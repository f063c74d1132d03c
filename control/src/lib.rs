//! Herald's control layer: the use cases every front end calls (the `herald` CLI today, the
//! HTTP API and the dashboard next). Each returns typed results and a [`ControlError`] whose
//! [`Fault`] says whose fault it is; front ends parse their input and print or serialize the
//! result, and hold no orchestration and no SQL.
//!
//! - [`config`]: the one configuration of every binary, with its environment variables.
//! - [`temporal`]: connecting to Temporal.
//! - [`launch`]: launching a campaign.
//! - [`requests`]: pause, resume and cancel (recorded in the campaign's row, then signalled).
//! - [`campaigns`]: a campaign's status, the list, and watching one live.
//! - [`inbox`]: a user's inbox and marking a message read.
//! - [`users`]: adding test users.
//! - [`error`]: [`ControlError`].

pub mod campaigns;
pub mod config;
pub mod error;
pub mod inbox;
pub mod launch;
pub mod requests;
pub mod temporal;
pub mod users;

pub use config::Config;
pub use error::{ControlError, Result};
pub use herald_store::{Fault, campaigns::CampaignView, inbox::InboxItem, status::Request};

use herald_store::{
    PgPool,
    connect::{self, PoolSettings},
};
use temporalio_client::Client;
use tokio::sync::OnceCell;

/// Connect to PostgreSQL and check its schema (or migrate it, if `settings` say so), failing
/// with a hint when the server is not there or the schema is not this binary's.
pub async fn connect_database(config: &Config, settings: &PoolSettings) -> Result<PgPool> {
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

/// A front end's handle on Herald: the database, and Temporal once a use case needs it.
pub struct Control {
    config: Config,
    db: PgPool,
    temporal: OnceCell<Client>,
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
            config,
            db,
            temporal: OnceCell::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    async fn temporal(&self) -> Result<&Client> {
        self.temporal
            .get_or_try_init(|| temporal::connect(&self.config))
            .await
    }
}
