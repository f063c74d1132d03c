//! The campaign workflow.
//!
//! One workflow per campaign (id `campaign-<key>`). It registers the campaign, waits for
//! `send_at`, then keeps one page in flight per lane until every lane is exhausted. A lane's
//! cursor moves only when a page activity has returned, i.e. after the page is committed.
//!
//! Between pages it obeys the `pause`, `resume` and `cancel` signals. It paces a campaign
//! with a rate by a schedule of turns per lane (a short wait inside the next page, a longer
//! one on a durable timer), ends its workflow task after a little page work so that signals
//! get in, and backs off on durable timers when pages fail. Every `pages_per_run` pages (or when history grows) it drains
//! the lanes and continues as new, carrying cursor, counters and any pause, failure or
//! cancel that arrived.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};
use futures::future::select_all;
use herald_wire::{
    CampaignInput, CampaignKey, CampaignSpec, CampaignStatus, Carried, Deliveries, Intent,
    LaneCursor, PageExecution, PageInput, PageOutcome, Progress, Rate, RateRequest,
    RecordRequestInput, RegisterInput, Registered, Requested, SetStatusInput, SignalRequest,
    Trouble, Tuning, names,
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
use temporalio_workflow::{TimerOptions, WorkflowCancellationToken, workflows::select};

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
    /// Which lanes have a page in flight, and which wait out their pace (neither is
    /// carried: a run ends with neither).
    busy: Vec<bool>,
    pacing: Vec<bool>,
    /// Workflow time (Unix milliseconds) of each lane's next turn, for a paced campaign.
    next_turn_ms: Vec<i64>,
    /// The page size of each lane's page in flight.
    page_limit: Vec<u32>,
    pages_done: u64,
    pages_this_run: u32,
    status: CampaignStatus,
    paused: bool,
    /// Stopped on an error that retrying could not fix, until a resume.
    failed: bool,
    cancel_requested: bool,
    reason: Option<String>,
    /// A signal changed `reason` since it was last written to the database.
    reason_changed: bool,
    run: u32,
    started: bool,
    trouble: Trouble,
    /// Why the lanes rest before the next page, if they do.
    rest: Option<Rest>,
    /// Workflow time (Unix milliseconds) when a workflow task last ended for sure: a timer
    /// fired, or the campaign held still. Local activities move workflow time as they
    /// complete, so the time since says how long the current task has held signals back.
    last_boundary_ms: i64,
    /// The newest operator request applied (see [`CampaignWorkflow::on_request`]).
    requested: Requested,
    /// A request that came as a bare signal, to be recorded in the campaign's row.
    unrecorded: Option<Intent>,
    /// The ledger's totals, once the campaign has finished: what it reports.
    ledger: Option<(i64, i64)>,
    /// The tries of the latest pages of an external campaign, for its auto-pause.
    recent: Vec<Deliveries>,
    /// The speed limit now (`herald rate` changes it), the number of the newest change
    /// applied, and whether one came since the lanes were last paced.
    rate: Option<Rate>,
    rate_seq: i64,
    rate_changed: bool,
}

/// A pause between pages, taken once every page in flight has returned. Each one ends the
/// current workflow task (see [`take_rest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rest {
    /// Enough page work in this task: let signals in.
    Yield,
    /// A worker refused a page because it is stopping: let another worker take over.
    Handover,
    /// Pages failed: wait before trying again.
    Backoff,
}

/// What the campaign loop waits on.
enum Event {
    /// A lane's page returned.
    Page(usize, Result<PageOutcome, ActivityExecutionError>),
    /// A lane's pacing wait ended, or was cut short by a pause or cancel.
    Paced(usize),
    /// A rest is over.
    Rested,
    /// A signal (or Temporal's cancellation) asked the campaign to stop.
    Stop,
}

type Pending<'a> = Pin<Box<dyn Future<Output = Event> + 'a>>;

/// How a failed activity is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailureKind {
    /// The worker refused it before doing anything: hand over.
    WorkerStopping,
    /// Retrying cannot fix it: retry for the grace period, then mark the campaign failed.
    Permanent,
    /// It may go away: back off and retry.
    Transient,
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

