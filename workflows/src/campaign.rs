//! The campaign workflow: the SDK loop around [`CampaignState`].
//!
//! One workflow per campaign (id `campaign-<key>`). It registers the campaign, then loops:
//! each lane free to work gets a page (or a pacing timer), a bare signal or a
//! `herald.requests` is squared with the ledger, and whenever no page is in flight the state
//! says what comes next ([`CampaignState::next_step`]): write a status, wait for a request or
//! the send time, rest, continue as new, or finish. Every wait comes back through that
//! question, so every wait continues as new once the run has done its share or its history
//! has grown. Decisions live in [`crate::state`]; here they become Temporal commands.

use std::{future::Future, pin::Pin};

use futures::future::select_all;
use herald_wire::{
    Applied, CampaignInput, Intent, LedgerRequests, Lifecycle, PageExecution, PageOutcome,
    Progress, RateRequest, RecordedRequests, RegisterInput, SignalRequest, SyncRequestsInput,
    names,
};
use temporalio_common::data_converters::RawValue;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};
use temporalio_workflow::{TimerOptions, WaitConditionOptions, WorkflowCancellationToken};

use crate::{
    activities::CampaignActivities,
    plan,
    state::{CampaignState, Step},
    steps::{
        Unkept, at_boundary, bookkeeping, bookkeeping_failed, failure_kind, failure_message,
        finish, log, now_ms, publish, run_page, set_status, sync, take_rest, wait, watch_signals,
    },
};

#[workflow]
pub struct CampaignWorkflow {
    pub(crate) state: CampaignState,
    /// The run is about to end (finish or continue as new): front ends waiting for their
    /// request to be taken are answered as the campaign stands.
    closing: bool,
    /// `herald.apply` updates not yet answered. A run ends only once there are none.
    answering: u32,
}

/// What the campaign loop waits on.
pub(crate) enum Event {
    /// A lane's page returned.
    Page(usize, Result<PageOutcome, ActivityExecutionError>),
    /// A lane's pacing wait ended, or was cut short.
    Paced(usize),
    /// A rest is over.
    Rested,
    /// The ledger's requests, after the bare ones were appended.
    Synced(SyncRequestsInput, Result<LedgerRequests, Unkept>),
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
            closing: false,
            answering: 0,
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
            let registered = match bookkeeping(ctx, || CampaignActivities::register, input).await {
                Ok(registered) => registered,
                Err(Unkept::HandOver) => return continue_as_new(ctx).await,
                Err(Unkept::Failed(err)) => return Err(err.into()),
            };
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
        let mut look_deferred = false;
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
                if pacing.is_cancelled() {
                    // Stopped and resumed while pages were in flight: a timer on the old
                    // token would fire at once, for ever.
                    pacing = WorkflowCancellationToken::new();
                }
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
            // A look that gave up for the history waits for the next run (it is carried).
            if !syncing && !look_deferred && ctx.state(|s| s.state.sync_due()) {
                let input = ctx.state_mut(|s| s.state.begin_sync());
                pending.push(Box::pin(sync(ctx, input)));
                syncing = true;
            }
            if !watching {
                pending.push(Box::pin(watch_signals(ctx)));
                watching = true;
            }

