//! A campaign's items (`message_items`), found through its pages. The ledger is partitioned
//! by user id, so a question about one campaign that went to everyone would open every
//! partition; instead the campaign's page rows (`message_pages`, one small index range) say
//! which id ranges hold what, and each range is read with its bounds as constants, so that
//! PostgreSQL plans it over the one or two partitions it touches.

use chrono::{DateTime, Utc};
use herald_wire::{CampaignKey, ItemStatus};
use serde::Serialize;
use sqlx::{FromRow, PgPool};

use crate::{Result, StoreError};

/// A recipient whose delivery failed.
#[derive(Clone, Debug, Serialize, FromRow)]
pub struct FailedItem {
    pub user_id: i64,
    pub email: String,
    pub attempts: i16,
    /// The last failure's class (`http_410`, `smtp_550`, `timeout`…) and message.
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// When it was last tried (recorded).
    pub sent_at: Option<DateTime<Utc>>,
}

/// The campaign's failed recipients with ids above `after`, in id order, at most `limit`
/// (1 to 10,000): page through them by passing the last id seen.
pub async fn failures(
    pool: &PgPool,
    key: &CampaignKey,
    after: i64,
    limit: i64,
) -> Result<Vec<FailedItem>> {
    let limit = limit.clamp(1, 10_000);
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE key = $1")
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    // Pages with failures, in id order (the pages of all lanes cover disjoint ranges),
    // through the index of pages with failures: a chunk at a time, since each holds one
    // failure at least (unless its user has been deleted since).
    let mut out = Vec::new();
    let mut cursor = after;
    'chunks: loop {
        let pages: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT after_user_id, last_user_id FROM message_pages
             WHERE message_id = $1 AND failed > 0 AND last_user_id > $2
             ORDER BY last_user_id LIMIT $3",
        )
        .bind(campaign)
        .bind(cursor)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        let chunk = pages.len() as i64;
        for (from, through) in pages {
            let want = limit - out.len() as i64;
            if want <= 0 {
                break 'chunks;
            }
            let rows: Vec<FailedItem> = sqlx::query_as(
                // A user without an address (a failure of its own) lists with an empty one.
                "SELECT i.user_id, coalesce(u.email, '') AS email, i.attempts, i.error_class, i.error, i.sent_at
                 FROM message_items i JOIN users u ON u.id = i.user_id
                 WHERE i.message_id = $1 AND i.user_id > $2 AND i.user_id <= $3 AND i.status = $4
                 ORDER BY i.user_id LIMIT $5",
            )
            .bind(campaign)
            .bind(from.max(after))
            .bind(through)
            .bind(ItemStatus::Failed.code())
            .bind(want)
            // Planned with these bounds, so that only their partitions are opened.
            .persistent(false)
            .fetch_all(pool)
            .await?;
            out.extend(rows);
            cursor = through;
        }
        if chunk < limit || out.len() as i64 >= limit {
            break;
        }
    }
    Ok(out)
}
