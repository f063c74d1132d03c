//! Campaign rows (`messages`, the table's name as specified): creating and registering a
//! campaign, fixing its audience, and reading it back as operators see it.

use chrono::{DateTime, Utc};
use herald_wire::{
    CampaignKey, CampaignSpec, CampaignStatus, Channel, Intent, InvalidInput, LedgerRequests,
    Registered, Requested, Tuning,
    audience::{AudienceName, Filter},
    local::{self, WavePlan},
};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool, Postgres, Transaction};

use crate::{Result, StoreError, audience, pages, partitions, status};

/// The workflow's registration: insert the campaign row if it is new, fix its audience if
/// that has not been done, and make the ledger partitions it needs. Identical on every call
/// after the first.
pub async fn register(pool: &PgPool, key: &CampaignKey, spec: &CampaignSpec) -> Result<Registered> {
    let mut tx = pool.begin().await?;
    // Only a workflow started through Temporal, with no launch before it, inserts here.
    insert(&mut tx, key, spec, None, None, "temporal").await?;
    let registered = fix_audience(&mut tx, key, spec).await?;
    tx.commit().await?;
    partitions::cover(pool, Some(registered.max_id)).await?;
    Ok(registered)
}

/// What [`create`] found.
#[derive(Clone, Debug)]
pub enum Created {
    /// A new campaign, its audience fixed.
    New(Registered),
    /// The key was taken, by a campaign launched with this spec.
    Existing(Box<CampaignSpec>),
}

/// An operator's launch: like [`register`], but when the key already exists nothing is
/// written and the stored spec is returned, so the caller can tell a repeated launch from a
/// different campaign under the same key. `tuning` is kept beside the spec, for the runs
/// that `herald retry-failed` starts later; `audience_name`, the saved audience the spec's
/// filter was copied from, for a repeat of the launch ([`launched_from`]); `by`, the actor
/// who launched it.
pub async fn create(
    pool: &PgPool,
    key: &CampaignKey,
    spec: &CampaignSpec,
    tuning: &Tuning,
    audience_name: Option<&AudienceName>,
    by: &str,
) -> Result<Created> {
    let mut tx = pool.begin().await?;
    if !insert(&mut tx, key, spec, Some(tuning), audience_name, by).await? {
        let stored: String = sqlx::query_scalar("SELECT spec::text FROM messages WHERE key = $1")
            .bind(key.as_str())
            .fetch_one(&mut *tx)
            .await?;
        return Ok(Created::Existing(decode_spec(key, &stored)?));
    }
    let registered = fix_audience(&mut tx, key, spec).await?;
    tx.commit().await?;
    if registered.total > 0
        && let Err(e) = partitions::cover(pool, Some(registered.max_id)).await
    {
        // Its pages could not record a send: take the campaign back rather than leave a row
        // that no workflow runs.
        delete_unstarted(pool, key).await.ok();
        return Err(e);
    }
    Ok(Created::New(registered))
}

/// The saved audience a campaign was launched from, and the filter it copied then: what a
/// repeat of the same launch by name compares with, whatever the name holds now.
pub async fn launched_from(
    pool: &PgPool,
    key: &CampaignKey,
) -> Result<Option<(AudienceName, Option<Filter>)>> {
    let row: Option<(Option<String>, String)> =
        sqlx::query_as("SELECT audience_name, spec::text FROM messages WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?;
    let Some((Some(name), spec)) = row else {
        return Ok(None);
    };
    let name = AudienceName::parse(&name).map_err(|e| corrupt(key, "audience name", e))?;
    Ok(Some((name, decode_spec(key, &spec)?.audience)))
}

/// The campaign as launched and its tuning at launch (the defaults for a row that has none):
/// what a new run of its workflow starts from.
pub async fn launch_of(pool: &PgPool, key: &CampaignKey) -> Result<(Box<CampaignSpec>, Tuning)> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT spec::text, tuning::text FROM messages WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?;
    let (spec, tuning) = row.ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    decode_launch(key, &spec, tuning.as_deref())
}

