//! Consent (docs/consent.md): categories, users' opt-outs, suppressed addresses, and the SQL
//! with which every page leaves out those it may not send to.
//!
//! A page asks about consent as it runs, in its own statement: a recipient is *quiet* when
//! they opted out of the campaign's category on its channel (or on all channels), unless the
//! campaign is transactional, or when their address is suppressed on the channel (whatever
//! the category: a bounced address bounces transactional mail too). Each of the two is first
//! asked once for the whole page (has anyone opted out of this category? is anything
//! suppressed on this channel?), so that a ledger where nobody said no pays nothing per
//! recipient.

use chrono::{DateTime, Utc};
use herald_wire::{Category, Channel, OptOutChannel, PageInput};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{Result, StoreError};

/// A CTE named `consent` over the campaign `$1`: its category, whether any opt-out may
/// apply to it (`asks`: the category's flag, one row read) and whether anything is suppressed on `channel` (`suppressing`).
pub fn consent_cte(channel: Channel) -> String {
    let ch = channel.name();
    format!(
        "consent AS (
    SELECT m.category,
           m.category <> '{transactional}' AND c.opted_out AS asks,
           EXISTS (SELECT 1 FROM suppressions s WHERE s.channel = '{ch}') AS suppressing
    FROM messages m JOIN categories c ON c.name = m.category WHERE m.id = $1
)",
        transactional = Category::TRANSACTIONAL
    )
}

/// Whether the user `u` is quiet for the campaign of the `consent` CTE on `channel`: a
/// boolean SQL expression, asked per user (for a few known ids).
pub fn quiet_sql(channel: Channel) -> String {
    let ch = channel.name();
    format!(
        "(((SELECT asks FROM consent) AND EXISTS (
             SELECT 1 FROM opt_outs o
             WHERE o.user_id = u.id AND o.category = (SELECT category FROM consent)
               AND o.channel IN ('{ch}', 'all')))
          OR {suppressed})",
        suppressed = suppressed_sql(channel)
    )
}

/// A page's quiet users, for a page statement: a CTE named `opted` of the users of `ids`'s
/// id range (after `after`, up to its last id) who opted out of the campaign's category on
/// `channel`, read as one range of the opt-outs' primary key rather than one probe per
/// recipient; and the expression that says whether the user `u` (a row of `ids`, with an
/// `email` column for e-mail) is quiet. Means the same as [`quiet_sql`].
pub fn page_quiet_sql(channel: Channel, ids: &str, after: &str) -> (String, String) {
    let ch = channel.name();
    let cte = format!(
        "opted AS (
    SELECT DISTINCT o.user_id FROM opt_outs o
    WHERE (SELECT asks FROM consent)
      AND o.user_id > {after} AND o.user_id <= (SELECT max(id) FROM {ids})
      AND o.category = (SELECT category FROM consent) AND o.channel IN ('{ch}', 'all')
)"
    );
    let quiet = format!(
        "(u.id IN (SELECT user_id FROM opted) OR {suppressed})",
        suppressed = suppressed_sql(channel)
    );
    (cte, quiet)
}

/// Whether `u`'s address is suppressed on `channel` (asked only when anything is).
fn suppressed_sql(channel: Channel) -> String {
    let ch = channel.name();
    let address = address_sql(channel, "u");
    format!(
        "((SELECT suppressing FROM consent) AND EXISTS (
             SELECT 1 FROM suppressions s WHERE s.channel = '{ch}' AND s.address = {address}))"
    )
}

/// A user's address on a channel, as `suppressions` keeps it: the lower-cased e-mail
/// address for e-mail, the user id for the others.
fn address_sql(channel: Channel, users: &str) -> String {
    match channel {
        Channel::Email => format!("lower({users}.email)"),
        Channel::Inbox | Channel::Webhook => format!("{users}.id::text"),
    }
}

/// An address as `suppressions` keeps it (see [`address_sql`]).
pub fn normalize_address(channel: Channel, address: &str) -> std::result::Result<String, String> {
    let a = address.trim();
    match channel {
        Channel::Email => {
            let a = a.to_lowercase();
            match a.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && domain.contains('.')
                        && !a.contains(char::is_whitespace) =>
                {
                    Ok(a)
                }
                _ => Err(format!("{address:?} is not an e-mail address")),
            }
        }
        Channel::Inbox | Channel::Webhook => match a.parse::<i64>() {
            Ok(id) if id > 0 => Ok(id.to_string()),
            _ => Err(format!(
                "{address:?} is not a user id (a {channel} address is the user's id)"
            )),
        },
    }
}

