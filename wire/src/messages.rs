//! The structs that cross Temporal: one input struct per workflow and activity, so that
//! fields can be added (with `#[serde(default)]`) without breaking running workflows.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Attempts, BareRequest, CampaignKey, CampaignStatus, Carried, Category, Channel, Content,
    FieldError, FrequencyCap, Lanes, PageExecution, PageSize, Rate, Requested, WebhookUrl,
    audience::Filter,
    local::{self, Ask, PastZones, QuietHours},
};

/// What an operator asked for at launch. Immutable for the life of the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub content: Content,
    #[serde(default)]
    pub channel: Channel,
    /// What it is about, for users' opt-outs (docs/consent.md).
    #[serde(default)]
    pub category: Category,
    /// Which users: `None` means every user. Relative times in it are fixed at launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Filter>,
    /// `None` means at once.
    #[serde(default)]
    pub send_at: Option<DateTime<Utc>>,
    /// Send at this wall time in each recipient's own time zone, in waves (docs/local-time.md).
    /// Instead of `send_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at_local: Option<NaiveDateTime>,
    /// The zone of users who have none, for `send_at_local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_timezone: Option<String>,
    /// What `send_at_local` does in zones where that time has passed; `None`: next day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_zones: Option<PastZones>,
    /// Nobody is sent to in this window of their local time; those it holds are sent when it
    /// ends (docs/local-time.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// At most so many capped campaigns per user in a window (docs/local-time.md). `None`
    /// as asked: the operators' default, which launch writes here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCap>,
    #[serde(default)]
    pub page_size: PageSize,
    #[serde(default)]
    pub lanes: Lanes,
    #[serde(default)]
    pub execution: PageExecution,
    /// At most this many recipients per second for the whole campaign (a provider's quota,
    /// or a gentle roll-out). `None`: as fast as the database takes them.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// A webhook campaign's endpoint (and only a webhook campaign's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<WebhookUrl>,
    /// An external channel's tries per recipient; `None`: [`Attempts::DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Attempts>,
}

impl CampaignSpec {
    /// Refuse combinations that cannot be delivered: a webhook without its URL, a URL or a
    /// number of attempts on a channel that has no use for them, and an external channel on
    /// local activities (its pages wait on receivers, longer than a workflow task should be
    /// held).
    pub fn check(&self) -> Result<(), FieldError> {
        if self.channel != Channel::Email {
            for (field, given) in [
                ("subject", self.content.subject().is_some()),
                ("html", self.content.html().is_some()),
            ] {
                if given {
                    return Err(FieldError::new(
                        field,
                        format!(
                            "only an e-mail campaign has a {field}, not a {} one",
                            self.channel
                        ),
                    ));
                }
            }
        }
        let fail = |field: &str, m: &str| Err(FieldError::new(field, m));
        match (&self.send_at, &self.send_at_local) {
            (Some(_), Some(_)) => {
                return fail("send_at_local", "give send_at or send_at_local, not both");
            }
            (_, None) if self.fallback_timezone.is_some() && self.quiet_hours.is_none() => {
                return fail(
                    "fallback_timezone",
                    "is for send_at_local and quiet_hours only",
                );
            }
            (_, None) if self.past_zones.is_some() => {
                return fail("past_zones", "is for send_at_local only");
            }
            _ => {}
        }
        if self.category.is_transactional() && self.cap().is_some() {
            return fail(
                "frequency_cap",
                "a transactional campaign is never capped (it neither counts nor is counted)",
            );
        }
        if let Some(name) = &self.fallback_timezone {
            local::zone(name).map_err(|m| FieldError::new("fallback_timezone", m))?;
        }
        match (self.channel, &self.webhook_url) {
            (Channel::Webhook, None) => {
                return fail("webhook_url", "a webhook campaign needs its endpoint URL");
            }
            (Channel::Webhook, Some(_)) => {}
            (_, Some(_)) => {
                return fail("webhook_url", "is for the webhook channel only");
            }
            _ => {}
        }
        if self.channel.is_external() {
            if self.execution == PageExecution::Local {
                return fail(
                    "execution",
                    "webhook and e-mail pages run as regular activities (they wait on \
                     receivers), not local ones",
                );
            }
        } else if self.attempts.is_some() {
            return fail(
                "attempts",
                "is for the webhook and e-mail channels; an inbox delivery cannot fail",
            );
        }
        Ok(())
    }

