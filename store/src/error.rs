//! Errors from the store, and the one classification of whose fault an error is.

use herald_wire::{CampaignKey, CampaignStatus, InvalidInput};

/// Whose fault an error is, and so what may be done about it. Every front end maps this in
/// one place: the CLI to its exit code, the activities to retryable or not, the HTTP API to a
/// status code.
///
/// The first five are refusals ([`Fault::is_refusal`]): nothing was changed, and asking again
/// the same way gets the same answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The input cannot be valid, whatever the ledger holds.
    Invalid,
    /// What the request names is not there: a campaign, a user, a delivery.
    NotFound,
    /// The request contradicts what exists: a key already used by another campaign.
    Conflict,
    /// The campaign's state does not allow the request now (it has finished, it is being
    /// cancelled).
    State,
    /// A well-formed request that the data or the settings refuse: an audience nobody is
    /// in, nothing to retry, a setting that cannot work.
    Unmet,
    /// A service is down or busy (a dropped connection, a restart, a timeout): the same
    /// request may succeed later.
    Transient,
    /// Herald's own fault: a bug, a broken invariant, a schema that does not match.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no campaign with key {0:?}")]
    UnknownCampaign(String),
    #[error("campaign {key} is {status}; {action} is not possible")]
    WrongStatus {
        key: CampaignKey,
        status: CampaignStatus,
        action: &'static str,
    },
    #[error("campaign {key} is being cancelled; {action} is not possible")]
    Cancelling {
        key: CampaignKey,
        action: &'static str,
    },
    #[error("campaign key {0} is already used; pick another key")]
    DuplicateKey(CampaignKey),
    #[error("no user with id {0}")]
    UnknownUser(i64),
    #[error("no category {0:?}; declare it first with `herald categories add {0}`")]
    UnknownCategory(String),
    #[error("user {user} did not receive campaign {key}")]
    NotARecipient { user: i64, key: CampaignKey },
    /// `herald retry-failed` of a campaign with nothing to retry.
    #[error("{0}")]
    NothingToRetry(String),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A request that the data refuses, at one of its fields (a local send time that has
    /// passed in every recipient's zone).
    #[error("{}: {}", .0.field, .0.message)]
    Field(herald_wire::FieldError),

    /// A page or a status change named a campaign row that does not exist: only Herald
    /// itself hands out row ids, so this is ours.
    #[error("no campaign with id {0}")]
    UnknownCampaignId(i64),
    /// Two attempts of one page ran at once; the retry will find the winner's record.
    #[error("another attempt of this page committed first")]
    PageRace,
    /// Every page connection stayed busy for so long that a statement begun now could end
    /// after the page's timeout; the page gave up without writing.
    #[error("no page connection came free in time for the page to finish inside its timeout")]
    Busy,
    /// The statement that selects a page's recipients ran past its time limit (SQLSTATE
    /// 57014): the page should scan fewer users (see `herald_workflows::scan`).
    #[error("database error: {0}")]
    ScanTimedOut(sqlx::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Fault {
    /// The request was refused as it stands (the caller's to change), rather than failed.
    pub const fn is_refusal(self) -> bool {
        !matches!(self, Self::Transient | Self::Internal)
    }
}

impl StoreError {
    pub fn fault(&self) -> Fault {
        match self {
            Self::UnknownCampaign(_)
            | Self::UnknownUser(_)
            | Self::UnknownCategory(_)
            | Self::NotARecipient { .. } => Fault::NotFound,
            Self::WrongStatus { .. } | Self::Cancelling { .. } => Fault::State,
            Self::DuplicateKey(_) => Fault::Conflict,
            Self::NothingToRetry(_) => Fault::Unmet,
            Self::Invalid(_) | Self::Field(_) => Fault::Invalid,
            Self::UnknownCampaignId(_) => Fault::Internal,
            Self::PageRace | Self::Busy | Self::ScanTimedOut(_) => Fault::Transient,
            Self::Database(e) => database_fault(e),
        }
    }

    /// The SQLSTATE of a database error, if PostgreSQL sent one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Self::Database(sqlx::Error::Database(db))
            | Self::ScanTimedOut(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// A page's scanning statement's error: a timeout is [`StoreError::ScanTimedOut`].
    pub(crate) fn of_scan(self) -> Self {
        let timed_out = self.sqlstate().as_deref() == Some("57014");
        match self {
            Self::Database(e) if timed_out => Self::ScanTimedOut(e),
            other => other,
        }
    }
}

/// Whether a database error may go away by itself. PostgreSQL's own errors are told apart
/// by SQLSTATE (its appendix A): a lost or refused connection, a server shutting down or
/// starting, a serialization failure or deadlock, a lock or statement timeout, exhausted
/// resources, a read-only standby during a failover. Everything else it reports (permission
/// denied, an undefined table or column, a missing partition, a violated constraint, bad
/// data) is the same on the next try. So is a value Herald cannot read. Errors on the way
/// to the server (I/O, TLS, a full pool) are transient.
fn database_fault(e: &sqlx::Error) -> Fault {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if is_transient_sqlstate(&code) => Fault::Transient,
            Some(_) => Fault::Internal,
            // No SQLSTATE: not from PostgreSQL itself; assume the way there.
            None => Fault::Transient,
        },
        sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Encode(_)
        | sqlx::Error::Configuration(_)
        | sqlx::Error::InvalidArgument(_)
        | sqlx::Error::Migrate(_) => Fault::Internal,
        _ => Fault::Transient,
    }
}

/// SQLSTATEs that describe a moment, not the request.
pub fn is_transient_sqlstate(code: &str) -> bool {
    let class = code.get(..2).unwrap_or(code);
    matches!(
        class,
        // connection exception; insufficient resources (too many connections, disk full,
        // out of memory); system error (I/O)
        "08" | "53" | "58"
    ) || matches!(
        code,
        // serialization failure, deadlock
        "40001" | "40P01"
        // lock not available
        | "55P03"
        // query canceled (statement timeout), admin shutdown, crash shutdown, cannot
        // connect now, idle session timeout
        | "57014" | "57P01" | "57P02" | "57P03" | "57P05"
        // read-only transaction: a standby during failover
        | "25006"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_of_a_moment_are_transient_and_the_rest_are_not() {
        for code in [
            "08006", "08001", "40001", "40P01", "53300", "53100", "57P01", "57P03", "57014",
            "55P03", "58030", "25006",
        ] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in [
            "42501", "42P01", "42703", "42883", "23514", "23505", "22P02", "0A000", "XX000",
            "57P04", "3D000", "28P01",
        ] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn a_value_that_cannot_be_read_is_ours_and_a_lost_connection_is_transient() {
        let decode = StoreError::Database(sqlx::Error::Decode("unknown status code 9".into()));
        assert_eq!(decode.fault(), Fault::Internal);
        let lost = StoreError::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(lost.fault(), Fault::Transient);
        let unknown = StoreError::UnknownCampaign("k".into());
        assert_eq!(unknown.fault(), Fault::NotFound);
        assert!(unknown.fault().is_refusal() && !lost.fault().is_refusal());
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
