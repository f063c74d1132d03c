//! The ledger of an external channel (webhook, e-mail), where sending and recording are two
//! steps with the network between them.
//!
//! A page goes in three steps, each safe to repeat:
//!
//! 1. [`claim`]: one statement under the same gate as an inbox page writes the page's row in
//!    `message_pages`, with its recipients' ids, before anything is sent; no item yet. A page
//!    that ran before finds its row and claims nothing new; either way the statement answers
//!    with the page's recipients that are still pending (those with no item, and those
//!    recorded pending, with their addresses and the tries made so far), and none that is
//!    recorded sent or failed, and writes the claiming run's number as the page's owner. A page claimed before whose failures a later
//!    `herald retry-failed` asked for makes them pending again first.
//! 2. The channel sends to them (no database work).
//! 3. [`record`], as outcomes arrive: one statement writes a batch of them (each its item's
//!    one write, unless a try with tries left recorded it pending first), and adds the newly
//!    sent and failed to the page row's counters (which a trigger adds to its lane's), and
//!    the failures to its lane's counts by error class, so that progress and the report
//!    never disagree with the items. It only moves items that are still pending: an outcome recorded by an earlier or
//!    a concurrent attempt is never overwritten, nor counted twice. It answers with the
//!    page's owner, so a run that was overtaken stops sending.
//!
//! A crash between a receiver accepting a message and step 3 leaves the recipient pending (no
//! item, or one recorded pending), so it is sent again with the same idempotency id: at least once, never recorded sent unless
//! accepted (docs/architecture.md, "External channels").

use herald_templates::{Profile, UserFields};
use herald_wire::{
    CampaignKey, CampaignSpec, CampaignStatus, Channel, Content, Intent, ItemStatus, PageInput,
    Requested, Tuning,
};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{Result, StoreError, campaigns, filter::Compiled, status};

mod record;

pub use record::{Outcome, Recorded, Writes, record};

/// A recipient of a claimed page who has not been reached yet.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Pending {
    pub user_id: i64,
    pub email: String,
    /// Tries already made (by earlier runs of the page).
    #[sqlx(try_from = "i16")]
    pub attempts: u32,
    /// Their data for the campaign's templates, as of this claim, when the claim asked for
    /// it; `None` for a user deleted since the page was first claimed.
    #[sqlx(skip)]
    pub profile: Option<Profile>,
}

/// A claimed page: its row, as recorded, and who in it is still pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The highest user id of the page; `None` when it found nobody.
    pub last: Option<i64>,
    /// The lane's cursor after the page, and how long the claim took (see
    /// `PageOutcome::Written`).
    pub scanned_to: Option<i64>,
    /// `None` for a page claimed before, which took no scan now.
    pub took_ms: Option<u32>,
    /// Those it delivers to; `suppressed` more were left out (docs/consent.md).
    pub recipients: u32,
    /// The page size it was claimed with.
    pub limit: u32,
    pub sent: u32,
    pub failed: u32,
    pub suppressed: u32,
    pub pending: Vec<Pending>,
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    Page(Claimed),
    /// The campaign's row says it must not run: nothing was claimed, nothing may be sent.
    Halted {
        status: CampaignStatus,
        requested: Requested,
    },
}

