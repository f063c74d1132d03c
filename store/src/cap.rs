//! The frequency cap (docs/local-time.md, "Frequency cap"): how a page statement leaves out
//! users whom capped campaigns reached too often lately, and the operators' default cap.
//!
//! `recent_deliveries` keeps, per user, when capped campaigns reached them (newest first,
//! at most [`FrequencyCap::REMEMBERED`]). A capped page upserts its recipients' rows with a
//! condition: the update happens only while the user is under the cap, and the rows it
//! returns are the page's recipients. PostgreSQL locks a row it updates on conflict and
//! checks the condition against its newest version, so two capped campaigns reaching one
//! user at once take turns, and the second counts the first's delivery: exact under any
//! concurrency, with one index probe per recipient and no look at their history.

use herald_wire::FrequencyCap;
use sqlx::PgPool;

use crate::Result;

/// The CTEs that choose whom a page sends to: `sent_to`, the rows of `page` (with its `id`
/// and `quiet` columns) that are not quiet and, when the campaign has a `cap`, under it. A
/// capped page records each of them as a delivery in the same statement (`reach`), in id
/// order, so that pages that meet lock their users in one order and never deadlock.
pub fn sent_to_sql(cap: Option<(u32, u32)>) -> String {
    match cap {
        None => "sent_to AS (SELECT * FROM page WHERE NOT quiet)".to_owned(),
        Some((count, window_secs)) => format!(
            "reach AS (
    INSERT INTO recent_deliveries AS r (user_id, sent_at)
    SELECT id, ARRAY[now()] FROM page WHERE NOT quiet ORDER BY id
    ON CONFLICT (user_id) DO UPDATE SET sent_at = herald_deliveries_with(r.sent_at, now())
    WHERE herald_deliveries_since(r.sent_at, now() - interval '{window_secs} seconds') < {count}
    RETURNING r.user_id
),
sent_to AS (SELECT * FROM page WHERE NOT quiet AND id IN (SELECT user_id FROM reach))"
        ),
    }
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