    /// `past_zones` as given, or its default.
    pub fn past_zones(&self) -> PastZones {
        self.past_zones.unwrap_or_default()
    }

    /// Whether its recipients' time zones matter: it is sent at a local time, or holds
    /// quiet hours.
    pub fn zoned(&self) -> bool {
        self.send_at_local.is_some() || self.quiet_hours.is_some()
    }

    /// What it asks of its recipients' zones, starting at `now` if it has no send time.
    pub fn ask(&self, now: DateTime<Utc>) -> Ask<'_> {
        Ask {
            at: self.send_at_local,
            start: self.send_at.unwrap_or(now),
            fallback: self.fallback_timezone.as_deref(),
            past: self.past_zones(),
            quiet: self.quiet_hours,
        }
    }

    /// Its frequency cap's count and window, if it is capped.
    pub fn cap(&self) -> Option<(u32, u32)> {
        self.frequency_cap.and_then(FrequencyCap::limit)
    }

    /// Tries per recipient of an external channel.
    pub fn attempts(&self) -> u32 {
        self.attempts.unwrap_or_default().get()
    }
}

/// The campaign workflow's single input. `carried` is `None` on the first run and holds the
/// cursor, counters and pending signals on every run after a continue-as-new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignInput {
    pub key: CampaignKey,
    pub spec: CampaignSpec,
    #[serde(default)]
    pub carried: Option<Carried>,
    /// Tuning that the operator rarely touches; defaults suit production.
    #[serde(default)]
    pub tuning: Tuning,
}

/// How a campaign's workflow runs, beside its spec: history size against hand-over cost, the
/// grace for errors retrying cannot fix, and auto-pause. Kept with the campaign's row, so a
/// retry-failed run is tuned as the launch was. The defaults suit production.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Continue-as-new after this many pages in one run (or sooner if the server suggests it).
    /// Tests set it low to cross many run boundaries with a small audience.
    #[serde(default = "Tuning::default_pages_per_run")]
    pub pages_per_run: u32,
    /// How long an error that retrying cannot fix (permission denied, a missing table) is
    /// retried anyway, in case it is a deploy in progress, before the campaign is marked
    /// failed. Tests set it low.
    #[serde(default = "Tuning::default_failure_grace_secs")]
    pub failure_grace_secs: u32,
    /// An external campaign pauses itself when more than this percentage of its latest
    /// [`Tuning::auto_pause_window`] tries failed (0: never).
    #[serde(default = "Tuning::default_auto_pause_percent")]
    pub auto_pause_percent: u32,
    #[serde(default = "Tuning::default_auto_pause_window")]
    pub auto_pause_window: u32,
    /// Continue-as-new once a run's history holds this many events, in every wait as
    /// between pages. Tests set it low to prove that waits stay bounded.
    #[serde(default = "Tuning::default_history_events")]
    pub history_events: u32,
}

impl Tuning {
    pub const DEFAULT_AUTO_PAUSE_PERCENT: u32 = 20;
    pub const DEFAULT_AUTO_PAUSE_WINDOW: u32 = 1_000;

    fn default_auto_pause_percent() -> u32 {
        Self::DEFAULT_AUTO_PAUSE_PERCENT
    }

    fn default_auto_pause_window() -> u32 {
        Self::DEFAULT_AUTO_PAUSE_WINDOW
    }

    fn default_pages_per_run() -> u32 {
        2_000
    }

    fn default_failure_grace_secs() -> u32 {
        30
    }

    /// Temporal warns at 10,240 events per run and fails at 51,200: hand over well before.
    pub const DEFAULT_HISTORY_EVENTS: u32 = 8_000;

    fn default_history_events() -> u32 {
        Self::DEFAULT_HISTORY_EVENTS
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            pages_per_run: Self::default_pages_per_run(),
            failure_grace_secs: Self::default_failure_grace_secs(),
            auto_pause_percent: Self::DEFAULT_AUTO_PAUSE_PERCENT,
            auto_pause_window: Self::DEFAULT_AUTO_PAUSE_WINDOW,
            history_events: Self::DEFAULT_HISTORY_EVENTS,
        }
    }
}

