//! The campaign workflow: the SDK loop around [`CampaignState`].
//!
//! One workflow per campaign (id `campaign-<key>`). It registers the campaign, then loops:
//! each lane free to work gets a page (or a pacing timer), a bare signal or a
//! `herald.requests` is squared with the ledger, and whenever no page is in flight the state
//! says what comes next ([`CampaignState::next_step`]): write a status, wait for a request or
//! the send time, rest, continue as new, or finish. Every wait comes back through that
//! question, so every wait continues as new once the run has done its share or its history
//! has grown. Decisions live in [`crate::state`]; here they become Temporal commands.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, UNIX_EPOCH},
};

use futures::{FutureExt, future::select_all};
use herald_wire::{
    CampaignInput, CampaignStatus, Intent, LedgerRequests, PageExecution, PageInput, PageOutcome,
    Progress, RateRequest, RegisterInput, SetStatusInput, SignalRequest, SyncRequestsInput,
    Trouble, names,
};
use temporalio_common::{
    ActivityDefinition, data_converters::RawValue,
    protos::temporal::api::failure::v1::failure::FailureInfo,
    search_attributes::SearchAttributeKey,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};
use temporalio_workflow::{
    TimerOptions, WaitConditionOptions, WorkflowCancellationToken, workflows::select,
};

use crate::{
    activities::CampaignActivities,
    options, plan,
    state::{CampaignState, FailureKind, Rest, Step},
};

const SA_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword(names::SA_STATUS);
const SA_PROCESSED: SearchAttributeKey<i64> = SearchAttributeKey::int(names::SA_PROCESSED);

#[workflow]
pub struct CampaignWorkflow {
    state: CampaignState,
}

/// What the campaign loop waits on.
enum Event {
    /// A lane's page returned.
    Page(usize, Result<PageOutcome, ActivityExecutionError>),
    /// A lane's pacing wait ended, or was cut short.
    Paced(usize),
    /// A rest is over.
    Rested,
    /// The ledger's requests, after the bare ones were appended.
    Synced(
        SyncRequestsInput,
        Result<LedgerRequests, ActivityExecutionError>,
    ),
    /// A signal came.
    Signalled,
}

type Pending<'a> = Pin<Box<dyn Future<Output = Event> + 'a>>;