/// Parameters as in `pages`: $1 campaign id, $2 the lane's cursor, $3 the end of the page's
/// scan, $4 the page size, $5 the lane, $6 status in progress, $7 item status pending
/// (unused: a claim writes no item; bound so that the numbers stay those of `pages`), $8
/// intent run, $9 the lane's bound, then the audience's, then `$owner`: this run's number
/// (the page's owner from now on).
/// With `profiles`, what of the page's users their templates read, read with the page.
fn claim_sql(
    audience: &Compiled,
    owner: usize,
    profiles: Option<&UserFields>,
    channel: Channel,
) -> String {
    // The columns come along from the scan; the profiles are built for the page's users
    // only, after its LIMIT.
    let (columns, profile_list) = match profiles {
        Some(fields) => (
            crate::users::profile_columns(fields),
            format!(
                "coalesce((SELECT array_agg({} ORDER BY u.id) FROM sent_to u), '{{}}')",
                crate::users::profile_sql(fields)
            ),
        ),
        None => (String::new(), "'{}'::text[]".to_owned()),
    };
    let consent = crate::consent::consent_cte(channel);
    let (opted, quiet) = crate::consent::page_quiet_sql(channel, "ids", "$2");
    let suppressed = ItemStatus::Suppressed.code();
    let sent_to = crate::cap::sent_to_sql(audience.cap, false);
    let audience = &audience.sql;
    format!(
        "
WITH gate AS (
    SELECT status, intent, intent_seq, intent_reason, retry_seq FROM messages WHERE id = $1
),
{consent},
go AS (
    SELECT coalesce((SELECT status = $6 AND intent = $8 FROM gate), false) AS ok
),
done AS (
    SELECT last_user_id, recipients, page_limit, sent, failed, suppressed, scanned_to, retry_seq,
           ids
    FROM message_pages
    WHERE message_id = $1 AND lane = $5 AND after_user_id = $2
),
take AS (
    UPDATE message_pages SET owner = ${owner}
    WHERE message_id = $1 AND lane = $5 AND after_user_id = $2 AND (SELECT ok FROM go)
),
ids AS (
    SELECT u.id, coalesce(u.email, '') AS email{columns} FROM users u
    WHERE (SELECT ok FROM go) AND NOT EXISTS (SELECT 1 FROM done)
      AND u.id > $2 AND u.id <= $3
      AND {audience}
    ORDER BY u.id
    LIMIT $4
),
{opted},
page AS (
    SELECT u.id, u.email, {quiet} AS quiet{columns} FROM ids u
),
{sent_to},
cut AS (
    SELECT max(id) AS last, count(*) AS n, count(*) FILTER (WHERE quiet) AS q,
           (SELECT count(*) FROM sent_to) AS d, array_agg(id ORDER BY id) AS ids
    FROM page
),
-- The outcome of those left out (quiet, or capped), recorded now: nothing is sent to them.
hush AS (
    INSERT INTO message_items (message_id, user_id, status)
    SELECT $1, id, {suppressed} FROM page WHERE id NOT IN (SELECT id FROM sent_to)
),
mark AS (
    INSERT INTO message_pages (message_id, lane, after_user_id, last_user_id, recipients,
                               page_limit, sent, suppressed, capped, scanned_to, ends_lane,
                               owner, ids, retry_seq)
    SELECT $1, $5, $2, cut.last, cut.d, $4, 0, cut.n - cut.d, cut.n - cut.q - cut.d, s.to,
           s.to >= $9, ${owner}, coalesce(cut.ids, '{{}}'), (SELECT retry_seq FROM gate)
    FROM cut CROSS JOIN LATERAL (SELECT CASE WHEN cut.n >= $4 THEN cut.last ELSE $3 END AS to) s
    WHERE (SELECT ok FROM go) AND NOT EXISTS (SELECT 1 FROM done)
    RETURNING last_user_id, recipients, page_limit, sent, failed, suppressed, scanned_to
)
SELECT (SELECT status FROM gate) AS status,
       (SELECT intent FROM gate) AS intent,
       (SELECT intent_seq FROM gate) AS intent_seq,
       (SELECT intent_reason FROM gate) AS intent_reason,
       coalesce((SELECT last_user_id FROM mark), (SELECT last_user_id FROM done)) AS last,
       coalesce((SELECT recipients FROM mark), (SELECT recipients FROM done)) AS recipients,
       coalesce((SELECT page_limit FROM mark), (SELECT page_limit FROM done)) AS page_limit,
       coalesce((SELECT sent FROM mark), (SELECT sent FROM done)) AS sent,
       coalesce((SELECT failed FROM mark), (SELECT failed FROM done)) AS failed,
       coalesce((SELECT suppressed FROM mark), (SELECT suppressed FROM done)) AS suppressed,
       coalesce((SELECT scanned_to FROM mark), (SELECT scanned_to FROM done)) AS scanned_to,
       EXISTS (SELECT 1 FROM mark) AS claimed_now,
       (SELECT retry_seq FROM gate) AS campaign_retry,
       (SELECT retry_seq FROM done) AS page_retry,
       (SELECT ids FROM done) AS done_ids,
       coalesce((SELECT array_agg(id ORDER BY id) FROM sent_to), '{{}}') AS ids,
       coalesce((SELECT array_agg(email ORDER BY id) FROM sent_to), '{{}}') AS emails,
       {profile_list} AS profiles
"
    )
}

