//! The in-app inbox: a user's delivered messages, and marking them read.
//!
//! What a user sees is defined once, in [`DELIVERED`]: the items of inbox campaigns that were
//! delivered to them. The list, the unread badge and "read all" all use it, so the badge
//! never counts an item the list does not show.
//!
//! Each statement names one user, so PostgreSQL opens only that user's partition of
//! `message_items`, provided the statement is planned for the user: the API's sessions keep
//! it prepared and plan it for its values at every use (`PoolSettings::custom_plans`); a
//! command runs it once, and PostgreSQL plans a statement's first uses for their values
//! anyway.

use chrono::{DateTime, Utc};
use herald_wire::{CampaignKey, ItemStatus};
use serde::Serialize;
use sqlx::FromRow;

use crate::{Result, StoreError};
use herald_templates::{Profile, UserFields};

/// The items a user's inbox shows, as a condition on `message_items i` joined with
/// `messages m` (`$1`: the user): inbox campaigns, delivered. A paused or cancelled campaign's
/// items that were delivered stay; items of external channels never show.
const DELIVERED: &str = "i.user_id = $1 AND i.status = 1 AND m.channel = 'inbox'";

#[derive(Clone, Debug, Serialize, FromRow)]
pub struct InboxItem {
    /// The campaign's row id: the inbox is ordered by it, and a page's cursor is the last one.
    #[serde(skip)]
    pub campaign_id: i64,
    #[sqlx(try_from = "String")]
    pub key: CampaignKey,
    pub title: String,
    pub body: String,
    #[sqlx(try_from = "i16")]
    pub status: ItemStatus,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    /// Why the title and body could not be rendered for this user (they are then empty).
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_error: Option<String>,
    /// The campaign's category: what the item's unsubscribe link opts out of.
    pub category: String,
    /// The link that opts the user out of the campaign's category in the inbox (filled by
    /// the control layer, which holds the key).
    #[sqlx(skip)]
    pub unsubscribe_url: Option<String>,
}

/// Which of a user's items to list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadFilter {
    #[default]
    All,
    Unread,
    Read,
}

impl ReadFilter {
    fn code(self) -> i16 {
        match self {
            Self::All => 0,
            Self::Unread => 1,
            Self::Read => 2,
        }
    }
}

/// One page of a user's inbox.
#[derive(Clone, Debug)]
pub struct InboxPage {
    /// Newest campaign first.
    pub items: Vec<InboxItem>,
    /// Every unread item the user has, whatever the filter and the page.
    pub unread: i64,
    /// The user's data as templates see it, read with the page (so rendering needs no
    /// second query); `None` when the user does not exist.
    pub user: Option<UserData>,
}

/// A user's data as the inbox statement reads it, parsed only when a template needs it.
#[derive(Clone, Debug)]
pub struct UserData {
    id: i64,
    email: String,
    json: String,
}

impl UserData {
    /// The user as templates see them.
    pub fn profile(&self) -> Result<Profile> {
        crate::users::profile_from_json(self.id, &self.email, &UserFields::all(), &self.json)
    }
}

#[derive(FromRow)]
struct Row {
    email: Option<String>,
    profile: Option<String>,
    unread: i64,
    campaign_id: Option<i64>,
    key: Option<String>,
    title: Option<String>,
    body: Option<String>,
    category: Option<String>,
    status: Option<i16>,
    sent_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
}

/// A page of a user's inbox: up to `limit` items of campaigns older than `before` (a
/// campaign id, the cursor), newest first, with the user's unread count and profile (what
/// templates read), in one statement.
/// Keyset pagination: a page starts below the last item of the one before, so items that
/// arrive from new campaigns meanwhile never shift a walk through the pages.
pub async fn page<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: i64,
    filter: ReadFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<InboxPage> {
    let rows: Vec<Row> = sqlx::query_as(&page_sql())
        .bind(user_id)
        .bind(before)
        .bind(filter.code())
        .bind(limit)
        .fetch_all(db)
        .await?;
    let first = rows.first();
    let unread = first.map_or(0, |r| r.unread);
    let user = first.and_then(|r| {
        Some(UserData {
            id: user_id,
            email: r.email.clone()?,
            json: r.profile.clone()?,
        })
    });
    let items = rows
        .into_iter()
        .filter_map(|r| {
            Some((
                r.campaign_id?,
                r.key?,
                r.title?,
                r.body?,
                r.category?,
                r.status?,
                r.sent_at,
                r.read_at,
            ))
        })
        .map(
            |(campaign_id, key, title, body, category, status, sent_at, read_at)| {
                let decode = |what: &str, e: String| {
                    StoreError::Database(sqlx::Error::Decode(format!("inbox {what}: {e}").into()))
                };
                Ok(InboxItem {
                    campaign_id,
                    key: CampaignKey::parse(&key).map_err(|e| decode("key", e.0))?,
                    title,
                    body,
                    status: ItemStatus::try_from(status).map_err(|e| decode("status", e))?,
                    sent_at,
                    read_at,
                    render_error: None,
                    category,
                    unsubscribe_url: None,
                })
            },
        )
        .collect::<Result<_>>()?;
    Ok(InboxPage {
        items,
        unread,
        user,
    })
}

