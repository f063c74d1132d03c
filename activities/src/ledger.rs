//! The SQL behind Herald. Each function is one short transaction, and each write is safe to
//! repeat: a retried activity or a re-run CLI command finds the work done and does nothing.

use chrono::{DateTime, Utc};
use herald_wire::{
    CampaignKey, CampaignSpec, CampaignStatus, PageInput, PageOutcome, Registered, Segment,
    SetStatusInput,
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};

use crate::LedgerError;

/// Insert the campaign row if it is new, and fix its audience if that has not been done.
/// Returns the row's identity and audience, identical on every call after the first.
pub async fn register(
    pool: &PgPool,
    key: &CampaignKey,
    spec: &CampaignSpec,
) -> Result<Registered, LedgerError> {
    let mut tx = pool.begin().await?;
    insert_campaign(&mut tx, key, spec).await?;
    let registered = fix_audience(&mut tx, key).await?;
    tx.commit().await?;
    Ok(registered)
}

/// The CLI's launch: like [`register`], but a key that already exists is refused, so two
/// operators cannot launch over each other's campaign.
pub async fn create_campaign(
    pool: &PgPool,
    key: &CampaignKey,
    spec: &CampaignSpec,
) -> Result<Registered, LedgerError> {
    let mut tx = pool.begin().await?;
    if !insert_campaign(&mut tx, key, spec).await? {
        return Err(LedgerError::DuplicateKey(key.clone()));
    }
    let registered = fix_audience(&mut tx, key).await?;
    tx.commit().await?;
    Ok(registered)
}

