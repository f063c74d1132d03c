//! A launch as the API takes it, and what a dry run answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A wave a launch would have now.
#[derive(Serialize, ToSchema)]
pub struct PlannedWave {
    pub opens_at: DateTime<Utc>,
    #[schema(example = json!(["+05:30"]))]
    pub offsets: Vec<String>,
    pub zones: Vec<String>,
    pub recipients: i64,
    /// When it would open, had quiet hours not held it until `opens_at`.
    pub held_from: Option<DateTime<Utc>>,
}

/// A campaign to launch. Only `title` and `body` are required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    /// The campaign's key and the launch's idempotency key (or the `Idempotency-Key`
    /// header): 1–64 of `A-Z a-z 0-9 . _ -`. Generated when absent.
    #[schema(
        example = "spring-sale",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub key: Option<String>,
    /// At most 200 bytes.
    #[schema(example = "Spring sale", min_length = 1, max_length = 200)]
    pub title: String,
    /// At most 32 KiB.
    #[schema(
        example = "Everything is 20% off until Sunday.",
        min_length = 1,
        max_length = 32768
    )]
    pub body: String,
    /// E-mail only: a subject of its own (the title otherwise), one line of at most 998
    /// bytes.
    #[schema(example = "20% off until Sunday, {{ user.name | default(\"friend\") }}")]
    pub subject: Option<String>,
    /// E-mail only: an HTML part (at most 256 KiB), sent with `body` as
    /// multipart/alternative.
    pub html: Option<String>,
    /// Only users carrying this segment; every user when absent (and no `audience`). Short
    /// for `"audience": {"segment": S}`.
    #[schema(example = "beta", min_length = 1, max_length = 64)]
    pub segment: Option<String>,
    /// Only the users this filter holds: `all`, `any` and `not` over `{"segment": S}` and
    /// attribute tests such as `{"attr": "plan", "eq": "pro"}` (docs/audiences.md).
    #[schema(value_type = Option<Object>, example = json!({"all": [{"attr": "plan", "eq": "pro"}, {"attr": "last_seen", "after": "-30d"}]}))]
    pub audience: Option<serde_json::Value>,
    /// Only the users of the audience saved under this name (`herald audience save`); the
    /// launch copies its filter, so a later save changes no campaign.
    #[schema(example = "active-pros", min_length = 1, max_length = 64)]
    pub audience_name: Option<String>,
    /// When to start (RFC 3339 with an offset, within a year); at once when absent.
    pub send_at: Option<String>,
    /// Instead of `send_at`: a wall time with no offset, sent when it is that time in each
    /// recipient's own `timezone`, in one wave per UTC offset (docs/local-time.md).
    #[schema(example = "2027-03-01T09:00")]
    pub send_at_local: Option<String>,
    /// The IANA zone of users who have none (required when some have none).
    #[schema(example = "Europe/Berlin")]
    pub fallback_timezone: Option<String>,
    /// Zones where `send_at_local` has passed at launch: `send-now`, `skip` or `next-day`
    /// (the default).
    #[schema(example = "next-day")]
    pub past_zones: Option<String>,
    /// A daily window of each recipient's local time in which nobody is sent to; those it
    /// holds are sent when it ends.
    #[schema(example = "21:00-08:00")]
    pub quiet_hours: Option<String>,
    /// At most this many capped campaigns reach a user in a window (`2/24h`: two in any 24
    /// hours, this one included), or `none`; those over it are left out, counted `capped`.
    /// Absent: the default cap (`GET /v1/settings`). A transactional campaign is never
    /// capped.
    #[schema(example = "2/24h")]
    pub frequency_cap: Option<String>,
    /// Recipients per page, 1–10,000 (500).
    #[schema(minimum = 1, maximum = 10000)]
    pub page_size: Option<u32>,
    /// Pages in flight at once, 1–64 (8).
    #[schema(minimum = 1, maximum = 64)]
    pub lanes: Option<u32>,
    /// At most this many recipients per second, 1–10,000,000; unlimited when absent.
    #[schema(minimum = 1, maximum = 10000000)]
    pub rate: Option<u32>,
    /// `inbox` (the default), `webhook` (a signed POST per recipient to `webhook_url`) or
    /// `email` (through the workers' SMTP relay).
    #[schema(example = "inbox")]
    pub channel: Option<String>,
    /// What it is about, for users' opt-outs: `marketing` (the default), `transactional`
    /// (sent to users who opted out; for receipts and security notices) or a category
    /// declared with `POST /v1/categories`.
    #[schema(example = "marketing", min_length = 1, max_length = 40)]
    pub category: Option<String>,
    /// The webhook channel's endpoint, `http://` or `https://`.
    #[schema(example = "https://example.com/herald", max_length = 2048)]
    pub webhook_url: Option<String>,
    /// Webhook or e-mail tries per recipient before it is recorded failed, 1–20 (5).
    #[schema(minimum = 1, maximum = 20)]
    pub attempts: Option<u32>,
    /// Pause by itself when more than this percentage of the latest `auto_pause_window`
    /// deliveries failed, 0–100 (20; 0: never).
    #[schema(minimum = 0, maximum = 100)]
    pub auto_pause: Option<u32>,
    /// How many of the latest deliveries `auto_pause` looks at, 1–1,000,000 (1,000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub auto_pause_window: Option<u32>,
    /// Page activities: `local` (the inbox's default) or `regular` (the webhook's and
    /// e-mail's).
    #[schema(example = "local")]
    pub execution: Option<String>,
}

