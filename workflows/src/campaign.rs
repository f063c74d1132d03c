//! The campaign workflow.
//!
//! One workflow per campaign (id `campaign-<key>`). It registers the campaign, waits for
//! `send_at`, then keeps one page in flight per lane until every lane is exhausted. Between
//! pages it obeys the `pause`, `resume` and `cancel` signals; a lane's cursor moves only when
//! a page activity has returned, i.e. after the page is committed. Every `pages_per_run`
//! pages it drains the lanes and continues as new, carrying cursor, counters and any
//! pause or cancel that arrived.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use futures::future::select_all;
use herald_wire::{
    CampaignInput, CampaignKey, CampaignSpec, CampaignStatus, Carried, LaneCursor, PageExecution,
    PageInput, PageOutcome, Progress, RegisterInput, Registered, SetStatusInput, SignalRequest,
    Tuning, names,
};
use temporalio_common::{
    ActivityDefinition, data_converters::RawValue, search_attributes::SearchAttributeKey,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};
use temporalio_workflow::workflows::select;

use crate::{activities::CampaignActivities, options, plan};

const SA_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword(names::SA_STATUS);
const SA_PROCESSED: SearchAttributeKey<i64> = SearchAttributeKey::int(names::SA_PROCESSED);

/// Publish progress to the web UI (search attributes) every this many pages. Each upsert is
/// one history event, so this is a trade between freshness in the UI and history size.
const PUBLISH_EVERY_PAGES: u64 = 25;

#[workflow]
pub struct CampaignWorkflow {
    key: CampaignKey,
    spec: CampaignSpec,
    tuning: Tuning,
    /// The campaign's row id; 0 until the register activity has returned.
    campaign_id: i64,
    total: i64,
    lanes: Vec<LaneCursor>,
    /// Which lanes have a page in flight (not carried: a run ends with none in flight).
    busy: Vec<bool>,
    pages_done: u64,
    pages_this_run: u32,
    status: CampaignStatus,
    paused: bool,
    cancel_requested: bool,
    reason: Option<String>,
    /// A signal changed `reason` since it was last written to the database.
    reason_changed: bool,
    run: u32,
    started: bool,
}

type PageFuture<'a> =
    Pin<Box<dyn Future<Output = (usize, Result<PageOutcome, ActivityExecutionError>)> + 'a>>;

