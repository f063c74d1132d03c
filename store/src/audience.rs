//! The users a campaign goes to: counting an audience, and adding users.

use std::collections::HashMap;

use chrono::Utc;
use herald_wire::{
    InvalidInput, Segment,
    audience::{AttrType, Filter},
    users::MAX_USER_ID,
};
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
    let compiled = compiled(&mut *conn, filter).await?;
    count_compiled(conn, &compiled).await
}

async fn count_compiled(conn: &mut PgConnection, compiled: &Compiled) -> Result<Audience> {
    counting(&mut *conn).await?;
    let sql = format!(
        "SELECT count(*) AS total, min(id) AS min_id, max(id) AS max_id FROM users u WHERE {}",
        compiled.sql
    );
    Ok(compiled.bind(sqlx::query_as(&sql)).fetch_one(conn).await?)
}

/// Settings for a count of the whole audience, until the transaction ends: counting ten
/// million users takes a moment, longer than the worker's statement limit, and a small
/// segment is counted from its GIN index, which only bitmap scans can use (see
/// `PoolSettings::bitmap_scans`).
pub(crate) async fn counting(conn: &mut PgConnection) -> Result<()> {
    for setting in [
        "SET LOCAL statement_timeout = '60s'",
        "SET LOCAL enable_bitmapscan = on",
    ] {
        sqlx::query(setting).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Count the users `filter` holds in each time zone (`None`: no zone), with the audience's
/// bounds, in one scan.
pub(crate) async fn count_by_zone(
    conn: &mut PgConnection,
    filter: Option<&Filter>,
) -> Result<(Audience, Vec<(Option<String>, i64)>)> {
    let compiled = compiled(&mut *conn, filter).await?;
    counting(&mut *conn).await?;
    let sql = format!(
        "SELECT u.timezone, count(*), min(u.id), max(u.id) FROM users u WHERE {}
         GROUP BY u.timezone ORDER BY u.timezone",
        compiled.sql
    );
    let rows: Vec<(Option<String>, i64, Option<i64>, Option<i64>)> =
        compiled.bind(sqlx::query_as(&sql)).fetch_all(conn).await?;
    let audience = Audience {
        total: rows.iter().map(|r| r.1).sum(),
        min_id: rows.iter().filter_map(|r| r.2).min(),
        max_id: rows.iter().filter_map(|r| r.3).max(),
    };
    Ok((audience, rows.into_iter().map(|r| (r.0, r.1)).collect()))
}

/// `filter` as SQL over `users u`, parameters from $1, checked against the attributes users
/// have now. An invalid filter is [`StoreError::Invalid`], its path named.
pub(crate) async fn compiled(conn: &mut PgConnection, filter: Option<&Filter>) -> Result<Compiled> {
    let Some(filter) = filter else {
        return Ok(Compiled::everyone());
    };
    let types = crate::filter::attribute_types(conn).await?;
    compile(filter, &types, 1)
}

/// `filter` compiled against `types`, its parameters numbered from `first`.
fn compile(filter: &Filter, types: &HashMap<String, AttrType>, first: usize) -> Result<Compiled> {
    crate::filter::compile(filter, types, first, Utc::now())
        .map_err(|e| StoreError::Invalid(InvalidInput(format!("audience: {e}"))))
}

/// What a dry run shows of an audience, all from one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    /// Users the filter holds now: the count a launch would fix.
    pub total: i64,
    /// Each top-level clause and the users it holds by itself, in the filter's order (the
    /// first [`MAX_CLAUSES`]); empty when the filter is one clause.
    pub clauses: Vec<(Filter, i64)>,
    /// The first [`SAMPLE`] members, by id.
    pub sample: Vec<i64>,
    /// A campaign sent at a local time: the waves it would have now
    /// ([`crate::campaigns::plan_waves`]).
    pub waves: Option<herald_wire::local::WavePlan>,
    /// A capped campaign: its cap, and how many of the audience it would leave out if its
    /// pages reached them now ([`crate::cap::over_cap`]).
    pub cap: Option<(herald_wire::FrequencyCap, i64)>,
}

/// How many members a dry run shows.
pub const SAMPLE: i64 = 10;
/// How many top-level clauses a dry run counts (the first ones).
pub const MAX_CLAUSES: usize = 32;

/// Count `filter` now, and each of its top-level clauses, and take its first members,
/// without fixing anything (a dry run).
pub async fn preview(pool: &PgPool, filter: Option<&Filter>) -> Result<Preview> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    // The attributes' types are read once: the whole filter and its clauses compile from them.
    let types = crate::filter::attribute_types(&mut *tx).await?;
    let whole = match filter {
        Some(filter) => compile(filter, &types, 1)?,
        None => Compiled::everyone(),
    };
    let total = count_compiled(&mut tx, &whole).await?.total;
    let mut clauses = Vec::new();
    if let Some(parts) = filter.map(Filter::clauses).filter(|parts| parts.len() > 1) {
        // Every clause in one scan of the users, however many there are.
        let parts: Vec<&Filter> = parts.into_iter().take(MAX_CLAUSES).collect();
        let (mut counts, mut params) = (Vec::new(), Vec::new());
        for part in &parts {
            let c = compile(part, &types, params.len() + 1)?;
            counts.push(format!("count(*) FILTER (WHERE {})", c.sql));
            params.extend(c.params);
        }
        let all = Compiled {
            sql: counts.join(", "),
            params,
            cap: None,
        };
        let sql = format!("SELECT ARRAY[{}] FROM users u", all.sql);
        let (n,): (Vec<i64>,) = all.bind(sqlx::query_as(&sql)).fetch_one(&mut *tx).await?;
        clauses = parts.into_iter().cloned().zip(n).collect();
    }
    // No member: no walk of every user in id order looking for one.
    let sample: Vec<(i64,)> = if total == 0 {
        Vec::new()
    } else {
        let sql = format!(
            "SELECT id FROM users u WHERE {} ORDER BY id LIMIT {SAMPLE}",
            whole.sql
        );
        whole.bind(sqlx::query_as(&sql)).fetch_all(&mut *tx).await?
    };
    tx.rollback().await?;
    Ok(Preview {
        total,
        clauses,
        sample: sample.into_iter().map(|(id,)| id).collect(),
        waves: None,
        cap: None,
    })
}

