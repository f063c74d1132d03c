//! The page statement: select a lane's next recipients, insert their ledger rows and record
//! the page, in one statement, one round trip, one transaction.
//!
//! Idempotence comes from the page row in `message_pages`, keyed by (campaign, lane, cursor):
//! a page that runs again (a retry after a lost completion, a local activity re-run after a
//! crash) finds its row and returns the recorded outcome without writing. Items are then a
//! plain INSERT, which PostgreSQL does much faster than one with `ON CONFLICT` per row; the
//! primary key on `message_items` still refuses any duplicate, and [`write_inbox_page`] falls
//! back to the `ON CONFLICT` form if it ever meets one.
//!
//! The `gate` obeys operators at once: a page writes only while the campaign is in progress
//! and its newest request is to run. Once `herald pause` or `herald cancel` has recorded its
//! request, a new page writes nothing and reports the row instead, even if the signal has
//! not reached the workflow yet.

use std::time::Instant;

use herald_wire::{
    CampaignStatus, Channel, Intent, ItemStatus, LaneProgress, PageInput, PageOutcome, Requested,
};
use sqlx::{FromRow, PgConnection, PgPool, Postgres, postgres::PgArguments, query::QueryAs};

use crate::{Result, StoreError, filter::Compiled, status};

/// How a page inserts and counts its items.
#[derive(Clone, Copy)]
enum ItemInsert {
    /// A plain `INSERT` with no `RETURNING`: it either writes every row of the page or fails
    /// the statement, so the page's own count is the number sent, and no row is handed back.
    Plain,
    /// `ON CONFLICT DO NOTHING`, for the rare page that meets rows already written: it may
    /// skip rows, so it counts what it returns.
    SkipExisting,
}

/// Parameters: $1 campaign id, $2 the lane's cursor, $3 the end of the page's scan, $4 the
/// page size, $5 the lane, $6 the status a campaign must have to take a page, $7 the status
/// of a written item, $8 the intent a campaign must have to take a page, $9 the lane's
/// bound, and from [`AUDIENCE_PARAMS`] on, the audience's (see [`bind`]).
fn page_sql(items: ItemInsert, audience: &Compiled) -> String {
    let (on_conflict, returning, sent) = match items {
        ItemInsert::Plain => ("", "", "cut.d"),
        ItemInsert::SkipExisting => (
            "ON CONFLICT DO NOTHING",
            "RETURNING 1",
            "(SELECT count(*) FROM ins)",
        ),
    };
    let consent = crate::consent::consent_cte(Channel::Inbox);
    let (opted, quiet) = crate::consent::page_quiet_sql(Channel::Inbox, "ids", "$2");
    let sent_to = crate::cap::sent_to_sql(audience.cap, matches!(items, ItemInsert::SkipExisting));
    let audience = &audience.sql;
    format!(
        "
WITH gate AS (
    SELECT status, intent, intent_seq, intent_reason FROM messages WHERE id = $1
),
{consent},
done AS (
    SELECT last_user_id, recipients, page_limit, sent, failed, suppressed, scanned_to
    FROM message_pages
    WHERE message_id = $1 AND lane = $5 AND after_user_id = $2
),
go AS (
    SELECT coalesce((SELECT status = $6 AND intent = $8 FROM gate), false)
           AND NOT EXISTS (SELECT 1 FROM done) AS ok
),
ids AS (
    SELECT u.id FROM users u
    WHERE (SELECT ok FROM go) AND u.id > $2 AND u.id <= $3
      AND {audience}
    ORDER BY u.id
    LIMIT $4
),
{opted},
page AS (
    SELECT u.id, {quiet} AS quiet FROM ids u
),
{sent_to},
ins AS (
    INSERT INTO message_items (message_id, user_id, status)
    SELECT $1, id, $7 FROM sent_to
    {on_conflict} {returning}
),
cut AS (
    SELECT max(id) AS last, count(*) AS n, count(*) FILTER (WHERE quiet) AS q,
           (SELECT count(*) FROM sent_to) AS d
    FROM page
),
mark AS (
    INSERT INTO message_pages (message_id, lane, after_user_id, last_user_id, recipients,
                               page_limit, sent, suppressed, capped, scanned_to, ends_lane)
    SELECT $1, $5, $2, cut.last, cut.d, $4, {sent}, cut.n - cut.d, cut.n - cut.q - cut.d, s.to,
           s.to >= $9
    FROM cut CROSS JOIN LATERAL (SELECT CASE WHEN cut.n >= $4 THEN cut.last ELSE $3 END AS to) s
    WHERE (SELECT ok FROM go)
    {on_conflict}
    RETURNING last_user_id, recipients, page_limit, sent, failed, suppressed, scanned_to
)
SELECT (SELECT status FROM gate) AS status,
       (SELECT intent FROM gate) AS intent,
       (SELECT intent_seq FROM gate) AS intent_seq,
       (SELECT intent_reason FROM gate) AS intent_reason,
       (SELECT recipients FROM done) AS done_recipients,
       (SELECT last_user_id FROM done) AS done_last,
       (SELECT page_limit FROM done) AS done_limit,
       (SELECT sent FROM done) AS done_sent,
       (SELECT failed FROM done) AS done_failed,
       (SELECT suppressed FROM done) AS done_suppressed,
       (SELECT scanned_to FROM done) AS done_scanned,
       (SELECT recipients FROM mark) AS new_recipients,
       (SELECT last_user_id FROM mark) AS new_last,
       (SELECT page_limit FROM mark) AS new_limit,
       (SELECT sent FROM mark) AS new_sent,
       (SELECT failed FROM mark) AS new_failed,
       (SELECT suppressed FROM mark) AS new_suppressed,
       (SELECT scanned_to FROM mark) AS new_scanned
"
    )
}

