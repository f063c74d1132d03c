//! Campaign status codes, as stored in `messages.status`.

use serde::{Deserialize, Serialize};

/// The user's numbering (0–3) with Herald's additions (4, 5). Stored as `smallint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i16", try_from = "i16")]
pub enum CampaignStatus {
    NotStarted = 0,
    InProgress = 1,
    Paused = 2,
    Completed = 3,
    Cancelled = 4,
    Failed = 5,
}

impl CampaignStatus {
    pub const fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            0 => Self::NotStarted,
            1 => Self::InProgress,
            2 => Self::Paused,
            3 => Self::Completed,
            4 => Self::Cancelled,
            5 => Self::Failed,
            _ => return None,
        })
    }

    /// The name shown by the CLI, in JSON and in the web UI's search attribute.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::InProgress => "in_progress",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// A finished campaign never changes status again.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }

    /// Whether an operator may pause a campaign in this status. Pausing a scheduled
    /// (not yet started) campaign is allowed: it will wait for a resume after `send_at`.
    pub const fn can_pause(self) -> bool {
        matches!(self, Self::NotStarted | Self::InProgress)
    }

    pub const fn can_resume(self) -> bool {
        matches!(self, Self::Paused)
    }

    pub const fn can_cancel(self) -> bool {
        !self.is_terminal()
    }
}

impl From<CampaignStatus> for i16 {
    fn from(s: CampaignStatus) -> i16 {
        s.code()
    }
}

impl TryFrom<i16> for CampaignStatus {
    type Error = String;
    fn try_from(code: i16) -> Result<Self, String> {
        Self::from_code(code).ok_or_else(|| format!("unknown campaign status code {code}"))
    }
}

impl std::fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_the_users_numbering() {
        for code in 0..=5 {
            let s = CampaignStatus::from_code(code).unwrap();
            assert_eq!(s.code(), code);
        }
        assert_eq!(CampaignStatus::NotStarted.code(), 0);
        assert_eq!(CampaignStatus::InProgress.code(), 1);
        assert_eq!(CampaignStatus::Paused.code(), 2);
        assert_eq!(CampaignStatus::Completed.code(), 3);
        assert!(CampaignStatus::from_code(6).is_none());
        assert!(CampaignStatus::from_code(-1).is_none());
    }

    #[test]
    fn transitions_refuse_finished_campaigns() {
        use CampaignStatus::*;
        for s in [Completed, Cancelled, Failed] {
            assert!(!s.can_pause() && !s.can_resume() && !s.can_cancel(), "{s}");
        }
        assert!(InProgress.can_pause() && NotStarted.can_pause());
        assert!(!Paused.can_pause() && Paused.can_resume() && Paused.can_cancel());
        assert!(!InProgress.can_resume());
    }

    #[test]
    fn serializes_as_its_code() {
        assert_eq!(serde_json::to_string(&CampaignStatus::Paused).unwrap(), "2");
        let s: CampaignStatus = serde_json::from_str("3").unwrap();
        assert_eq!(s, CampaignStatus::Completed);
        assert!(serde_json::from_str::<CampaignStatus>("9").is_err());
    }
}
