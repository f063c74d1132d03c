//! The in-app inbox: a user's delivered messages, and marking them read.

use chrono::{DateTime, Utc};
use herald_wire::{CampaignKey, ItemStatus};
use serde::Serialize;
use sqlx::{FromRow, PgPool};

use crate::{Result, StoreError};

#[derive(Clone, Debug, Serialize, FromRow)]
pub struct InboxItem {
    #[sqlx(try_from = "String")]
    pub key: CampaignKey,
    pub title: String,
    pub body: String,
    #[sqlx(try_from = "i16")]
    pub status: ItemStatus,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A user's inbox, newest campaign first.
pub async fn list(pool: &PgPool, user_id: i64, limit: i64) -> Result<Vec<InboxItem>> {
    Ok(sqlx::query_as(
        "SELECT m.key, m.title, m.body, i.status, i.sent_at, i.read_at
         FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE i.user_id = $1
         ORDER BY i.message_id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    // Planned for this user each time, so that only their partition is opened and locked (a
    // plan kept for any user would lock every partition at each use).
    .persistent(false)
    .fetch_all(pool)
    .await?)
}

#[derive(FromRow)]
struct Marked {
    campaign_id: Option<i64>,
    marked: i64,
    received: bool,
}

/// Mark a delivered message read. Idempotent: the second call changes nothing, and the
/// campaign's read count moves only when an item goes from unread to read. Returns whether
/// this call marked it.
///
/// The count is kept in a counter row per reading session (`message_reads`, see the
/// schema), not on the campaign's row: concurrent readers of one campaign do not queue on
/// one row, and never on the one that operators' requests lock.
pub async fn mark_read(pool: &PgPool, user_id: i64, key: &CampaignKey) -> Result<bool> {
    let row: Marked = sqlx::query_as(
        "WITH m AS (SELECT id FROM messages WHERE key = $2),
         upd AS (
            UPDATE message_items SET read_at = now()
            WHERE message_id = (SELECT id FROM m) AND user_id = $1 AND read_at IS NULL AND status = $3
            RETURNING 1
         ),
         bump AS (
            INSERT INTO message_reads (message_id, shard, reads)
            SELECT id, pg_backend_pid() % 1024, 1 FROM m WHERE EXISTS (SELECT 1 FROM upd)
            ON CONFLICT (message_id, shard) DO UPDATE SET reads = message_reads.reads + 1
            RETURNING 1
         )
         SELECT (SELECT id FROM m) AS campaign_id,
                (SELECT count(*) FROM upd) AS marked,
                EXISTS (SELECT 1 FROM message_items
                        WHERE message_id = (SELECT id FROM m) AND user_id = $1 AND status = $3) AS received",
    )
    .bind(user_id)
    .bind(key.as_str())
    .bind(ItemStatus::Sent.code())
    .persistent(false)
    .fetch_one(pool)
    .await?;
    if row.campaign_id.is_none() {
        return Err(StoreError::UnknownCampaign(key.to_string()));
    }
    if !row.received {
        return Err(StoreError::NotARecipient {
            user: user_id,
            key: key.clone(),
        });
    }
    Ok(row.marked == 1)
}
