//! The campaign workflow's durable state: what one run hands the next at continue-as-new.
//! The workflow holds exactly this (plus a few fields that live only within a run), so
//! carrying it is a clone. Only plain data here; the transitions are the workflow's
//! (`herald_workflows::state`).

use serde::{Deserialize, Serialize};

use crate::{CampaignStatus, Intent, LaneProgress, Rate, Requested};

/// State handed from one workflow run to the next at continue-as-new.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    /// The campaign's row id (`messages.id`); 0 until the campaign is registered.
    pub campaign_id: i64,
    /// Recipients in the audience at launch.
    pub total: i64,
    pub lanes: Vec<Lane>,
    pub pages_done: u64,
    /// How many runs came before this one (for progress and tests).
    pub run: u32,
    pub lifecycle: Lifecycle,
    /// Why the campaign stands as it does: the operator's reason, or the error it failed on.
    #[serde(default)]
    pub reason: Option<String>,
    /// Pages failing right now, if they are.
    #[serde(default)]
    pub trouble: Trouble,
    /// A bookkeeping step failing when the previous run handed over to this one, so that
    /// its grace runs on across runs (a flood of signals during a permanent error would
    /// otherwise hand over for ever, each run starting the grace again).
    #[serde(default)]
    pub bookkeeping: Vec<FailingStep>,
    /// The status the row holds as far as the handing-over run knew, and whether the reason
    /// was still to be written with it: a write that run still owed is the next one's.
    #[serde(default)]
    pub row_status: Option<CampaignStatus>,
    #[serde(default)]
    pub reason_unwritten: bool,
    #[serde(default)]
    pub requests: Requests,
    /// An external campaign's latest tries, for its auto-pause.
    #[serde(default)]
    pub window: DeliveryWindow,
    /// A local-time campaign's waves, by opening (empty for any other): `lanes` walk wave
    /// number `wave`, and `closed` holds what the waves before it committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<WaveOpening>,
    #[serde(default)]
    pub wave: u32,
    /// How many waves have been walked or begun: the next new one's index.
    #[serde(default)]
    pub opened: u32,
    /// Waves held half way by quiet hours.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<Parked>,
    #[serde(default)]
    pub closed: WaveTotals,
    /// The audience's id bounds, which every wave's lanes split.
    #[serde(default)]
    pub min_id: i64,
    #[serde(default)]
    pub max_id: i64,
    /// Where the ledger's pages leave the lanes of waves not opened yet (a campaign
    /// recovered or retried): each wave goes on from there when it opens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<LaneProgress>,
}

/// A wave of a local-time campaign as its workflow needs it (the zones are the pages'
/// business: `herald_wire::local::WavePlan`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveOpening {
    /// When it opens, in Unix milliseconds.
    pub opens_at_ms: i64,
    /// Its users when the plan was made.
    pub size: i64,
    /// Its quiet hours, `[start, end)` in Unix milliseconds: while one lasts, the wave is
    /// held (`herald_wire::local::Wave::quiet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet: Vec<[i64; 2]>,
}

/// A wave that quiet hours stopped half way: its lanes as they stood, until its window ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    pub wave: u32,
    pub until_ms: i64,
    pub lanes: Vec<LaneCursor>,
}

/// Every wave's lanes are numbered in a block of their own in the ledger
/// (`message_pages.lane` = wave × this + the lane's index), as many as a campaign may have.
pub const WAVE_LANES: u32 = crate::Lanes::MAX;

/// Recipients committed, by outcome: what closed waves committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveTotals {
    pub sent: i64,
    pub failed: i64,
    pub suppressed: i64,
}

impl std::ops::Add for WaveTotals {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            sent: self.sent + other.sent,
            failed: self.failed + other.failed,
            suppressed: self.suppressed + other.suppressed,
        }
    }
}

/// Where a campaign stands in its life, as its workflow sees it. Completed and cancelled are
/// not here: a run that reaches them ends, and there is nothing left to carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lifecycle {
    /// Waiting for its send time, or for its first status write.
    #[default]
    Scheduled,
    /// Sending.
    Running,
    /// Held by an operator or by its own auto-pause. `started` says where a resume goes back
    /// to: running, or waiting for the send time.
    Paused { started: bool },
    /// Stopped on an error that retrying could not fix, until a resume tries again.
    Failed { started: bool },
    /// Asked to stop for good: it ends as cancelled once no page is in flight.
    Cancelling,
}

impl Lifecycle {
    /// Paused or failed: waiting for an operator.
    pub const fn is_held(self) -> bool {
        matches!(self, Self::Paused { .. } | Self::Failed { .. })
    }

    /// An operator (or an error) wants the campaign still.
    pub const fn is_stopped(self) -> bool {
        self.is_held() || matches!(self, Self::Cancelling)
    }

    /// Whether the campaign has been marked in progress (its send time came).
    pub const fn is_started(self) -> bool {
        match self {
            Self::Running => true,
            Self::Paused { started } | Self::Failed { started } => started,
            Self::Scheduled | Self::Cancelling => false,
        }
    }
}

