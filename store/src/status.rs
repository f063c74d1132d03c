//! A campaign's status and the requests operators make of it, kept apart: each has one
//! writer. The workflow writes the status (what the campaign does) through [`record`], which
//! also stamps the times that belong to it: started when it first goes in progress, paused
//! while it is paused, finished when it ends; a finished campaign is never moved. Operators
//! write the intent (what they asked) through [`request`], each request numbered; the
//! workflow writes it only to append a bare signal as the next request ([`sync_requests`]).
//! One request moves the status too: retry-failed reopens a completed campaign
//! ([`reopen`], called by `sends::retry_failed` with the row it has locked), since its new
//! run starts from there. Docs: docs/architecture.md, "Operator requests".

use herald_wire::{
    CampaignKey, CampaignStatus, Channel, Intent, ItemStatus, LedgerRequests, Rate, Requested,
    SetStatusInput, StatusRecorded, SyncRequestsInput,
};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{Result, StoreError};

/// The channel on which PostgreSQL announces every change of a campaign's status, with the
/// campaign's key as payload (a trigger on `messages`, in the schema, sends it), whoever
/// makes it: the workflow, an operator's fence, or hand-written SQL.
pub const STATUS_NOTIFICATIONS: &str = "herald_status";

/// Move the campaign to `to` if its stored status is one of `from`. Returns the status stored
/// after the call, changed or not; `None` when there is no such campaign. A campaign with a
/// recipient still pending (claimed by a page and not recorded sent or failed, and one a
/// page would send to: a recipient deleted since is not) is
/// never completed, nor is one with failures that a `herald retry-failed` asked to send again
/// and no page has reopened yet: a run that closes as the retry is asked (a repeated status
/// write of its last step, say) leaves it in progress, for the retry's run. Only pages whose
/// counters fall short of their recipients, or that hold failures from before the latest
/// retry, are looked into.
async fn transition(
    conn: &mut PgConnection,
    campaign_id: i64,
    to: CampaignStatus,
    reason: Option<&str>,
    from: &[CampaignStatus],
) -> Result<Option<CampaignStatus>> {
    let from: Vec<i16> = from
        .iter()
        .filter(|s| !s.is_terminal())
        .map(|s| s.code())
        .collect();
    const SQL: &str = "WITH moved AS (
            UPDATE messages SET
                status = $2,
                status_reason = $3,
                updated_at = now(),
                started_at = CASE WHEN $4 THEN coalesce(started_at, now()) ELSE started_at END,
                paused_at = CASE WHEN $5 THEN now() WHEN $4 THEN NULL ELSE paused_at END,
                finished_at = CASE WHEN $6 THEN coalesce(finished_at, now()) ELSE finished_at END
            WHERE id = $1 AND status = ANY($7)
              AND NOT ($8 AND EXISTS (
                  SELECT 1 FROM message_pages p
                  WHERE p.message_id = $1 AND p.recipients > p.sent + p.failed
                    AND (EXISTS (SELECT 1 FROM message_items i JOIN users u ON u.id = i.user_id
                                 WHERE i.message_id = $1 AND i.user_id > p.after_user_id
                                   AND i.user_id <= p.last_user_id AND i.status = $9)
                         OR EXISTS (SELECT 1 FROM unnest(p.ids) x(id) JOIN users u ON u.id = x.id
                                    WHERE NOT EXISTS (SELECT 1 FROM message_items i
                                                      WHERE i.message_id = $1
                                                        AND i.user_id = x.id
                                                        AND i.user_id > p.after_user_id
                                                        AND i.user_id <= p.last_user_id)))))
              AND NOT ($8 AND EXISTS (
                  SELECT 1 FROM message_pages p
                  WHERE messages.retry_seq > 0 AND p.message_id = $1 AND p.failed > 0
                    AND p.retry_seq < messages.retry_seq))
            RETURNING status
         )
         SELECT coalesce((SELECT status FROM moved), (SELECT status FROM messages WHERE id = $1))";
    let stored = sqlx::query_scalar::<_, Option<i16>>(SQL)
        .bind(campaign_id)
        .bind(to.code())
        .bind(reason)
        .bind(to == CampaignStatus::InProgress)
        .bind(to == CampaignStatus::Paused)
        .bind(to.is_terminal())
        .bind(&from)
        .bind(to == CampaignStatus::Completed)
        .bind(ItemStatus::Pending.code())
        .fetch_one(conn)
        .await?;
    stored.map(decode).transpose()
}

