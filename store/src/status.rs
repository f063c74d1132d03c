//! Changes of a campaign's status. Every write of `messages.status` goes through
//! [`transition`], which also stamps the times that belong to the new status, so the rules
//! are written once: started when it first goes in progress, paused while it is paused,
//! finished when it ends. A finished campaign is never moved.

use chrono::{DateTime, Utc};
use herald_wire::{CampaignKey, CampaignStatus, SetStatusInput};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{Result, StoreError};

/// The channel on which PostgreSQL announces every change of a campaign's status, with the
/// campaign's key as payload (a trigger on `messages`, in the schema, sends it), whoever
/// makes it: the workflow, an operator's fence, or hand-written SQL.
pub const STATUS_NOTIFICATIONS: &str = "herald_status";

/// Which campaign a change is for: by row id (the workflow) or by key (operators).
#[derive(Clone, Copy, Debug)]
enum Campaign<'a> {
    Id(i64),
    Key(&'a CampaignKey),
}

/// Move the campaign to `to` if its stored status is one of `from`. Returns the status stored
/// after the call, changed or not; `None` when there is no such campaign.
async fn transition(
    conn: &mut PgConnection,
    campaign: Campaign<'_>,
    to: CampaignStatus,
    reason: Option<&str>,
    from: &[CampaignStatus],
) -> Result<Option<CampaignStatus>> {
    let by = match campaign {
        Campaign::Id(_) => "id = $1",
        Campaign::Key(_) => "key = $1",
    };
    let from: Vec<i16> = from
        .iter()
        .filter(|s| !s.is_terminal())
        .map(|s| s.code())
        .collect();
    let sql = format!(
        "WITH moved AS (
            UPDATE messages SET
                status = $2,
                status_reason = $3,
                updated_at = now(),
                started_at = CASE WHEN $4 THEN coalesce(started_at, now()) ELSE started_at END,
                paused_at = CASE WHEN $5 THEN now() WHEN $4 THEN NULL ELSE paused_at END,
                finished_at = CASE WHEN $6 THEN coalesce(finished_at, now()) ELSE finished_at END
            WHERE {by} AND status = ANY($7)
            RETURNING status
         )
         SELECT coalesce((SELECT status FROM moved), (SELECT status FROM messages WHERE {by}))"
    );
    let query = sqlx::query_scalar::<_, Option<i16>>(&sql);
    let query = match campaign {
        Campaign::Id(id) => query.bind(id),
        Campaign::Key(key) => query.bind(key.as_str()),
    };
    let stored = query
        .bind(to.code())
        .bind(reason)
        .bind(to == CampaignStatus::InProgress)
        .bind(to == CampaignStatus::Paused)
        .bind(to.is_terminal())
        .bind(&from)
        .fetch_one(conn)
        .await?;
    stored.map(decode).transpose()
}

/// Read a stored status code (the column's CHECK constraint keeps it in range).
pub(crate) fn decode(code: i16) -> Result<CampaignStatus> {
    CampaignStatus::try_from(code).map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))
}

/// The workflow's status change. Only from the statuses in `input.from` (any unfinished one
/// when empty). Returns what is stored, which tells the workflow whether an operator's fence
/// got there first.
pub async fn record(pool: &PgPool, input: &SetStatusInput) -> Result<CampaignStatus> {
    let from = if input.from.is_empty() {
        CampaignStatus::unfinished()
    } else {
        input.from.clone()
    };
    transition(
        &mut *pool.acquire().await?,
        Campaign::Id(input.campaign_id),
        input.status,
        input.reason.as_deref(),
        &from,
    )
    .await?
    .ok_or(StoreError::UnknownCampaignId(input.campaign_id))
}

/// What an operator asks of a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Pause,
    Resume,
    Cancel,
}

impl Request {
    /// The status the request leads to, for a campaign that has (or has not) started.
    fn target(self, started: bool) -> CampaignStatus {
        match self {
            Self::Pause => CampaignStatus::Paused,
            // A campaign paused before its send time goes back to "not started"; the
            // workflow marks it in progress when the time comes.
            Self::Resume if !started => CampaignStatus::NotStarted,
            Self::Resume => CampaignStatus::InProgress,
            Self::Cancel => CampaignStatus::Cancelled,
        }
    }

    fn allowed_from(self, status: CampaignStatus) -> bool {
        match self {
            Self::Pause => status.can_pause(),
            Self::Resume => status.can_resume(),
            Self::Cancel => status.can_cancel(),
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

/// What a request may overwrite, locked and read before it does: the status and the columns
/// that go with it, so that [`unfence`] can put back exactly what was there.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
struct Before {
    #[sqlx(try_from = "i16")]
    status: CampaignStatus,
    status_reason: Option<String>,
    started_at: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// A request's change, so that it can be undone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fenced {
    before: Before,
    written: CampaignStatus,
}

impl Fenced {
    /// The status before the request.
    pub fn before(&self) -> CampaignStatus {
        self.before.status
    }

    /// The status the request wrote.
    pub fn written(&self) -> CampaignStatus {
        self.written
    }
}

/// The operator's half of pause, resume and cancel: check the request against the stored
/// status and write the new status *before* the signal is sent. Page statements read it in
/// their own transaction, so once this returns no new page can start writing (the fence).
pub async fn fence(
    pool: &PgPool,
    key: &CampaignKey,
    request: Request,
    reason: Option<&str>,
) -> Result<Fenced> {
    let mut tx = pool.begin().await?;
    let before: Before = sqlx::query_as(
        "SELECT status, status_reason, started_at, paused_at, finished_at
         FROM messages WHERE key = $1 FOR UPDATE",
    )
    .bind(key.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::UnknownCampaign(key.to_string()))?;
    if !request.allowed_from(before.status) {
        return Err(StoreError::WrongStatus {
            key: key.clone(),
            status: before.status,
            action: request.action(),
        });
    }
    let written = request.target(before.started_at.is_some());
    transition(
        &mut tx,
        Campaign::Key(key),
        written,
        reason,
        &[before.status],
    )
    .await?;
    tx.commit().await?;
    Ok(Fenced { before, written })
}

/// Undo a [`fence`] whose signal could not be delivered: put back the status and the columns
/// that go with it exactly as they were, if nothing has moved the campaign since. Returns
/// whether it did (`false`: the workflow or another operator moved it meanwhile, and the
/// campaign stays as they left it).
pub async fn unfence(pool: &PgPool, key: &CampaignKey, fenced: &Fenced) -> Result<bool> {
    let Before {
        status,
        status_reason,
        started_at: _,
        paused_at,
        finished_at,
    } = &fenced.before;
    let restored = sqlx::query(
        "UPDATE messages SET status = $2, status_reason = $3, paused_at = $4, finished_at = $5,
             updated_at = now()
         WHERE key = $1 AND status = $6",
    )
    .bind(key.as_str())
    .bind(status.code())
    .bind(status_reason)
    .bind(paused_at)
    .bind(finished_at)
    .bind(fenced.written.code())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(restored == 1)
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