#[derive(FromRow)]
struct ClaimRow {
    status: Option<i16>,
    intent: Option<i16>,
    intent_seq: Option<i64>,
    intent_reason: Option<String>,
    last: Option<i64>,
    recipients: Option<i32>,
    page_limit: Option<i32>,
    sent: Option<i32>,
    failed: Option<i32>,
    suppressed: Option<i32>,
    scanned_to: Option<i64>,
    claimed_now: bool,
    campaign_retry: Option<i32>,
    page_retry: Option<i32>,
    done_ids: Option<Vec<i64>>,
    ids: Vec<i64>,
    emails: Vec<String>,
    profiles: Vec<String>,
}

/// Claim the next page of a lane for an external channel (step 1 above), as the run
/// numbered `owner`. `audience` as for [`crate::pages::write_inbox_page`]. With `profiles`
/// (a campaign whose content is a template: what its templates read), each pending
/// recipient comes with their data.
pub async fn claim(
    conn: &mut PgConnection,
    page: &PageInput,
    audience: &Compiled,
    owner: i64,
    profiles: Option<&UserFields>,
) -> Result<Claim> {
    let started = std::time::Instant::now();
    let owner_param = crate::pages::AUDIENCE_PARAMS + audience.params.len();
    let sql = claim_sql(audience, owner_param, profiles, page.channel);
    let query = sqlx::query_as(&sql)
        .bind(page.campaign_id)
        .bind(page.after)
        .bind(crate::pages::scan_end(page))
        .bind(page.limit as i64)
        .bind(page.lane as i32)
        .bind(CampaignStatus::InProgress.code())
        .bind(ItemStatus::Pending.code())
        .bind(Intent::Run.code())
        .bind(page.until);
    let row: ClaimRow = audience
        .bind(query)
        .bind(owner)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| StoreError::from(e).of_scan())?;
    let status = status::decode(
        row.status
            .ok_or(StoreError::UnknownCampaignId(page.campaign_id))?,
    )?;
    let intent = status::decode_intent(row.intent.unwrap_or_default())?;
    let recipients = row.recipients.map(|n| n as u32);
    let mut suppressed = row.suppressed.unwrap_or_default() as u32;
    let (sent, mut failed) = (
        row.sent.unwrap_or_default() as u32,
        row.failed.unwrap_or_default() as u32,
    );
    let runnable = status == CampaignStatus::InProgress && intent == Intent::Run;
    let Some(mut recipients) = recipients else {
        // No page row: the gate kept it from being claimed.
        return Ok(halted(status, intent, row.intent_seq, row.intent_reason));
    };
    // Failures from before the campaign's latest `herald retry-failed`.
    let retry = row.campaign_retry.unwrap_or_default();
    let awaiting_retry = failed > 0 && row.page_retry.unwrap_or_default() < retry;
    if !runnable && (awaiting_retry || sent + failed < recipients) {
        // Claimed before, not finished, and the campaign may not send now.
        return Ok(halted(status, intent, row.intent_seq, row.intent_reason));
    }
    let (mut sent, mut reopened) = (sent, false);
    if awaiting_retry && let Some(last) = row.last {
        // The counters as they stand after the reopening, this run's or another's.
        (sent, failed) = reopen_failures(conn, page, last, retry).await?;
        reopened = true;
    }
    let finished = !reopened && sent + failed >= recipients;
    let pending = if row.claimed_now {
        let mut profiles_of = row.profiles.into_iter();
        row.ids
            .into_iter()
            .zip(row.emails)
            .map(|(user_id, email)| {
                let profile = profiles_of
                    .next()
                    .zip(profiles)
                    .map(|(json, fields)| {
                        crate::users::profile_from_json(user_id, &email, fields, &json)
                    })
                    .transpose()?;
                Ok(Pending {
                    user_id,
                    email,
                    attempts: 0,
                    profile,
                })
            })
            .collect::<Result<_>>()?
    } else if finished {
        Vec::new()
    } else {
        let mut pending =
            pending_of(conn, page.campaign_id, page.after, row.last, row.done_ids).await?;
        // Whoever opted out or was suppressed since the page first ran is not sent to now.
        let ids: Vec<i64> = pending.iter().map(|p| p.user_id).collect();
        let quiet = crate::consent::suppress_pending(conn, page, page.channel, &ids).await?;
        if !quiet.is_empty() {
            pending.retain(|p| quiet.binary_search(&p.user_id).is_err());
            recipients -= quiet.len() as u32;
            suppressed += quiet.len() as u32;
        }
        if let Some(fields) = profiles {
            let ids: Vec<i64> = pending.iter().map(|p| p.user_id).collect();
            let mut found = crate::users::profiles(conn, &ids, fields)
                .await?
                .into_iter()
                .peekable();
            // Both in id order.
            for p in &mut pending {
                while found.next_if(|f| f.id < p.user_id).is_some() {}
                p.profile = found.next_if(|f| f.id == p.user_id);
            }
        }
        pending
    };
    Ok(Claim::Page(Claimed {
        last: row.last,
        scanned_to: row.scanned_to,
        took_ms: row.claimed_now.then(|| crate::pages::elapsed_ms(started)),
        recipients,
        limit: row.page_limit.unwrap_or(page.limit as i32) as u32,
        sent,
        failed,
        suppressed,
        pending,
    }))
}

