//! The frequency cap (docs/local-time.md, "Frequency cap"): how a page statement leaves out
//! users whom capped campaigns reached too often lately, and the operators' default cap.
//!
//! `recent_deliveries` keeps, per user, when capped campaigns reached them (newest first,
//! at most [`FrequencyCap::REMEMBERED`], the largest cap). A capped page upserts its recipients' rows with a
//! condition: the update happens only while the user is under the cap, and the rows it
//! returns are the page's recipients. PostgreSQL locks a row it updates on conflict and
//! checks the condition against its newest version, so two capped campaigns reaching one
//! user at once take turns, and the second counts the first's delivery: exact under any
//! concurrency, with one index probe per recipient and no look at their history.

use herald_wire::{FrequencyCap, audience::Filter};
use sqlx::PgPool;

use crate::Result;

/// The CTEs that choose whom a page sends to: `sent_to`, the rows of `page` (with its `id`
/// and `quiet` columns) that are not quiet and, when the campaign has a `cap`, under it. A
/// capped page records each of them as a delivery in the same statement (`reach`), in id
/// order, so that pages that meet lock their users in one order and never deadlock. With
/// `fresh`, only users the campaign ($1) has no item for yet count: the form of an inbox page
/// that met rows already written, which writes only the others.
pub fn sent_to_sql(cap: Option<(u32, u32)>, fresh: bool) -> String {
    let fresh = if fresh {
        " AND NOT EXISTS (SELECT 1 FROM message_items i WHERE i.message_id = $1 AND i.user_id = page.id)"
    } else {
        ""
    };
    match cap {
        None => "sent_to AS (SELECT * FROM page WHERE NOT quiet)".to_owned(),
        Some((count, window_secs)) => format!(
            "reach AS (
    INSERT INTO recent_deliveries AS r (user_id, sent_at)
    SELECT id, ARRAY[clock_timestamp()] FROM page WHERE NOT quiet{fresh} ORDER BY id
    ON CONFLICT (user_id) DO UPDATE
        SET sent_at = (clock_timestamp() || r.sent_at)[1:{remembered}]
        WHERE {under}
    RETURNING r.user_id
),
sent_to AS (SELECT * FROM page WHERE NOT quiet AND id IN (SELECT user_id FROM reach))",
            remembered = FrequencyCap::REMEMBERED,
            under = under_cap_sql("r", count, window_secs),
        ),
    }
}

/// Whether the `recent_deliveries` row `r` is under a cap of `count` in `window_secs`: its
/// `count`-th newest delivery is outside the window, or it has fewer. The times are newest
/// first: each is prepended with the time its statement held the row's lock, after the
/// delivery before it committed.
fn under_cap_sql(r: &str, count: u32, window_secs: u32) -> String {
    format!(
        "({r}.sent_at[{count}] IS NULL \
          OR {r}.sent_at[{count}] <= now() - interval '{window_secs} seconds')"
    )
}

/// How many users of `filter` a campaign capped at `(count, window in seconds)` would
/// leave out if its pages reached them now (a dry run's figure: one scan of the audience).
/// At most: some of them may be left out anyway (opted out, suppressed, a skipped zone).
pub async fn over_cap(
    pool: &PgPool,
    filter: Option<&Filter>,
    (count, window_secs): (u32, u32),
) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let compiled = crate::audience::compiled(&mut tx, filter).await?;
    crate::audience::counting(&mut tx).await?;
    let sql = format!(
        "SELECT count(*) FROM users u JOIN recent_deliveries r ON r.user_id = u.id
         WHERE {} AND NOT {}",
        compiled.sql,
        under_cap_sql("r", count, window_secs)
    );
    let (n,): (i64,) = compiled
        .bind(sqlx::query_as(&sql))
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(n)
}

/// The frequency cap a campaign gets when its launch names none; `None`: uncapped.
pub async fn default_cap(db: &PgPool) -> Result<Option<FrequencyCap>> {
    let value: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE name = 'frequency_cap'")
            .fetch_optional(db)
            .await?;
    Ok(value.and_then(|(v,)| FrequencyCap::parse(&v).ok()))
}

/// Set (or, with [`FrequencyCap::Off`], remove) the default cap, as `by`.
pub async fn set_default_cap(db: &PgPool, cap: FrequencyCap, by: &str) -> Result<()> {
    match cap {
        FrequencyCap::Off => {
            sqlx::query("DELETE FROM settings WHERE name = 'frequency_cap'")
                .execute(db)
                .await?;
        }
        FrequencyCap::At { .. } => {
            sqlx::query(
                "INSERT INTO settings (name, value, set_by) VALUES ('frequency_cap', $1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value,
                     set_by = excluded.set_by, set_at = now()",
            )
            .bind(cap.to_string())
            .bind(by)
            .execute(db)
            .await?;
        }
    }
    Ok(())
}