/// Read a stored intent code (the column's CHECK constraint keeps it in range).
pub(crate) fn decode_intent(code: i16) -> Result<Intent> {
    Intent::try_from(code).map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))
}

/// Read a stored status code (the column's CHECK constraint keeps it in range).
pub(crate) fn decode(code: i16) -> Result<CampaignStatus> {
    CampaignStatus::try_from(code).map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))
}

/// The workflow's status change. Only from the statuses in `input.from` (any unfinished one
/// when empty). Returns what is stored, and the ledger's committed totals.
pub async fn record(pool: &PgPool, input: &SetStatusInput) -> Result<StatusRecorded> {
    let from = if input.from.is_empty() {
        CampaignStatus::unfinished()
    } else {
        input.from.clone()
    };
    let mut conn = pool.acquire().await?;
    let status = transition(
        &mut conn,
        input.campaign_id,
        input.status,
        input.reason.as_deref(),
        &from,
    )
    .await?
    .ok_or(StoreError::UnknownCampaignId(input.campaign_id))?;
    let (sent, failed, suppressed): (i64, i64, i64) = sqlx::query_as(concat!(
        "SELECT coalesce(sum(sent), 0)::bigint, coalesce(sum(failed), 0)::bigint,
                coalesce(sum(suppressed), 0)::bigint FROM (",
        crate::lane_totals!("$1"),
        ") t"
    ))
    .bind(input.campaign_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(StatusRecorded {
        status,
        sent,
        failed,
        suppressed,
    })
}

/// What an operator asks of a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Pause,
    Resume,
    Cancel,
}

impl Request {
    pub const fn intent(self) -> Intent {
        match self {
            Self::Pause => Intent::Pause,
            Self::Resume => Intent::Run,
            Self::Cancel => Intent::Cancel,
        }
    }

    /// "pause", as in `herald pause`.
    pub const fn verb(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }

    /// "pausing", as in "pausing is not possible".
    pub const fn action(self) -> &'static str {
        match self {
            Self::Pause => "pausing",
            Self::Resume => "resuming",
            Self::Cancel => "cancelling",
        }
    }
}

/// The row as a request finds it, locked.
#[derive(FromRow)]
struct Standing {
    #[sqlx(try_from = "i16")]
    status: CampaignStatus,
    #[sqlx(try_from = "i16")]
    intent: Intent,
    #[sqlx(try_from = "String")]
    channel: Channel,
}

/// What [`request`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The request as stored: the signal carries its number.
    pub requested: Requested,
    /// The same request was already the newest one (its signal may have been lost): it was
    /// not recorded again, and the signal is sent again with its number.
    pub repeated: bool,
    /// The campaign's status when the request was made.
    pub status: CampaignStatus,
    /// What operators had asked before this request.
    pub before: Intent,
    pub channel: Channel,
    /// No workflow ran the campaign, and a new run was started to take the request (set by
    /// the caller that tells the workflow).
    pub recovered: bool,
    /// The workflow's answer once it had taken the request; `None`: it did not answer in
    /// time (no worker runs it, say), and takes the request when it can (set by the caller
    /// that tells the workflow).
    pub applied: Option<herald_wire::Applied>,
}