/// The first parameter of a page's audience filter ([`crate::filter::of_campaign`]).
pub const AUDIENCE_PARAMS: usize = 10;

/// What the page statement returns: the campaign's status, the page row found from an earlier
/// run (`done_*`), and the page row written now (`new_*`).
#[derive(FromRow)]
struct PageRow {
    status: Option<i16>,
    intent: Option<i16>,
    intent_seq: Option<i64>,
    intent_reason: Option<String>,
    done_recipients: Option<i32>,
    done_last: Option<i64>,
    done_limit: Option<i32>,
    done_sent: Option<i32>,
    done_failed: Option<i32>,
    done_suppressed: Option<i32>,
    done_scanned: Option<i64>,
    new_recipients: Option<i32>,
    new_last: Option<i64>,
    new_limit: Option<i32>,
    new_sent: Option<i32>,
    new_failed: Option<i32>,
    new_suppressed: Option<i32>,
    new_scanned: Option<i64>,
}

/// A page row as an outcome; `None` when there is none. The outcome's recipients are
/// everyone the page took: the row's (those it delivers to) and those it left out.
fn written(
    recipients: Option<i32>,
    last: Option<i64>,
    limit: Option<i32>,
    (sent, failed, suppressed): (Option<i32>, Option<i32>, Option<i32>),
    scanned_to: Option<i64>,
) -> Option<PageOutcome> {
    let suppressed = suppressed.unwrap_or_default() as u32;
    Some(PageOutcome::Written {
        last,
        recipients: recipients? as u32 + suppressed,
        limit: limit.map(|l| l as u32),
        sent: sent? as u32,
        failed: failed? as u32,
        suppressed,
        scanned_to,
        took_ms: None,
        deliveries: Default::default(),
    })
}

/// The last id a page may scan: `page.scan` ids past its cursor, within the lane.
pub fn scan_end(page: &PageInput) -> i64 {
    match page.scan {
        Some(scan) => page
            .after
            .saturating_add(i64::try_from(scan).unwrap_or(i64::MAX))
            .min(page.until),
        None => page.until,
    }
}

fn bind<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    page: &'q PageInput,
    audience: &'q Compiled,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    let query = query
        .bind(page.campaign_id)
        .bind(page.after)
        .bind(scan_end(page))
        .bind(page.limit as i64)
        .bind(page.lane as i32)
        .bind(CampaignStatus::InProgress.code())
        .bind(ItemStatus::Sent.code())
        .bind(Intent::Run.code())
        .bind(page.until);
    audience.bind(query)
}

/// Deliver a page to the in-app inbox: the ledger row is the delivery.
/// `audience` is the campaign's filter, with its parameters from [`AUDIENCE_PARAMS`]. The
/// outcome says how long the statement took (see [`PageOutcome::Written`]).
pub async fn write_inbox_page(
    conn: &mut PgConnection,
    page: &PageInput,
    audience: &Compiled,
) -> Result<PageOutcome> {
    let started = Instant::now();
    let mut outcome = write(conn, page, audience).await?;
    // Only a page written now says how long its scan took; one found written before took
    // no scan.
    if let PageOutcome::Written {
        took_ms: took @ Some(_),
        ..
    } = &mut outcome
    {
        *took = Some(elapsed_ms(started));
    }
    Ok(outcome)
}

/// Milliseconds since `started`, for [`PageOutcome::Written::took_ms`].
pub(crate) fn elapsed_ms(started: Instant) -> u32 {
    started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32
}

async fn write(
    conn: &mut PgConnection,
    page: &PageInput,
    audience: &Compiled,
) -> Result<PageOutcome> {
    match run(conn, page, audience, ItemInsert::Plain).await {
        Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            // Another attempt of this page committed first, or (never expected) two pages
            // overlap. The tolerant form resolves both without duplicating anyone.
            tracing::warn!(
                campaign.id = page.campaign_id,
                page.lane = page.lane,
                page.after = page.after,
                "page met existing rows; retrying with ON CONFLICT"
            );
            run(conn, page, audience, ItemInsert::SkipExisting).await
        }
        other => other,
    }
}

