//! The users a campaign goes to: counting an audience, and adding users.

use chrono::Utc;
use herald_wire::{InvalidInput, Segment, audience::Filter};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{Result, StoreError, filter::Compiled, partitions};

/// An audience as fixed at launch: how many, and the id range they lie in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromRow)]
pub struct Audience {
    pub total: i64,
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
}

/// Count the users `filter` holds (every user when `None`). Its relative times must have
/// been fixed (a stored campaign's are).
pub(crate) async fn count(conn: &mut PgConnection, filter: Option<&Filter>) -> Result<Audience> {
    // Counting ten million users takes a moment, longer than the worker's statement limit;
    // a small segment is counted from its GIN index, which only bitmap scans can use (see
    // `PoolSettings::bitmap_scans`). Both settings last until the transaction ends.
    for setting in [
        "SET LOCAL statement_timeout = '60s'",
        "SET LOCAL enable_bitmapscan = on",
    ] {
        sqlx::query(setting).execute(&mut *conn).await?;
    }
    let compiled = compiled(&mut *conn, filter).await?;
    let sql = format!(
        "SELECT count(*) AS total, min(id) AS min_id, max(id) AS max_id FROM users u WHERE {}",
        compiled.sql
    );
    Ok(compiled.bind(sqlx::query_as(&sql)).fetch_one(conn).await?)
}

/// `filter` as SQL over `users u`, parameters from $1, checked against the attributes users
/// have now. An invalid filter is [`StoreError::Invalid`], its path named.
pub(crate) async fn compiled(conn: &mut PgConnection, filter: Option<&Filter>) -> Result<Compiled> {
    let Some(filter) = filter else {
        return Ok(Compiled::everyone());
    };
    let types = crate::filter::attribute_types(conn).await?;
    crate::filter::compile(filter, &types, 1, Utc::now())
        .map_err(|e| StoreError::Invalid(InvalidInput(format!("audience: {e}"))))
}

/// How many users `filter` holds now: the count a launch fixes, without fixing it (a dry
/// run).
pub async fn size(pool: &PgPool, filter: Option<&Filter>) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let audience = count(&mut tx, filter).await?;
    tx.rollback().await?;
    Ok(audience.total)
}

/// Whether a user exists (for clear errors on inbox and read).
pub async fn user_exists(pool: &PgPool, user_id: i64) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user_id)
            .fetch_one(pool)
            .await?,
    )
}

/// The ids given to users added in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromRow)]
pub struct Added {
    pub first: i64,
    pub last: i64,
}

/// Add `count` test users carrying `segment`, in one statement. After a load, call
/// [`settle_users`] once.
pub async fn seed_users(pool: &PgPool, count: i64, segment: Option<&Segment>) -> Result<Added> {
    let segments: Vec<&str> = segment.map(Segment::as_str).into_iter().collect();
    Ok(sqlx::query_as(
        "WITH base AS (SELECT coalesce(max(id), 0) AS n FROM users),
         ins AS (
            INSERT INTO users (email, segments)
            SELECT 'user' || (base.n + g) || '@example.com', $2::text[]
            FROM base, generate_series(1, $1) AS g
            RETURNING id
         )
         SELECT coalesce(min(id), 0) AS first, coalesce(max(id), 0) AS last FROM ins",
    )
    .bind(count)
    .bind(&segments)
    .fetch_one(pool)
    .await?)
}

/// After a bulk load of users up to `last_id`: make their ledger partitions now rather than
/// at the next launch, and give the planner statistics and the table its visibility map at
/// once, as a restore would, rather than leaving the first campaign to autovacuum's timing.
pub async fn settle_users(pool: &PgPool, last_id: i64) -> Result<()> {
    partitions::cover(pool, Some(last_id)).await?;
    sqlx::raw_sql("VACUUM (ANALYZE) users")
        .execute(pool)
        .await?;
    Ok(())
}