fn halted(
    status: CampaignStatus,
    intent: Intent,
    seq: Option<i64>,
    reason: Option<String>,
) -> Claim {
    Claim::Halted {
        status,
        requested: Requested {
            intent,
            seq: seq.unwrap_or_default(),
            reason,
        },
    }
}

/// A page's counters and the retry it last reopened for.
#[derive(FromRow)]
struct PageCounts {
    sent: i32,
    failed: i32,
    retry_seq: i32,
}

/// Make the failed items of a page claimed before pending again, for the campaign's retry
/// numbered `retry` (see [`retry_failed`]), in one transaction with the page's counters and
/// the lane's failure counts. The page's row is locked first and its retry number read
/// under the lock, so that of two runs of the page only one reopens, and never failures
/// recorded since by the retry's own run. Returns the page's sent and failed counts after.
async fn reopen_failures(
    conn: &mut PgConnection,
    page: &PageInput,
    last: i64,
    retry: i32,
) -> Result<(u32, u32)> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let PageCounts {
        sent,
        failed,
        retry_seq: page_retry,
    } = sqlx::query_as(
        "SELECT sent, failed, retry_seq FROM message_pages
         WHERE message_id = $1 AND lane = $2 AND after_user_id = $3 FOR UPDATE",
    )
    .bind(page.campaign_id)
    .bind(page.lane as i32)
    .bind(page.after)
    .fetch_one(&mut *tx)
    .await?;
    if page_retry >= retry || failed == 0 {
        tx.commit().await?;
        return Ok((sent as u32, failed as u32));
    }
    let (sent, failed): (i32, i32) = sqlx::query_as(
        "
WITH old AS (
    SELECT user_id, error_class, attempts FROM message_items
    WHERE message_id = $1 AND user_id > $2 AND user_id <= $3 AND status = $6
    FOR UPDATE
),
upd AS (
    UPDATE message_items i SET status = $7, attempts = 0
      FROM old
     WHERE i.message_id = $1 AND i.user_id = old.user_id AND i.user_id > $2 AND i.user_id <= $3
       AND i.status = $6
    RETURNING old.error_class, old.attempts
),
classes AS (
    UPDATE message_failures f SET items = f.items - d.n, retried = f.retried - d.r
      FROM (SELECT coalesce(error_class, 'unknown') AS class, count(*) AS n,
                   count(*) FILTER (WHERE attempts > 1) AS r
            FROM upd GROUP BY 1) d
     WHERE f.message_id = $1 AND f.lane = $4 AND f.error_class = d.class
)
UPDATE message_pages SET failed = failed - (SELECT count(*) FROM upd), retry_seq = $5
 WHERE message_id = $1 AND lane = $4 AND after_user_id = $2
RETURNING sent, failed
",
    )
    .bind(page.campaign_id)
    .bind(page.after)
    .bind(last)
    .bind(page.lane as i32)
    .bind(retry)
    .bind(ItemStatus::Failed.code())
    .bind(ItemStatus::Pending.code())
    // Planned with these bounds, so that only their partitions are opened.
    .persistent(false)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((sent as u32, failed as u32))
}

