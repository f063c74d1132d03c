//! Errors from the ledger, split by whose fault they are.

use herald_wire::{CampaignKey, CampaignStatus, InvalidInput};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The caller's fault: shown as one line, never retried.
    #[error("no campaign with key {0:?}")]
    UnknownCampaign(String),
    #[error("no campaign with id {0}")]
    UnknownCampaignId(i64),
    #[error("campaign {key} is {status}; {action} is not possible")]
    WrongStatus {
        key: CampaignKey,
        status: CampaignStatus,
        action: &'static str,
    },
    #[error("campaign {0} already exists; pick another --key")]
    DuplicateKey(CampaignKey),
    #[error("user {user} did not receive campaign {key}")]
    NotARecipient { user: i64, key: CampaignKey },
    #[error(transparent)]
    Invalid(#[from] InvalidInput),

    /// Ours: two attempts of one page ran at once; the retry will find the winner's record.
    #[error("another attempt of this page committed first")]
    PageRace,
    /// Ours: the database failed. Retried by Temporal when it happens in an activity.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl LedgerError {
    /// Whether repeating the same call could succeed (a dropped connection, a restart, a
    /// statement timeout), as opposed to a request that is wrong and will stay wrong.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Database(_) | Self::PageRace)
    }
}