impl LaunchBody {
    /// The launch's fields as the control layer checks them: numbers as text, the filter as
    /// JSON.
    pub fn fields(self) -> herald_control::launch::LaunchFields {
        let text = |n: Option<u32>| n.map(|n| n.to_string());
        herald_control::launch::LaunchFields {
            key: self.key,
            title: self.title,
            body: self.body,
            subject: self.subject,
            html: self.html,
            channel: self.channel,
            category: self.category,
            segment: self.segment,
            audience: self
                .audience
                .map(herald_control::launch::AudienceGiven::Json),
            audience_name: self.audience_name,
            send_at: self.send_at,
            send_at_local: self.send_at_local,
            fallback_timezone: self.fallback_timezone,
            past_zones: self.past_zones,
            quiet_hours: self.quiet_hours,
            frequency_cap: self.frequency_cap,
            page_size: text(self.page_size),
            lanes: text(self.lanes),
            rate: text(self.rate),
            webhook_url: self.webhook_url,
            attempts: text(self.attempts),
            auto_pause: text(self.auto_pause),
            auto_pause_window: text(self.auto_pause_window),
            execution: self.execution,
        }
    }
}

/// What a launch would reach, counted without launching, from one snapshot.
#[derive(Serialize, ToSchema)]
pub struct DryRun {
    /// Recipients the campaign would go to if launched now (the launch fixes its own count).
    pub recipients: i64,
    /// Each top-level clause of the audience (the members of its `all` or `any`) and the
    /// users it holds by itself; empty when the audience is one clause.
    pub clauses: Vec<ClauseCount>,
    /// The audience's first members by id, up to ten.
    #[schema(example = json!([3, 17, 42]))]
    pub sample: Vec<i64>,
    /// With `send_at_local`: the waves it would have, by opening.
    pub waves: Option<Vec<PlannedWave>>,
    /// With `send_at_local` and `past_zones: skip`: the users it would leave out.
    pub skipped: Option<i64>,
    /// The frequency cap it would have (the one asked for, or the default); absent: not
    /// capped.
    #[schema(example = "2/24h")]
    pub frequency_cap: Option<String>,
    /// With a cap: the recipients it would leave out if its pages reached them now (at
    /// most: some of them may be left out anyway, opted out or suppressed).
    pub capped: Option<i64>,
}

/// One clause of an audience and how many users it holds by itself.
#[derive(Serialize, ToSchema)]
pub struct ClauseCount {
    #[schema(value_type = Object, example = json!({"attr": "plan", "eq": "pro"}))]
    pub clause: serde_json::Value,
    pub recipients: i64,
}

impl From<herald_control::audience::Preview> for DryRun {
    fn from(p: herald_control::audience::Preview) -> Self {
        Self {
            recipients: p.total,
            clauses: p
                .clauses
                .into_iter()
                .map(|(clause, recipients)| ClauseCount {
                    clause: clause.into(),
                    recipients,
                })
                .collect(),
            sample: p.sample,
            frequency_cap: p.cap.map(|(cap, _)| cap.to_string()),
            capped: p.cap.map(|(_, n)| n),
            skipped: p.waves.as_ref().map(|w| w.skipped),
            waves: p.waves.map(|plan| {
                plan.waves
                    .into_iter()
                    .map(|w| PlannedWave {
                        opens_at: w.opens_at,
                        offsets: herald_wire::local::offset_names(&w.offsets),
                        zones: w.zones,
                        recipients: w.size,
                        held_from: w.held_from,
                    })
                    .collect()
            }),
        }
    }
}
