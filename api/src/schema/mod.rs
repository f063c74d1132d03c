//! The API's JSON: what goes in and what comes out, with the OpenAPI schema of each. These
//! are the API's contract, kept apart from the control layer's types so that neither changes
//! the other by accident.

use chrono::{DateTime, Utc};
use herald_control::CampaignView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

mod consent;
mod inbox;
mod launch;
mod preview;

pub use consent::*;
pub use inbox::*;
pub use launch::*;
pub use preview::*;

/// A campaign, with its counters as the ledger has committed them.
#[derive(Serialize, ToSchema)]
pub struct Campaign {
    #[schema(example = "spring-sale")]
    pub key: String,
    /// 0 not started, 1 in progress, 2 paused, 3 completed, 4 cancelled, 5 failed.
    #[schema(minimum = 0, maximum = 5)]
    pub status: i16,
    #[schema(example = "in_progress")]
    pub status_name: String,
    /// What operators last asked: `run`, `pause` or `cancel`.
    #[schema(example = "run")]
    pub intent: String,
    /// A request the campaign has not carried out yet, e.g. "pause requested".
    pub pending_request: Option<String>,
    /// The audience, counted at launch.
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    /// Left out when their page ran: opted out of the campaign's category on its channel,
    /// or their address suppressed. `sent + failed + suppressed + capped + pending = total`
    /// while the audience holds.
    pub suppressed: i64,
    /// Left out when their page ran because capped campaigns had reached them as often as
    /// `frequency_cap` allows (docs/local-time.md).
    pub capped: i64,
    /// Recipients not yet processed; never below 0, and 0 once completed.
    pub pending: i64,
    /// Recipients beyond (positive) or short of (negative, when completed) the audience
    /// counted at launch.
    pub audience_change: i64,
    /// Recipients who read it.
    pub read: i64,
    /// read / sent, 0 to 1.
    pub read_rate: f64,
    /// How much of the audience's user-id range the committed pages have scanned, 0 to 1:
    /// progress that moves while the pages of a sparse audience find nobody.
    pub scanned: f64,
    pub title: String,
    /// The segment of a campaign whose audience is exactly one segment.
    pub segment: Option<String>,
    /// The audience filter it was launched with, relative times fixed; absent: every user.
    #[schema(value_type = Option<Object>)]
    pub audience: Option<serde_json::Value>,
    #[schema(example = "inbox")]
    pub channel: String,
    /// What it is about, for opt-outs: `marketing`, `transactional` or a declared category.
    #[schema(example = "marketing")]
    pub category: String,
    pub page_size: i32,
    pub lanes: i32,
    /// Recipients per second, when limited.
    pub rate: Option<i32>,
    /// Why it is paused, cancelled or failed.
    pub reason: Option<String>,
    pub send_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the newest operator request was made.
    pub requested_at: Option<DateTime<Utc>>,
    /// Who launched it: an API key's name, `cli:<OS user>`, or `temporal` for a workflow
    /// started there; `null` for a campaign from before actors were recorded.
    #[schema(example = "ops-team")]
    pub created_by: Option<String>,
    /// Who made the newest pause, resume, cancel or retry: as `created_by`, or `temporal`
    /// for a bare signal, `herald` for the campaign's own pause.
    pub requested_by: Option<String>,
    /// Sent at a local time: the wall time, read in each recipient's zone
    /// (docs/local-time.md).
    #[schema(example = "2027-03-01T09:00:00")]
    pub send_at_local: Option<String>,
    /// The zone of users who have none.
    pub fallback_timezone: Option<String>,
    /// A local-time campaign's waves by opening; absent for any other.
    pub waves: Option<Vec<Wave>>,
    /// When the next wave that has not begun opens.
    pub next_wave_at: Option<DateTime<Utc>>,
    /// Users of zones whose time had passed, left out (`past_zones: skip`).
    pub skipped: Option<i64>,
    /// The daily window of each recipient's local time in which nobody is sent to.
    #[schema(example = "21:00-08:00")]
    pub quiet_hours: Option<String>,
    /// Recipients held by quiet hours now, and when the next of them are released.
    pub held: Option<i64>,
    pub held_until: Option<DateTime<Utc>>,
    /// At most so many capped campaigns reach a user in the window; absent: not capped.
    #[schema(example = "2/24h")]
    pub frequency_cap: Option<String>,
}

