//! Campaign rows (`messages`, the table's name as specified): creating and registering a
//! campaign, fixing its audience, and reading it back as operators see it.

use chrono::{DateTime, Utc};
use herald_wire::{CampaignKey, CampaignSpec, CampaignStatus, Channel, Registered, Segment};
use serde::Serialize;
use sqlx::{FromRow, PgPool, Postgres, Transaction};

use crate::{Result, StoreError, audience, partitions};

/// The workflow's registration: insert the campaign row if it is new, and fix its audience if
/// that has not been done. Identical on every call after the first.
pub async fn register(pool: &PgPool, key: &CampaignKey, spec: &CampaignSpec) -> Result<Registered> {
    let mut tx = pool.begin().await?;
    insert(&mut tx, key, spec).await?;
    let registered = fix_audience(&mut tx, key).await?;
    tx.commit().await?;
    Ok(registered)
}

/// An operator's launch: like [`register`], but a key that already exists is refused, so two
/// operators cannot launch over each other's campaign.
pub async fn create(pool: &PgPool, key: &CampaignKey, spec: &CampaignSpec) -> Result<Registered> {
    let mut tx = pool.begin().await?;
    if !insert(&mut tx, key, spec).await? {
        return Err(StoreError::DuplicateKey(key.clone()));
    }
    let registered = fix_audience(&mut tx, key).await?;
    tx.commit().await?;
    Ok(registered)
}

/// Undo [`create`] when the workflow could not be started. Only a row that never started is
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
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO messages (key, title, body, channel, segment, send_at, page_size, lanes, rate)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key.as_str())
    .bind(spec.content.title())
    .bind(spec.content.body())
    .bind(spec.channel.name())
    .bind(spec.segment.as_ref().map(Segment::as_str))
    .bind(spec.send_at)
    .bind(spec.page_size.get() as i32)
    .bind(spec.lanes.get() as i32)
    .bind(spec.rate.map(|r| r.get() as i32))
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
    segment: Option<String>,
    total: Option<i64>,
    min_user_id: Option<i64>,
    max_user_id: Option<i64>,
}

/// Count the audience and record its id bounds, once. Users created afterwards get higher
/// ids and are outside the campaign.
async fn fix_audience(tx: &mut Transaction<'_, Postgres>, key: &CampaignKey) -> Result<Registered> {
    let row: Stored = sqlx::query_as(
        "SELECT id, status, segment, total, min_user_id, max_user_id
         FROM messages WHERE key = $1 FOR UPDATE",
    )
    .bind(key.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let registered = |total, min_id: Option<i64>, max_id: Option<i64>| Registered {
        campaign_id: row.id,
        total,
        min_id: min_id.unwrap_or(0),
        max_id: max_id.unwrap_or(-1),
        status: row.status,
    };
    if let Some(total) = row.total {
        return Ok(registered(total, row.min_user_id, row.max_user_id));
    }
    let audience = audience::count(tx, row.segment.as_deref()).await?;
    sqlx::query(
        "UPDATE messages SET total = $2, min_user_id = $3, max_user_id = $4, updated_at = now()
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(audience.total)
    .bind(audience.min_id)
    .bind(audience.max_id)
    .execute(&mut **tx)
    .await?;
    // Every recipient needs a ledger partition before any page can run.
    partitions::cover(&mut **tx, audience.max_id).await?;
    Ok(registered(audience.total, audience.min_id, audience.max_id))
}

/// A campaign as operators see it. Counters are the ledger's committed totals.
#[derive(Clone, Debug, Serialize, FromRow)]
pub struct CampaignView {
    #[sqlx(try_from = "String")]
    pub key: CampaignKey,
    /// Serialized as `status` (the code) and `status_name`.
    #[serde(flatten, serialize_with = "herald_wire::status::code_and_name")]
    #[sqlx(try_from = "i16")]
    pub status: CampaignStatus,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub pending: i64,
    pub read: i64,
    /// read / sent, 0 when nothing is sent yet.
    pub read_rate: f64,
    pub title: String,
    pub segment: Option<String>,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
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
}

const VIEW_SQL: &str = "
SELECT m.key, m.status, coalesce(m.total, 0) AS total, p.sent, p.failed,
       coalesce(m.total, 0) - p.sent - p.failed AS pending,
       m.read_count AS read,
       CASE WHEN p.sent > 0 THEN m.read_count::float8 / p.sent ELSE 0 END AS read_rate,
       m.title, m.segment, m.channel, m.page_size, m.lanes, m.rate, m.status_reason AS reason,
       m.send_at, m.created_at, m.started_at, m.paused_at, m.finished_at
FROM messages m
LEFT JOIN LATERAL (
    SELECT coalesce(sum(sent), 0)::bigint AS sent, coalesce(sum(failed), 0)::bigint AS failed
    FROM message_pages WHERE message_id = m.id
) p ON true
";

pub async fn find(pool: &PgPool, key: &CampaignKey) -> Result<CampaignView> {
    sqlx::query_as(&format!("{VIEW_SQL} WHERE m.key = $1"))
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))
}

/// Newest first.
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<CampaignView>> {
    Ok(
        sqlx::query_as(&format!("{VIEW_SQL} ORDER BY m.id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(pool)
            .await?,
    )
}