async fn run(
    conn: &mut PgConnection,
    page: &PageInput,
    audience: &Compiled,
    items: ItemInsert,
) -> Result<PageOutcome> {
    let sql = page_sql(items, audience);
    let row: PageRow = bind(sqlx::query_as(&sql), page, audience)
        .fetch_one(conn)
        .await
        .map_err(|e| StoreError::from(e).of_scan())?;
    let status = row
        .status
        .ok_or(StoreError::UnknownCampaignId(page.campaign_id))?;
    // A page committed earlier is reported as it was, whatever the campaign's status now.
    if let Some(replayed) = written(
        row.done_recipients,
        row.done_last,
        row.done_limit,
        (row.done_sent, row.done_failed, row.done_suppressed),
        row.done_scanned,
    ) {
        return Ok(replayed);
    }
    let status = status::decode(status)?;
    let intent = status::decode_intent(row.intent.unwrap_or_default())?;
    if status != CampaignStatus::InProgress || intent != Intent::Run {
        return Ok(PageOutcome::Halted {
            status,
            requested: Requested {
                intent,
                seq: row.intent_seq.unwrap_or_default(),
                reason: row.intent_reason,
            },
        });
    }
    // The tolerant form lost a race with a concurrent attempt of the same page: retrying
    // finds that attempt's page row.
    let mut new = written(
        row.new_recipients,
        row.new_last,
        row.new_limit,
        (row.new_sent, row.new_failed, row.new_suppressed),
        row.new_scanned,
    )
    .ok_or(StoreError::PageRace)?;
    if let PageOutcome::Written { took_ms, .. } = &mut new {
        *took_ms = Some(0); // written now: [`write_inbox_page`] times it
    }
    Ok(new)
}

/// The plan PostgreSQL picks for the page statement on this pool, as `EXPLAIN` text: how the
/// tests check that a page walks `users` along its primary key.
pub async fn explain(pool: &PgPool, page: &PageInput, audience: &Compiled) -> Result<String> {
    // EXPLAIN without ANALYZE plans the statement without running it.
    let sql = format!("EXPLAIN {}", page_sql(ItemInsert::Plain, audience));
    let lines: Vec<(String,)> = bind(sqlx::query_as(&sql), page, audience)
        .fetch_all(pool)
        .await?;
    Ok(lines
        .into_iter()
        .map(|(line,)| line)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Where a campaign's page rows leave each of its lanes that has any: its first page that
/// still has pending recipients (a page claimed by an external channel whose sends were cut
/// short, or one with failures from before the campaign's latest retry) is where the lane
/// goes on; a lane with
/// none goes on from where its last page's scan ended, and is done if a page reached the
/// lane's bound. One row per lane.
pub async fn lane_progress(conn: &mut PgConnection, campaign_id: i64) -> Result<Vec<LaneProgress>> {
    #[derive(FromRow)]
    struct Row {
        lane: i32,
        open_at: Option<i64>,
        scanned_to: Option<i64>,
        first_after: i64,
        ended: bool,
        pages: i64,
        sent: i64,
        failed: i64,
        suppressed: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH open AS (
             SELECT lane, min(after_user_id) AS at FROM message_pages
             WHERE message_id = $1
               AND (recipients > sent + failed
                    OR (failed > 0
                        AND retry_seq < (SELECT retry_seq FROM messages WHERE id = $1)))
             GROUP BY lane
         )
         SELECT p.lane, o.at AS open_at, max(coalesce(p.scanned_to, p.last_user_id)) AS scanned_to,
                min(p.after_user_id) AS first_after,
                bool_or(coalesce(p.ends_lane, p.last_user_id IS NULL OR p.recipients < p.page_limit)) AS ended,
                count(*) FILTER (WHERE o.at IS NULL OR p.after_user_id < o.at) AS pages,
                coalesce(sum(p.sent) FILTER (WHERE o.at IS NULL OR p.after_user_id < o.at), 0)::bigint AS sent,
                coalesce(sum(p.failed) FILTER (WHERE o.at IS NULL OR p.after_user_id < o.at), 0)::bigint AS failed,
                coalesce(sum(p.suppressed) FILTER (WHERE o.at IS NULL OR p.after_user_id < o.at), 0)::bigint AS suppressed
         FROM message_pages p LEFT JOIN open o USING (lane)
         WHERE p.message_id = $1
         GROUP BY p.lane, o.at
         ORDER BY p.lane",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LaneProgress {
            lane: r.lane as u32,
            after: r.open_at.or(r.scanned_to).unwrap_or(r.first_after),
            done: r.open_at.is_none() && r.ended,
            pages: r.pages as u64,
            sent: r.sent,
            failed: r.failed,
            suppressed: r.suppressed,
        })
        .collect())
}