pub(crate) fn decode_launch(
    key: &CampaignKey,
    spec: &str,
    tuning: Option<&str>,
) -> Result<(Box<CampaignSpec>, Tuning)> {
    let tuning = match tuning {
        Some(t) => serde_json::from_str(t).map_err(|e| corrupt(key, "tuning", e))?,
        None => Tuning::default(),
    };
    Ok((decode_spec(key, spec)?, tuning))
}

fn decode_spec(key: &CampaignKey, spec: &str) -> Result<Box<CampaignSpec>> {
    serde_json::from_str(spec).map_err(|e| corrupt(key, "spec", e))
}

/// A stored value of a campaign's row that does not read back.
fn corrupt(key: &CampaignKey, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(
        format!("campaign {key}'s stored {what}: {e}").into(),
    ))
}

/// The random token of a campaign's row, which its workflow carries in its memo.
pub async fn launch_token(pool: &PgPool, key: &CampaignKey) -> Result<String> {
    sqlx::query_scalar("SELECT launch_token FROM messages WHERE key = $1")
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))
}

/// Undo [`create`] when the workflow was not started. Only a row that never started is
/// removed.
pub async fn delete_unstarted(pool: &PgPool, key: &CampaignKey) -> Result<()> {
    sqlx::query("DELETE FROM messages WHERE key = $1 AND status = $2 AND started_at IS NULL")
        .bind(key.as_str())
        .bind(CampaignStatus::NotStarted.code())
        .execute(pool)
        .await?;
    Ok(())
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    key: &CampaignKey,
    spec: &CampaignSpec,
    tuning: Option<&Tuning>,
    audience_name: Option<&AudienceName>,
    by: &str,
) -> Result<bool> {
    // The spec keeps the filter as given (a repeat of the launch compares equal); the row's
    // audience has its relative times fixed now, and is what the campaign's pages select.
    let audience = match &spec.audience {
        None => None,
        Some(filter) => {
            let types = crate::filter::attribute_types(&mut **tx).await?;
            let lookup = |name: &str| types.get(name).copied();
            filter
                .check(&lookup)
                .map_err(|e| StoreError::Invalid(InvalidInput(format!("audience: {e}"))))?;
            let mut fixed = filter.clone();
            fixed.resolve(Utc::now(), &lookup);
            Some(fixed.to_string())
        }
    };
    let inserted = sqlx::query(
        "INSERT INTO messages (key, title, body, channel, segment, send_at, page_size, lanes, rate,
                               spec, tuning, audience, audience_name, created_by, category)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13, $14,
                 $15)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key.as_str())
    .bind(spec.content.title())
    .bind(spec.content.body())
    .bind(spec.channel.name())
    .bind(match &spec.audience {
        Some(Filter::Segment(s)) => Some(s.as_str()),
        _ => None,
    })
    .bind(spec.send_at)
    .bind(spec.page_size.get() as i32)
    .bind(spec.lanes.get() as i32)
    .bind(spec.rate.map(|r| r.get() as i32))
    .bind(serde_json::to_string(spec).expect("a spec is plain data"))
    .bind(tuning.map(|t| serde_json::to_string(t).expect("tuning is plain data")))
    .bind(audience)
    .bind(audience_name.map(AudienceName::as_str))
    .bind(by)
    .bind(spec.category.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The campaign row as registration needs it.
#[derive(FromRow)]
struct Stored {
    id: i64,
    #[sqlx(try_from = "i16")]
    status: CampaignStatus,
    #[sqlx(try_from = "i16")]
    intent: Intent,
    intent_seq: i64,
    intent_reason: Option<String>,
    rate: Option<i32>,
    rate_seq: i64,
    intent_token: Option<i64>,
    audience: Option<sqlx::types::Json<Filter>>,
    total: Option<i64>,
    min_user_id: Option<i64>,
    max_user_id: Option<i64>,
    started: bool,
    waves: Option<sqlx::types::Json<WavePlan>>,
}

/// Count the audience and record its id bounds, once, and for a campaign sent at a local
/// time, plan its waves from the zones of its users then. Users created afterwards get higher
/// ids and are outside the campaign.
async fn fix_audience(
    tx: &mut Transaction<'_, Postgres>,
    key: &CampaignKey,
    spec: &CampaignSpec,
) -> Result<Registered> {
    let row: Stored = sqlx::query_as(
        "SELECT id, status, intent, intent_seq, intent_reason, rate, rate_seq, intent_token,
                coalesce(audience, CASE WHEN segment IS NOT NULL
                         THEN jsonb_build_object('segment', segment) END) AS audience, total,
                min_user_id, max_user_id, started_at IS NOT NULL AS started, waves
         FROM messages WHERE key = $1 FOR UPDATE",
    )
    .bind(key.as_str())
    .fetch_one(&mut **tx)
    .await?;
    // A campaign that has pages already (its workflow was lost, or its failed deliveries
    // are retried) goes on from where they leave each lane.
    let lanes = match row.started {
        true => pages::lane_progress(&mut **tx, row.id).await?,
        false => Vec::new(),
    };
    let registered =
        |total, min_id: Option<i64>, max_id: Option<i64>, waves: Option<&WavePlan>| Registered {
            campaign_id: row.id,
            total,
            min_id: min_id.unwrap_or(0),
            max_id: max_id.unwrap_or(-1),
            status: row.status,
            requests: LedgerRequests {
                requested: Requested {
                    intent: row.intent,
                    seq: row.intent_seq,
                    reason: row.intent_reason.clone(),
                },
                rate: status::stored_rate(row.rate),
                rate_seq: row.rate_seq,
                token: row.intent_token,
            },
            started: row.started,
            lanes: lanes.clone(),
            waves: waves.map(WavePlan::openings).unwrap_or_default(),
        };
    if let Some(total) = row.total {
        let waves = row.waves.as_ref().map(|w| &w.0);
        return Ok(registered(total, row.min_user_id, row.max_user_id, waves));
    }
    let filter = row.audience.as_ref().map(|f| &f.0);
    let (audience, plan) = if spec.zoned() {
        let (audience, zones) = audience::count_by_zone(tx, filter).await?;
        let now = Utc::now();
        let plan = local::plan(&spec.ask(now), &zones, now).map_err(StoreError::Field)?;
        (audience, Some(plan))
    } else {
        (audience::count(tx, filter).await?, None)
    };
    // Users of zones left out are not the campaign's.
    let total = plan.as_ref().map_or(audience.total, WavePlan::size);
    sqlx::query(
        "UPDATE messages SET total = $2, min_user_id = $3, max_user_id = $4, waves = $5,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(total)
    .bind(audience.min_id)
    .bind(audience.max_id)
    .bind(plan.as_ref().map(sqlx::types::Json))
    .execute(&mut **tx)
    .await?;
    Ok(registered(
        total,
        audience.min_id,
        audience.max_id,
        plan.as_ref(),
    ))
}

/// The waves `spec` would have if its audience were fixed now (`None`: it is not sent at a
/// local time). Writes nothing; refused as a launch would refuse it.
pub async fn plan_waves(pool: &PgPool, spec: &CampaignSpec) -> Result<Option<WavePlan>> {
    if !spec.zoned() {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (_, zones) = audience::count_by_zone(&mut tx, spec.audience.as_ref()).await?;
    tx.rollback().await?;
    let now = Utc::now();
    local::plan(&spec.ask(now), &zones, now)
        .map(Some)
        .map_err(StoreError::Field)
}

/// A campaign as operators see it. Counters are the ledger's committed totals.
#[derive(Clone, Debug, Serialize, FromRow)]
pub struct CampaignView {
    /// The row's id: the list is ordered by it, and a page's cursor is the last one.
    #[serde(skip)]
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub key: CampaignKey,
    /// What the campaign does. Serialized as `status` (the code) and `status_name`.
    #[serde(flatten, serialize_with = "herald_wire::status::code_and_name")]
    #[sqlx(try_from = "i16")]
    pub status: CampaignStatus,
    /// What operators last asked of it ("run", "pause", "cancel"); it differs from the status
    /// until the workflow has acted on it.
    #[serde(serialize_with = "intent_name")]
    #[sqlx(try_from = "i16")]
    pub intent: Intent,
    /// The audience as counted at launch.
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    /// Left out when their page ran: opted out of the campaign's category or suppressed on
    /// its channel (docs/consent.md).
    pub suppressed: i64,
    /// Left out when their page ran because capped campaigns had reached them as often as
    /// its frequency cap allows (docs/local-time.md).
    pub capped: i64,
    /// Recipients not yet processed: never below 0, and 0 once the campaign has completed.
    pub pending: i64,
    /// Recipients processed beyond the audience counted at launch (positive), or, for a
    /// completed campaign, short of it (negative: users who left the audience or were
    /// removed before their page); 0 when the audience held. Users added while a launch
    /// counts, with explicit ids, or who come to match the audience during the run make it
    /// positive.
    pub audience_change: i64,
    pub read: i64,
    /// read / sent, 0 when nothing is sent yet.
    pub read_rate: f64,
    /// How much of the audience's user-id range (`min_user_id..=max_user_id`) the committed
    /// pages have scanned, 0 to 1 (1 once completed). Progress that stays truthful while the
    /// pages of a sparse audience find nobody.
    pub scanned: f64,
    /// The audience's user-id range, fixed at launch (`None` before it is counted).
    pub min_user_id: Option<i64>,
    pub max_user_id: Option<i64>,
    pub title: String,
    /// The segment of a campaign whose audience is exactly one segment.
    pub segment: Option<String>,
    /// The audience filter it was launched with, relative times fixed (`None`: every user).
    pub audience: Option<sqlx::types::Json<Filter>>,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// What it is about, for opt-outs: `marketing`, `transactional` or a declared one.
    pub category: String,
    pub page_size: i32,
    pub lanes: i32,
    /// Recipients per second, when limited.
    pub rate: Option<i32>,
    pub reason: Option<String>,
    pub send_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the newest operator request was made.
    pub requested_at: Option<DateTime<Utc>>,
    /// Who launched it (see [`StatusChange::actor`]).
    pub created_by: Option<String>,
    /// Who made the newest pause, resume, cancel or retry.
    pub requested_by: Option<String>,
    /// A campaign sent at a local time: that wall time, the zone of users who have none, and
    /// its waves by opening with what each has done (`None` for any other campaign).
    pub send_at_local: Option<String>,
    pub fallback_timezone: Option<String>,
    pub waves: Option<sqlx::types::Json<Vec<WaveView>>>,
    /// Users of zones left out (`past_zones: skip`), not counted in `total`.
    pub skipped: Option<i64>,
    /// The daily window of local time in which recipients are held, `21:00-08:00`.
    pub quiet_hours: Option<String>,
    /// At most so many capped campaigns per user in a window, `2/24h`; `None`: not capped.
    pub frequency_cap: Option<String>,
    /// Recipients held by quiet hours now (the waves held, less what they have done), and
    /// when the next of them are released.
    pub held: Option<i64>,
    pub held_until: Option<DateTime<Utc>>,
}

/// One wave of a local-time campaign as operators see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaveView {
    pub opens_at: DateTime<Utc>,
    /// The UTC offsets of its zones at its opening, in minutes.
    pub offsets: Vec<i32>,
    pub zones: Vec<String>,
    /// Its users when the plan was made.
    pub size: i64,
    /// What its committed pages did.
    pub sent: i64,
    pub failed: i64,
    pub suppressed: i64,
    #[serde(default)]
    pub capped: i64,
    /// Whether its pages have begun.
    pub opened: bool,
    /// When quiet hours hold it now, until when.
    #[serde(default)]
    pub held_until: Option<DateTime<Utc>>,
    /// When it would have opened, had quiet hours not held it until `opens_at`.
    #[serde(default)]
    pub held_from: Option<DateTime<Utc>>,
}

impl WaveView {
    /// Its recipients processed: sent, failed, or left out (suppressed or capped).
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.suppressed + self.capped
    }
}

impl CampaignView {
    /// Recipients processed: sent, failed, or left out (suppressed or capped).
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.suppressed + self.capped
    }

    /// The waves, or none.
    pub fn waves(&self) -> &[WaveView] {
        self.waves.as_ref().map_or(&[], |w| &w.0)
    }

    /// When the next wave that has not begun opens.
    pub fn next_wave_at(&self) -> Option<DateTime<Utc>> {
        self.waves().iter().find(|w| !w.opened).map(|w| w.opens_at)
    }
}