#[workflow_methods]
impl CampaignWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: CampaignInput) -> Self {
        Self {
            state: CampaignState::new(input),
        }
    }

    #[run(name = names::CAMPAIGN_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Progress> {
        let ctx: &WorkflowContext<Self> = ctx;
        if !ctx.state(|s| s.state.registered()) {
            let input = ctx.state(|s| RegisterInput {
                key: s.state.key.clone(),
                spec: s.state.spec.clone(),
            });
            let registered = bookkeeping(ctx, || CampaignActivities::register, input).await?;
            ctx.state_mut(|s| s.state.register(&registered));
            log(ctx, "registered");
        }
        publish(ctx);
        at_boundary(ctx);

        let execution = ctx.state(|s| s.state.spec.execution);
        let mut pending: Vec<Pending<'_>> = Vec::new();
        // Cancels the lanes' pacing timers when the campaign stops or its pace changes.
        let mut pacing = WorkflowCancellationToken::new();
        let (mut watching, mut resting, mut syncing, mut hand_over) = (false, false, false, false);
        loop {
            if ctx.cancellation_token().is_cancelled() {
                // Temporal's own cancellation: a bare cancel.
                cancel_requested(ctx);
            }
            let now = now_ms(ctx);
            ctx.state_mut(|s| s.state.note_time(now));
            if ctx.state(|s| s.state.rate_changed) {
                ctx.state_mut(|s| s.state.restart_turns(now));
                log(ctx, "rate changed");
                pacing.cancel();
                pacing = WorkflowCancellationToken::new();
            }
            if ctx.state(|s| s.state.lifecycle().is_stopped()) && !pacing.is_cancelled() {
                pacing.cancel();
            }
            if !hand_over && ctx.state(|s| s.state.may_claim() && s.state.rest.is_none()) {
                let (pages, waits) = ctx.state_mut(|s| s.state.claim_idle_lanes(now));
                for (lane, input) in pages {
                    pending.push(Box::pin(run_page(ctx, lane, input, execution)));
                }
                for (lane, wait) in waits {
                    let timer = ctx.timer(
                        TimerOptions::builder(wait)
                            .cancellation_token(pacing.clone())
                            .build(),
                    );
                    pending.push(Box::pin(async move {
                        timer.await;
                        Event::Paced(lane)
                    }));
                }
            }
            if !syncing && ctx.state(|s| s.state.sync_due()) {
                let input = ctx.state_mut(|s| s.state.begin_sync());
                pending.push(Box::pin(sync(ctx, input)));
                syncing = true;
            }
            if !watching {
                pending.push(Box::pin(watch_signals(ctx)));
                watching = true;
            }

            if !resting && !syncing && ctx.state(|s| s.state.lanes_idle()) {
                let step = ctx.state(|s| s.state.next_step(hand_over, now));
                match step {
                    Step::Finish(status) => return finish(ctx, status).await,
                    Step::Record { status, from } => {
                        set_status(ctx, status, from).await?;
                        log(ctx, status.name());
                        pacing = WorkflowCancellationToken::new();
                        at_boundary(ctx);
                    }
                    Step::ContinueAsNew => {
                        log(ctx, "continuing as new");
                        let next = ctx.state(|s| s.state.carry());
                        ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
                    }
                    Step::Wait { until_ms } => {
                        wait(ctx, until_ms, now).await;
                        at_boundary(ctx);
                    }
                    Step::Rest(rest) => {
                        pending.push(Box::pin(take_rest(ctx, rest)));
                        resting = true;
                    }
                    Step::Claim => unreachable!("idle lanes remain but none was scheduled"),
                }
                hand_over = hand_over || history_full(ctx);
                continue;
            }

            // select_all polls in index order, so the order in which completions are taken
            // is a function of history alone: replay is deterministic.
            let (event, _, rest) = select_all(pending).await;
            pending = rest;
            match event {
                Event::Signalled => watching = false,
                Event::Rested => {
                    resting = false;
                    ctx.state_mut(|s| s.state.rest = None);
                    at_boundary(ctx);
                }
                Event::Paced(lane) => {
                    ctx.state_mut(|s| s.state.paced(lane));
                    at_boundary(ctx);
                }
                Event::Synced(input, result) => {
                    syncing = false;
                    let stored = result?;
                    ctx.state_mut(|s| s.state.end_sync(&input, stored));
                }
                Event::Page(lane, Ok(outcome)) => {
                    let now = now_ms(ctx);
                    let was_running = ctx.state(|s| !s.state.lifecycle().is_stopped());
                    if ctx.state_mut(|s| s.state.apply_page(lane, outcome, now)) {
                        publish(ctx);
                    }
                    if was_running && ctx.state(|s| s.state.lifecycle().is_held()) {
                        log(ctx, "paused itself");
                    }
                    if execution == PageExecution::Regular
                        || ctx.state(|s| s.state.spec.channel.is_external())
                    {
                        // A regular activity's result comes in a workflow task of its own.
                        at_boundary(ctx);
                    }
                }
                Event::Page(lane, Err(err)) => {
                    let kind = failure_kind(&err);
                    let message = failure_message(&err);
                    let now = now_ms(ctx);
                    let failed = ctx.state_mut(|s| s.state.page_failed(lane, kind, &message, now));
                    if !ctx.is_replaying() {
                        tracing::warn!(
                            campaign.id = %ctx.state(|s| s.state.key.clone()),
                            page.lane = lane,
                            failure = ?kind,
                            error = %message,
                            "page failed"
                        );
                    }
                    if failed {
                        log(ctx, "failed for good; waiting for a resume");
                    }
                }
            }
            hand_over = hand_over || history_full(ctx);
        }
    }

    #[signal(name = names::SIGNAL_PAUSE)]
    pub fn pause(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.state.on_signal(Intent::Pause, read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_RESUME)]
    pub fn resume(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.state.on_signal(Intent::Run, read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_CANCEL)]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.state.on_signal(Intent::Cancel, read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_RATE)]
    pub fn set_rate(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        let Some(p) = payload.payloads.first() else {
            return;
        };
        let encoding = p.metadata.get("encoding").map(Vec::as_slice);
        // A malformed change is ignored.
        if let Some(request) = RateRequest::from_payload(encoding, &p.data) {
            self.state.on_rate_signal(request.rate);
        }
    }

    /// Herald's front ends recorded a request in the row: read it. The payload is ignored.
    #[signal(name = names::SIGNAL_REQUESTS)]
    pub fn requests(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.state.on_requests_signal();
    }

    #[query(name = names::QUERY_PROGRESS)]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Progress {
        self.state.snapshot()
    }
}