/// One wave of a local-time campaign: the zones whose local time falls at one instant.
#[derive(Serialize, ToSchema)]
pub struct Wave {
    pub opens_at: DateTime<Utc>,
    /// Its zones' UTC offsets at the opening, as `+05:30`.
    #[schema(example = json!(["+01:00"]))]
    pub offsets: Vec<String>,
    #[schema(example = json!(["Europe/Berlin", "Europe/Paris"]))]
    pub zones: Vec<String>,
    /// Its users when the plan was made.
    pub size: i64,
    pub sent: i64,
    pub failed: i64,
    pub suppressed: i64,
    pub capped: i64,
    /// Its pages have begun.
    pub opened: bool,
    /// Held by quiet hours now, until this time.
    pub held_until: Option<DateTime<Utc>>,
    /// When it would have opened had quiet hours not held it.
    pub held_from: Option<DateTime<Utc>>,
}

impl Wave {
    /// Its recipients processed: sent, failed, or left out.
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.suppressed + self.capped
    }
}

impl Campaign {
    /// Recipients processed: sent, failed, or left out (suppressed or capped).
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.suppressed + self.capped
    }
}

impl From<&herald_control::WaveView> for Wave {
    fn from(w: &herald_control::WaveView) -> Self {
        Self {
            opens_at: w.opens_at,
            offsets: herald_wire::local::offset_names(&w.offsets),
            zones: w.zones.clone(),
            size: w.size,
            sent: w.sent,
            failed: w.failed,
            suppressed: w.suppressed,
            capped: w.capped,
            opened: w.opened,
            held_until: w.held_until,
            held_from: w.held_from,
        }
    }
}

impl From<CampaignView> for Campaign {
    fn from(v: CampaignView) -> Self {
        let next_wave_at = v.next_wave_at();
        Self {
            pending_request: v.pending_request().map(str::to_owned),
            key: v.key.to_string(),
            status: v.status.code(),
            status_name: v.status.name().to_owned(),
            intent: v.intent.name().to_owned(),
            total: v.total,
            sent: v.sent,
            failed: v.failed,
            suppressed: v.suppressed,
            capped: v.capped,
            pending: v.pending,
            audience_change: v.audience_change,
            read: v.read,
            read_rate: v.read_rate,
            scanned: v.scanned,
            title: v.title,
            segment: v.segment,
            audience: v.audience.map(|f| serde_json::Value::from(f.0)),
            channel: v.channel.name().to_owned(),
            category: v.category,
            page_size: v.page_size,
            lanes: v.lanes,
            rate: v.rate,
            reason: v.reason,
            send_at: v.send_at,
            created_at: v.created_at,
            started_at: v.started_at,
            paused_at: v.paused_at,
            finished_at: v.finished_at,
            requested_at: v.requested_at,
            waves: v
                .waves
                .as_ref()
                .map(|w| w.0.iter().map(Wave::from).collect()),
            next_wave_at,
            created_by: v.created_by,
            requested_by: v.requested_by,
            send_at_local: v.send_at_local,
            fallback_timezone: v.fallback_timezone,
            skipped: v.skipped,
            quiet_hours: v.quiet_hours,
            held: v.held,
            held_until: v.held_until,
            frequency_cap: v.frequency_cap,
        }
    }
}

/// A page of campaigns, newest first.
#[derive(Serialize, ToSchema)]
pub struct CampaignList {
    pub items: Vec<Campaign>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next: Option<String>,
}

/// An operator's request.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// Why; recorded on the campaign and shown with it.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// A request, recorded.
#[derive(Serialize, ToSchema)]
pub struct RequestAnswer {
    /// `pause`, `resume` or `cancel`.
    pub request: String,
    /// The request's number on this campaign; a repeat keeps the number of the request it
    /// repeats.
    pub number: i64,
    /// Whether this repeated the newest request (nothing new was asked).
    pub repeated: bool,
    /// Whether the campaign's workflow answered that it has taken the request (a pause or a
    /// cancel: every page in flight has returned). `false`: it did not answer in time (no
    /// worker runs it, say); the request is recorded and taken when it runs, and no new page
    /// starts after a pause or a cancel meanwhile.
    pub confirmed: bool,
    /// The campaign once the request was taken (or recorded, if not confirmed).
    pub campaign: Campaign,
}

