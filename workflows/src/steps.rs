//! The campaign loop's steps as Temporal commands: pages, the ledger look, rests, waits,
//! bookkeeping with its retries, status writes, and what the web UI shows. Each one is
//! deterministic: time from `ctx.workflow_time()`, waiting on SDK timers and conditions.

use std::time::{Duration, UNIX_EPOCH};

use futures::FutureExt;
use herald_wire::{
    CampaignStatus, FailingStep, PageExecution, PageInput, Progress, SetStatusInput,
    SyncRequestsInput, Trouble, names,
};
use temporalio_common::{
    ActivityDefinition, protos::temporal::api::failure::v1::failure::FailureInfo,
    search_attributes::SearchAttributeKey,
};
use temporalio_sdk::{ActivityExecutionError, WorkflowContext};
use temporalio_workflow::{WaitConditionOptions, WorkflowCancellationToken, workflows::select};

use crate::{
    activities::CampaignActivities,
    campaign::{CampaignWorkflow, Event, cancel_requested, history_full},
    options, plan,
    state::{FailureKind, Rest},
};

const SA_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword(names::SA_STATUS);
const SA_PROCESSED: SearchAttributeKey<i64> = SearchAttributeKey::int(names::SA_PROCESSED);

/// The application failure inside an activity's failure (the activity's own error, under
/// Temporal's wrapping), if there is one.
pub(crate) fn application_failure(err: &ActivityExecutionError) -> Option<(&str, &str)> {
    let mut failure = err.failure();
    while let Some(f) = failure {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info {
            return Some((info.r#type.as_str(), f.message.as_str()));
        }
        failure = f.cause.as_deref();
    }
    None
}

pub(crate) fn failure_kind(err: &ActivityExecutionError) -> FailureKind {
    if matches!(err, ActivityExecutionError::Serialization(_)) {
        return FailureKind::Permanent;
    }
    match application_failure(err).map(|(kind, _)| kind) {
        Some(names::FAILURE_WORKER_STOPPING) => FailureKind::WorkerStopping,
        Some(names::FAILURE_PERMANENT) => FailureKind::Permanent,
        Some(names::FAILURE_TOO_SLOW) => FailureKind::TooSlow,
        // Transient errors, timeouts, and anything unforeseen: retrying is safe.
        _ => FailureKind::Transient,
    }
}

/// The failure's own message, without the SDK's wrapping.
pub(crate) fn failure_message(err: &ActivityExecutionError) -> String {
    match application_failure(err) {
        Some((_, message)) => message.to_owned(),
        None => err.to_string(),
    }
}

/// A workflow task has just begun (see [`crate::state::CampaignState::note_boundary`]).
pub(crate) fn at_boundary(ctx: &WorkflowContext<CampaignWorkflow>) {
    let now = now_ms(ctx);
    ctx.state_mut(|s| s.state.note_boundary(now));
}

/// Workflow time, in Unix milliseconds: deterministic, from history.
pub(crate) fn now_ms(ctx: &WorkflowContext<CampaignWorkflow>) -> i64 {
    ctx.workflow_time()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) async fn run_page(
    ctx: &WorkflowContext<CampaignWorkflow>,
    lane: usize,
    input: PageInput,
    execution: PageExecution,
) -> Event {
    let delay = Duration::from_millis(u64::from(input.delay_millis));
    let result = match execution {
        _ if input.channel.is_external() => {
            ctx.execute_activity(CampaignActivities::page, input, options::send_page(delay))
                .await
        }
        PageExecution::Regular => {
            ctx.execute_activity(CampaignActivities::page, input, options::page(delay))
                .await
        }
        PageExecution::Local => {
            ctx.execute_local_activity(CampaignActivities::page, input, options::page_local(delay))
                .await
        }
    };
    Event::Page(lane, result)
}

/// Append the bare requests to the row and read what it holds.
pub(crate) async fn sync(
    ctx: &WorkflowContext<CampaignWorkflow>,
    input: SyncRequestsInput,
) -> Event {
    let result = bookkeeping(ctx, || CampaignActivities::sync_requests, input.clone()).await;
    Event::Synced(input, result)
}

/// Rest between pages, once every page in flight has returned. Each way ends the current
/// workflow task: a yield by scheduling the do-nothing activity (fast), a handover or a
/// backoff on a durable timer.
pub(crate) async fn take_rest(ctx: &WorkflowContext<CampaignWorkflow>, rest: Rest) -> Event {
    let wait = match rest {
        Rest::Yield => {
            // A failure here (none is expected) only means the task ended anyway.
            let _ = ctx
                .execute_activity(CampaignActivities::yield_task, (), options::yield_task())
                .await;
            return Event::Rested;
        }
        Rest::Handover => options::HANDOVER_WAIT,
        Rest::Backoff => ctx.state(|s| s.state.backoff()),
    };
    ctx.timer(wait).await;
    Event::Rested
}

/// Resolves when a signal comes (or Temporal's own cancellation): the loop looks again.
pub(crate) async fn watch_signals(ctx: &WorkflowContext<CampaignWorkflow>) -> Event {
    if signalled(ctx).await {
        cancel_requested(ctx);
    }
    Event::Signalled
}

/// Resolves when a signal comes, with whether it was Temporal's own cancellation. Once that
/// has come, only signals count: a wait on a cancelled token would resolve at once, for
/// ever, and starve everything else in the workflow task.
pub(crate) async fn signalled(ctx: &WorkflowContext<CampaignWorkflow>) -> bool {
    let seen = ctx.state(|s| s.state.signals);
    let detached = ctx
        .cancellation_token()
        .is_cancelled()
        .then(WorkflowCancellationToken::new);
    let options = WaitConditionOptions::builder()
        .maybe_cancellation_token(detached)
        .build();
    ctx.wait_condition_with_options(|s| s.state.signals != seen, options)
        .await
        .is_err()
}

/// Nothing to do until a signal comes, or (for a campaign waiting for its send time) until
/// `until_ms`. Costs nothing while it lasts: no timers beyond the send time's, no history.
pub(crate) async fn wait(
    ctx: &WorkflowContext<CampaignWorkflow>,
    until_ms: Option<i64>,
    now_ms: i64,
) {
    let cancelled = match until_ms {
        None => signalled(ctx).await,
        Some(at) => {
            log(ctx, "waiting for send_at");
            let wait = Duration::from_millis(at.saturating_sub(now_ms).max(1) as u64);
            select! {
                _ = ctx.timer(wait) => false,
                cancelled = signalled(ctx).fuse() => cancelled,
            }
        }
    };
    if cancelled {
        cancel_requested(ctx);
    }
}

/// Why a bookkeeping step gave up.
pub(crate) enum Unkept {
    /// Retrying could not fix it within the grace: the caller's ([`bookkeeping_failed`]).
    Failed(ActivityExecutionError),
    /// The run's history grew while the step was retried: continue as new, and try again
    /// in the next run (what the step was for is still in the carried state).
    HandOver,
}

/// Run a bookkeeping activity (register, set_status, sync_requests) as a local activity: no
/// round trip through the server's task queue before the first page or after the last. A
/// stopping worker hands it over, a transient failure is retried on a durable timer, and a
/// permanent one too for the grace period; after that it is the caller's
/// ([`bookkeeping_failed`]; a failed registration fails the workflow, and the next request
/// to the campaign starts a new run). Retries stop when the run's history has grown, so
/// that an outage of any length keeps every run bounded; the next run goes on with the
/// step's failures and grace.
pub(crate) async fn bookkeeping<A: ActivityDefinition>(
    ctx: &WorkflowContext<CampaignWorkflow>,
    activity: impl Fn() -> A,
    input: A::Input,
) -> Result<A::Output, Unkept>
where
    A::Input: Clone,
{
    // A step the previous run handed over goes on with its failures and grace, whatever
    // other steps did meanwhile; it forgets them once it ends either way.
    let name = activity().name().to_owned();
    let mut trouble = ctx.state_mut(|s| {
        let failing = &mut s.state.carried.bookkeeping;
        let step = failing.iter().position(|step| step.activity == name);
        step.map(|i| failing.remove(i).trouble).unwrap_or_default()
    });
    let hand_over = |trouble: Trouble| {
        let step = FailingStep {
            activity: name.clone(),
            trouble,
        };
        ctx.state_mut(|s| s.state.carried.bookkeeping.push(step));
        Err(Unkept::HandOver)
    };
    loop {
        let err = match ctx
            .execute_local_activity(activity(), input.clone(), options::bookkeeping())
            .await
        {
            Ok(out) => return Ok(out),
            Err(err) => err,
        };
        let wait = match failure_kind(&err) {
            FailureKind::WorkerStopping => options::HANDOVER_WAIT,
            kind => {
                let permanent = kind == FailureKind::Permanent;
                let grace = ctx.state(|s| s.state.grace());
                if plan::record_failure(&mut trouble, permanent, now_ms(ctx), grace) {
                    return Err(Unkept::Failed(err));
                }
                plan::backoff(trouble.failures, options::BOOKKEEPING_BACKOFF_MAX)
            }
        };
        if history_full(ctx) {
            return hand_over(trouble);
        }
        if !ctx.is_replaying() {
            tracing::warn!(error = %failure_message(&err), retry_in = ?wait, "bookkeeping failed");
        }
        // Signals keep coming during a long outage: each one may fill the history.
        let mut timer = std::pin::pin!(ctx.timer(wait));
        loop {
            let cancelled = select! {
                _ = timer.as_mut() => break,
                cancelled = signalled(ctx).fuse() => cancelled,
            };
            if cancelled {
                cancel_requested(ctx);
            }
            if history_full(ctx) {
                return hand_over(trouble);
            }
        }
    }
}

/// Write the campaign's status (only from the statuses in `from`; any unfinished one when
/// empty) and follow what the row holds afterwards.
pub(crate) async fn set_status(
    ctx: &WorkflowContext<CampaignWorkflow>,
    status: CampaignStatus,
    from: Vec<CampaignStatus>,
) -> Result<(), Unkept> {
    let input = ctx.state(|s| SetStatusInput {
        campaign_id: s.state.carried.campaign_id,
        status,
        reason: s.state.carried.reason.clone(),
        from,
    });
    let recorded = bookkeeping(ctx, || CampaignActivities::set_status, input).await?;
    ctx.state_mut(|s| s.state.on_status_recorded(status, recorded));
    publish(ctx);
    Ok(())
}

/// Write the campaign's last status; the run then ends with its progress.
pub(crate) async fn finish(
    ctx: &WorkflowContext<CampaignWorkflow>,
    status: CampaignStatus,
) -> Result<Progress, Unkept> {
    set_status(ctx, status, Vec::new()).await?;
    log(ctx, "finished");
    Ok(ctx.state(|s| s.state.snapshot()))
}

/// Bookkeeping gave up on an error that retrying could not fix. The workflow never fails on
/// it (a failed workflow would leave the campaign to an operator who may not know): the
/// campaign fails with the error as its reason, that is recorded if the row takes it, and
/// the loop tries again after a minute, or at once when a signal comes.
pub(crate) async fn bookkeeping_failed(
    ctx: &WorkflowContext<CampaignWorkflow>,
    what: &str,
    err: &ActivityExecutionError,
) {
    let message = failure_message(err);
    ctx.state_mut(|s| s.state.bookkeeping_failed(what, &message));
    if !ctx.is_replaying() {
        tracing::error!(error = %message, "{what} failed for good; the campaign is failed");
    }
    if ctx.state(|s| s.state.lifecycle().is_held()) {
        use CampaignStatus::*;
        // The status write may be what fails: then the reason lives in the workflow only.
        let _ = set_status(ctx, Failed, vec![NotStarted, InProgress, Paused, Failed]).await;
    }
    let cancelled = select! {
        _ = ctx.timer(options::BOOKKEEPING_BACKOFF_MAX) => false,
        cancelled = signalled(ctx).fuse() => cancelled,
    };
    if cancelled {
        cancel_requested(ctx);
    }
}

/// Progress for the web UI, which cannot run this SDK's queries: search attributes for the
/// workflow list, and the "current details" text.
pub(crate) fn publish(ctx: &WorkflowContext<CampaignWorkflow>) {
    let p = ctx.state(|s| s.state.snapshot());
    let status = p.status.name();
    ctx.upsert_search_attributes([
        SA_STATUS.value_set(status.to_owned()),
        SA_PROCESSED.value_set(p.sent + p.failed + p.suppressed),
    ]);
    ctx.set_current_details(format!(
        "**{}** — {} of {} processed ({} sent, {} failed, {} left out, {} pending), {} pages, run {}{}",
        status,
        p.sent + p.failed + p.suppressed,
        p.total,
        p.sent,
        p.failed,
        p.suppressed,
        p.pending,
        p.pages_done,
        p.run,
        p.reason
            .map(|r| format!(" — reason: {r}"))
            .unwrap_or_default()
    ));
}

pub(crate) fn log(ctx: &WorkflowContext<CampaignWorkflow>, event: &str) {
    if ctx.is_replaying() {
        return;
    }
    let p = ctx.state(|s| s.state.snapshot());
    tracing::info!(
        campaign.id = %p.key,
        campaign.status = p.status.name(),
        campaign.sent = p.sent,
        campaign.total = p.total,
        campaign.pages = p.pages_done,
        campaign.run = p.run,
        "{event}"
    );
}