/// Of a claimed page's pending recipients, those now quiet: each is recorded suppressed (an
/// item with status 3, in place of a pending one or of none), and moved from the page's
/// `recipients` to its `suppressed`, in one statement. Returns their ids. For a page run
/// again (a crash, a retry of failures): an opt-out made since its first run is honoured.
pub async fn suppress_pending(
    conn: &mut PgConnection,
    page: &PageInput,
    channel: Channel,
    ids: &[i64],
) -> Result<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "
WITH {consent},
quiet AS (
    SELECT u.id FROM users u WHERE u.id = ANY($4) AND {quiet}
),
ins AS (
    INSERT INTO message_items AS i (message_id, user_id, status)
    SELECT $1, id, $5 FROM quiet
    ON CONFLICT (message_id, user_id) DO UPDATE SET status = excluded.status, sent_at = now()
     WHERE i.status = $6
    RETURNING i.user_id
),
upd AS (
    UPDATE message_pages
       SET recipients = recipients - (SELECT count(*) FROM ins),
           suppressed = suppressed + (SELECT count(*) FROM ins)
     WHERE message_id = $1 AND lane = $2 AND after_user_id = $3
       AND EXISTS (SELECT 1 FROM ins)
)
SELECT coalesce(array_agg(user_id ORDER BY user_id), '{{}}') FROM ins
",
        consent = consent_cte(channel),
        quiet = quiet_sql(channel),
    );
    let quiet: Vec<i64> = sqlx::query_scalar(&sql)
        .bind(page.campaign_id)
        .bind(page.lane as i32)
        .bind(page.after)
        .bind(ids)
        .bind(herald_wire::ItemStatus::Suppressed.code())
        .bind(herald_wire::ItemStatus::Pending.code())
        .persistent(false)
        .fetch_one(conn)
        .await?;
    Ok(quiet)
}

/// A category as `herald categories` lists it.
#[derive(Clone, Debug, Serialize, FromRow)]
pub struct CategoryView {
    pub name: String,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Users opted out of it (on one channel or more).
    pub opted_out: i64,
}

pub async fn categories(pool: &PgPool) -> Result<Vec<CategoryView>> {
    Ok(sqlx::query_as(
        "SELECT c.name, c.description, c.created_by, c.created_at,
                (SELECT count(DISTINCT user_id) FROM opt_outs o WHERE o.category = c.name) AS opted_out
         FROM categories c ORDER BY c.name",
    )
    .fetch_all(pool)
    .await?)
}

/// Declare a category; `false` if it existed (its description is then left as it was).
pub async fn add_category(
    pool: &PgPool,
    name: &Category,
    description: Option<&str>,
    actor: &str,
) -> Result<bool> {
    let added = sqlx::query(
        "INSERT INTO categories (name, description, created_by) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.as_str())
    .bind(description)
    .bind(actor)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// Whether a category has been declared.
pub async fn category_exists(conn: &mut PgConnection, name: &Category) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM categories WHERE name = $1)")
            .bind(name.as_str())
            .fetch_one(conn)
            .await?,
    )
}

/// How an opt-out was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptOutSource {
    /// The recipient's unsubscribe link.
    OneClick,
    /// `PUT /v1/users/{id}/preferences`.
    Api,
    /// `herald opt-out`.
    Operator,
    /// A list imported by an operator (`herald opt-out --file`, `POST /v1/opt-outs`).
    Import,
}

impl OptOutSource {
    pub fn name(self) -> &'static str {
        match self {
            Self::OneClick => "one-click",
            Self::Api => "api",
            Self::Operator => "operator",
            Self::Import => "import",
        }
    }
}