/// Filters for the campaign list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignListQuery {
    /// Only campaigns with this status, by name (`in_progress`) or code (`1`).
    pub status: Option<String>,
    /// Campaigns per page, 1–100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next` of the page before.
    pub after: Option<String>,
}

/// A liveness or readiness answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// One status a campaign had.
#[derive(Serialize, ToSchema)]
pub struct StatusChange {
    #[schema(minimum = 0, maximum = 5)]
    pub status: i16,
    #[schema(example = "paused")]
    pub status_name: String,
    /// Why, when one was given (a pause's reason, an auto-pause's cause, a failure).
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// Whose doing: the actor of the request it carried out (an API key's name,
    /// `cli:<OS user>`, `temporal`), the launch's for its start, or `herald` for what the
    /// campaign did by itself (completed, failed, paused itself).
    #[schema(example = "ops-team")]
    pub actor: Option<String>,
}

impl From<herald_control::StatusChange> for StatusChange {
    fn from(c: herald_control::StatusChange) -> Self {
        Self {
            status: c.status.code(),
            status_name: c.status.name().to_owned(),
            reason: c.reason,
            at: c.at,
            actor: c.actor,
        }
    }
}

/// One request made of a campaign.
#[derive(Serialize, ToSchema)]
pub struct RequestMade {
    /// `launch`, `pause`, `resume`, `cancel`, `retry-failed` or `rate`.
    #[schema(example = "pause")]
    pub request: String,
    /// The reason given, or the new rate (`250/s`, `unlimited`).
    pub detail: Option<String>,
    /// Who asked: an API key's name, `cli:<OS user>`, `temporal` (a bare signal) or `herald`
    /// (the campaign's own pause).
    #[schema(example = "ops-team")]
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<herald_control::RequestMade> for RequestMade {
    fn from(r: herald_control::RequestMade) -> Self {
        Self {
            request: r.request,
            detail: r.detail,
            actor: r.actor,
            at: r.at,
        }
    }
}

/// A campaign's timeline: every status it has had and every request made of it, oldest
/// first, each with its actor.
#[derive(Serialize, ToSchema)]
pub struct Timeline {
    pub campaign: Campaign,
    pub changes: Vec<StatusChange>,
    pub requests: Vec<RequestMade>,
}

impl From<herald_control::History> for Timeline {
    fn from(h: herald_control::History) -> Self {
        Self {
            campaign: h.campaign.into(),
            changes: h.changes.into_iter().map(Into::into).collect(),
            requests: h.requests.into_iter().map(Into::into).collect(),
        }
    }
}

/// Which campaigns the list's event stream follows.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only campaigns with this status: its name or code.
    #[param(example = "in_progress")]
    pub status: Option<String>,
    /// Follow the page of 100 that starts after this cursor (a `next` of
    /// `GET /v1/campaigns`) instead of the newest 100.
    pub after: Option<String>,
}

/// One event of a campaign's event stream, as Server-Sent Events frame it.
#[derive(Serialize, ToSchema)]
pub struct StreamEvent {
    /// `progress` (data: the campaign, as JSON), `end` (data: its final status name) or
    /// `error` (data: an error body, as JSON; the stream then closes).
    #[schema(example = "progress", pattern = "^(progress|end|error)$")]
    pub event: String,
    pub data: String,
}

/// A new speed limit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    /// Recipients per second, 1–10,000,000; `null` for no limit.
    #[schema(minimum = 1, maximum = 10000000, example = 500)]
    pub rate: Option<u32>,
}

/// A speed limit, changed.
#[derive(Serialize, ToSchema)]
pub struct RateAnswer {
    /// The change's number on this campaign.
    pub number: i64,
    /// The limit before, recipients per second; `null`: none.
    pub before: Option<i32>,
    /// Whether the campaign's workflow answered that it paces its pages by the new limit.
    pub confirmed: bool,
    pub campaign: Campaign,
}

/// What the report lists of failed recipients.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Failed recipients to list, 0–1,000 (20).
    #[param(minimum = 0, maximum = 1000)]
    pub failed: Option<i64>,
}

/// Items with one outcome and one error class.
#[derive(Serialize, ToSchema)]
pub struct OutcomeCount {
    /// `sent`, `failed`, `pending`, `suppressed` or `capped` (left out).
    #[schema(example = "failed")]
    pub outcome: String,
    /// The last failure's class (`http_503`, `timeout`, `smtp_550`…); `null` for items that
    /// never failed.
    #[schema(example = "http_410")]
    pub class: Option<String>,
    pub items: i64,
    /// Of those, how many needed more than one try.
    pub retried: i64,
}