#[workflow_methods]
impl CampaignWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: CampaignInput) -> Self {
        let mut wf = Self {
            key: input.key,
            spec: input.spec,
            tuning: input.tuning,
            campaign_id: 0,
            total: 0,
            lanes: Vec::new(),
            busy: Vec::new(),
            pages_done: 0,
            pages_this_run: 0,
            status: CampaignStatus::NotStarted,
            paused: false,
            cancel_requested: false,
            reason: None,
            reason_changed: false,
            run: 1,
            started: false,
        };
        if let Some(c) = input.carried {
            wf.campaign_id = c.campaign_id;
            wf.total = c.total;
            wf.busy = vec![false; c.lanes.len()];
            wf.lanes = c.lanes;
            wf.pages_done = c.pages_done;
            wf.paused = c.paused;
            wf.cancel_requested = c.cancel_requested;
            wf.reason = c.reason;
            wf.run = c.run + 1;
            wf.started = c.started;
            wf.status = if !c.started {
                CampaignStatus::NotStarted
            } else if c.paused {
                CampaignStatus::Paused
            } else {
                CampaignStatus::InProgress
            };
        }
        wf
    }

    #[run(name = names::CAMPAIGN_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Progress> {
        let ctx: &WorkflowContext<Self> = ctx;
        if ctx.state(|s| s.campaign_id == 0) {
            let input = ctx.state(|s| RegisterInput {
                key: s.key.clone(),
                spec: s.spec.clone(),
            });
            let registered = bookkeeping(ctx, CampaignActivities::register, input).await?;
            ctx.state_mut(|s| s.apply_registration(&registered));
            log(ctx, "registered");
        }
        publish(ctx);

        if !ctx.state(|s| s.started) {
            wait_for_send_at(ctx).await;
        }

        // Local activities run inside one long workflow task, and signals reach the workflow
        // only when a task ends; the SDK ends it on its own, without stopping the pages, at
        // 80% of the task timeout (options::TASK_TIMEOUT).
        let mut in_flight: Vec<PageFuture<'_>> = Vec::new();
        let mut draining = false;
        loop {
            if ctx.cancellation_token().is_cancelled() {
                ctx.state_mut(|s| s.cancel_requested = true);
            }
            let stopping = draining || ctx.state(|s| s.paused || s.cancel_requested || !s.started);
            if !stopping {
                let execution = ctx.state(|s| s.spec.execution);
                for (lane, input) in ctx.state_mut(|s| s.claim_idle_lanes()) {
                    in_flight.push(Box::pin(run_page(ctx, lane, input, execution)));
                }
            }

            if in_flight.is_empty() {
                let (cancel, paused, started, finished) = ctx.state(|s| {
                    (
                        s.cancel_requested,
                        s.paused,
                        s.started,
                        s.lanes.iter().all(|l| l.done),
                    )
                });
                if cancel {
                    return finish(ctx, CampaignStatus::Cancelled).await;
                }
                if paused {
                    hold_while_paused(ctx).await?;
                    continue;
                }
                if !started {
                    start(ctx).await?;
                    continue;
                }
                if finished {
                    return finish(ctx, CampaignStatus::Completed).await;
                }
                if draining {
                    log(ctx, "continuing as new");
                    let next = ctx.state(|s| s.carry());
                    ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
                }
                unreachable!("idle lanes remain but none was scheduled");
            }

            // select_all polls in index order, so the order in which completions are taken
            // is a function of history alone: replay is deterministic.
            let ((lane, result), _, rest) = select_all(in_flight).await;
            in_flight = rest;
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(err) => {
                    // Pages retry forever on transient errors; reaching here means a
                    // non-retryable failure (the campaign row is gone, bad input). Record it.
                    ctx.state_mut(|s| s.reason = Some(format!("page failed: {err}")));
                    let _ = finish(ctx, CampaignStatus::Failed).await;
                    return Err(err.into());
                }
            };
            let published = ctx.state_mut(|s| s.apply_page(lane, outcome));
            if published {
                publish(ctx);
            }
            let (pages, budget) = ctx.state(|s| (s.pages_this_run, s.tuning.pages_per_run));
            if !draining
                && plan::should_continue_as_new(
                    pages,
                    budget,
                    ctx.history_length(),
                    ctx.continue_as_new_suggested(),
                )
            {
                draining = true;
            }
        }
    }

    #[signal(name = names::SIGNAL_PAUSE)]
    pub fn pause(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        if self.status.is_terminal() || self.cancel_requested {
            return;
        }
        self.paused = true;
        self.set_reason(read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_RESUME)]
    pub fn resume(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        if self.status.is_terminal() || self.cancel_requested {
            return;
        }
        self.paused = false;
        self.set_reason(read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_CANCEL)]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        if self.status.is_terminal() {
            return;
        }
        self.cancel_requested = true;
        self.set_reason(read_signal(&payload));
    }

    #[query(name = names::QUERY_PROGRESS)]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Progress {
        self.snapshot()
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

impl CampaignWorkflow {
    fn set_reason(&mut self, request: SignalRequest) {
        self.reason = request.reason;
        self.reason_changed = true;
    }

    fn apply_registration(&mut self, r: &Registered) {
        self.campaign_id = r.campaign_id;
        self.total = r.total;
        self.lanes = plan::split_lanes(
            r.min_id,
            r.max_id,
            r.total,
            self.spec.page_size.get(),
            self.spec.lanes.get(),
        );
        self.busy = vec![false; self.lanes.len()];
        self.observe_stored_status(r.status);
        if r.status == CampaignStatus::InProgress {
            self.started = true;
            self.status = CampaignStatus::InProgress;
        }
    }