/// Whether `request` may be made of a campaign standing so, and if so whether it repeats
/// the newest request rather than making a new one. `Err` holds why not.
fn judge(
    request: Request,
    status: CampaignStatus,
    intent: Intent,
) -> std::result::Result<bool, Refusal> {
    use CampaignStatus::*;
    if status.is_terminal() {
        return Err(Refusal::Status);
    }
    if intent == Intent::Cancel {
        return match request {
            Request::Cancel => Ok(true),
            _ => Err(Refusal::Cancelling),
        };
    }
    match request {
        Request::Cancel => Ok(false),
        Request::Pause if intent == Intent::Pause => Ok(true),
        // A failed campaign is already still; resume or cancel it.
        Request::Pause if status == Failed => Err(Refusal::Status),
        Request::Pause => Ok(false),
        Request::Resume if intent == Intent::Pause => Ok(false),
        // Resuming a failed campaign is a new try, every time it is asked.
        Request::Resume if status == Failed => Ok(false),
        // Asked to run, not yet running again: a resume whose signal may not have arrived.
        Request::Resume if status == Paused => Ok(true),
        // Running, as far as the row knows; but a pause sent as a bare signal may be on its
        // way, and this resume is newer than it: record it.
        Request::Resume => Ok(false),
    }
}

/// Whether `request` is worth offering an operator for a campaign standing so (the
/// dashboard shows the buttons this allows): [`request`] accepts it, and it asks something
/// new. A pause or cancel already asked is not offered again, nor a resume of a campaign
/// that runs and was not asked to pause (which [`request`] records, for a bare pause that
/// may be on its way).
pub fn offers(request: Request, status: CampaignStatus, intent: Intent) -> bool {
    match judge(request, status, intent) {
        Err(_) => false,
        Ok(repeat) => match request {
            Request::Pause | Request::Cancel => !repeat,
            Request::Resume => {
                intent == Intent::Pause
                    || matches!(status, CampaignStatus::Paused | CampaignStatus::Failed)
            }
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Status,
    Cancelling,
}

/// Put a completed campaign back in progress for a retry of its failures, as an operator's
/// request to run (the next request number, and the next retry's), by `by`. The caller holds
/// the row locked and has checked that the campaign completed with failures.
pub(crate) async fn reopen(conn: &mut PgConnection, id: i64, reason: &str, by: &str) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET status = $2, status_reason = $3, finished_at = NULL, updated_at = now(),
                intent = $4, intent_seq = intent_seq + 1, intent_reason = $3, intent_token = NULL,
                requested_at = now(), retry_seq = retry_seq + 1, requested_by = $5
         WHERE id = $1",
    )
    .bind(id)
    .bind(CampaignStatus::InProgress.code())
    .bind(reason)
    .bind(Intent::Run.code())
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A change of a campaign's speed limit, recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateChanged {
    /// The change's number: the workflow, told to read the row, applies only the newest.
    pub seq: i64,
    pub before: Option<i32>,
    /// The workflow confirmed that it paces its pages by the row's newest rate (set by the
    /// caller that tells the workflow).
    pub applied: bool,
}

/// Record a new speed limit (`None`: none) for a campaign that has not finished. The
/// workflow is told next, and reads the limit from the row.
pub async fn set_rate(
    pool: &PgPool,
    key: &CampaignKey,
    rate: Option<Rate>,
    by: &str,
) -> Result<RateChanged> {
    let mut tx = pool.begin().await?;
    let row: Option<(i16, Option<i32>)> =
        sqlx::query_as("SELECT status, rate FROM messages WHERE key = $1 FOR UPDATE")
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let (status, before) = row.ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    let status = decode(status)?;
    if status.is_terminal() {
        return Err(StoreError::WrongStatus {
            key: key.clone(),
            status,
            action: "changing its rate",
        });
    }
    let seq = sqlx::query_scalar(
        "UPDATE messages SET rate = $2, rate_seq = rate_seq + 1, rate_by = $3, updated_at = now()
         WHERE key = $1 RETURNING rate_seq",
    )
    .bind(key.as_str())
    .bind(rate.map(|r| r.get() as i32))
    .bind(by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RateChanged {
        seq,
        before,
        applied: false,
    })
}