#[workflow_methods]
impl CampaignWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: CampaignInput) -> Self {
        let rate = input.spec.rate;
        let mut wf = Self {
            key: input.key,
            spec: input.spec,
            tuning: input.tuning,
            campaign_id: 0,
            total: 0,
            lanes: Vec::new(),
            busy: Vec::new(),
            pacing: Vec::new(),
            next_turn_ms: Vec::new(),
            page_limit: Vec::new(),
            pages_done: 0,
            pages_this_run: 0,
            status: CampaignStatus::NotStarted,
            paused: false,
            failed: false,
            cancel_requested: false,
            reason: None,
            reason_changed: false,
            run: 1,
            started: false,
            trouble: Trouble::default(),
            rest: None,
            last_boundary_ms: 0,
            requested: Requested::default(),
            unrecorded: None,
            ledger: None,
            recent: Vec::new(),
            rate,
            rate_seq: 0,
            rate_changed: false,
        };
        if let Some(c) = input.carried {
            wf.campaign_id = c.campaign_id;
            wf.total = c.total;
            wf.lanes = c.lanes;
            wf.reset_lane_state();
            wf.pages_done = c.pages_done;
            wf.paused = c.paused;
            wf.failed = c.failed;
            wf.cancel_requested = c.cancel_requested;
            wf.reason = c.reason;
            wf.run = c.run + 1;
            wf.started = c.started;
            wf.trouble = c.trouble;
            wf.requested = c.requested;
            wf.unrecorded = c.unrecorded;
            wf.recent = c.recent;
            wf.rate = c.rate;
            wf.rate_seq = c.rate_seq;
            if c.trouble.failures > 0 {
                wf.rest = Some(Rest::Backoff);
            }
            wf.status = if !c.started {
                CampaignStatus::NotStarted
            } else if c.failed {
                CampaignStatus::Failed
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
            let registered = bookkeeping(ctx, || CampaignActivities::register, input).await?;
            ctx.state_mut(|s| s.apply_registration(&registered));
            log(ctx, "registered");
        }
        publish(ctx);

        if !ctx.state(|s| s.started) {
            wait_for_send_at(ctx).await?;
        }

        at_boundary(ctx);
        let execution = ctx.state(|s| s.spec.execution);
        let mut pending: Vec<Pending<'_>> = Vec::new();
        // Cancels the lanes' pacing timers when the campaign stops; replaced after a resume.
        let mut pacing = WorkflowCancellationToken::new();
        let mut watching = false;
        let mut resting = false;
        let mut draining = false;
        loop {
            if ctx.cancellation_token().is_cancelled() {
                // Temporal's own cancellation: a bare cancel.
                ctx.state_mut(|s| s.on_request(Intent::Cancel, SignalRequest::default()));
            }
            let now = now_ms(ctx);
            ctx.state_mut(|s| s.note_time(now));
            if ctx.state(|s| s.rate_changed) {
                // A new pace: cut the lanes' waits short and restart their schedules now.
                ctx.state_mut(|s| {
                    s.rate_changed = false;
                    s.next_turn_ms.fill(now);
                });
                log(ctx, "rate changed");
                if !pacing.is_cancelled() {
                    pacing.cancel();
                }
                pacing = WorkflowCancellationToken::new();
            }
            let halted = draining || ctx.state(|s| s.halted());
            if halted {
                if ctx.state(|s| s.stopped()) && !pacing.is_cancelled() {
                    pacing.cancel();
                }
            } else if !resting && ctx.state(|s| s.rest.is_none()) {
                let (pages, waits) = ctx.state_mut(|s| s.claim_idle_lanes(now));
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
            if !watching && !ctx.state(|s| s.stopped()) {
                pending.push(Box::pin(watch_for_stop(ctx)));
                watching = true;
            }

            if !resting && ctx.state(|s| s.lanes_idle()) {
                if ctx.state(|s| s.unrecorded.is_some()) {
                    record_request(ctx).await?;
                    continue;
                }
                let (cancel, held, started, finished) = ctx.state(|s| {
                    (
                        s.cancel_requested,
                        s.held(),
                        s.started,
                        s.lanes.iter().all(|l| l.done),
                    )
                });
                if cancel {
                    return finish(ctx, CampaignStatus::Cancelled).await;
                }
                // Every recipient has had their page: a pause that came after the last one
                // has nothing left to hold back.
                if started && finished {
                    return finish(ctx, CampaignStatus::Completed).await;
                }
                if held {
                    hold(ctx).await?;
                    pacing = WorkflowCancellationToken::new();
                    at_boundary(ctx);
                    continue;
                }
                if !started {
                    start(ctx).await?;
                    at_boundary(ctx);
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
                let Some(rest) = ctx.state(|s| s.rest) else {
                    unreachable!("idle lanes remain but none was scheduled");
                };
                pending.push(Box::pin(take_rest(ctx, rest)));
                resting = true;
                continue;
            }

            // select_all polls in index order, so the order in which completions are taken
            // is a function of history alone: replay is deterministic.
            let (event, _, rest) = select_all(pending).await;
            pending = rest;
            match event {
                Event::Stop => watching = false,
                Event::Rested => {
                    resting = false;
                    ctx.state_mut(|s| s.rest = None);
                    at_boundary(ctx);
                }
                Event::Paced(lane) => {
                    ctx.state_mut(|s| s.pacing[lane] = false);
                    at_boundary(ctx);
                }
                Event::Page(lane, Ok(outcome)) => {
                    let now = now_ms(ctx);
                    let was_paused = ctx.state(|s| s.paused);
                    if ctx.state_mut(|s| s.apply_page(lane, outcome, now)) {
                        publish(ctx);
                    }
                    if !was_paused && ctx.state(|s| s.auto_paused()) {
                        log(ctx, "auto-paused");
                    }
                    if execution == PageExecution::Regular
                        || ctx.state(|s| s.spec.channel.is_external())
                    {
                        // A regular activity's result comes in a workflow task of its own.
                        at_boundary(ctx);
                    }
                }
                Event::Page(lane, Err(err)) => {
                    let kind = failure_kind(&err);
                    let message = failure_message(&err);
                    let now = now_ms(ctx);
                    let failed = ctx.state_mut(|s| s.page_failed(lane, kind, &message, now));
                    if !ctx.is_replaying() {
                        tracing::warn!(
                            campaign.id = %ctx.state(|s| s.key.clone()),
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
        self.on_request(Intent::Pause, read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_RESUME)]
    pub fn resume(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.on_request(Intent::Run, read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_CANCEL)]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.on_request(Intent::Cancel, read_signal(&payload));
    }

    #[signal(name = names::SIGNAL_RATE)]
    pub fn set_rate(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        let Some(p) = payload.payloads.first() else {
            return;
        };
        let encoding = p.metadata.get("encoding").map(Vec::as_slice);
        let Some(request) = RateRequest::from_payload(encoding, &p.data) else {
            return; // a malformed change is ignored
        };
        if let Some(seq) = request.seq {
            if seq <= self.rate_seq {
                return; // a newer change came first
            }
            self.rate_seq = seq;
        }
        if self.status.is_terminal() || request.rate == self.rate {
            return;
        }
        self.rate = request.rate;
        self.rate_changed = true;
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
    /// An operator's pause, resume or cancel. A request from Herald's CLI carries the number
    /// it was recorded under in the campaign's row: one older than the newest applied is
    /// stale (a newer request overtook it) and changes nothing, so whatever order signals,
    /// page results and status writes land in, the campaign ends as the newest request
    /// asked. A bare signal (another service, the web UI) has no number: it is applied, and
    /// recorded in the row before the campaign moves (see [`record_request`]), so that the
    /// page statement obeys it too. A cancel is final.
    fn on_request(&mut self, intent: Intent, request: SignalRequest) {
        if self.status.is_terminal() || self.cancel_requested {
            return;
        }
        // A failed campaign is already still; its reason stays the error's.
        if intent == Intent::Pause && self.failed {
            return;
        }
        match request.seq {
            Some(seq) if seq < self.requested.seq => return,
            Some(seq) => {
                self.requested = Requested {
                    intent,
                    seq,
                    reason: request.reason.clone(),
                };
                // Recorded after whatever bare request came before it: this one is newer.
                self.unrecorded = None;
            }
            None => self.unrecorded = Some(intent),
        }
        self.apply_intent(intent);
        self.set_reason(request);
    }

    fn apply_intent(&mut self, intent: Intent) {
        match intent {
            Intent::Pause => self.paused = !self.failed,
            Intent::Run => {
                self.paused = false;
                if self.failed {
                    // The operator fixed the cause: try again from the cursor, with a fresh
                    // grace.
                    self.failed = false;
                    self.trouble = Trouble::default();
                    self.rest = None;
                }
            }
            Intent::Cancel => self.cancel_requested = true,
        }
    }

    /// The campaign's row holds `stored` as its newest request (read by a page, or returned
    /// when a bare request was recorded). Newer than any applied: its signal is still on the
    /// way, so follow it now, unless a bare request came since (that one is newer still, and
    /// is recorded over it next).
    fn observe_request(&mut self, stored: Requested) {
        if stored.seq <= self.requested.seq {
            return;
        }
        let (intent, reason) = (stored.intent, stored.reason.clone());
        self.requested = stored;
        if self.unrecorded.is_none() && !self.status.is_terminal() && !self.cancel_requested {
            self.apply_intent(intent);
            self.set_reason(SignalRequest::numbered(self.requested.seq, reason));
        }
    }

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
        self.reset_lane_state();
        self.observe_stored_status(r.status);
        self.observe_request(r.requested.clone());
        if r.status == CampaignStatus::InProgress {
            self.started = true;
            self.status = CampaignStatus::InProgress;
        }
    }

    /// The row's status is not what the workflow wrote: a status written by hand.
    fn observe_stored_status(&mut self, stored: CampaignStatus) {
        match stored {
            CampaignStatus::Paused => self.paused = true,
            CampaignStatus::Failed => self.failed = true,
            s if s.is_terminal() => self.cancel_requested = true,
            _ => {}
        }
    }

    /// Lane state that lives only within a run: nothing in flight, nothing waiting.
    fn reset_lane_state(&mut self) {
        self.busy = vec![false; self.lanes.len()];
        self.pacing = vec![false; self.lanes.len()];
        self.next_turn_ms = vec![0; self.lanes.len()];
        self.page_limit = vec![0; self.lanes.len()];
    }

    /// Paused or failed: the campaign waits for an operator.
    fn held(&self) -> bool {
        self.paused || self.failed
    }

    /// The status that records a hold.
    fn held_status(&self) -> CampaignStatus {
        if self.failed {
            CampaignStatus::Failed
        } else {
            CampaignStatus::Paused
        }
    }

    /// An operator (or an error) wants the campaign still: pacing waits are cut short.
    fn stopped(&self) -> bool {
        self.held() || self.cancel_requested
    }

    /// No new page may start.
    fn halted(&self) -> bool {
        self.stopped() || !self.started
    }

    fn lanes_idle(&self) -> bool {
        !self.busy.iter().chain(&self.pacing).any(|b| *b)
    }

    fn pace(&self) -> plan::Pace {
        plan::pace(
            self.rate.map(|r| r.get()),
            self.spec.page_size.get(),
            self.lanes.len(),
        )
    }

    /// A workflow task has just begun: signals sent before it are in, and a yield that is
    /// due but not yet taken is moot.
    fn note_boundary(&mut self, now_ms: i64) {
        self.last_boundary_ms = now_ms;
        if self.rest == Some(Rest::Yield) {
            self.rest = None;
        }
    }

    /// Rest briefly once pages have held the current workflow task for [`options::YIELD_AFTER`].
    fn note_time(&mut self, now_ms: i64) {
        let held_for = now_ms.saturating_sub(self.last_boundary_ms);
        if self.rest.is_none() && held_for >= options::YIELD_AFTER.as_millis() as i64 {
            self.rest = Some(Rest::Yield);
        }
    }

    /// Pages for the lanes whose turn it is (or comes within
    /// [`options::IN_PAGE_DELAY_MAX`]: the page waits first), and a pacing wait for each lane
    /// whose turn is further off. Turns are kept on a schedule, so a late timer or a slow
    /// page is made up for at the next turn instead of slowing the campaign.
    fn claim_idle_lanes(
        &mut self,
        now_ms: i64,
    ) -> (Vec<(usize, PageInput)>, Vec<(usize, Duration)>) {
        let pace = self.pace();
        let interval_ms = pace.interval.as_millis() as i64;
        let mut out = Vec::new();
        let mut waits = Vec::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            if lane.done || self.busy[i] || self.pacing[i] {
                continue;
            }
            let delay_ms = self.next_turn_ms[i].saturating_sub(now_ms).max(0);
            if delay_ms > options::IN_PAGE_DELAY_MAX.as_millis() as i64 {
                self.pacing[i] = true;
                waits.push((i, Duration::from_millis(delay_ms as u64)));
                continue;
            }
            // A turn taken a little late (a yield, a slow page) is made up for; after a pause
            // or an outage the schedule restarts from now instead of rushing to catch up.
            let behind = now_ms - self.next_turn_ms[i];
            let base = if behind > interval_ms.max(1_000) {
                now_ms
            } else {
                self.next_turn_ms[i]
            };
            self.next_turn_ms[i] = base + interval_ms;
            self.busy[i] = true;
            self.page_limit[i] = pace.limit;
            out.push((
                i,
                PageInput {
                    campaign_id: self.campaign_id,
                    lane: i as u32,
                    after: lane.after,
                    until: lane.until,
                    limit: pace.limit,
                    segment: self.spec.segment.clone(),
                    channel: self.spec.channel,
                    delay_millis: delay_ms as u32,
                },
            ));
        }
        (out, waits)
    }

    /// Apply a committed page. Returns whether it is time to publish progress to the UI.
    fn apply_page(&mut self, lane: usize, outcome: PageOutcome, now_ms: i64) -> bool {
        self.busy[lane] = false;
        match outcome {
            PageOutcome::Written {
                last,
                recipients,
                limit,
                sent,
                failed,
                deliveries,
            } => {
                // The page's own size decides whether it ended its lane: the pace may have
                // changed since it was taken.
                let limit = limit.unwrap_or(self.page_limit[lane]);
                plan::advance(&mut self.lanes[lane], last, recipients, limit, sent, failed);
                self.trouble = Trouble::default();
                self.pages_done += 1;
                self.pages_this_run += 1;
                self.note_deliveries(deliveries);
                self.pages_done.is_multiple_of(PUBLISH_EVERY_PAGES)
            }
            PageOutcome::Unfinished {
                retry_after_millis,
                deliveries,
            } => {
                // The same page again (it sends only to those still pending), once the wait
                // is over: the lane's next turn moves, its cursor does not.
                self.trouble = Trouble::default();
                let at = now_ms + i64::from(retry_after_millis);
                self.next_turn_ms[lane] = self.next_turn_ms[lane].max(at);
                self.note_deliveries(deliveries);
                false
            }
            PageOutcome::Halted { status, requested } => {
                self.page_halted(lane, status, requested);
                false
            }
        }
    }

    /// Count an external page's tries; pause the campaign when most of the latest failed, so
    /// that a broken receiver does not use up the audience.
    fn note_deliveries(&mut self, deliveries: Deliveries) {
        let (window, percent) = (
            self.tuning.auto_pause_window,
            self.tuning.auto_pause_percent,
        );
        let Some(reason) = plan::note_deliveries(&mut self.recent, deliveries, window, percent)
        else {
            return;
        };
        if self.stopped() {
            return;
        }
        // Recorded in the campaign's row like a bare pause, so that pages obey it and an
        // operator's resume continues.
        self.paused = true;
        self.unrecorded = Some(Intent::Pause);
        self.reason = Some(reason);
        self.reason_changed = true;
    }

    /// Whether the campaign has just paused itself (for the log).
    fn auto_paused(&self) -> bool {
        self.paused
            && self.unrecorded == Some(Intent::Pause)
            && self
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("auto-paused"))
    }

    /// A page found the campaign's row saying it must not run, and wrote nothing.
    fn page_halted(&mut self, lane: usize, status: CampaignStatus, stored: Requested) {
        if stored.seq < self.requested.seq {
            // It read the row before the request the workflow has applied since (a resume
            // that overtook it): try the page again, after a moment in case the row is odd.
            self.page_failed(
                lane,
                FailureKind::Transient,
                "the page read an older request than the workflow's",
                0, // a transient failure is not timed
            );
            return;
        }
        let asked = stored.intent;
        self.observe_request(stored);
        if asked != Intent::Run || self.cancel_requested {
            return;
        }
        // Asked to run, yet not in progress: the status was changed by hand.
        if status.is_terminal() {
            self.cancel_requested = true;
        } else if !self.held() {
            // Stop, and record it as a pause so that an operator can resume.
            self.paused = true;
            self.unrecorded = Some(Intent::Pause);
            self.reason = Some(format!(
                "paused by Herald: the campaign's status was set to {status} outside Herald"
            ));
            self.reason_changed = true;
        }
    }

    /// A page failed without being committed. Returns whether the campaign is now failed
    /// for good (until a resume).
    fn page_failed(&mut self, lane: usize, kind: FailureKind, message: &str, now_ms: i64) -> bool {
        self.busy[lane] = false;
        let rest = if kind == FailureKind::WorkerStopping {
            Rest::Handover
        } else {
            let (permanent, grace) = (kind == FailureKind::Permanent, self.grace());
            if plan::record_failure(&mut self.trouble, permanent, now_ms, grace) {
                self.failed = true;
                self.reason = Some(format!("page failed: {message}"));
                self.reason_changed = true;
                self.trouble = Trouble::default();
                self.rest = None;
                return true;
            }
            Rest::Backoff
        };
        // A handover outranks a backoff: the next try is on another worker anyway.
        if self.rest != Some(Rest::Handover) {
            self.rest = Some(rest);
        }
        false
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(u64::from(self.tuning.failure_grace_secs))
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
                failed: self.failed,
                trouble: self.trouble,
                requested: self.requested.clone(),
                unrecorded: self.unrecorded,
                recent: self.recent.clone(),
                rate: self.rate,
                rate_seq: self.rate_seq,
            }),
        }
    }

    fn snapshot(&self) -> Progress {
        let (sent, failed) = self.ledger.unwrap_or_else(|| plan::totals(&self.lanes));
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

/// A workflow task has just begun (see [`CampaignWorkflow::note_boundary`]).
fn at_boundary(ctx: &WorkflowContext<CampaignWorkflow>) {
    let now = now_ms(ctx);
    ctx.state_mut(|s| s.note_boundary(now));
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
        Rest::Backoff => {
            ctx.state(|s| plan::backoff(s.trouble.failures, options::PAGE_BACKOFF_MAX))
        }
    };
    ctx.timer(wait).await;
    Event::Rested
}

/// Resolves when a signal (or Temporal's own cancellation) asks the campaign to stop.
async fn watch_for_stop(ctx: &WorkflowContext<CampaignWorkflow>) -> Event {
    if ctx
        .wait_condition(|s| s.paused || s.cancel_requested || s.rate_changed)
        .await
        .is_err()
    {
        ctx.state_mut(|s| s.on_request(Intent::Cancel, SignalRequest::default()));
    }
    Event::Stop
}

/// Wait for the scheduled send time with a durable timer. A cancel ends the wait; a pause
/// holds the campaign (status 2) until a resume, and the wait goes on.
async fn wait_for_send_at(ctx: &WorkflowContext<CampaignWorkflow>) -> WorkflowResult<()> {
    let Some(at) = ctx.state(|s| s.spec.send_at) else {
        return Ok(());
    };
    let mut logged = false;
    loop {
        if ctx.cancellation_token().is_cancelled() {
            // Temporal's own cancellation: a bare cancel.
            ctx.state_mut(|s| s.on_request(Intent::Cancel, SignalRequest::default()));
        }
        record_request(ctx).await?;
        if ctx.state(|s| s.cancel_requested) {
            return Ok(());
        }
        if ctx.state(|s| s.held()) {
            hold(ctx).await?;
            continue;
        }
        let Some(now) = ctx.workflow_time().map(DateTime::<Utc>::from) else {
            return Ok(());
        };
        let Ok(wait) = (at - now).to_std() else {
            return Ok(()); // in the past: send now
        };
        if wait.is_zero() {
            return Ok(());
        }
        if !logged {
            log(ctx, "waiting for send_at");
            logged = true;
        }
        let woken = select! {
            _ = ctx.timer(wait) => false,
            _ = ctx.wait_condition(|s| s.cancel_requested || s.held() || s.unrecorded.is_some()) => true,
            _ = ctx.cancelled() => true,
        };
        if !woken {
            return Ok(());
        }
    }
}

/// Record a request that came as a bare signal in the campaign's row, if there is one, so
/// that the page statement obeys it and later requests are numbered after it. If the row
/// already holds a newer request, the workflow follows that one instead.
async fn record_request(ctx: &WorkflowContext<CampaignWorkflow>) -> WorkflowResult<()> {
    let Some(intent) = ctx.state(|s| s.unrecorded) else {
        return Ok(());
    };
    let input = ctx.state(|s| RecordRequestInput {
        campaign_id: s.campaign_id,
        intent,
        seen_seq: s.requested.seq,
        reason: s.reason.clone(),
    });
    let stored = bookkeeping(ctx, || CampaignActivities::record_request, input).await?;
    ctx.state_mut(|s| {
        if s.unrecorded == Some(intent) {
            s.unrecorded = None;
        }
        s.observe_request(stored);
    });
    Ok(())
}

/// Run a bookkeeping activity (register, set_status) as a local activity: no round trip
/// through the server's task queue before the first page or after the last. A stopping
/// worker hands it over, a transient failure is retried on a durable timer, and a permanent
/// one too for the grace period; after that it fails the workflow.
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
                let grace = ctx.state(|s| s.grace());
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
    let recorded = bookkeeping(ctx, || CampaignActivities::set_status, input).await?;
    let stored = recorded.status;
    ctx.state_mut(|s| {
        s.status = stored;
        if stored != status {
            s.observe_stored_status(stored);
        }
        if stored.is_terminal() {
            // Page results can be lost with a failed workflow task; the ledger cannot.
            s.ledger = Some((recorded.sent, recorded.failed));
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

/// No page is in flight and the campaign is paused or failed: record it, then wait for a
/// resume or a cancel. Holding costs nothing while it lasts: no timers, no history growth.
async fn hold(ctx: &WorkflowContext<CampaignWorkflow>) -> WorkflowResult<()> {
    use CampaignStatus::*;
    // A bare pause is in the row before the status says paused, so that a resume finds it.
    record_request(ctx).await?;
    if ctx.state(|s| s.held() && !s.cancel_requested) {
        let held = ctx.state(|s| s.held_status());
        set_status(ctx, held, vec![NotStarted, InProgress, Paused, Failed]).await?;
        log(ctx, held.name());
    }
    loop {
        if ctx
            .wait_condition(|s| {
                !s.held() || s.cancel_requested || s.reason_changed || s.unrecorded.is_some()
            })
            .await
            .is_err()
        {
            // Temporal's own cancellation (e.g. the web UI's "Request Cancellation").
            ctx.state_mut(|s| s.on_request(Intent::Cancel, SignalRequest::default()));
        }
        record_request(ctx).await?;
        if ctx.state(|s| s.held() && !s.cancel_requested) {
            if ctx.state(|s| s.reason_changed) {
                // Still held, with a new reason: record it, keep waiting.
                let held = ctx.state(|s| s.held_status());
                set_status(ctx, held, vec![Paused, Failed]).await?;
            }
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
    let stored = set_status(ctx, target, vec![NotStarted, Paused, Failed, target]).await?;
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
