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

/// A connection string without its password, for messages: the password in the user part
/// and any `password=` parameter. A string that does not parse as a URL is not shown at
/// all, since where its password is cannot be told.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = temporalio_client::Url::parse(url) else {
        return "(a DATABASE_URL that is not a valid URL)".to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://herald:s3cret@db:5432/herald"),
            "postgres://herald:***@db:5432/herald"
        );
        let r = redact("postgres://herald@db/herald?sslmode=require&password=s3cret");
        assert!(
            !r.contains("s3cret") && r.contains("sslmode=require"),
            "{r}"
        );
        let r = redact("postgres://herald:s3cret@db:port/herald");
        assert!(!r.contains("s3cret"), "{r}");
        assert_eq!(
            redact("postgres://herald@127.0.0.1:55432/herald"),
            "postgres://herald@127.0.0.1:55432/herald"
        );
    }
}