/// Input of the register activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterInput {
    pub key: CampaignKey,
    pub spec: CampaignSpec,
}

/// The campaign row and its audience, fixed at first registration and returned unchanged on
/// every later call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The campaign's row id (`messages.id`).
    pub campaign_id: i64,
    /// Recipients in the audience at launch.
    pub total: i64,
    /// Audience bounds: users with ids in `[min_id, max_id]` matching the segment. Users
    /// created later get higher ids and are not included.
    pub min_id: i64,
    pub max_id: i64,
    /// The status currently stored (a campaign cancelled before its first run stays so).
    pub status: CampaignStatus,
    /// The newest operator requests stored (one can come before the workflow's first task).
    #[serde(default)]
    pub requests: LedgerRequests,
    /// The campaign had started before this run (its row has a start time): a held campaign
    /// that is resumed goes back to sending, not to waiting for its send time.
    #[serde(default)]
    pub started: bool,
    /// Where the ledger's page rows say each lane stands, for every lane that has any. A run
    /// that starts afresh (a recovery after the workflow was lost, a retry of failed
    /// deliveries) goes on from there, and never walks pages whose every recipient is done.
    #[serde(default)]
    pub lanes: Vec<LaneProgress>,
    /// A local-time campaign's waves, by opening; empty for any other.
    #[serde(default)]
    pub waves: Vec<crate::WaveOpening>,
}

/// A lane as its committed page rows leave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneProgress {
    /// The lane's index in the campaign's split (`message_pages.lane`).
    pub lane: u32,
    /// The cursor to go on from: the start of the lane's first page that still has pending
    /// recipients, or else where its last page's scan ended.
    pub after: i64,
    /// A page reached the lane's bound and every page before the cursor is done.
    pub done: bool,
    /// Pages, and their sent, failed and suppressed recipients, before the cursor.
    pub pages: u64,
    pub sent: i64,
    pub failed: i64,
    #[serde(default)]
    pub suppressed: i64,
}

/// Input of the page activity: the next page of one lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageInput {
    pub campaign_id: i64,
    pub lane: u32,
    /// Exclusive lower bound: the last committed user id of this lane.
    pub after: i64,
    /// Inclusive upper bound of the lane.
    pub until: i64,
    /// Scan at most this many user ids past `after`: the page's ids lie in
    /// `(after, min(after + scan, until)]`. `None`: up to `until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<u64>,
    pub limit: u32,
    #[serde(default)]
    pub channel: Channel,
    /// Wait this long before starting: a paced lane's short wait for its next turn.
    #[serde(default)]
    pub delay_millis: u32,
}

/// What a page activity committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PageOutcome {
    /// The page is committed. `last` is the highest user id of the page, `None` when it
    /// found nobody.
    Written {
        last: Option<i64>,
        /// Recipients in the page: those it delivers to and those it left out (`suppressed`).
        recipients: u32,
        /// The page size the page was taken with (a page that ran before may have been taken
        /// at another pace): fewer recipients than this means nobody is left in the ids it
        /// scanned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Of those, delivered and failed. A page that ran before reports its recorded
        /// outcome, so summing these over pages gives exactly the ledger's totals.
        sent: u32,
        failed: u32,
        /// Of those, left out: opted out of the campaign's category or suppressed on its
        /// channel when the page ran (docs/consent.md), or over its frequency cap
        /// (docs/local-time.md; the ledger's page row says how many of them were capped).
        #[serde(default, skip_serializing_if = "is_zero")]
        suppressed: u32,
        /// The lane's cursor after this page: `last` when the page is full, else the end of
        /// the ids it scanned. `None` from a page row written before bounded scans, which always
        /// scanned to the lane's bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scanned_to: Option<i64>,
        /// How long the page statement took, in milliseconds (`None`: not measured). A
        /// lane sizes its next scan by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        took_ms: Option<u32>,
        /// What an external channel's tries did in this run of the page.
        #[serde(default, skip_serializing_if = "Deliveries::is_empty")]
        deliveries: Deliveries,
    },
    /// An external page is claimed and partly recorded, but some of its recipients are still
    /// pending: they failed in a way worth retrying, or the attempt's time ran out. Run the
    /// same page again (it sends only to those still pending) after `retry_after_millis`.
    Unfinished {
        retry_after_millis: u32,
        #[serde(default)]
        deliveries: Deliveries,
    },
    /// Nothing was written: the campaign's row says it must not run. Either an operator's
    /// request is newer than any the workflow has seen (its signal is still on the way), or
    /// the page read the row before a request the workflow has already applied.
    Halted {
        status: CampaignStatus,
        #[serde(default)]
        requested: Requested,
    },
}