/// An operator's pause, resume or cancel, recorded in the campaign's row before the workflow
/// is told: the request takes the next number, and the page statement obeys it from the
/// moment this returns (no page starts writing after a pause or a cancel). The workflow's
/// own status is left to the workflow.
pub async fn request(
    pool: &PgPool,
    key: &CampaignKey,
    request: Request,
    reason: Option<&str>,
    by: &str,
) -> Result<Recorded> {
    let mut tx = pool.begin().await?;
    let standing: Standing =
        sqlx::query_as("SELECT status, intent, channel FROM messages WHERE key = $1 FOR UPDATE")
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    let repeated = match judge(request, standing.status, standing.intent) {
        Ok(repeated) => repeated,
        Err(Refusal::Status) => {
            return Err(StoreError::WrongStatus {
                key: key.clone(),
                status: standing.status,
                action: request.action(),
            });
        }
        Err(Refusal::Cancelling) => {
            return Err(StoreError::Cancelling {
                key: key.clone(),
                action: request.action(),
            });
        }
    };
    // A repeated request keeps its number; a reason given with it replaces the old one.
    let seq = sqlx::query_scalar(
        "UPDATE messages SET intent = $2, intent_seq = intent_seq + CASE WHEN $3 THEN 0 ELSE 1 END,
             intent_reason = CASE WHEN $3 AND $4::text IS NULL THEN intent_reason ELSE $4 END,
             intent_token = NULL, requested_at = now(), updated_at = now(),
             requested_by = CASE WHEN $3 THEN requested_by ELSE $5 END
         WHERE key = $1 RETURNING intent_seq",
    )
    .bind(key.as_str())
    .bind(request.intent().code())
    .bind(repeated)
    .bind(reason)
    .bind(by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Recorded {
        requested: Requested {
            intent: request.intent(),
            seq,
            reason: reason.map(str::to_owned),
        },
        repeated,
        status: standing.status,
        before: standing.intent,
        channel: standing.channel,
        recovered: false,
        applied: None,
    })
}

/// A stored speed limit (`messages.rate`), read as a [`Rate`]; a value outside the bounds
/// (written by hand) reads as none.
pub(crate) fn stored_rate(rate: Option<i32>) -> Option<Rate> {
    rate.and_then(|r| Rate::new(u32::try_from(r).ok()?).ok())
}

/// The requests columns of a campaign's row.
#[derive(FromRow)]
struct RequestColumns {
    #[sqlx(try_from = "i16")]
    intent: Intent,
    intent_seq: i64,
    intent_reason: Option<String>,
    rate: Option<i32>,
    rate_seq: i64,
    intent_token: Option<i64>,
}

/// The workflow's look at the requests a campaign's row holds, after appending the bare
/// signal it has applied as the next request, if the row still holds the request the
/// workflow knew of when the signal arrived. Returns what the row holds then.
pub async fn sync_requests(pool: &PgPool, input: &SyncRequestsInput) -> Result<LedgerRequests> {
    let row: Option<RequestColumns> = if input.intent.is_none() && input.rate.is_none() {
        sqlx::query_as(
            "SELECT intent, intent_seq, intent_reason, rate, rate_seq, intent_token
             FROM messages WHERE id = $1",
        )
        .bind(input.campaign_id)
        .fetch_optional(pool)
        .await?
    } else {
        let (intent, reason) = match &input.intent {
            Some(bare) => (Some(bare.intent.code()), bare.reason.as_deref()),
            None => (None, None),
        };
        // A pause or resume is appended only over the request the workflow knew of when the
        // signal arrived (one recorded since is newer, and repeating this statement appends
        // nothing twice), and never over a cancel; a cancel the workflow has taken is final,
        // and appended whatever came since.
        sqlx::query_as(
            "UPDATE messages SET
                 intent = CASE WHEN append THEN $2 ELSE intent END,
                 intent_seq = intent_seq + CASE WHEN append THEN 1 ELSE 0 END,
                 intent_reason = CASE WHEN append THEN $3 ELSE intent_reason END,
                 requested_at = CASE WHEN append THEN now() ELSE requested_at END,
                 intent_token = CASE WHEN append THEN $7 ELSE intent_token END,
                 requested_by = CASE WHEN append THEN $8 ELSE requested_by END,
                 rate = CASE WHEN $4 THEN $5 ELSE rate END,
                 rate_seq = rate_seq + CASE WHEN $4 THEN 1 ELSE 0 END,
                 rate_by = CASE WHEN $4 THEN 'temporal' ELSE rate_by END,
                 updated_at = now()
             FROM (SELECT $2::smallint IS NOT NULL AND (m.intent_seq = $6 OR $2 = 2)
                          AND (m.intent <> 2 OR $2 = 2) AS append
                   FROM messages m WHERE m.id = $1 FOR UPDATE) judged
             WHERE id = $1
             RETURNING intent, intent_seq, intent_reason, rate, rate_seq, intent_token",
        )
        .bind(input.campaign_id)
        .bind(intent)
        .bind(reason)
        .bind(input.rate.is_some())
        .bind(input.rate.flatten().map(|r| r.get() as i32))
        .bind(input.intent.as_ref().map_or(0, |b| b.seen_seq))
        .bind(input.intent.as_ref().map(|b| b.token))
        .bind(match &input.intent {
            // The campaign paused itself, or someone signalled its workflow directly.
            Some(bare) if bare.own => "herald",
            _ => "temporal",
        })
        .fetch_optional(pool)
        .await?
    };
    let row = row.ok_or(StoreError::UnknownCampaignId(input.campaign_id))?;
    Ok(LedgerRequests {
        requested: Requested {
            intent: row.intent,
            seq: row.intent_seq,
            reason: row.intent_reason,
        },
        rate: stored_rate(row.rate),
        rate_seq: row.rate_seq,
        token: row.intent_token,
    })
}