impl CampaignView {
    /// An operator's request that the workflow has not carried out yet, if there is one:
    /// "pause requested", "resume requested", "cancel requested".
    pub fn pending_request(&self) -> Option<&'static str> {
        use CampaignStatus::*;
        match (self.intent, self.status) {
            (_, Completed | Cancelled) => None,
            (Intent::Pause, NotStarted | InProgress) => Some("pause requested"),
            (Intent::Run, Paused) => Some("resume requested"),
            (Intent::Cancel, _) => Some("cancel requested"),
            _ => None,
        }
    }
}

fn intent_name<S: serde::Serializer>(intent: &Intent, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(intent.name())
}

/// The rows whose sums are a campaign's totals per lane, `lane, sent, failed, retried,
/// suppressed, capped, first_after, scanned_to` (`suppressed` counts everyone left out,
/// `capped` those of them left out by the frequency cap): each lane's closed pages (one row, `message_lanes`, kept by a
/// trigger) and its open ones (those with recipients pending: a page per running lane, or
/// what a pause left, through their partial index), so that the work does not grow with the
/// number of pages. `$id` is the campaign's id, as SQL.
#[macro_export]
#[doc(hidden)]
macro_rules! lane_totals {
    ($id:literal) => {
        concat!(
            "SELECT lane, sent, failed, retried, suppressed, capped, first_after, scanned_to
             FROM message_lanes WHERE message_id = ",
            $id,
            "
             UNION ALL
             SELECT lane, sent::bigint, failed::bigint, retried::bigint, suppressed::bigint,
                    capped::bigint, after_user_id,
                    coalesce(scanned_to, last_user_id, after_user_id)
             FROM message_pages WHERE message_id = ",
            $id,
            " AND recipients > sent + failed"
        )
    };
}