/// Signals accept any payload: the SDK would fail every workflow task on a payload it cannot
/// decode into a typed argument, wedging the campaign, so the handlers take the raw payloads
/// and read them leniently.
fn read_signal(payload: &RawValue) -> SignalRequest {
    match payload.payloads.first() {
        Some(p) => {
            SignalRequest::from_payload(p.metadata.get("encoding").map(Vec::as_slice), &p.data)
        }
        None => SignalRequest::default(),
    }
}

/// Temporal's own cancellation (the web UI's "Request Cancellation"): a bare cancel.
fn cancel_requested(ctx: &WorkflowContext<CampaignWorkflow>) {
    if !ctx.state(|s| s.state.lifecycle() == herald_wire::Lifecycle::Cancelling) {
        ctx.state_mut(|s| s.state.on_signal(Intent::Cancel, SignalRequest::default()));
    }
}

/// The run has done its share: continue as new at the next quiet moment.
fn history_full(ctx: &WorkflowContext<CampaignWorkflow>) -> bool {
    let (pages, budget, events) = ctx.state(|s| {
        (
            s.state.pages_this_run,
            s.state.tuning.pages_per_run,
            s.state.tuning.history_events,
        )
    });
    plan::should_continue_as_new(
        pages,
        budget,
        ctx.history_length(),
        events,
        ctx.continue_as_new_suggested(),
    )
}