/// Undo [`create_campaign`] when the workflow could not be started, so that a failed launch
/// leaves nothing behind. Only a row that never started is removed.
pub async fn delete_unstarted(pool: &PgPool, key: &CampaignKey) -> Result<(), LedgerError> {
    sqlx::query("DELETE FROM messages WHERE key = $1 AND status = 0 AND started_at IS NULL")
        .bind(key.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

async fn insert_campaign(
    tx: &mut Transaction<'_, Postgres>,
    key: &CampaignKey,
    spec: &CampaignSpec,
) -> Result<bool, LedgerError> {
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

/// Count the audience and record its id bounds, once. Users created afterwards get higher
/// ids and are outside the campaign.
async fn fix_audience(
    tx: &mut Transaction<'_, Postgres>,
    key: &CampaignKey,
) -> Result<Registered, LedgerError> {
    // Counting ten million users takes a moment; the worker's pool default is shorter. A
    // small segment is counted from its GIN index, which only bitmap scans can use (the
    // worker's connections leave them off for the page statement: see `PoolSettings`).
    sqlx::query("SET LOCAL statement_timeout = '60s'")
        .execute(&mut **tx)
        .await?;
    sqlx::query("SET LOCAL enable_bitmapscan = on")
        .execute(&mut **tx)
        .await?;
    let row = sqlx::query(
        "SELECT id, status, segment, total, min_user_id, max_user_id
         FROM messages WHERE key = $1 FOR UPDATE",
    )
    .bind(key.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.get("id");
    let status = status_from(row.get("status"));
    if let Some(total) = row.get::<Option<i64>, _>("total") {
        return Ok(Registered {
            message_id: id,
            total,
            min_id: row.get::<Option<i64>, _>("min_user_id").unwrap_or(0),
            max_id: row.get::<Option<i64>, _>("max_user_id").unwrap_or(-1),
            status,
        });
    }
    let segment: Option<String> = row.get("segment");
    let audience = sqlx::query(
        "SELECT count(*) AS total, min(id) AS min_id, max(id) AS max_id
         FROM users WHERE $1::text IS NULL OR segments @> ARRAY[$1::text]",
    )
    .bind(&segment)
    .fetch_one(&mut **tx)
    .await?;
    let total: i64 = audience.get("total");
    let min_id: Option<i64> = audience.get("min_id");
    let max_id: Option<i64> = audience.get("max_id");
    sqlx::query("UPDATE messages SET total = $2, min_user_id = $3, max_user_id = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(total)
        .bind(min_id)
        .bind(max_id)
        .execute(&mut **tx)
        .await?;
    // Every recipient needs a ledger partition before any page can run.
    make_partitions(&mut **tx, max_id).await?;
    Ok(Registered {
        message_id: id,
        total,
        min_id: min_id.unwrap_or(0),
        max_id: max_id.unwrap_or(-1),
        status,
    })
}

/// The page statement: select the lane's next recipients, insert their ledger rows and record
/// the page — one statement, one round trip, one transaction.
///
/// Idempotence comes from the page row, keyed by (campaign, lane, cursor): a page that runs
/// again (a retry after a lost completion, a local activity re-run after a crash) finds its
/// row and returns the recorded outcome without writing. Items are then a plain INSERT, which
/// PostgreSQL does much faster than one with `ON CONFLICT` per row; the primary key on
/// `message_items` still refuses any duplicate, and [`write_page`] falls back to the
/// `ON CONFLICT` form if it ever meets one.
///
/// The `gate` is the operator's fence: when `herald pause` or `herald cancel` has already
/// changed `messages.status`, a new page writes nothing and reports the status instead, even
/// if the signal has not reached the workflow yet.
///
/// `items` is how the items are inserted and counted. The plain form has no `RETURNING`: its
/// insert either writes every row of the page or fails the statement, so the page's own count
/// is the number sent, and not handing each inserted row back saves ~5% of PostgreSQL's CPU
/// per page. The tolerant form may skip rows, so it counts what it returns.
fn page_sql(items: ItemInsert) -> String {
    let (on_conflict, returning, sent) = match items {
        ItemInsert::Plain => ("", "", "page"),
        ItemInsert::SkipExisting => ("ON CONFLICT DO NOTHING", "RETURNING 1", "ins"),
    };
    format!(
        "
WITH gate AS (
    SELECT status FROM messages WHERE id = $1
),
done AS (
    SELECT last_user_id, recipients, sent, failed FROM message_pages
    WHERE message_id = $1 AND lane = $6 AND after_user_id = $2
),
go AS (
    SELECT coalesce((SELECT status FROM gate) = 1, false) AND NOT EXISTS (SELECT 1 FROM done) AS ok
),
page AS (
    SELECT u.id FROM users u
    WHERE (SELECT ok FROM go) AND u.id > $2 AND u.id <= $3
      AND ($5::text IS NULL OR u.segments @> ARRAY[$5::text])
    ORDER BY u.id
    LIMIT $4
),
ins AS (
    INSERT INTO message_items (message_id, user_id, status)
    SELECT $1, id, 1 FROM page
    {on_conflict} {returning}
),
mark AS (
    INSERT INTO message_pages (message_id, lane, after_user_id, last_user_id, recipients, sent)
    SELECT $1, $6, $2, (SELECT max(id) FROM page), (SELECT count(*) FROM page), (SELECT count(*) FROM {sent})
    WHERE (SELECT ok FROM go)
    {on_conflict}
    RETURNING last_user_id, recipients, sent, failed
)
SELECT (SELECT status FROM gate) AS status,
       (SELECT recipients FROM done) AS done_recipients,
       (SELECT last_user_id FROM done) AS done_last,
       (SELECT sent FROM done) AS done_sent,
       (SELECT failed FROM done) AS done_failed,
       (SELECT recipients FROM mark) AS new_recipients,
       (SELECT last_user_id FROM mark) AS new_last,
       (SELECT sent FROM mark) AS new_sent,
       (SELECT failed FROM mark) AS new_failed
"
    )
}

#[derive(Clone, Copy)]
enum ItemInsert {
    /// A plain `INSERT`: any existing row fails the statement.
    Plain,
    /// `ON CONFLICT DO NOTHING`, for the rare page that meets rows already written.
    SkipExisting,
}

static PAGE_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| page_sql(ItemInsert::Plain));
static PAGE_SQL_ON_CONFLICT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| page_sql(ItemInsert::SkipExisting));

/// The plan PostgreSQL picks for the page statement on this connection pool, as `EXPLAIN`
/// text: how the tests check that a page walks `users` along its primary key.
pub async fn explain_page(pool: &PgPool, page: &PageInput) -> Result<String, LedgerError> {
    // EXPLAIN without ANALYZE plans the statement without running it.
    let sql = format!("EXPLAIN {}", *PAGE_SQL);
    let lines = bind_page(sqlx::query(&sql), page).fetch_all(pool).await?;
    Ok(lines
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Deliver a page to the in-app inbox: the ledger row is the delivery.
pub async fn write_page(
    conn: &mut PgConnection,
    page: &PageInput,
) -> Result<PageOutcome, LedgerError> {
    match run_page(conn, page, &PAGE_SQL).await {
        Err(LedgerError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            // Another attempt of this page committed first, or (never expected) two pages
            // overlap. The tolerant form resolves both without duplicating anyone.
            tracing::warn!(
                page.lane = page.lane,
                page.after = page.after,
                "page met existing rows; retrying with ON CONFLICT"
            );
            run_page(conn, page, &PAGE_SQL_ON_CONFLICT).await
        }
        other => other,
    }
}

/// The page statement's parameters, $1 to $6, in the order [`page_sql`] uses them.
fn bind_page<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    page: &'q PageInput,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(page.message_id)
        .bind(page.after)
        .bind(page.until)
        .bind(page.limit as i64)
        .bind(page.segment.as_ref().map(Segment::as_str))
        .bind(page.lane as i32)
}

async fn run_page(
    conn: &mut PgConnection,
    page: &PageInput,
    sql: &str,
) -> Result<PageOutcome, LedgerError> {
    let row = bind_page(sqlx::query(sql), page).fetch_one(conn).await?;
    let Some(status) = row.get::<Option<i16>, _>("status") else {
        return Err(LedgerError::UnknownCampaignId(page.message_id));
    };
    // A page row, read from the columns named (recipients, last, sent, failed).
    let written = |[recipients, last, sent, failed]: [&str; 4]| -> Option<PageOutcome> {
        let count: Option<i32> = row.get(recipients);
        count.map(|count| PageOutcome::Written {
            last: row.get(last),
            recipients: count as u32,
            sent: row.get::<i32, _>(sent) as u32,
            failed: row.get::<i32, _>(failed) as u32,
        })
    };
    // A page committed earlier is reported as it was, whatever the campaign's status now.
    if let Some(replayed) = written(["done_recipients", "done_last", "done_sent", "done_failed"]) {
        return Ok(replayed);
    }
    let status = status_from(status);
    if status != CampaignStatus::InProgress {
        return Ok(PageOutcome::Halted { status });
    }
    // The tolerant form lost a race with a concurrent attempt of the same page: retrying
    // finds that attempt's page row.
    written(["new_recipients", "new_last", "new_sent", "new_failed"]).ok_or(LedgerError::PageRace)
}

/// Mirror the workflow's status into the row. Never moves a finished campaign, and only
/// from the statuses in `from` (any unfinished status when empty). Returns what is stored.
pub async fn set_status(
    pool: &PgPool,
    input: &SetStatusInput,
) -> Result<CampaignStatus, LedgerError> {
    let from: Vec<i16> = input.from.iter().map(|s| s.code()).collect();
    let stored: Option<i16> = sqlx::query_scalar(
        "WITH upd AS (
            UPDATE messages SET
                status = $2,
                status_reason = $3,
                updated_at = now(),
                started_at = CASE WHEN $2 = 1 THEN coalesce(started_at, now()) ELSE started_at END,
                paused_at = CASE WHEN $2 = 2 THEN now() WHEN $2 = 1 THEN NULL ELSE paused_at END,
                finished_at = CASE WHEN $2 >= 3 THEN coalesce(finished_at, now()) ELSE finished_at END
            WHERE id = $1 AND status < 3 AND (cardinality($4::smallint[]) = 0 OR status = ANY($4))
            RETURNING status
         )
         SELECT coalesce((SELECT status FROM upd), (SELECT status FROM messages WHERE id = $1))",
    )
    .bind(input.message_id)
    .bind(input.status.code())
    .bind(&input.reason)
    .bind(&from)
    .fetch_one(pool)
    .await?;
    stored
        .map(status_from)
        .ok_or(LedgerError::UnknownCampaignId(input.message_id))
}

/// What an operator asks of a campaign from the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Pause,
    Resume,
    Cancel,
}

/// The CLI's half of pause, resume and cancel: check the request against the stored status,
/// and write the new status *before* the signal is sent. Page activities read it in their
/// transaction, so once this returns no new page can start writing (see [`PAGE_SQL`]).
/// Returns the status before the change.
pub async fn request(
    pool: &PgPool,
    key: &CampaignKey,
    req: Request,
    reason: Option<&str>,
) -> Result<CampaignStatus, LedgerError> {
    let mut tx = pool.begin().await?;
    let row: Option<(i16, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT status, started_at FROM messages WHERE key = $1 FOR UPDATE")
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let (current, started_at) = row.ok_or_else(|| LedgerError::UnknownCampaign(key.to_string()))?;
    let current = status_from(current);
    let (allowed, target, action) = match req {
        Request::Pause => (current.can_pause(), CampaignStatus::Paused, "pausing"),
        Request::Resume => (current.can_resume(), CampaignStatus::InProgress, "resuming"),
        Request::Cancel => (
            current.can_cancel(),
            CampaignStatus::Cancelled,
            "cancelling",
        ),
    };
    if !allowed {
        return Err(LedgerError::WrongStatus {
            key: key.clone(),
            status: current,
            action,
        });
    }
    // A campaign paused before its send time goes back to "not started" on resume; the
    // workflow marks it in progress when the time comes.
    let target = match req {
        Request::Resume if started_at.is_none() => CampaignStatus::NotStarted,
        _ => target,
    };
    sqlx::query(
        "UPDATE messages SET status = $2, status_reason = $3, updated_at = now(),
             paused_at = CASE WHEN $2 = 2 THEN now() WHEN $2 = 1 THEN NULL ELSE paused_at END,
             finished_at = CASE WHEN $2 >= 3 THEN coalesce(finished_at, now()) ELSE finished_at END
         WHERE key = $1",
    )
    .bind(key.as_str())
    .bind(target.code())
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(current)
}

/// Put back a status that [`request`] changed, when the signal could not be delivered, so
/// that a failed command changes nothing.
pub async fn restore_status(
    pool: &PgPool,
    key: &CampaignKey,
    status: CampaignStatus,
) -> Result<(), LedgerError> {
    sqlx::query("UPDATE messages SET status = $2, updated_at = now() WHERE key = $1")
        .bind(key.as_str())
        .bind(status.code())
        .execute(pool)
        .await?;
    Ok(())
}

/// A campaign as the CLI shows it. Counters are the ledger's committed totals.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignView {
    pub key: String,
    pub status: i16,
    pub status_name: &'static str,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub pending: i64,
    pub read: i64,
    /// read / sent, 0 when nothing is sent yet.
    pub read_rate: f64,
    pub title: String,
    pub segment: Option<String>,
    pub channel: String,
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

impl CampaignView {
    pub fn status(&self) -> CampaignStatus {
        status_from(self.status)
    }
}

const VIEW_SQL: &str = "
SELECT m.key, m.status, coalesce(m.total, 0) AS total,
       coalesce(p.sent, 0)::bigint AS sent, coalesce(p.failed, 0)::bigint AS failed,
       m.read_count, m.title, m.segment, m.channel, m.page_size, m.lanes, m.rate, m.status_reason,
       m.send_at, m.created_at, m.started_at, m.paused_at, m.finished_at
FROM messages m
LEFT JOIN LATERAL (
    SELECT sum(sent) AS sent, sum(failed) AS failed FROM message_pages WHERE message_id = m.id
) p ON true
";

fn view_from(row: &sqlx::postgres::PgRow) -> CampaignView {
    let status: i16 = row.get("status");
    let total: i64 = row.get("total");
    let sent: i64 = row.get("sent");
    let failed: i64 = row.get("failed");
    let read: i64 = row.get("read_count");
    CampaignView {
        key: row.get("key"),
        status,
        status_name: status_from(status).name(),
        total,
        sent,
        failed,
        pending: total - sent - failed,
        read,
        read_rate: if sent > 0 {
            read as f64 / sent as f64
        } else {
            0.0
        },
        title: row.get("title"),
        segment: row.get("segment"),
        channel: row.get("channel"),
        page_size: row.get("page_size"),
        lanes: row.get("lanes"),
        rate: row.get("rate"),
        reason: row.get("status_reason"),
        send_at: row.get("send_at"),
        created_at: row.get("created_at"),
        started_at: row.get("started_at"),
        paused_at: row.get("paused_at"),
        finished_at: row.get("finished_at"),
    }
}

/// The channel on which PostgreSQL announces every change of a campaign's status, with the
/// campaign's key as payload (a trigger on `messages`, in the migrations, sends it).
pub const STATUS_CHANNEL: &str = "herald_status";

pub async fn campaign(pool: &PgPool, key: &CampaignKey) -> Result<CampaignView, LedgerError> {
    let row = sqlx::query(&format!("{VIEW_SQL} WHERE m.key = $1"))
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| LedgerError::UnknownCampaign(key.to_string()))?;
    Ok(view_from(&row))
}

/// Newest first.
pub async fn campaigns(pool: &PgPool, limit: i64) -> Result<Vec<CampaignView>, LedgerError> {
    let rows = sqlx::query(&format!("{VIEW_SQL} ORDER BY m.id DESC LIMIT $1"))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(view_from).collect())
}

#[derive(Clone, Debug, Serialize)]
pub struct InboxItem {
    pub key: String,
    pub title: String,
    pub body: String,
    pub status: &'static str,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A user's in-app inbox, newest campaign first.
pub async fn inbox(pool: &PgPool, user_id: i64, limit: i64) -> Result<Vec<InboxItem>, LedgerError> {
    let rows = sqlx::query(
        "SELECT m.key, m.title, m.body, i.status, i.sent_at, i.read_at
         FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE i.user_id = $1
         ORDER BY i.message_id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| InboxItem {
            key: r.get("key"),
            title: r.get("title"),
            body: r.get("body"),
            status: match r.get::<i16, _>("status") {
                0 => "pending",
                1 => "sent",
                _ => "failed",
            },
            sent_at: r.get("sent_at"),
            read_at: r.get("read_at"),
        })
        .collect())
}

/// Whether a user exists (for clear errors on `inbox` and `read`).
pub async fn user_exists(pool: &PgPool, user_id: i64) -> Result<bool, LedgerError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user_id)
            .fetch_one(pool)
            .await?,
    )
}

