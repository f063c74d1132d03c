//! The ledger's partitions. `message_items` is range-partitioned by user id, in partitions
//! that grow with the ids (the schema says how and why); the SQL function
//! `herald_ledger_partitions_through` makes what is missing, a batch at a time.

use sqlx::PgPool;

use crate::Result;

/// Partitions made per transaction: each takes a few locks until its transaction ends, and a
/// user base that jumps to high ids (an import, explicit ids) may need a few hundred at once.
const BATCH: i32 = 32;

/// Make sure partitions exist for every user id up to `max_user_id`, a batch per transaction.
/// Returns how many were made; one cheap query when none was missing.
pub async fn cover(pool: &PgPool, max_user_id: Option<i64>) -> Result<u32> {
    let mut made = 0;
    loop {
        let batch: i32 = sqlx::query_scalar("SELECT herald_ledger_partitions_through($1, $2)")
            .bind(max_user_id)
            .bind(BATCH)
            .fetch_one(pool)
            .await?;
        if batch == 0 {
            return Ok(made);
        }
        made += batch as u32;
        tracing::debug!(made, "ledger partitions");
    }
}

/// How many partitions the ledger has.
pub async fn count(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'message_items'::regclass",
    )
    .fetch_one(pool)
    .await?)
}