/// The tries one run of an external page made: how many, how many failed (a transient
/// failure that is retried counts too), and the most common error among those that did.
/// The workflow pauses a campaign whose recent tries mostly fail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliveries {
    pub attempts: u32,
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_error: Option<String>,
}

impl Deliveries {
    pub fn is_empty(&self) -> bool {
        self.attempts == 0
    }
}

/// Input of the sync-requests activity: read the operators' requests the campaign's row
/// holds, after appending to them the bare signals the workflow has applied but not yet
/// recorded (each as the next request, so that the page statement obeys it and later
/// requests are numbered after it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncRequestsInput {
    pub campaign_id: i64,
    /// A bare pause, resume or cancel to record.
    #[serde(default)]
    pub intent: Option<BareRequest>,
    /// A bare rate change to record (`Some(None)`: no limit).
    #[serde(default)]
    pub rate: Option<Option<Rate>>,
}

/// The operators' requests a campaign's row holds: the newest pause, resume or cancel, and
/// the speed limit with its number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRequests {
    pub requested: Requested,
    #[serde(default)]
    pub rate: Option<Rate>,
    #[serde(default)]
    pub rate_seq: i64,
    /// The token of the bare request the workflow appended as the newest request
    /// ([`BareRequest::token`]); `None` if a front end recorded it.
    #[serde(default)]
    pub token: Option<i64>,
}

/// What a front end recorded before it asked the workflow to apply it: the numbers the row
/// gave its request and its rate (0: none of that kind). A number only says what to wait for;
/// the workflow refuses one the row has not reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequests {
    #[serde(default)]
    pub seq: i64,
    #[serde(default)]
    pub rate_seq: i64,
}

impl RecordedRequests {
    /// Read `herald.apply`'s payload: a JSON object with the two numbers, each 0 or more
    /// (either may be left out). `Err` says what is wrong, for a refusal the sender sees.
    pub fn from_payload(encoding: Option<&[u8]>, data: &[u8]) -> Result<Self, String> {
        const SHAPE: &str = "herald.apply takes JSON {\"seq\": N, \"rate_seq\": N}";
        if encoding.is_some_and(|e| e != b"json/plain") {
            return Err(format!("{SHAPE}, not another encoding"));
        }
        let value: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| format!("{SHAPE}: {e}"))?;
        if !value.is_object() {
            return Err(format!("{SHAPE}, not {value}"));
        }
        let read: Self = serde_json::from_value(value).map_err(|e| format!("{SHAPE}: {e}"))?;
        if read.seq < 0 || read.rate_seq < 0 {
            return Err(format!("{SHAPE} with numbers of 0 or more"));
        }
        Ok(read)
    }
}

/// The workflow's answer once it has taken what the row holds: the status it has written,
/// and the newest request it follows (a later one may have overtaken the front end's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub status: CampaignStatus,
    pub following: Requested,
    /// `false`: the run handed over to a new one before it could read the row (its history
    /// grew during an outage); the new run reads it, and nothing is confirmed.
    #[serde(default)]
    pub taken: bool,
}

/// Input of the set-status activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetStatusInput {
    pub campaign_id: i64,
    pub status: CampaignStatus,
    pub reason: Option<String>,
    /// Only move from one of these statuses; empty means from any unfinished status.
    /// A finished campaign is never moved. The activity returns the status stored after the
    /// call.
    #[serde(default)]
    pub from: Vec<CampaignStatus>,
}