/// One lane: a disjoint range of user ids walked in id order. Its cursor is carried; its
/// turn lives only within a run (a run ends with no page in flight and no lane waiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    #[serde(flatten)]
    pub cursor: LaneCursor,
    /// How many user ids the lane's next page may scan past its cursor (0: not sized yet;
    /// see `herald_workflows::scan`). It bounds a page's work whatever the audience's
    /// density: a page that finds fewer recipients than its limit in the ids it scanned
    /// moves the cursor to the end of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scan: u64,
    #[serde(skip)]
    pub turn: Turn,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<LaneCursor> for Lane {
    fn from(cursor: LaneCursor) -> Self {
        Self {
            cursor,
            scan: 0,
            turn: Turn::default(),
        }
    }
}

/// A lane's range `(after, until]` and its committed counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneCursor {
    /// The last user id whose page is committed (exclusive lower bound of the next page).
    pub after: i64,
    /// The lane's inclusive upper bound.
    pub until: i64,
    pub done: bool,
    /// Committed totals for this lane, as read back from the ledger.
    pub sent: i64,
    pub failed: i64,
    #[serde(default)]
    pub suppressed: i64,
}

/// What a lane is doing within the current run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Turn {
    pub activity: LaneActivity,
    /// Workflow time (Unix milliseconds) of the lane's next turn, for a paced campaign.
    pub next_at_ms: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LaneActivity {
    #[default]
    Idle,
    /// A page of at most `limit` recipients is in flight.
    Paging { limit: u32 },
    /// Waiting on a timer for its next turn.
    Pacing,
}

/// A run of failed pages, and since when an error that retrying cannot fix has been seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trouble {
    /// Failures in a row; 0 when the last page worked.
    pub failures: u32,
    /// Workflow time (Unix milliseconds) of the first permanent failure in this run of
    /// failures, if any.
    pub permanent_since_ms: Option<i64>,
}

/// A bookkeeping activity that was failing, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingStep {
    /// The activity's name: another step that works says nothing about this one.
    pub activity: String,
    pub trouble: Trouble,
}

/// Operators' requests as the workflow follows them. The ledger numbers every request
/// (`messages.intent_seq`, `rate_seq`); the workflow follows the newest it has read there,
/// and a bare signal (which carries no authority beyond what it names) is applied on
/// arrival and appended to the ledger as the next request before the campaign moves on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// The newest pause, resume or cancel in the ledger that the workflow follows.
    pub applied: Requested,
    /// A bare pause, resume or cancel, applied but not yet in the ledger.
    #[serde(default)]
    pub unrecorded: Option<BareRequest>,
    /// The speed limit now (`None`: none) and its number in the ledger.
    #[serde(default)]
    pub rate: Option<Rate>,
    #[serde(default)]
    pub rate_seq: i64,
    /// A bare `rate` signal's limit is applied but not yet in the ledger.
    #[serde(default)]
    pub rate_unrecorded: bool,
    /// A `herald.requests` signal said the ledger holds requests the workflow has not read.
    #[serde(default)]
    pub look_due: bool,
    /// The token the next bare request will be appended with (see [`BareRequest::token`]).
    #[serde(default)]
    pub next_token: i64,
    /// A bare request was overtaken by a front end's request recorded after it arrived: the
    /// next look follows the row's newest request, whatever the workflow did meanwhile.
    #[serde(default)]
    pub follow_row: bool,
}

/// A request that came as a bare signal. It is appended to the row only over the request
/// the workflow knew of when it arrived (`seen_seq`): a request recorded since came later,
/// and the workflow follows that one instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BareRequest {
    pub intent: Intent,
    #[serde(default)]
    pub reason: Option<String>,
    /// The newest request number in the row that the workflow knew of when this arrived.
    #[serde(default)]
    pub seen_seq: i64,
    /// It arrived while the workflow still had to read the row (a `herald.requests` came
    /// first, or a look was on its way): the row is read first, and this is appended over
    /// what it held then.
    #[serde(default)]
    pub after_look: bool,
    /// Written to the row with it (`messages.intent_token`), so that the workflow knows its
    /// own appends: a workflow task that fails after its look wrote the row (Temporal then
    /// runs the task again, look included) leaves the row a request newer than the one a
    /// bare request knew of, and that one is the workflow's own, not a front end's.
    #[serde(default)]
    pub token: i64,
    /// The campaign asked it of itself (it paused itself on failures), rather than someone
    /// signalling its workflow: the row records it as `herald`'s, not `temporal`'s.
    #[serde(default)]
    pub own: bool,
    /// The token of the first bare request this one replaced before any was appended (its own
    /// if none): a row whose newest request holds a token from here up to this one's was
    /// written by a look whose task was lost, and this one is appended over it.
    #[serde(default)]
    pub replaces_from: i64,
}

/// The tries of an external campaign's latest pages, in buckets of about a sixteenth of the
/// auto-pause window each, oldest first: a fixed size however small the pages (a page of one
/// recipient at the largest window would otherwise be a million entries carried from run to
/// run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWindow {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<Bucket>,
}

/// The tries of consecutive pages, and the error most of their failures had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub attempts: u64,
    pub failures: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_error: Option<String>,
    /// Failures with `top_error`.
    #[serde(default)]
    pub top_failures: u64,
}