// The view groups lanes into waves by this number.
const _: () = assert!(herald_wire::WAVE_LANES == 64);

const VIEW_SQL: &str = concat!("
SELECT m.id, m.key, m.status, m.intent, coalesce(m.total, 0) AS total, p.sent, p.failed,
       p.suppressed - p.capped AS suppressed, p.capped,
       CASE WHEN m.status = 3 THEN 0
            ELSE greatest(coalesce(m.total, 0) - p.sent - p.failed - p.suppressed, 0) END AS pending,
       CASE WHEN p.sent + p.failed + p.suppressed > coalesce(m.total, 0) OR m.status = 3
            THEN p.sent + p.failed + p.suppressed - coalesce(m.total, 0) ELSE 0 END AS audience_change,
       r.read,
       CASE WHEN p.sent > 0 THEN least(r.read::float8 / p.sent, 1) ELSE 0 END AS read_rate,
       CASE WHEN m.status = 3 THEN 1
            WHEN m.max_user_id >= m.min_user_id
            -- Every wave scans the whole range.
            THEN least(p.spans / (m.max_user_id - m.min_user_id + 1)
                       / greatest(coalesce(jsonb_array_length(m.waves->'waves'), 1), 1), 1)
            ELSE 0 END::float8 AS scanned,
       m.min_user_id, m.max_user_id,
       m.title, m.segment, m.audience, m.channel, m.category, m.page_size, m.lanes, m.rate, m.status_reason AS reason,
       m.send_at, m.created_at, m.started_at, m.paused_at, m.finished_at, m.requested_at,
       m.created_by, m.requested_by,
       m.spec->>'send_at_local' AS send_at_local, m.waves->>'fallback' AS fallback_timezone,
       m.spec->>'quiet_hours' AS quiet_hours, nullif(m.spec->>'frequency_cap', 'none') AS frequency_cap, wv.waves, wv.held, wv.held_until,
       (m.waves->>'skipped')::bigint AS skipped
FROM messages m
LEFT JOIN LATERAL (
    -- Each lane's pages cover its ids from its first page's cursor to where its last scan
    -- ended: the spans add up to what has been scanned.
    SELECT coalesce(sum(l.sent), 0)::bigint AS sent, coalesce(sum(l.failed), 0)::bigint AS failed,
           coalesce(sum(l.suppressed), 0)::bigint AS suppressed,
           coalesce(sum(l.capped), 0)::bigint AS capped,
           coalesce(sum(l.span), 0)::float8 AS spans
    FROM (SELECT sum(sent) AS sent, sum(failed) AS failed, sum(suppressed) AS suppressed,
                 sum(capped) AS capped, max(scanned_to) - min(first_after) AS span
          FROM (", lane_totals!("m.id"), ") t GROUP BY lane) l
) p ON true
LEFT JOIN LATERAL (
    SELECT coalesce(sum(reads), 0)::bigint AS read FROM message_reads WHERE message_id = m.id
) r ON true
LEFT JOIN LATERAL (
    -- Each wave's lanes are a block of their own (`herald_wire::WAVE_LANES`). A wave not
    -- done is held while one of its quiet hours lasts, or, not begun, from when it would
    -- have opened until the quiet hours that moved its opening end.
    SELECT jsonb_agg(x.wave ORDER BY x.n) AS waves,
           sum(x.remaining) FILTER (WHERE x.held_until IS NOT NULL)::bigint AS held,
           to_timestamp(min(x.held_until) / 1000.0) AS held_until
    FROM (
        SELECT w.n, r.remaining, y.held_until,
               (w.value - 'quiet') || jsonb_build_object(
                   'sent', coalesce(c.sent, 0), 'failed', coalesce(c.failed, 0),
                   'suppressed', coalesce(c.suppressed - c.capped, 0),
                   'capped', coalesce(c.capped, 0), 'opened', c.wave IS NOT NULL,
                   'held_until', to_timestamp(y.held_until / 1000.0)) AS wave
        FROM jsonb_array_elements(m.waves->'waves') WITH ORDINALITY w(value, n)
        LEFT JOIN (
            SELECT lane / 64 AS wave, sum(sent) AS sent, sum(failed) AS failed,
                   sum(suppressed) AS suppressed, sum(capped) AS capped
            FROM (", lane_totals!("m.id"), ") t
            WHERE m.waves IS NOT NULL
            GROUP BY 1
        ) c ON c.wave = w.n - 1
        CROSS JOIN LATERAL (
            SELECT greatest((w.value->>'size')::bigint - coalesce(c.sent, 0)
                            - coalesce(c.failed, 0) - coalesce(c.suppressed, 0), 0) AS remaining,
                   (extract(epoch FROM now()) * 1000)::bigint AS now_ms
        ) r
        CROSS JOIN LATERAL (
            SELECT CASE WHEN r.remaining > 0 AND m.status NOT IN (3, 4) THEN coalesce(
                (SELECT (q->>1)::bigint FROM jsonb_array_elements(w.value->'quiet') q
                 WHERE (q->>0)::bigint <= r.now_ms AND r.now_ms < (q->>1)::bigint LIMIT 1),
                CASE WHEN c.wave IS NULL AND (w.value->>'held_from')::timestamptz <= now()
                          AND now() < (w.value->>'opens_at')::timestamptz
                     THEN (extract(epoch FROM (w.value->>'opens_at')::timestamptz) * 1000)::bigint
                END) END AS held_until
        ) y
    ) x
) wv ON true
");

pub async fn find(pool: &PgPool, key: &CampaignKey) -> Result<CampaignView> {
    sqlx::query_as(&format!("{VIEW_SQL} WHERE m.key = $1"))
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))
}