            if !resting && !syncing && ctx.state(|s| s.state.lanes_idle()) {
                // A look deferred to the next run: nothing is decided on a row not read.
                let step = if look_deferred && ctx.state(|s| s.state.sync_due()) {
                    Step::ContinueAsNew
                } else {
                    ctx.state(|s| s.state.next_step(hand_over, now))
                };
                match step {
                    Step::Finish(status) => match finish(ctx, status).await {
                        Ok(progress) => {
                            ctx.state_mut(|s| s.closing = true);
                            answered(ctx).await;
                            return Ok(progress);
                        }
                        Err(Unkept::HandOver) => return continue_as_new(ctx).await,
                        Err(Unkept::Failed(err)) => {
                            bookkeeping_failed(ctx, "finishing", &err).await
                        }
                    },
                    Step::Record { status, from } => {
                        match set_status(ctx, status, from).await {
                            Ok(()) => log(ctx, status.name()),
                            Err(Unkept::HandOver) => return continue_as_new(ctx).await,
                            Err(Unkept::Failed(err)) => {
                                let what = format!("recording status {}", status.name());
                                bookkeeping_failed(ctx, &what, &err).await;
                            }
                        }
                        pacing = WorkflowCancellationToken::new();
                        at_boundary(ctx);
                    }
                    Step::ContinueAsNew => return continue_as_new(ctx).await,
                    Step::Wait { until_ms } => {
                        wait(ctx, until_ms, now).await;
                        at_boundary(ctx);
                    }
                    Step::Rest(rest) => {
                        pending.push(Box::pin(take_rest(ctx, rest)));
                        resting = true;
                    }
                    Step::OpenWave => {
                        ctx.state_mut(|s| s.state.open_next_wave());
                        log(ctx, "wave opened");
                        publish(ctx);
                    }
                    Step::ParkWave { until_ms } => {
                        ctx.state_mut(|s| s.state.park_wave(until_ms));
                        log(ctx, "wave held by quiet hours");
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
                    match result {
                        Ok(stored) => ctx.state_mut(|s| s.state.end_sync(&input, stored)),
                        Err(Unkept::HandOver) => {
                            ctx.state_mut(|s| s.state.sync_failed());
                            look_deferred = true;
                            hand_over = true;
                        }
                        Err(Unkept::Failed(err)) => {
                            ctx.state_mut(|s| s.state.sync_failed());
                            bookkeeping_failed(ctx, "reading the requests", &err).await;
                        }
                    }
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

    /// Herald's front ends recorded a request in the row: read it, and answer once it is
    /// taken (see [`CampaignState::settled`]). The numbers in the input are what to wait for,
    /// checked against the row, never obeyed by themselves.
    #[update(name = names::UPDATE_REQUESTS)]
    pub async fn apply(
        ctx: &mut WorkflowContext<Self>,
        payload: RawValue,
    ) -> Result<Applied, Box<dyn std::error::Error + Send + Sync>> {
        let recorded = read_recorded(&payload)?;
        let ticket = ctx.state_mut(|s| {
            s.answering += 1;
            s.state.on_requests_update(recorded)
        });
        // Herald's cancel is a request like any other: Temporal's cancellation does not cut
        // the wait short (it becomes a cancel, which closes the run, which answers).
        let uncancelled = || {
            WaitConditionOptions::builder()
                .cancellation_token(WorkflowCancellationToken::new())
                .build()
        };
        let _ = ctx
            .wait_condition_with_options(
                move |s| s.closing || s.state.looked_since(ticket),
                uncancelled(),
            )
            .await;
        let answer = ctx.state(|s| {
            if s.state.looked_since(ticket) {
                s.state.check_recorded(recorded)
            } else {
                Ok(())
            }
        });
        if answer.is_ok() {
            let _ = ctx
                .wait_condition_with_options(|s| s.closing || s.state.settled(), uncancelled())
                .await;
        }
        ctx.state_mut(|s| {
            s.answering -= 1;
            // A run that ends before the request is settled (it hands over during an
            // outage) answers, but does not confirm.
            let taken =
                s.state.looked_since(ticket) && (s.state.settled() || s.state.status.is_terminal());
            answer
                .map(|()| Applied {
                    taken,
                    ..s.state.applied()
                })
                .map_err(|refused| refused.into())
        })
    }

    /// A payload that is not two numbers is refused before the update is accepted: it
    /// leaves nothing in the history.
    #[update_validator(apply)]
    pub fn validate_apply(
        &self,
        _ctx: &WorkflowContextView,
        payload: &RawValue,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        read_recorded(payload).map(|_| ())
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

/// `herald.apply`'s payload, read leniently for the same reason as a signal's.
fn read_recorded(
    payload: &RawValue,
) -> Result<RecordedRequests, Box<dyn std::error::Error + Send + Sync>> {
    let p = payload
        .payloads
        .first()
        .ok_or("herald.apply takes the numbers of the requests recorded in the row")?;
    RecordedRequests::from_payload(p.metadata.get("encoding").map(Vec::as_slice), &p.data)
        .map_err(Into::into)
}

/// Temporal's own cancellation (the web UI's "Request Cancellation"): a bare cancel.
pub(crate) fn cancel_requested(ctx: &WorkflowContext<CampaignWorkflow>) {
    if !ctx.state(|s| s.state.lifecycle() == Lifecycle::Cancelling) {
        ctx.state_mut(|s| s.state.on_signal(Intent::Cancel, SignalRequest::default()));
    }
}

/// Wait until every front end waiting on `herald.apply` has its answer (given at once while
/// the run is closing), so that none is left unanswered when the run ends.
async fn answered(ctx: &WorkflowContext<CampaignWorkflow>) {
    let options = WaitConditionOptions::builder()
        .cancellation_token(WorkflowCancellationToken::new())
        .build();
    let _ = ctx
        .wait_condition_with_options(|s| s.answering == 0, options)
        .await;
}

/// Hand over to a fresh run with the carried state, once every front end waiting on
/// `herald.apply` has its answer.
async fn continue_as_new(ctx: &WorkflowContext<CampaignWorkflow>) -> WorkflowResult<Progress> {
    log(ctx, "continuing as new");
    ctx.state_mut(|s| s.closing = true);
    answered(ctx).await;
    let next = ctx.state(|s| s.state.carry());
    match ctx.continue_as_new(next, ContinueAsNewOptions::default()) {
        Err(termination) => Err(termination.into()),
    }
}

/// The run has done its share: continue as new at the next quiet moment.
pub(crate) fn history_full(ctx: &WorkflowContext<CampaignWorkflow>) -> bool {
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