/// Mark a delivered message read. Idempotent: the second call changes nothing and the
/// campaign's read count moves only when an item goes from unread to read.
/// Returns true when this call marked it.
pub async fn mark_read(
    pool: &PgPool,
    user_id: i64,
    key: &CampaignKey,
) -> Result<bool, LedgerError> {
    let row = sqlx::query(
        "WITH m AS (SELECT id FROM messages WHERE key = $2),
         upd AS (
            UPDATE message_items SET read_at = now()
            WHERE message_id = (SELECT id FROM m) AND user_id = $1 AND read_at IS NULL AND status = 1
            RETURNING 1
         ),
         bump AS (
            UPDATE messages SET read_count = read_count + (SELECT count(*) FROM upd)
            WHERE id = (SELECT id FROM m) AND EXISTS (SELECT 1 FROM upd)
            RETURNING 1
         )
         SELECT (SELECT id FROM m) AS message_id,
                (SELECT count(*) FROM upd) AS marked,
                EXISTS (SELECT 1 FROM message_items
                        WHERE message_id = (SELECT id FROM m) AND user_id = $1 AND status = 1) AS received",
    )
    .bind(user_id)
    .bind(key.as_str())
    .fetch_one(pool)
    .await?;
    if row.get::<Option<i64>, _>("message_id").is_none() {
        return Err(LedgerError::UnknownCampaign(key.to_string()));
    }
    if !row.get::<bool, _>("received") {
        return Err(LedgerError::NotARecipient {
            user: user_id,
            key: key.clone(),
        });
    }
    Ok(row.get::<i64, _>("marked") == 1)
}

