//! The frequency cap (docs/local-time.md, "Frequency cap"): how a page statement leaves out
//! users whom capped campaigns reached too often lately, and the operators' default cap.
//!
//! `capped_pages` keeps a row per page of a capped campaign: when, and the ids it reached (as
//! runs of consecutive ids, or a list for a scattered page; `herald_capped_ids` reads both). A
//! capped page hands its candidates to `herald_cap_reach` (the migration), which locks the
//! blocks of ids they fall in, counts for each how many pages of the window reached them,
//! keeps those under the cap, and writes the page's own row. One small write per page, and a
//! read of the few pages of recent capped campaigns that cover the same ids; nothing that
//! grows with a user's history or the ledger. The lock, and the fresh snapshot a VOLATILE
//! function's queries take after it, make two capped campaigns that meet on a user take
//! turns, the second seeing the first's page: exact under any concurrency.

use herald_wire::{FrequencyCap, audience::Filter};
use sqlx::PgPool;

use crate::Result;

/// The CTEs that choose whom a page sends to: `sent_to`, the rows of `page` (with its `id`
/// and `quiet` columns) that are not quiet and, when the campaign has a `cap`, under it. A
/// capped page records them as reached in the same statement (`over_cap`: those it leaves out,
/// usually none, so that keeping the others is no join, whose size the planner cannot
/// guess). With
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
            "over_cap AS (
    SELECT herald_cap_reach(
        $1,
        (SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM page WHERE NOT quiet{fresh}),
        {count}, {window_secs}) AS ids
),
sent_to AS (SELECT * FROM page WHERE NOT quiet AND id <> ALL ((SELECT ids FROM over_cap)::bigint[]))"
        ),
    }
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
        "SELECT count(*) FROM users u JOIN (
             SELECT x FROM capped_pages p, herald_capped_ids(p.runs, p.users) x
             WHERE p.at > now() - interval '{window_secs} seconds'
             GROUP BY x HAVING count(*) >= {count}) c ON c.x = u.id
         WHERE {}",
        compiled.sql
    );
    let (n,): (i64,) = compiled
        .bind(sqlx::query_as(&sql))
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(n)
}

/// Forget what capped campaigns sent longer ago than the longest window (31 days).
pub async fn forget_old(db: &PgPool) -> Result<()> {
    sqlx::query("DELETE FROM capped_pages WHERE at < now() - interval '31 days'")
        .execute(db)
        .await?;
    Ok(())
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