/// The statement behind [`page`] (`$1` user, `$2` before, `$3` filter, `$4` limit); the
/// API's benchmark runs the same text under pgbench as its baseline.
pub fn page_sql() -> String {
    let profile = crate::users::profile_sql(&UserFields::all());
    format!(
        "WITH me AS (
            SELECT coalesce(u.email, '') AS email, {profile} AS profile
            FROM users u WHERE u.id = $1
         ), unread AS (
            SELECT count(*) AS n FROM message_items i JOIN messages m ON m.id = i.message_id
            WHERE {DELIVERED} AND i.read_at IS NULL
         ), page AS (
            SELECT i.message_id AS campaign_id, m.key, m.title, m.body, m.category, i.status,
                   i.sent_at, i.read_at
            FROM message_items i JOIN messages m ON m.id = i.message_id
            WHERE {DELIVERED} AND ($2::bigint IS NULL OR i.message_id < $2)
              AND ($3::smallint = 0 OR ($3 = 1) = (i.read_at IS NULL))
            ORDER BY i.message_id DESC LIMIT $4
         )
         SELECT (SELECT email FROM me) AS email, (SELECT profile FROM me) AS profile,
                unread.n AS unread, page.*
         FROM unread LEFT JOIN page ON true
         ORDER BY page.campaign_id DESC NULLS LAST"
    )
}

/// How many delivered items a user has not read (the badge); `None` when there is no such
/// user. One statement: apps poll the badge.
pub async fn unread_count<'e>(db: impl sqlx::PgExecutor<'e>, user_id: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM users WHERE id = $1) THEN
           (SELECT count(*) FROM message_items i JOIN messages m ON m.id = i.message_id
            WHERE {DELIVERED} AND i.read_at IS NULL)
         END"
    ))
    .bind(user_id)
    .fetch_one(db)
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
pub async fn mark_read<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: i64,
    key: &CampaignKey,
) -> Result<bool> {
    let row: Marked = sqlx::query_as(&format!(
        "WITH c AS (SELECT id FROM messages WHERE key = $2),
         upd AS (
            UPDATE message_items i SET read_at = now()
            FROM messages m
            WHERE i.message_id = (SELECT id FROM c) AND m.id = i.message_id AND {DELIVERED}
              AND i.read_at IS NULL
            RETURNING 1
         ),
         bump AS (
            INSERT INTO message_reads (message_id, shard, reads)
            SELECT id, pg_backend_pid() % 1024, 1 FROM c WHERE EXISTS (SELECT 1 FROM upd)
            ON CONFLICT (message_id, shard) DO UPDATE SET reads = message_reads.reads + 1
            RETURNING 1
         )
         SELECT (SELECT id FROM c) AS campaign_id,
                (SELECT count(*) FROM upd) AS marked,
                EXISTS (SELECT 1 FROM message_items i JOIN messages m ON m.id = i.message_id
                        WHERE i.message_id = (SELECT id FROM c) AND {DELIVERED}) AS received"
    ))
    .bind(user_id)
    .bind(key.as_str())
    .fetch_one(db)
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

/// Mark every unread item of a user's inbox read, in one statement, counting each campaign's
/// reads once per item that changed. Idempotent: a second call changes nothing. Returns how
/// many items this call marked.
pub async fn mark_all_read<'e>(db: impl sqlx::PgExecutor<'e>, user_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(&format!(
        "WITH upd AS (
            UPDATE message_items i SET read_at = now()
            FROM messages m
            WHERE m.id = i.message_id AND {DELIVERED} AND i.read_at IS NULL
            RETURNING i.message_id
         ),
         bump AS (
            INSERT INTO message_reads (message_id, shard, reads)
            SELECT message_id, pg_backend_pid() % 1024, count(*) FROM upd GROUP BY message_id
            ON CONFLICT (message_id, shard) DO UPDATE SET reads = message_reads.reads + excluded.reads
            RETURNING 1
         )
         SELECT count(*) FROM upd"
    ))
    .bind(user_id)
    .fetch_one(db)
    .await?)
}