    /// The database may know something the workflow does not yet: an operator's CLI writes
    /// the status first (a fence the page activities obey) and signals second.
    fn observe_stored_status(&mut self, stored: CampaignStatus) {
        match stored {
            CampaignStatus::Paused => self.paused = true,
            s if s.is_terminal() => self.cancel_requested = true,
            _ => {}
        }
    }

    fn claim_idle_lanes(&mut self) -> Vec<(usize, PageInput)> {
        let mut out = Vec::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            if lane.done || self.busy[i] {
                continue;
            }
            self.busy[i] = true;
            out.push((
                i,
                PageInput {
                    campaign_id: self.campaign_id,
                    lane: i as u32,
                    after: lane.after,
                    until: lane.until,
                    limit: self.spec.page_size.get(),
                    segment: self.spec.segment.clone(),
                    channel: self.spec.channel,
                    min_millis: self
                        .spec
                        .rate
                        .map_or(0, |r| r.page_millis(self.spec.page_size, self.lanes.len())),
                },
            ));
        }
        out
    }

    /// Apply a committed page. Returns whether it is time to publish progress to the UI.
    fn apply_page(&mut self, lane: usize, outcome: PageOutcome) -> bool {
        self.busy[lane] = false;
        match outcome {
            PageOutcome::Written {
                last,
                recipients,
                sent,
                failed,
            } => {
                plan::advance(
                    &mut self.lanes[lane],
                    last,
                    recipients,
                    self.spec.page_size.get(),
                    sent,
                    failed,
                );
                self.pages_done += 1;
                self.pages_this_run += 1;
                self.pages_done.is_multiple_of(PUBLISH_EVERY_PAGES)
            }
            PageOutcome::Halted { status } => {
                self.observe_stored_status(status);
                if !status.is_terminal() && status != CampaignStatus::Paused {
                    // Not running and not paused (someone reset the row?): stop and wait
                    // for an operator rather than write anything.
                    self.paused = true;
                }
                false
            }
        }
    }

    fn carry(&self) -> CampaignInput {
        CampaignInput {
            key: self.key.clone(),
            spec: self.spec.clone(),
            tuning: self.tuning.clone(),
            carried: Some(Carried {
                campaign_id: self.campaign_id,
                total: self.total,
                lanes: self.lanes.clone(),
                pages_done: self.pages_done,
                paused: self.paused,
                reason: self.reason.clone(),
                cancel_requested: self.cancel_requested,
                run: self.run,
                started: self.started,
            }),
        }
    }

    fn snapshot(&self) -> Progress {
        let (sent, failed) = plan::totals(&self.lanes);
        Progress {
            key: self.key.to_string(),
            status: self.status,
            total: self.total,
            sent,
            failed,
            pending: (self.total - sent - failed).max(0),
            pages_done: self.pages_done,
            lanes_active: self.lanes.iter().filter(|l| !l.done).count() as u32,
            cursor: self.lanes.iter().map(|l| l.after).collect(),
            reason: self.reason.clone(),
            run: self.run,
        }
    }
}

async fn run_page(
    ctx: &WorkflowContext<CampaignWorkflow>,
    lane: usize,
    input: PageInput,
    execution: PageExecution,
) -> (usize, Result<PageOutcome, ActivityExecutionError>) {
    let result = match execution {
        PageExecution::Regular => {
            ctx.execute_activity(CampaignActivities::page, input, options::page())
                .await
        }
        PageExecution::Local => {
            ctx.execute_local_activity(CampaignActivities::page, input, options::page_local())
                .await
        }
    };
    (lane, result)
}