/// One status a campaign had, from the status log.
#[derive(Clone, Debug, FromRow)]
pub struct StatusChange {
    #[sqlx(try_from = "i16")]
    pub status: CampaignStatus,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// Whose doing it was: the actor of the request it carried out (an API key's name,
    /// `cli:<OS user>`, `temporal` for a bare signal), the launch's for its start, or
    /// `herald` (the campaign's own: it completed, failed, paused itself); `None` from before
    /// actors were recorded.
    pub actor: Option<String>,
}

/// One request a campaign had, from the request log: its launch, each pause, resume,
/// cancel and retry, and each change of rate.
#[derive(Clone, Debug, FromRow)]
pub struct RequestMade {
    /// `launch`, `pause`, `resume`, `cancel`, `retry-failed` or `rate`.
    pub request: String,
    /// The reason given, or the new rate (`250/s`, `unlimited`).
    pub detail: Option<String>,
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

/// A campaign's requests (`$1`: its key), as [`RequestMade`]s.
const REQUESTS_SQL: &str = "SELECT r.request, r.detail, r.actor, r.at FROM message_requests r
     JOIN messages m ON m.id = r.message_id WHERE m.key = $1";

/// Every status the campaign has had and every request made of it, oldest first (at most
/// the last 200 of each).
pub async fn history(
    pool: &PgPool,
    key: &CampaignKey,
) -> Result<(Vec<StatusChange>, Vec<RequestMade>)> {
    let mut changes: Vec<StatusChange> = sqlx::query_as(
        "SELECT l.status, l.reason, l.at, l.actor FROM message_status_log l
         JOIN messages m ON m.id = l.message_id
         WHERE m.key = $1 ORDER BY l.id DESC LIMIT 200",
    )
    .bind(key.as_str())
    .fetch_all(pool)
    .await?;
    changes.reverse();
    let mut requests: Vec<RequestMade> =
        sqlx::query_as(&format!("{REQUESTS_SQL} ORDER BY r.id DESC LIMIT 200"))
            .bind(key.as_str())
            .fetch_all(pool)
            .await?;
    requests.reverse();
    Ok((changes, requests))
}

/// The newest pause, resume, cancel or retry-failed a campaign had (not its launch, not a
/// change of rate): the request its `intent` follows, named as the request log names it.
pub async fn last_request(pool: &PgPool, key: &CampaignKey) -> Result<Option<RequestMade>> {
    Ok(sqlx::query_as(&format!(
        "{REQUESTS_SQL} AND r.request NOT IN ('launch', 'rate') ORDER BY r.id DESC LIMIT 1"
    ))
    .bind(key.as_str())
    .fetch_optional(pool)
    .await?)
}

/// How many campaigns the ledger holds in each status (every status, zeros included).
pub async fn counts_by_status(pool: &PgPool) -> Result<Vec<(CampaignStatus, i64)>> {
    let rows: Vec<(i16, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM messages GROUP BY status")
            .fetch_all(pool)
            .await?;
    Ok(CampaignStatus::ALL
        .into_iter()
        .map(|status| {
            let n = rows.iter().find(|(code, _)| *code == status.code());
            (status, n.map_or(0, |(_, n)| *n))
        })
        .collect())
}

/// Newest first: up to `limit` campaigns created before the one with id `before` (the
/// cursor), with the given status when one is given.
pub async fn list(
    pool: &PgPool,
    status: Option<CampaignStatus>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CampaignView>> {
    Ok(sqlx::query_as(&format!(
        "{VIEW_SQL} WHERE ($1::smallint IS NULL OR m.status = $1)
                      AND ($2::bigint IS NULL OR m.id < $2)
         ORDER BY m.id DESC LIMIT $3"
    ))
    .bind(status.map(CampaignStatus::code))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A campaign's row id and its spec as launched, by key.
pub async fn stored_spec(pool: &PgPool, key: &CampaignKey) -> Result<(i64, CampaignSpec)> {
    let row: Option<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT id, spec::text, tuning::text FROM messages WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?;
    let (id, spec, tuning) = row.ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    let (spec, _) = decode_launch(key, &spec, tuning.as_deref())?;
    Ok((id, *spec))
}
