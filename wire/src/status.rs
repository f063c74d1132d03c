//! Status codes, as stored in the ledger: a campaign's (`messages.status`) and a recipient's
//! item's (`message_items.status`).

use serde::{Deserialize, Serialize};

/// A campaign's status: the codes 0–3 of the specification, and Herald's 4 and 5. Stored as
/// `smallint`, serialized as its code.
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
        Self::ALL.into_iter().find(|s| s.code() == code)
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

    pub const ALL: [Self; 6] = [
        Self::NotStarted,
        Self::InProgress,
        Self::Paused,
        Self::Completed,
        Self::Cancelled,
        Self::Failed,
    ];

    /// A finished campaign never changes status again. A failed one is not finished: it
    /// stopped on an error that retrying could not fix, and waits for an operator to resume
    /// it (after fixing the cause) or cancel it.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    /// Whether the campaign stands still until an operator acts: paused or failed.
    pub const fn is_held(self) -> bool {
        matches!(self, Self::Paused | Self::Failed)
    }

    /// Every status a campaign can still leave.
    pub fn unfinished() -> Vec<Self> {
        Self::ALL.into_iter().filter(|s| !s.is_terminal()).collect()
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

/// Serialize a status as two fields, `status` (its code) and `status_name`, in a struct that
/// holds it as `#[serde(flatten, serialize_with = "herald_wire::status::code_and_name")]`.
pub fn code_and_name<S: serde::Serializer>(
    status: &CampaignStatus,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut fields = serializer.serialize_struct("CampaignStatus", 2)?;
    fields.serialize_field("status", &status.code())?;
    fields.serialize_field("status_name", status.name())?;
    fields.end()
}

/// What operators last asked of a campaign (`messages.intent`): keep sending, hold still, or
/// stop for good. The workflow's own status says what the campaign *does*; this says what it
/// was *asked* to do, and the page statement obeys it at once. Stored as `smallint`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i16", try_from = "i16")]
pub enum Intent {
    #[default]
    Run = 0,
    Pause = 1,
    Cancel = 2,
}

impl Intent {
    pub const ALL: [Self; 3] = [Self::Run, Self::Pause, Self::Cancel];

    pub const fn code(self) -> i16 {
        self as i16
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Pause => "pause",
            Self::Cancel => "cancel",
        }
    }
}

impl From<Intent> for i16 {
    fn from(i: Intent) -> i16 {
        i.code()
    }
}

impl TryFrom<i16> for Intent {
    type Error = String;
    fn try_from(code: i16) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|i| i.code() == code)
            .ok_or_else(|| format!("unknown intent code {code}"))
    }
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An operator's request as the campaign's row records it: the intent, its place in the
/// order of requests (`messages.intent_seq`, 0 before the first), and the reason given. A
/// later request always has a higher number, so whoever holds two can tell which is newer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requested {
    pub intent: Intent,
    pub seq: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where one recipient's item stands. An inbox item is sent the moment it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Pending = 0,
    Sent = 1,
    Failed = 2,
    /// Left out when its page ran: opted out or suppressed (docs/consent.md).
    Suppressed = 3,
}

impl ItemStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Sent, Self::Failed, Self::Suppressed];

    pub const fn code(self) -> i16 {
        self as i16
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
        }
    }
}

impl TryFrom<i16> for ItemStatus {
    type Error = String;
    fn try_from(code: i16) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or_else(|| format!("unknown item status code {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_the_specification() {
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
    fn unfinished_statuses_are_the_ones_before_the_end() {
        use CampaignStatus::*;
        assert_eq!(
            CampaignStatus::unfinished(),
            vec![NotStarted, InProgress, Paused, Failed]
        );
    }

    #[test]
    fn a_flattened_status_shows_its_code_and_name() {
        #[derive(Serialize)]
        struct View {
            key: &'static str,
            #[serde(flatten, serialize_with = "code_and_name")]
            status: CampaignStatus,
        }
        let json = serde_json::to_value(View {
            key: "k",
            status: CampaignStatus::Paused,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"key": "k", "status": 2, "status_name": "paused"})
        );
    }

    #[test]
    fn item_codes_round_trip() {
        for s in ItemStatus::ALL {
            assert_eq!(ItemStatus::try_from(s.code()), Ok(s));
        }
        assert!(ItemStatus::try_from(4).is_err());
    }

    #[test]
    fn serializes_as_its_code() {
        assert_eq!(serde_json::to_string(&CampaignStatus::Paused).unwrap(), "2");
        let s: CampaignStatus = serde_json::from_str("3").unwrap();
        assert_eq!(s, CampaignStatus::Completed);
        assert!(serde_json::from_str::<CampaignStatus>("9").is_err());
    }
}