/// An error message and how many items it is the last error of.
#[derive(Serialize, ToSchema)]
pub struct ErrorCount {
    pub class: Option<String>,
    #[schema(example = "503 Service Unavailable (5 tries)")]
    pub error: String,
    pub items: i64,
}

/// A recipient whose delivery failed.
#[derive(Serialize, ToSchema)]
pub struct FailedRecipient {
    pub user_id: i64,
    pub email: String,
    pub attempts: i16,
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// When it was last tried.
    pub last_try: Option<DateTime<Utc>>,
}

/// A campaign's deliveries.
#[derive(Serialize, ToSchema)]
pub struct Report {
    pub campaign: Campaign,
    pub outcomes: Vec<OutcomeCount>,
    /// The most common last errors, at most ten.
    pub top_errors: Vec<ErrorCount>,
    /// The first failed recipients, in id order.
    pub failed: Vec<FailedRecipient>,
}

impl From<herald_control::Report> for Report {
    fn from(r: herald_control::Report) -> Self {
        Self {
            campaign: r.campaign.into(),
            outcomes: r
                .outcomes
                .into_iter()
                .map(|o| OutcomeCount {
                    outcome: o.outcome.to_owned(),
                    class: o.class,
                    items: o.items,
                    retried: o.retried,
                })
                .collect(),
            top_errors: r
                .top_errors
                .into_iter()
                .map(|e| ErrorCount {
                    class: e.class,
                    error: e.error,
                    items: e.items,
                })
                .collect(),
            failed: r
                .failed
                .into_iter()
                .map(|f| FailedRecipient {
                    user_id: f.user_id,
                    email: f.email,
                    attempts: f.attempts,
                    error_class: f.error_class,
                    error: f.error,
                    last_try: f.sent_at,
                })
                .collect(),
        }
    }
}

/// A retry of failed deliveries, started.
#[derive(Serialize, ToSchema)]
pub struct RetryAnswer {
    /// Failed deliveries made pending again; `null` when an interrupted retry was only
    /// started again.
    pub retrying: Option<i64>,
    pub campaign: Campaign,
}

/// A user as stored.
#[derive(Serialize, ToSchema)]
pub struct User {
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    pub id: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    /// A BCP 47 tag: `de-AT`.
    pub locale: Option<String>,
    /// An IANA time zone: `Europe/Vienna`.
    pub timezone: Option<String>,
    pub segments: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Attributes by name, each of its attribute's type (times as RFC 3339 in UTC).
    #[schema(value_type = Object)]
    pub attrs: serde_json::Value,
}

impl From<herald_control::users::User> for User {
    fn from(u: herald_control::users::User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            locale: u.locale,
            timezone: u.timezone,
            segments: u.segments,
            created_at: u.created_at,
            attrs: u.attrs.0,
        }
    }
}

/// A user to create or replace. Every field is optional; one not given is cleared.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // read as JSON by herald_wire::users, for its errors' field names
pub struct UserBody {
    /// The same as the path's, if given.
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    id: Option<i64>,
    #[schema(example = "ada@example.com")]
    email: Option<String>,
    name: Option<String>,
    #[schema(example = "de-AT")]
    locale: Option<String>,
    #[schema(example = "Europe/Vienna")]
    timezone: Option<String>,
    segments: Option<Vec<String>>,
    created_at: Option<DateTime<Utc>>,
    /// Attributes by name (`a-z 0-9 _`): strings, numbers, booleans, RFC 3339 times; `null`
    /// for none.
    #[schema(value_type = Option<Object>, example = json!({"plan": "pro", "age": 31}))]
    attrs: Option<serde_json::Value>,
}

/// Up to 1,000 users, each as `PUT /v1/users/{id}` takes one, with its `id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBatch {
    #[schema(value_type = Vec<UserBody>, min_items = 1, max_items = 1000)]
    pub users: Vec<serde_json::Value>,
}

/// What a batch did.
#[derive(Serialize, ToSchema)]
pub struct UsersWritten {
    pub inserted: u64,
    pub updated: u64,
    /// Users given exactly as they were stored.
    pub unchanged: u64,
}