/// What the set-status activity stored, and the ledger's committed totals at that moment:
/// the numbers a finished campaign reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecorded {
    pub status: CampaignStatus,
    pub sent: i64,
    pub failed: i64,
    #[serde(default)]
    pub suppressed: i64,
}

/// Returned by the `progress` query and printed by the CLI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub key: String,
    pub status: CampaignStatus,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    /// Left out: opted out, suppressed (docs/consent.md) or capped (docs/local-time.md).
    #[serde(default)]
    pub suppressed: i64,
    pub pending: i64,
    pub pages_done: u64,
    pub lanes_active: u32,
    /// Each lane's cursor: the last committed user id.
    pub cursor: Vec<i64>,
    pub reason: Option<String>,
    /// Workflow runs so far (continue-as-new count + 1).
    pub run: u32,
    /// A local-time campaign's current wave (from 0) and how many it has (0: no waves).
    #[serde(default)]
    pub wave: u32,
    #[serde(default)]
    pub waves: u32,
    /// When the next wave opens, in Unix milliseconds.
    #[serde(default)]
    pub next_wave_at_ms: Option<i64>,
}

/// The payload of the `rate` signal: the new speed limit (`None`: none). Any other field is
/// ignored: a signal carries no authority beyond what it names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRequest {
    pub rate: Option<Rate>,
}

impl RateRequest {
    /// Read a rate signal's payload; `None` for one that says no valid rate (it is ignored).
    pub fn from_payload(encoding: Option<&[u8]>, data: &[u8]) -> Option<Self> {
        if encoding.is_some_and(|e| e != b"json/plain") {
            return None;
        }
        let limit = |v: &serde_json::Value| Rate::new(u32::try_from(v.as_u64()?).ok()?).ok();
        match serde_json::from_slice::<serde_json::Value>(data).ok()? {
            serde_json::Value::Object(map) => match map.get("rate")? {
                serde_json::Value::Null => Some(Self { rate: None }),
                v => Some(Self {
                    rate: Some(limit(v)?),
                }),
            },
            n @ serde_json::Value::Number(_) => Some(Self {
                rate: Some(limit(&n)?),
            }),
            _ => None,
        }
    }
}

/// The payload of pause, resume and cancel: an optional reason. Any other field (a request
/// number copied from an earlier payload, say) is ignored: a signal carries no authority
/// beyond what it names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

impl SignalRequest {
    const MAX_REASON_CHARS: usize = 500;

