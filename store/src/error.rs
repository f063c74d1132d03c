//! Errors from the store, and the one classification of whose fault an error is.

use herald_wire::{CampaignKey, CampaignStatus, InvalidInput};

/// Whose fault an error is, and so what may be done about it. Every front end maps this in
/// one place: the CLI to its exit code, the activities to retryable or not, the HTTP API to a
/// status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The caller's input, or the campaign's state, does not allow the request. Nothing was
    /// changed; asking again the same way gets the same answer.
    Refused,
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
    #[error("campaign {0} already exists; pick another --key")]
    DuplicateKey(CampaignKey),
    #[error("no user with id {0}")]
    UnknownUser(i64),
    #[error("user {user} did not receive campaign {key}")]
    NotARecipient { user: i64, key: CampaignKey },
    #[error(transparent)]
    Invalid(#[from] InvalidInput),

    /// A page or a status change named a campaign row that does not exist: only Herald
    /// itself hands out row ids, so this is ours.
    #[error("no campaign with id {0}")]
    UnknownCampaignId(i64),
    /// Two attempts of one page ran at once; the retry will find the winner's record.
    #[error("another attempt of this page committed first")]
    PageRace,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub fn fault(&self) -> Fault {
        match self {
            Self::UnknownCampaign(_)
            | Self::WrongStatus { .. }
            | Self::DuplicateKey(_)
            | Self::UnknownUser(_)
            | Self::NotARecipient { .. }
            | Self::Invalid(_) => Fault::Refused,
            Self::UnknownCampaignId(_) => Fault::Internal,
            Self::Database(e) if is_decode(e) => Fault::Internal,
            Self::PageRace | Self::Database(_) => Fault::Transient,
        }
    }
}

/// A value the database returned that Herald cannot read: reading it again reads the same.
fn is_decode(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Decode(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_cannot_be_read_is_ours_and_a_lost_connection_is_transient() {
        let decode = StoreError::Database(sqlx::Error::Decode("unknown status code 9".into()));
        assert_eq!(decode.fault(), Fault::Internal);
        let lost = StoreError::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(lost.fault(), Fault::Transient);
        assert_eq!(
            StoreError::UnknownCampaign("k".into()).fault(),
            Fault::Refused
        );
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