/// Wait for the scheduled send time with a durable timer; a cancel ends the wait early.
async fn wait_for_send_at(ctx: &WorkflowContext<CampaignWorkflow>) {
    let Some(at) = ctx.state(|s| s.spec.send_at) else {
        return;
    };
    let Some(now) = ctx.workflow_time().map(DateTime::<Utc>::from) else {
        return;
    };
    let Ok(wait) = (at - now).to_std() else {
        return; // in the past: send now
    };
    if wait.is_zero() {
        return;
    }
    log(ctx, "waiting for send_at");
    select! {
        _ = ctx.timer(wait) => {}
        _ = ctx.wait_condition(|s| s.cancel_requested) => {}
    };
}

/// Run a bookkeeping activity (register, set_status) as a local activity: no round trip
/// through the server's task queue before the first page or after the last.
async fn bookkeeping<A: ActivityDefinition>(
    ctx: &WorkflowContext<CampaignWorkflow>,
    activity: A,
    input: A::Input,
) -> Result<A::Output, ActivityExecutionError> {
    ctx.execute_local_activity(activity, input, options::bookkeeping())
        .await
}

async fn set_status(
    ctx: &WorkflowContext<CampaignWorkflow>,
    status: CampaignStatus,
    from: Vec<CampaignStatus>,
) -> Result<CampaignStatus, ActivityExecutionError> {
    let input = ctx.state_mut(|s| {
        s.reason_changed = false;
        SetStatusInput {
            campaign_id: s.campaign_id,
            status,
            reason: s.reason.clone(),
            from,
        }
    });
    let stored = bookkeeping(ctx, CampaignActivities::set_status, input).await?;
    ctx.state_mut(|s| {
        s.status = stored;
        if stored != status {
            s.observe_stored_status(stored);
        }
    });
    publish(ctx);
    Ok(stored)
}

/// First page of a campaign whose send time has come: mark it in progress, unless an
/// operator paused or cancelled it while it was scheduled.
async fn start(ctx: &WorkflowContext<CampaignWorkflow>) -> WorkflowResult<()> {
    let stored = set_status(
        ctx,
        CampaignStatus::InProgress,
        vec![CampaignStatus::NotStarted],
    )
    .await?;
    if stored == CampaignStatus::InProgress {
        ctx.state_mut(|s| s.started = true);
        log(ctx, "started");
    }
    Ok(())
}

/// No page is in flight and the campaign is paused: record it, then wait for a resume or a
/// cancel. Pausing costs nothing while it lasts: no timers, no history growth.
async fn hold_while_paused(ctx: &WorkflowContext<CampaignWorkflow>) -> WorkflowResult<()> {
    use CampaignStatus::*;
    set_status(ctx, Paused, vec![NotStarted, InProgress, Paused]).await?;
    log(ctx, "paused");
    loop {
        if ctx
            .wait_condition(|s| !s.paused || s.cancel_requested || s.reason_changed)
            .await
            .is_err()
        {
            // Temporal's own cancellation (e.g. the web UI's "Request Cancellation").
            ctx.state_mut(|s| s.cancel_requested = true);
        }
        if ctx.state(|s| s.paused && !s.cancel_requested) {
            // Paused again with a new reason: record it, keep waiting.
            set_status(ctx, Paused, vec![Paused]).await?;
            continue;
        }
        break;
    }
    if ctx.state(|s| s.cancel_requested) {
        return Ok(());
    }
    let target = if ctx.state(|s| s.started) {
        InProgress
    } else {
        NotStarted
    };
    let stored = set_status(ctx, target, vec![Paused, target]).await?;
    if stored == target {
        log(ctx, "resumed");
    }
    Ok(())
}

async fn finish(
    ctx: &WorkflowContext<CampaignWorkflow>,
    status: CampaignStatus,
) -> WorkflowResult<Progress> {
    set_status(ctx, status, Vec::new()).await?;
    log(ctx, "finished");
    Ok(ctx.state(|s| s.snapshot()))
}

/// Progress for the web UI, which cannot run this SDK's queries: search attributes for the
/// workflow list, and the "current details" text.
fn publish(ctx: &WorkflowContext<CampaignWorkflow>) {
    let p = ctx.state(|s| s.snapshot());
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
    let p = ctx.state(|s| s.snapshot());
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
