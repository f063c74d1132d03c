//! The ledger's partitions. `message_items` is range-partitioned by user id (the schema says
//! why); the SQL function `herald_ledger_partitions_through` makes what is missing.

use sqlx::PgConnection;

use crate::Result;

/// Make sure partitions exist for every user id up to `max_user_id`. Cheap when they do.
pub async fn cover(conn: &mut PgConnection, max_user_id: Option<i64>) -> Result<()> {
    sqlx::query("SELECT herald_ledger_partitions_through($1)")
        .bind(max_user_id)
        .execute(conn)
        .await?;
    Ok(())
}