/// One of a user's opt-outs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromRow)]
pub struct OptOut {
    pub category: String,
    /// A channel's name, or `all`.
    pub channel: String,
    pub source: String,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A user's opt-outs, by category and channel; [`StoreError::UnknownUser`] for no user.
pub async fn opt_outs(pool: &PgPool, user_id: i64) -> Result<Vec<OptOut>> {
    let mut tx = pool.begin().await?;
    known_user(&mut tx, user_id).await?;
    let rows = sqlx::query_as(
        "SELECT category, channel, source, actor, created_at FROM opt_outs
         WHERE user_id = $1 ORDER BY category, channel",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

async fn known_user(conn: &mut PgConnection, user_id: i64) -> Result<()> {
    let found: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    if found {
        Ok(())
    } else {
        Err(StoreError::UnknownUser(user_id))
    }
}

/// Refuse a category nobody declared.
async fn known_category(conn: &mut PgConnection, category: &Category) -> Result<()> {
    if category_exists(conn, category).await? {
        Ok(())
    } else {
        Err(StoreError::UnknownCategory(category.to_string()))
    }
}

/// Opt a user out of a category on a channel (or all). Idempotent: an opt-out already
/// there keeps its first time and source. Returns whether it is new.
pub async fn opt_out(
    pool: &PgPool,
    user_id: i64,
    category: &Category,
    channel: OptOutChannel,
    source: OptOutSource,
    actor: &str,
) -> Result<bool> {
    let added = add_opt_outs(pool, &[(user_id, category.clone(), channel)], source, actor).await?;
    Ok(added == 1)
}

/// Opt many users out at once (an import from another sender, a list from a CRM), in one
/// transaction: each entry a user, a category and a channel (or all). An opt-out already
/// there keeps its first time and source. The first unknown user or category refuses the
/// whole list ([`StoreError::UnknownUser`], [`StoreError::UnknownCategory`]). Returns how
/// many are new.
pub async fn add_opt_outs(
    pool: &PgPool,
    entries: &[(i64, Category, OptOutChannel)],
    source: OptOutSource,
    actor: &str,
) -> Result<u64> {
    let users: Vec<i64> = entries.iter().map(|(u, _, _)| *u).collect();
    let categories: Vec<&str> = entries.iter().map(|(_, c, _)| c.as_str()).collect();
    let channels: Vec<&str> = entries.iter().map(|(_, _, ch)| ch.name()).collect();
    let mut tx = pool.begin().await?;
    // The first entry, in the given order, whose user or category does not exist.
    let unknown: Option<(i64, String, bool)> = sqlx::query_as(
        "SELECT e.u, e.c, EXISTS (SELECT 1 FROM users WHERE id = e.u)
         FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS e(u, c, i)
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = e.u)
            OR NOT EXISTS (SELECT 1 FROM categories WHERE name = e.c)
         ORDER BY e.i LIMIT 1",
    )
    .bind(&users)
    .bind(&categories)
    .fetch_optional(&mut *tx)
    .await?;
    match unknown {
        Some((user, _, false)) => return Err(StoreError::UnknownUser(user)),
        Some((_, category, true)) => return Err(StoreError::UnknownCategory(category)),
        None => {}
    }
    let added = sqlx::query(
        "INSERT INTO opt_outs (user_id, category, channel, source, actor)
         SELECT DISTINCT e.u, e.c, e.ch, $4, $5
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e(u, c, ch)
         -- In key order, so that two imports that overlap wait for each other, never deadlock.
         ORDER BY 1, 2, 3
         ON CONFLICT DO NOTHING",
    )
    .bind(&users)
    .bind(&categories)
    .bind(&channels)
    .bind(source.name())
    .bind(actor)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(added)
}

/// Make a user's opt-outs exactly `wanted`: new ones are added (with `source`), those not
/// wanted any more removed, those kept keep their time and source. One transaction.
pub async fn set_opt_outs(
    pool: &PgPool,
    user_id: i64,
    wanted: &[(Category, OptOutChannel)],
    source: OptOutSource,
    actor: &str,
) -> Result<Vec<OptOut>> {
    let mut tx = pool.begin().await?;
    // The user's row, locked: two changes of one user's preferences go one after the other.
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Err(StoreError::UnknownUser(user_id));
    }
    for (category, _) in wanted {
        known_category(&mut tx, category).await?;
    }
    let categories: Vec<&str> = wanted.iter().map(|(c, _)| c.as_str()).collect();
    let channels: Vec<&str> = wanted.iter().map(|(_, ch)| ch.name()).collect();
    sqlx::query(
        "WITH w AS (SELECT * FROM unnest($2::text[], $3::text[]) AS w(category, channel)),
         gone AS (
             DELETE FROM opt_outs o WHERE o.user_id = $1
               AND NOT EXISTS (SELECT 1 FROM w WHERE w.category = o.category AND w.channel = o.channel)
         )
         INSERT INTO opt_outs (user_id, category, channel, source, actor)
         SELECT DISTINCT $1, category, channel, $4, $5 FROM w
         ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(&categories)
    .bind(&channels)
    .bind(source.name())
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query_as(
        "SELECT category, channel, source, actor, created_at FROM opt_outs
         WHERE user_id = $1 ORDER BY category, channel",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Why an address is suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// A hard bounce: the receiving server refused the address for good (SMTP 5xx).
    Bounce,
    /// A list imported by an operator.
    Import,
    /// Entered by an operator.
    Operator,
}

impl SuppressionReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bounce => "bounce",
            Self::Import => "import",
            Self::Operator => "operator",
        }
    }
}

/// One suppressed address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromRow)]
pub struct Suppression {
    pub channel: String,
    pub address: String,
    pub reason: String,
    pub detail: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Suppress addresses (already normalized: [`normalize_address`]) on a channel. An address
/// already suppressed keeps its first reason. Returns how many are new.
pub async fn suppress(
    pool: &PgPool,
    channel: Channel,
    entries: &[(String, Option<String>)],
    reason: SuppressionReason,
    actor: &str,
) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    suppress_on(&mut conn, channel, entries, reason, actor).await
}