/// The still-pending recipients of a page claimed before: those of its `ids` that have no
/// item yet, and its items in `(after, last]` recorded pending (tried, with tries left).
/// Recipients deleted since are left out. (A page claimed before pages kept their ids has
/// none, and all its recipients have items.)
async fn pending_of(
    conn: &mut PgConnection,
    campaign_id: i64,
    after: i64,
    last: Option<i64>,
    ids: Option<Vec<i64>>,
) -> Result<Vec<Pending>> {
    let Some(last) = last else {
        return Ok(Vec::new());
    };
    let pending = sqlx::query_as(
        "SELECT i.user_id, coalesce(u.email, '') AS email, i.attempts
         FROM message_items i JOIN users u ON u.id = i.user_id
         WHERE i.message_id = $1 AND i.user_id > $2 AND i.user_id <= $3 AND i.status = $4
         UNION ALL
         SELECT x.id, coalesce(u.email, ''), 0::smallint
         FROM unnest($5::bigint[]) x(id) JOIN users u ON u.id = x.id
         WHERE NOT EXISTS (SELECT 1 FROM message_items i
                           WHERE i.message_id = $1 AND i.user_id = x.id
                             AND i.user_id > $2 AND i.user_id <= $3)
         ORDER BY 1",
    )
    .bind(campaign_id)
    .bind(after)
    .bind(last)
    .bind(ItemStatus::Pending.code())
    .bind(ids.unwrap_or_default())
    // Planned with these bounds, so that only their partitions are opened.
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    Ok(pending)
}

/// What a channel needs to know about a campaign: fixed at launch, so workers cache it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub key: CampaignKey,
    pub content: Content,
    pub spec: CampaignSpec,
}

/// A campaign's launch, as stored: what a delivery and a retry start from.
#[derive(FromRow)]
struct Stored {
    id: i64,
    key: String,
    #[sqlx(try_from = "i16")]
    status: CampaignStatus,
    spec: String,
    tuning: Option<String>,
}