/// Check `filter` against the attributes users have now (their names and types). The
/// outer `Err` is the database's; the inner says what is wrong with the filter, and where.
pub async fn check(
    pool: &PgPool,
    filter: &Filter,
) -> Result<std::result::Result<(), herald_wire::audience::FilterError>> {
    let types = crate::filter::attribute_types(pool).await?;
    Ok(filter.check(&|name: &str| types.get(name).copied()))
}

/// Whether a user exists (for clear errors on inbox and read).
pub async fn user_exists<'e>(db: impl sqlx::PgExecutor<'e>, user_id: i64) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user_id)
            .fetch_one(db)
            .await?,
    )
}

/// The ids given to users added in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromRow)]
pub struct Added {
    pub first: i64,
    pub last: i64,
}

/// Add `count` test users carrying `segment`, in one statement; with `attrs`, each also
/// gets a locale, a time zone and the demo attributes [`DEMO_ATTRIBUTES`], chosen by id so
/// that a filter's count can be told in advance. After a load, call [`settle_users`] once.
pub async fn seed_users(
    pool: &PgPool,
    count: i64,
    segment: Option<&Segment>,
    attrs: bool,
) -> Result<Added> {
    let segments: Vec<&str> = segment.map(Segment::as_str).into_iter().collect();
    let top: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM users")
        .fetch_one(pool)
        .await?;
    if count > MAX_USER_ID - top {
        return Err(StoreError::Invalid(InvalidInput(format!(
            "{count} more users would pass the largest user id, {MAX_USER_ID} (the highest now is {top})"
        ))));
    }
    if attrs {
        let demo = DEMO_ATTRIBUTES
            .iter()
            .map(|(n, t)| (n.to_string(), *t))
            .collect();
        let types = crate::users::register_types(pool, &demo).await?;
        for (name, kind) in DEMO_ATTRIBUTES {
            if types.get(name) != Some(&kind) {
                return Err(StoreError::Invalid(InvalidInput(format!(
                    "the demo attribute {name:?} is another type here already; seed without the demo attributes"
                ))));
            }
        }
    }
    Ok(sqlx::query_as(
        "WITH base AS (SELECT coalesce(max(id), 0) AS n FROM users),
         ins AS (
            INSERT INTO users (id, email, segments, locale, timezone, attrs)
            SELECT i, 'user' || i || '@example.com', $2::text[],
                   CASE WHEN $3 THEN (ARRAY['en', 'de-DE', 'de-AT', 'fr-FR', 'ja-JP'])[1 + i % 5] END,
                   CASE WHEN $3 THEN (ARRAY['UTC', 'Europe/Berlin', 'Europe/Vienna',
                                            'America/New_York', 'Asia/Tokyo'])[1 + i % 5] END,
                   CASE WHEN $3 THEN jsonb_build_object(
                       'plan', (ARRAY['free', 'pro', 'team'])[1 + i % 3],
                       'country', (ARRAY['DE', 'AT', 'CH', 'FR', 'US', 'GB', 'NL', 'JP'])[1 + i % 8],
                       'age', 18 + i % 60,
                       'bucket', i % 100,
                       'last_seen', to_char(now() AT TIME ZONE 'UTC' - (i % 90) * interval '1 day',
                                            'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))
                   ELSE '{}' END
            FROM base, generate_series(base.n + 1, base.n + $1) AS i
            RETURNING id
         )
         SELECT coalesce(min(id), 0) AS first, coalesce(max(id), 0) AS last FROM ins",
    )
    .bind(count)
    .bind(&segments)
    .bind(attrs)
    .fetch_one(pool)
    .await?)
}

/// The attributes `herald users seed --attrs` gives user `i` (its id, when ids start at 1):
/// `plan` free/pro/team by `i % 3`, `country` one of eight by `i % 8`, `age` `18 + i % 60`,
/// `bucket` `i % 100`, and `last_seen` `i % 90` days before the seed.
pub const DEMO_ATTRIBUTES: [(&str, AttrType); 5] = [
    ("plan", AttrType::Text),
    ("country", AttrType::Text),
    ("age", AttrType::Int),
    ("bucket", AttrType::Int),
    ("last_seen", AttrType::Time),
];

/// After a bulk load of users up to `last_id`: make their ledger partitions now rather than
/// at the next launch, and give the planner statistics and the table its visibility map at
/// once, as a restore would, rather than leaving the first campaign to autovacuum's timing.
pub async fn settle_users(pool: &PgPool, last_id: i64) -> Result<()> {
    // Users given their ids take none from the sequence: new ones start above them all.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users HAVING max(id) > 0",
    )
    .execute(pool)
    .await?;
    partitions::cover(pool, Some(last_id)).await?;
    sqlx::raw_sql("VACUUM (ANALYZE) users")
        .execute(pool)
        .await?;
    Ok(())
}

/// Up to `n` members of `filter`'s audience (every user when `None`) picked at random: each
/// the first member at or after a random id, so no pick scans the whole audience; when the
/// draws keep meeting (a small audience), the rest in id order. Fewer only when the audience
/// is smaller.
pub async fn random_members(pool: &PgPool, filter: Option<&Filter>, n: usize) -> Result<Vec<i64>> {
    let mut conn = pool.acquire().await?;
    let compiled = compiled(&mut conn, filter).await?;
    let sql = format!(
        "WITH r AS (
             SELECT min(id) + floor(random() * (max(id) - min(id) + 1))::bigint AS at FROM users
         )
         SELECT coalesce(
             (SELECT u.id FROM users u WHERE u.id >= (SELECT at FROM r) AND {f} ORDER BY u.id LIMIT 1),
             (SELECT u.id FROM users u WHERE {f} ORDER BY u.id LIMIT 1))",
        f = compiled.sql
    );
    let mut picked = Vec::new();
    for _ in 0..n * 2 {
        if picked.len() >= n {
            break;
        }
        let id: Option<i64> = compiled
            .bind(sqlx::query_as::<_, (Option<i64>,)>(&sql))
            .fetch_one(&mut *conn)
            .await?
            .0;
        match id {
            None => break,
            Some(id) if !picked.contains(&id) => picked.push(id),
            Some(_) => {}
        }
    }
    if picked.len() < n {
        // A small audience: random points land on the same few users again and again, so
        // the rest are taken in order, whoever the draws missed.
        let k = compiled.params.len();
        let rest = format!(
            "SELECT u.id FROM users u WHERE {f} AND u.id <> ALL(${a}) ORDER BY u.id LIMIT ${b}",
            f = compiled.sql,
            a = k + 1,
            b = k + 2
        );
        let more: Vec<(i64,)> = compiled
            .bind(sqlx::query_as(&rest))
            .bind(&picked)
            .bind((n - picked.len()) as i64)
            .fetch_all(&mut *conn)
            .await?;
        picked.extend(more.into_iter().map(|(id,)| id));
    }
    picked.sort_unstable();
    Ok(picked)
}