/// Add `count` users carrying `segment`, in one statement. Returns the first and last id.
/// After a load, call [`settle_users`] once.
pub async fn seed_users(
    pool: &PgPool,
    count: i64,
    segment: Option<&Segment>,
) -> Result<(i64, i64), LedgerError> {
    let segments: Vec<&str> = segment.map(Segment::as_str).into_iter().collect();
    let row = sqlx::query(
        "WITH base AS (SELECT coalesce(max(id), 0) AS n FROM users),
         ins AS (
            INSERT INTO users (email, segments)
            SELECT 'user' || (base.n + g) || '@example.com', $2::text[]
            FROM base, generate_series(1, $1) AS g
            RETURNING id
         )
         SELECT min(id) AS first, max(id) AS last FROM ins",
    )
    .bind(count)
    .bind(&segments)
    .fetch_one(pool)
    .await?;
    Ok((
        row.get::<Option<i64>, _>("first").unwrap_or(0),
        row.get::<Option<i64>, _>("last").unwrap_or(0),
    ))
}

/// After a bulk load of users up to `last_id`: make their ledger partitions now rather than
/// at the next launch, and give the planner statistics and the table its visibility map at
/// once, as a restore would, rather than leaving the first campaign to autovacuum's timing.
pub async fn settle_users(pool: &PgPool, last_id: i64) -> Result<(), LedgerError> {
    make_partitions(pool, Some(last_id)).await?;
    sqlx::raw_sql("VACUUM (ANALYZE) users")
        .execute(pool)
        .await?;
    Ok(())
}

/// The ledger is partitioned by user id (see the migrations): make sure partitions exist for
/// every id up to `max_user_id`. Cheap when they do.
async fn make_partitions<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    max_user_id: Option<i64>,
) -> Result<(), LedgerError> {
    sqlx::query("SELECT herald_ledger_partitions_through($1)")
        .bind(max_user_id)
        .execute(executor)
        .await?;
    Ok(())
}

fn status_from(code: i16) -> CampaignStatus {
    // The column has a CHECK constraint for 0..=5.
    CampaignStatus::from_code(code).unwrap_or(CampaignStatus::Failed)
}