/// The application failure inside an activity's failure (the activity's own error, under
/// Temporal's wrapping), if there is one.
fn application_failure(err: &ActivityExecutionError) -> Option<(&str, &str)> {
    let mut failure = err.failure();
    while let Some(f) = failure {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info {
            return Some((info.r#type.as_str(), f.message.as_str()));
        }
        failure = f.cause.as_deref();
    }
    None
}

fn failure_kind(err: &ActivityExecutionError) -> FailureKind {
    if matches!(err, ActivityExecutionError::Serialization(_)) {
        return FailureKind::Permanent;
    }
    match application_failure(err).map(|(kind, _)| kind) {
        Some(names::FAILURE_WORKER_STOPPING) => FailureKind::WorkerStopping,
        Some(names::FAILURE_PERMANENT) => FailureKind::Permanent,
        // Transient errors, timeouts, and anything unforeseen: retrying is safe.
        _ => FailureKind::Transient,
    }
}

/// The failure's own message, without the SDK's wrapping.
fn failure_message(err: &ActivityExecutionError) -> String {
    match application_failure(err) {
        Some((_, message)) => message.to_owned(),
        None => err.to_string(),
    }
}

/// A workflow task has just begun (see [`CampaignState::note_boundary`]).
fn at_boundary(ctx: &WorkflowContext<CampaignWorkflow>) {
    let now = now_ms(ctx);
    ctx.state_mut(|s| s.state.note_boundary(now));
}

/// Workflow time, in Unix milliseconds: deterministic, from history.
fn now_ms(ctx: &WorkflowContext<CampaignWorkflow>) -> i64 {
    ctx.workflow_time()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

async fn run_page(
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
async fn sync(ctx: &WorkflowContext<CampaignWorkflow>, input: SyncRequestsInput) -> Event {
    let result = bookkeeping(ctx, || CampaignActivities::sync_requests, input.clone()).await;
    Event::Synced(input, result)
}

/// Rest between pages, once every page in flight has returned. Each way ends the current
/// workflow task: a yield by scheduling the do-nothing activity (fast), a handover or a
/// backoff on a durable timer.
async fn take_rest(ctx: &WorkflowContext<CampaignWorkflow>, rest: Rest) -> Event {
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
async fn watch_signals(ctx: &WorkflowContext<CampaignWorkflow>) -> Event {
    if signalled(ctx).await {
        cancel_requested(ctx);
    }
    Event::Signalled
}

/// Resolves when a signal comes, with whether it was Temporal's own cancellation. Once that
/// has come, only signals count: a wait on a cancelled token would resolve at once, for
/// ever, and starve everything else in the workflow task.
async fn signalled(ctx: &WorkflowContext<CampaignWorkflow>) -> bool {
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
async fn wait(ctx: &WorkflowContext<CampaignWorkflow>, until_ms: Option<i64>, now_ms: i64) {
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

/// Run a bookkeeping activity (register, set_status, sync_requests) as a local activity: no
/// round trip through the server's task queue before the first page or after the last. A
/// stopping worker hands it over, a transient failure is retried on a durable timer, and a
/// permanent one too for the grace period; after that it fails the workflow.
async fn bookkeeping<A: ActivityDefinition>(
    ctx: &WorkflowContext<CampaignWorkflow>,
    activity: impl Fn() -> A,
    input: A::Input,
) -> Result<A::Output, ActivityExecutionError>
where
    A::Input: Clone,
{
    let mut trouble = Trouble::default();
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
                    return Err(err);
                }
                plan::backoff(trouble.failures, options::BOOKKEEPING_BACKOFF_MAX)
            }
        };
        if !ctx.is_replaying() {
            tracing::warn!(error = %failure_message(&err), retry_in = ?wait, "bookkeeping failed");
        }
        ctx.timer(wait).await;
    }
}

/// Write the campaign's status (only from the statuses in `from`; any unfinished one when
/// empty) and follow what the row holds afterwards.
async fn set_status(
    ctx: &WorkflowContext<CampaignWorkflow>,
    status: CampaignStatus,
    from: Vec<CampaignStatus>,
) -> Result<(), ActivityExecutionError> {
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

async fn finish(
    ctx: &WorkflowContext<CampaignWorkflow>,
    status: CampaignStatus,
) -> WorkflowResult<Progress> {
    set_status(ctx, status, Vec::new()).await?;
    log(ctx, "finished");
    Ok(ctx.state(|s| s.state.snapshot()))
}

/// Progress for the web UI, which cannot run this SDK's queries: search attributes for the
/// workflow list, and the "current details" text.
fn publish(ctx: &WorkflowContext<CampaignWorkflow>) {
    let p = ctx.state(|s| s.state.snapshot());
    let status = p.status.name();
    ctx.upsert_search_attributes([
        SA_STATUS.value_set(status.to_owned()),
        SA_PROCESSED.value_set(p.sent + p.failed),
    ]);
    ctx.set_current_details(format!(
        "**{}** — {} of {} processed ({} sent, {} failed, {} pending), {} pages, run {}{}",
        status,
        p.sent + p.failed,
        p.total,
        p.sent,
        p.failed,
        p.pending,
        p.pages_done,
        p.run,
        p.reason
            .map(|r| format!(" — reason: {r}"))
            .unwrap_or_default()
    ));
}

fn log(ctx: &WorkflowContext<CampaignWorkflow>, event: &str) {
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