    /// Read a signal payload leniently. Signals arrive from the CLI, from other services and
    /// from the web UI's free-text box, so anything is possible: a JSON object with a
    /// `reason`, a bare JSON string, `null`, nothing at all, or bytes in another encoding.
    /// What cannot be read means "no reason given"; it never fails the workflow.
    pub fn from_payload(encoding: Option<&[u8]>, data: &[u8]) -> Self {
        let is_json = match encoding {
            Some(e) => e == b"json/plain",
            None => true,
        };
        if !is_json || data.is_empty() {
            return Self::default();
        }
        let reason = match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(serde_json::Value::Object(map)) => match map.get("reason") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            Ok(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        let reason = reason
            .map(|r| {
                r.trim()
                    .chars()
                    // Text in PostgreSQL cannot hold NUL.
                    .filter(|c| *c != '\0')
                    .take(Self::MAX_REASON_CHARS)
                    .collect::<String>()
            })
            .filter(|r| !r.is_empty());
        Self { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Intent;

    #[test]
    fn apply_payloads_are_two_numbers_or_refused() {
        let json = Some(&b"json/plain"[..]);
        let read = |data: &[u8]| RecordedRequests::from_payload(json, data);
        assert_eq!(
            read(br#"{"seq":4}"#),
            Ok(RecordedRequests {
                seq: 4,
                rate_seq: 0
            })
        );
        assert_eq!(read(b"{}"), Ok(RecordedRequests::default()));
        for bad in [
            &b"[1, 2]"[..],
            b"123",
            b"null",
            br#"{"seq":-1}"#,
            br#"{"seq":"4"}"#,
            br#"{"seq":4,"reason":"x"}"#,
            b"\xff",
        ] {
            let refused = read(bad).unwrap_err();
            assert!(refused.starts_with("herald.apply takes"), "{refused}");
        }
        let other = RecordedRequests::from_payload(Some(b"binary/plain"), b"{}");
        assert!(other.is_err());
    }

    #[test]
    fn rate_payloads_are_read_or_ignored() {
        let json = Some(&b"json/plain"[..]);
        let r = RateRequest::from_payload(json, br#"{"rate":250,"seq":3}"#).unwrap();
        assert_eq!(
            r.rate.map(|r| r.get()),
            Some(250),
            "a number in it is ignored"
        );
        let r = RateRequest::from_payload(json, br#"{"rate":null}"#).unwrap();
        assert_eq!(r, RateRequest::default());
        assert_eq!(
            RateRequest::from_payload(json, b"40")
                .unwrap()
                .rate
                .unwrap()
                .get(),
            40
        );
        for junk in [
            &b""[..],
            b"{}",
            b"0",
            b"-5",
            br#"{"rate":"fast"}"#,
            br#"{"rate":0}"#,
            b"[1]",
        ] {
            assert_eq!(RateRequest::from_payload(json, junk), None, "{junk:?}");
        }
        assert_eq!(
            RateRequest::from_payload(Some(b"binary/plain"), b"40"),
            None
        );
    }

    #[test]
    fn signal_payloads_are_read_leniently() {
        let json = Some(&b"json/plain"[..]);
        let r = SignalRequest::from_payload(json, br#"{"reason":"typo in body"}"#);
        assert_eq!(r.reason.as_deref(), Some("typo in body"));
        let r = SignalRequest::from_payload(json, br#""quick reason""#);
        assert_eq!(r.reason.as_deref(), Some("quick reason"));
        for junk in [
            &b""[..],
            b"null",
            b"42",
            b"{",
            b"{\"reason\":7}",
            b"[1,2]",
            b"  ",
        ] {
            assert_eq!(
                SignalRequest::from_payload(json, junk),
                SignalRequest::default()
            );
        }
        let r = SignalRequest::from_payload(Some(b"binary/plain"), b"\xff\xfe");
        assert_eq!(r, SignalRequest::default());
        let r = SignalRequest::from_payload(Some(b"binary/null"), b"");
        assert_eq!(r, SignalRequest::default());
        // A request number copied from an earlier payload carries no authority: ignored.
        let r = SignalRequest::from_payload(json, br#"{"reason":"x","seq":1000000}"#);
        assert_eq!(r.reason.as_deref(), Some("x"));
        let r = SignalRequest::from_payload(json, br#"{"seq":12}"#);
        assert_eq!(r, SignalRequest::default());
        let long = format!("{{\"reason\":\"{}\"}}", "x".repeat(2000));
        let r = SignalRequest::from_payload(json, long.as_bytes());
        assert_eq!(r.reason.unwrap().len(), 500);
    }

    #[test]
    fn workflow_input_accepts_missing_optional_fields() {
        let input: CampaignInput =
            serde_json::from_str(r#"{"key":"k1","spec":{"content":{"title":"T","body":"B"}}}"#)
                .unwrap();
        assert_eq!(input.spec.page_size.get(), 500);
        assert_eq!(input.spec.lanes, Lanes::default());
        assert!(input.carried.is_none());
        assert_eq!(input.tuning, Tuning::default());
    }

    #[test]
    fn workflow_input_rejects_invalid_values() {
        for bad in [
            r#"{"key":"bad key","spec":{"content":{"title":"T","body":"B"}}}"#,
            r#"{"key":"k","spec":{"content":{"title":"","body":"B"}}}"#,
            r#"{"key":"k","spec":{"content":{"title":"T","body":"B"},"page_size":0}}"#,
        ] {
            assert!(serde_json::from_str::<CampaignInput>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_outcome_is_tagged() {
        let o = PageOutcome::Halted {
            status: CampaignStatus::InProgress,
            requested: Requested {
                intent: Intent::Pause,
                seq: 3,
                reason: None,
            },
        };
        let s = serde_json::to_string(&o).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"halted","status":1,"requested":{"intent":1,"seq":3}}"#
        );
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