/// A session listening for status changes on [`STATUS_NOTIFICATIONS`].
pub struct StatusChanges(sqlx::postgres::PgListener);

impl StatusChanges {
    /// `None` if no session can be had for it: a watcher then relies on its regular looks.
    pub async fn listen(pool: &PgPool) -> Option<Self> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await.ok()?;
        listener.listen(STATUS_NOTIFICATIONS).await.ok()?;
        Some(Self(listener))
    }

    /// The key of the next campaign whose status changes.
    pub async fn next(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignStatus::*;

    #[test]
    fn the_offered_requests_are_those_accepted_that_ask_something_new() {
        for status in CampaignStatus::ALL {
            for intent in Intent::ALL {
                let open = !status.is_terminal() && intent != Intent::Cancel;
                let still = intent == Intent::Pause || matches!(status, Paused | Failed);
                let case = format!("{status} asked to {intent}");
                let pause = open && intent != Intent::Pause && status != Failed;
                assert_eq!(offers(Request::Pause, status, intent), pause, "{case}");
                assert_eq!(
                    offers(Request::Resume, status, intent),
                    open && still,
                    "{case}"
                );
                assert_eq!(offers(Request::Cancel, status, intent), open, "{case}");
            }
        }
    }

    #[test]
    fn requests_are_judged_on_status_and_intent() {
        let new = Ok(false);
        let again = Ok(true);
        let no = Err(Refusal::Status);
        for (request, status, intent, verdict) in [
            (Request::Pause, InProgress, Intent::Run, new),
            (Request::Pause, NotStarted, Intent::Run, new),
            (Request::Pause, InProgress, Intent::Pause, again),
            (Request::Pause, Paused, Intent::Pause, again),
            (Request::Pause, Failed, Intent::Run, no),
            (Request::Resume, InProgress, Intent::Pause, new),
            (Request::Resume, Paused, Intent::Pause, new),
            (Request::Resume, Paused, Intent::Run, again),
            (Request::Resume, Failed, Intent::Run, new),
            (Request::Resume, InProgress, Intent::Run, new),
            (Request::Resume, NotStarted, Intent::Run, new),
            (Request::Cancel, InProgress, Intent::Pause, new),
            (Request::Cancel, InProgress, Intent::Cancel, again),
            (
                Request::Pause,
                InProgress,
                Intent::Cancel,
                Err(Refusal::Cancelling),
            ),
            (
                Request::Resume,
                Paused,
                Intent::Cancel,
                Err(Refusal::Cancelling),
            ),
            (Request::Cancel, Completed, Intent::Run, no),
            (Request::Resume, Cancelled, Intent::Cancel, no),
        ] {
            assert_eq!(
                judge(request, status, intent),
                verdict,
                "{request:?} of a campaign {status} asked to {intent}"
            );
        }
    }
}
