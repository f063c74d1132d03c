//! Step 3 of an external page (see [`super`]): record a batch of outcomes in one statement.

use herald_wire::{ItemStatus, PageInput};
use sqlx::{FromRow, PgConnection};

use crate::{Result, StoreError};

/// What happened to one recipient in a run of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub user_id: i64,
    /// Sent, failed for good, or still pending (a transient failure with tries left).
    pub status: ItemStatus,
    /// Tries made so far, this run's included.
    pub attempts: u32,
    /// The last failure, when there was one: its class (`http_503`, `timeout`,
    /// `smtp_550`…) and a short message.
    pub error: Option<(String, String)>,
}

/// The page row after [`record`]: its counters as they now stand, and the run that owns
/// it (the last to claim it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromRow)]
pub struct Recorded {
    /// Those the page delivers to, as in [`Claimed::recipients`].
    pub recipients: i32,
    pub sent: i32,
    pub failed: i32,
    pub suppressed: i32,
    pub owner: Option<i64>,
}

/// How a batch of outcomes is written: see [`record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Each outcome is its item's first write as far as the run knows: a page this run
    /// claimed, each recipient's first try. A plain `INSERT`, which costs PostgreSQL less
    /// than an upsert's speculative insertion (docs/performance.md); if an item has a row
    /// after all (another run of the page raced this one), the statement fails whole and
    /// [`record`] writes the batch again as [`Writes::Any`].
    First,
    /// Some items may have rows: an upsert that moves only those still pending.
    Any,
}

/// Record outcomes of a page in one statement (step 3 above), as they come: a page records
/// a batch whenever the last has committed. An outcome is its item's first write (an
/// `INSERT`), or the update of an item recorded pending before (a try that failed with tries
/// left); items that are no longer pending are left as they are and not counted again.
/// Outcomes are recorded whichever run sent them; the answer's `owner` tells a run that
/// another has taken the page over. Runs in a statement of its own (not in a transaction):
/// a [`Writes::First`] that meets a row is written again.
pub async fn record(
    conn: &mut PgConnection,
    page: &PageInput,
    outcomes: &[Outcome],
    writes: Writes,
) -> Result<Recorded> {
    let n = outcomes.len();
    let (mut ids, mut statuses, mut attempts, mut classes, mut errors) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for o in outcomes {
        ids.push(o.user_id);
        statuses.push(o.status.code());
        attempts.push(o.attempts.min(i16::MAX as u32) as i16);
        let (class, error) = match &o.error {
            Some((c, e)) => (Some(c.as_str()), Some(e.as_str())),
            None => (None, None),
        };
        classes.push(class);
        errors.push(error);
    }
    let columns = Columns {
        ids: &ids,
        statuses: &statuses,
        attempts: &attempts,
        classes: &classes,
        errors: &errors,
    };
    let recorded = match record_as(conn, page, &columns, writes).await {
        Err(sqlx::Error::Database(e)) if writes == Writes::First && e.is_unique_violation() => {
            tracing::warn!(
                campaign.id = page.campaign_id,
                page.lane = page.lane,
                page.after = page.after,
                "outcomes met items already recorded; writing them again as an upsert"
            );
            record_as(conn, page, &columns, Writes::Any).await
        }
        other => other,
    }?;
    recorded.ok_or(StoreError::UnknownCampaignId(page.campaign_id))
}

/// A batch of outcomes, column by column, as [`record_as`] binds them.
struct Columns<'a> {
    ids: &'a [i64],
    statuses: &'a [i16],
    attempts: &'a [i16],
    classes: &'a [Option<&'a str>],
    errors: &'a [Option<&'a str>],
}

/// The statement of [`record`]: the items' writes as `writes` says, the failures by class,
/// and the page's counters. Parameters: $1 campaign, $2 lane, $3 the page's cursor, $4–$8 the
/// outcomes' columns, $9–$11 the statuses sent, pending and failed.
macro_rules! record_sql {
    ($on_conflict:literal) => {
        concat!(
            "
WITH o AS (
    SELECT * FROM unnest($4::bigint[], $5::smallint[], $6::smallint[], $7::text[], $8::text[])
        AS o(user_id, status, attempts, error_class, error)
),
upd AS (
    INSERT INTO message_items AS i (message_id, user_id, status, attempts, error_class, error)
    SELECT $1, o.user_id, o.status, o.attempts, o.error_class, o.error FROM o",
            $on_conflict,
            "
    RETURNING i.status, i.attempts, i.error_class, i.error
),
failures AS (
    INSERT INTO message_failures AS f (message_id, lane, error_class, items, retried, error)
    SELECT $1, $2, coalesce(error_class, 'unknown'), count(*), count(*) FILTER (WHERE attempts > 1),
           max(error)
    FROM upd WHERE status = $11 GROUP BY 3
    ON CONFLICT (message_id, lane, error_class) DO UPDATE SET
        items = f.items + excluded.items, retried = f.retried + excluded.retried,
        error = excluded.error
)
UPDATE message_pages
   SET sent = sent + (SELECT count(*) FROM upd WHERE status = $9),
       failed = failed + (SELECT count(*) FROM upd WHERE status = $11),
       retried = retried + (SELECT count(*) FROM upd WHERE status = $9 AND attempts > 1)
 WHERE message_id = $1 AND lane = $2 AND after_user_id = $3
RETURNING recipients, sent, failed, suppressed, owner
"
        )
    };
}

async fn record_as(
    conn: &mut PgConnection,
    page: &PageInput,
    columns: &Columns<'_>,
    writes: Writes,
) -> std::result::Result<Option<Recorded>, sqlx::Error> {
    let sql = match writes {
        Writes::First => record_sql!(""),
        // $10 (pending) is bound either way; only this form reads it.
        Writes::Any => record_sql!(
            "
    ON CONFLICT (message_id, user_id) DO UPDATE
       SET status = excluded.status, attempts = excluded.attempts,
           error_class = excluded.error_class, error = excluded.error, sent_at = now()
     WHERE i.status = $10"
        ),
    };
    sqlx::query_as(sql)
        .bind(page.campaign_id)
        .bind(page.lane as i32)
        .bind(page.after)
        .bind(columns.ids)
        .bind(columns.statuses)
        .bind(columns.attempts)
        .bind(columns.classes)
        .bind(columns.errors)
        .bind(ItemStatus::Sent.code())
        .bind(ItemStatus::Pending.code())
        .bind(ItemStatus::Failed.code())
        .persistent(true)
        .fetch_optional(&mut *conn)
        .await
}
