//! The control layer's errors, each with its [`Fault`].

use herald_store::{Fault, StoreError};
use herald_wire::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A request that the campaign's state or the data refuses (an empty audience, say).
    #[error("{0}")]
    Refused(String),
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot reach PostgreSQL at {url} ({source}); start it with `scripts/services up` or set DATABASE_URL"
    )]
    DatabaseUnreachable { url: String, source: sqlx::Error },
    #[error("applying database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "cannot reach Temporal at {address} ({reason}); start it with `scripts/services up` or set TEMPORAL_ADDRESS"
    )]
    TemporalUnreachable { address: String, reason: String },
    /// Temporal answered, but not with success.
    #[error("{action}: {reason}")]
    Temporal { action: String, reason: String },
}

impl ControlError {
    pub fn fault(&self) -> Fault {
        match self {
            Self::Store(e) => e.fault(),
            Self::Invalid(_) | Self::Refused(_) | Self::Config(_) => Fault::Refused,
            Self::DatabaseUnreachable { .. }
            | Self::TemporalUnreachable { .. }
            | Self::Temporal { .. } => Fault::Transient,
            Self::Migrate(_) => Fault::Internal,
        }
    }
}

pub type Result<T, E = ControlError> = std::result::Result<T, E>;

/// A connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    match temporalio_client::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