/// [`suppress`] on a connection of the caller's.
pub async fn suppress_on(
    conn: &mut PgConnection,
    channel: Channel,
    entries: &[(String, Option<String>)],
    reason: SuppressionReason,
    actor: &str,
) -> Result<u64> {
    let addresses: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
    let details: Vec<Option<&str>> = entries.iter().map(|(_, d)| d.as_deref()).collect();
    let added = sqlx::query(
        // Lower-cased here as a page compares them (`lower(u.email)`): one rule for both.
        "INSERT INTO suppressions (channel, address, reason, detail, actor)
         SELECT DISTINCT ON (lower(address)) $1, lower(address), $4, detail, $5
         FROM unnest($2::text[], $3::text[]) AS e(address, detail)
         ON CONFLICT DO NOTHING",
    )
    .bind(channel.name())
    .bind(&addresses)
    .bind(&details)
    .bind(reason.name())
    .bind(actor)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(added)
}

/// Take an address off a channel's suppression list; whether it was on it.
pub async fn unsuppress(pool: &PgPool, channel: Channel, address: &str) -> Result<bool> {
    let removed =
        sqlx::query("DELETE FROM suppressions WHERE channel = $1 AND address = lower($2)")
            .bind(channel.name())
            .bind(address)
            .execute(pool)
            .await?
            .rows_affected();
    Ok(removed == 1)
}

/// A page of the suppression list, newest first, after the entry `before` (its time and
/// address), and how many entries match (the channel and the search).
pub async fn suppressions(
    pool: &PgPool,
    channel: Option<Channel>,
    search: Option<&str>,
    before: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<(Vec<Suppression>, i64)> {
    let pattern = search.map(|s| {
        let escaped = s
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let (before_at, before_address) = before.unzip();
    let rows = sqlx::query_as(
        "SELECT channel, address, reason, detail, actor, created_at FROM suppressions
         WHERE ($1::text IS NULL OR channel = $1)
           AND ($2::text IS NULL OR address LIKE $2 ESCAPE '\\')
           AND ($3::timestamptz IS NULL OR (created_at, address) < ($3, $4))
         ORDER BY created_at DESC, address DESC LIMIT $5",
    )
    .bind(channel.map(Channel::name))
    .bind(pattern.as_deref())
    .bind(before_at)
    .bind(before_address)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM suppressions
         WHERE ($1::text IS NULL OR channel = $1)
           AND ($2::text IS NULL OR address LIKE $2 ESCAPE '\\')",
    )
    .bind(channel.map(Channel::name))
    .bind(pattern.as_deref())
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// The key of unsubscribe links when `HERALD_UNSUBSCRIBE_SECRET` is not set: made once, at
/// random, and kept in the ledger, so that every process signs and checks alike.
pub async fn unsubscribe_secret(pool: &PgPool) -> Result<String> {
    // A statement that lost the race to make it sees neither its own row nor the winner's
    // (made after its snapshot): the next one does.
    loop {
        let found: Option<String> = sqlx::query_scalar(
        "WITH made AS (
             INSERT INTO herald_secrets (name, value)
             VALUES ('unsubscribe', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
             ON CONFLICT (name) DO NOTHING RETURNING value
         )
         SELECT coalesce((SELECT value FROM made),
                         (SELECT value FROM herald_secrets WHERE name = 'unsubscribe'))",
        )
        .fetch_one(pool)
        .await?;
        if let Some(secret) = found {
            return Ok(secret);
        }
    }
}

/// Record one test send (`herald test-send`): never a ledger row, never a count.
#[allow(clippy::too_many_arguments)]
pub async fn log_test_send(
    pool: &PgPool,
    id: i64,
    campaign: Option<&str>,
    channel: Channel,
    user_id: i64,
    title: &str,
    outcome: &str,
    error: Option<&str>,
    actor: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO test_sends (id, campaign, channel, user_id, title, outcome, error, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(id)
    .bind(campaign)
    .bind(channel.name())
    .bind(user_id)
    .bind(title)
    .bind(outcome)
    .bind(error)
    .bind(actor)
    .fetch_one(pool)
    .await?)
}

/// The next number of the test-send log, to give a test send its own delivery id before
/// it is sent.
pub async fn next_test_send(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('test_sends', 'id'))")
            .fetch_one(pool)
            .await?,
    )
}

/// Whether a user's address is suppressed on a channel (a test send checks it per user).
pub async fn is_suppressed(
    pool: &PgPool,
    channel: Channel,
    user_id: i64,
    email: &str,
) -> Result<bool> {
    let address = match channel {
        Channel::Email => email.to_owned(),
        Channel::Inbox | Channel::Webhook => user_id.to_string(),
    };
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM suppressions WHERE channel = $1 AND address = lower($2))",
    )
    .bind(channel.name())
    .bind(address)
    .fetch_one(pool)
    .await?)
}