/// The campaign's key, content and spec, by row id.
pub async fn delivery(pool: &PgPool, campaign_id: i64) -> Result<Delivery> {
    let row: Option<Stored> = sqlx::query_as(
        "SELECT id, key, status, spec::text AS spec, tuning::text AS tuning
         FROM messages WHERE id = $1",
    )
    .bind(campaign_id)
    .fetch_optional(pool)
    .await?;
    let Stored { key, spec, .. } = row.ok_or(StoreError::UnknownCampaignId(campaign_id))?;
    let corrupt = |what: String| StoreError::Database(sqlx::Error::Decode(what.into()));
    let spec: CampaignSpec = serde_json::from_str(&spec)
        .map_err(|e| corrupt(format!("campaign {key}'s stored spec: {e}")))?;
    Ok(Delivery {
        key: CampaignKey::parse(&key).map_err(|e| corrupt(format!("campaign key {key:?}: {e}")))?,
        content: spec.content.clone(),
        spec,
    })
}

/// What [`retry_failed`] found: the campaign as launched, its tuning at launch (the
/// defaults for a row that has none), and what was done.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    pub spec: Box<CampaignSpec>,
    pub tuning: Tuning,
    /// `Some(n)`: its `n` failed items are pending again and it is in progress, so its
    /// workflow is to be started for another pass. `None`: it was in progress already (an
    /// earlier retry whose workflow may not have started, or a campaign still running).
    pub reopened: Option<i64>,
}

/// Whether [`retry_failed`] has work for a campaign standing so: it went out through an
/// external channel and completed with failures (the dashboard offers it only then).
pub fn retry_offered(status: CampaignStatus, channel: Channel, failed: i64) -> bool {
    channel.is_external() && status == CampaignStatus::Completed && failed > 0
}

/// Put a completed external campaign with failures back in progress, as its retry numbered
/// one more than the last: its failed items become pending again (keeping their ids, so
/// receivers see the same idempotency ids) page by page, as the new run reaches each page,
/// each with its page's and lane's counters in one transaction, so the counters stay the
/// ledger's. Until its page is reached, a failure still counts as failed. The request
/// itself is one row, whatever the campaign's size.
pub async fn retry_failed(pool: &PgPool, key: &CampaignKey, by: &str) -> Result<Retry> {
    let mut tx = pool.begin().await?;
    let row: Option<Stored> = sqlx::query_as(
        "SELECT id, key, status, spec::text AS spec, tuning::text AS tuning
         FROM messages WHERE key = $1 FOR UPDATE",
    )
    .bind(key.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Stored {
        id,
        status,
        spec,
        tuning,
        ..
    } = row.ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    let (spec, tuning) = campaigns::decode_launch(key, &spec, tuning.as_deref())?;
    if !spec.channel.is_external() {
        return Err(StoreError::NothingToRetry(format!(
            "campaign {key} went to the inbox, where no delivery fails; there is nothing to retry"
        )));
    }
    match status {
        CampaignStatus::Completed => {}
        CampaignStatus::InProgress => {
            return Ok(Retry {
                spec,
                tuning,
                reopened: None,
            });
        }
        status => {
            return Err(StoreError::WrongStatus {
                key: key.clone(),
                status,
                action: "retrying its failed deliveries (it must have completed)",
            });
        }
    }
    // The failures are counted, not touched: each page with failures makes them pending
    // again when the retry's run reaches it (`reopen_failures`), so that a retry of a
    // campaign of millions is one row, not a rewrite of every failed item.
    let failed: i64 = sqlx::query_scalar(concat!(
        "SELECT coalesce(sum(failed), 0)::bigint FROM (",
        crate::lane_totals!("$1"),
        ") t"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if failed == 0 {
        return Err(StoreError::NothingToRetry(format!(
            "campaign {key} has no failed deliveries; there is nothing to retry"
        )));
    }
    // Retrying is an operator's request to send, so it is recorded as one (run, the next
    // number): a pause that came as the campaign's last pages finished (an auto-pause among
    // them) would otherwise stop the new run before its first page.
    let reason = format!("retrying {failed} failed deliveries");
    status::reopen(&mut tx, id, &reason, by).await?;
    tx.commit().await?;
    Ok(Retry {
        spec,
        tuning,
        reopened: Some(failed),
    })
}
