//! The campaign's state and its transitions, with no SDK in them: the workflow loop
//! (`crate::campaign`) turns Temporal's events into calls here and the answers into
//! commands, and everything that decides is tested directly.
//!
//! - this file: [`CampaignState`], the questions the loop asks of it ([`CampaignState::next_step`])
//!   and the status writes.
//! - [`requests`]: pause, resume, cancel and rate, from bare signals and from the ledger.
//! - [`pages`]: lanes claiming pages, page results and failures.
//! - [`window`]: an external campaign's latest tries, for its auto-pause.

mod pages;
mod requests;
#[cfg(test)]
mod tests;
pub mod window;

use std::time::Duration;

use herald_wire::{
    CampaignInput, CampaignKey, CampaignSpec, CampaignStatus, Carried, LaneActivity, Lifecycle,
    Parked, Progress, Registered, StatusRecorded, Tuning, WAVE_LANES, local,
};

use crate::plan;

pub use pages::FailureKind;

/// Publish progress to the web UI (search attributes) every this many pages. Each upsert is
/// one history event, so this is a trade between freshness in the UI and history size.
pub const PUBLISH_EVERY_PAGES: u64 = 25;

/// Everything the campaign's workflow knows. `carried` is what the next run needs; the rest
/// lives only within this run.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignState {
    pub key: CampaignKey,
    pub spec: CampaignSpec,
    pub tuning: Tuning,
    pub carried: Carried,
    /// The status last written to the campaign's row: what the campaign reports.
    pub status: CampaignStatus,
    /// Pages committed in this run (a run continues as new after `tuning.pages_per_run`).
    pub pages_this_run: u32,
    /// Why the lanes rest before the next page, if they do.
    pub rest: Option<Rest>,
    /// Workflow time (Unix milliseconds) when a workflow task last ended for sure: a timer
    /// fired, or the campaign held still. Local activities move workflow time as they
    /// complete, so the time since says how long the current task has held signals back.
    pub last_boundary_ms: i64,
    /// The reason changed since it was last written to the row.
    pub reason_changed: bool,
    /// The speed limit changed since the lanes were last paced.
    pub rate_changed: bool,
    /// Counts every signal: a wait ends when it moves.
    pub signals: u64,
    /// A look at the row is on its way (between `begin_sync` and `end_sync`).
    pub syncing: bool,
    /// The look on its way started after the bare request that waits for a look arrived:
    /// what it reads is what that request is appended over.
    pub look_for_bare: bool,
    /// The ledger's totals, once the campaign has finished: what it reports.
    pub ledger: Option<plan::Totals>,
    /// Looks at the row begun in this run, and the number of the last one that read it.
    pub looks_begun: u64,
    pub looks_read: u64,
    /// The request numbers the row held when last read (a front end's number is checked
    /// against them).
    pub row_seq: i64,
    pub row_rate_seq: i64,
    /// Counts bare requests held in this run: the last one's number tells it from others.
    pub bare_arrived: u64,
    /// A bare request that a front end's update, not yet checked, would overtake: when it
    /// arrived, the update's number, and the look that checks it.
    pub overtaken_if: Option<(u64, i64, u64)>,
}

/// A pause between pages, taken once every page in flight has returned. Each one ends the
/// current workflow task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// Enough page work in this task: let signals in.
    Yield,
    /// A worker refused a page because it is stopping: let another worker take over.
    Handover,
    /// Pages failed: wait before trying again.
    Backoff,
}

/// Which wave walks next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NextWave {
    /// The held one at this index of `Carried::parked`.
    Held(usize),
    /// The next one never walked (`Carried::opened`).
    Fresh,
}

/// What the loop does once no page is in flight and no lane waits for its turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// End the campaign with this status.
    Finish(CampaignStatus),
    /// Write this status to the row (`from`: only from these), then decide again.
    Record {
        status: CampaignStatus,
        from: Vec<CampaignStatus>,
    },
    /// Hand over to a fresh run.
    ContinueAsNew,
    /// Wait for a signal, or until this workflow time (the send time).
    Wait { until_ms: Option<i64> },
    /// Rest before the next pages.
    Rest(Rest),
    /// The current wave is done (or held) and the next one's time has come: walk it.
    OpenWave,
    /// The current wave's quiet hours have begun: hold it until this workflow time.
    ParkWave { until_ms: i64 },
    /// Nothing to decide: the lanes are free to claim pages.
    Claim,
}

impl CampaignState {
    pub fn new(input: CampaignInput) -> Self {
        let fresh = input.carried.is_none();
        let mut carried = input.carried.unwrap_or_default();
        carried.run += 1;
        for lane in &mut carried.lanes {
            lane.turn = Default::default();
        }
        if fresh {
            carried.requests.rate = input.spec.rate;
        }
        let status = carried
            .row_status
            .take()
            .unwrap_or(match carried.lifecycle {
                Lifecycle::Scheduled => CampaignStatus::NotStarted,
                Lifecycle::Running | Lifecycle::Cancelling => CampaignStatus::InProgress,
                Lifecycle::Paused { .. } => CampaignStatus::Paused,
                Lifecycle::Failed { .. } => CampaignStatus::Failed,
            });
        let reason_changed = std::mem::take(&mut carried.reason_unwritten);
        let rest = (carried.trouble.failures > 0).then_some(Rest::Backoff);
        Self {
            key: input.key,
            spec: input.spec,
            tuning: input.tuning,
            carried,
            status,
            pages_this_run: 0,
            rest,
            last_boundary_ms: 0,
            reason_changed,
            rate_changed: false,
            signals: 0,
            syncing: false,
            look_for_bare: false,
            ledger: None,
            looks_begun: 0,
            looks_read: 0,
            row_seq: 0,
            row_rate_seq: 0,
            bare_arrived: 0,
            overtaken_if: None,
        }
    }

    /// The next run's input: the carried state as it stands, with the status write this run
    /// still owes (a run hands over in the middle of a failing one). Taken only between
    /// pages, when no lane has a page in flight or waits for its turn.
    pub fn carry(&self) -> CampaignInput {
        let mut carried = self.carried.clone();
        carried.row_status = Some(self.status);
        carried.reason_unwritten = self.reason_changed;
        CampaignInput {
            key: self.key.clone(),
            spec: self.spec.clone(),
            tuning: self.tuning.clone(),
            carried: Some(carried),
        }
    }

    pub fn registered(&self) -> bool {
        self.carried.campaign_id != 0
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.carried.lifecycle
    }

    /// The row and the audience are known: cut the audience into lanes, move each lane to
    /// where the ledger's pages leave it (a run started afresh for a campaign that has
    /// pages), and follow what the row says (a request made before the workflow's first
    /// task, or a status written by hand).
    pub fn register(&mut self, r: &Registered) {
        let c = &mut self.carried;
        c.campaign_id = r.campaign_id;
        c.total = r.total;
        c.min_id = r.min_id;
        c.max_id = r.max_id;
        c.waves = r.waves.clone();
        c.wave = 0;
        c.opened = 1;
        c.recovered = r.lanes.clone();
        self.walk_wave();
        let c = &mut self.carried;
        if r.started && c.lifecycle == Lifecycle::Scheduled {
            c.lifecycle = Lifecycle::Running;
        }
        if !r.status.is_terminal() {
            self.status = r.status;
        }
        match r.status {
            CampaignStatus::InProgress => self.carried.lifecycle = Lifecycle::Running,
            s => self.observe_stored_status(s),
        }
        self.row_seq = r.requests.requested.seq;
        self.row_rate_seq = r.requests.rate_seq;
        self.observe_ledger(r.requests.clone());
    }

    /// Cut the audience into lanes for the current wave (the whole audience when the
    /// campaign has no waves), and move each lane to where the ledger's pages leave it.
    fn walk_wave(&mut self) {
        let c = &mut self.carried;
        let size = c.waves.get(c.wave as usize).map_or(c.total, |w| w.size);
        c.lanes = plan::split_lanes(
            c.min_id,
            c.max_id,
            size,
            self.spec.page_size.get(),
            self.spec.lanes.get(),
        )
        .into_iter()
        .map(Into::into)
        .collect();
        let (mine, later): (Vec<_>, Vec<_>) = std::mem::take(&mut c.recovered)
            .into_iter()
            .partition(|p| p.lane / WAVE_LANES == c.wave);
        c.recovered = later;
        for p in mine {
            if let Some(lane) = c.lanes.get_mut((p.lane % WAVE_LANES) as usize) {
                let cursor = &mut lane.cursor;
                cursor.after = p.after.clamp(cursor.after, cursor.until);
                // A full page that reached the lane's bound ended it too (`plan::advance`).
                cursor.done = p.done || cursor.after >= cursor.until;
                cursor.sent = p.sent;
                cursor.failed = p.failed;
                cursor.suppressed = p.suppressed;
                c.pages_done += p.pages;
            }
        }
    }

    /// The wave to walk when the current one is done or held, and from when: a wave held
    /// by quiet hours when its window ends, or the next new wave when it opens, whichever
    /// comes first (the held one on a tie).
    fn next_in_line(&self) -> Option<(NextWave, i64)> {
        let c = &self.carried;
        let held = (0..c.parked.len())
            .min_by_key(|i| c.parked[*i].until_ms)
            .map(|i| (NextWave::Held(i), c.parked[i].until_ms));
        let fresh = c
            .waves
            .get(c.opened as usize)
            .map(|w| (NextWave::Fresh, w.opens_at_ms));
        match (held, fresh) {
            (Some(h), Some(f)) if f.1 < h.1 => Some(f),
            (Some(h), _) => Some(h),
            (None, f) => f,
        }
    }

    /// When the next wave to walk may begin, if one is still to come.
    pub fn next_wave_at(&self) -> Option<i64> {
        self.next_in_line().map(|(_, at)| at)
    }

    /// The current wave's lanes are done or held: walk the wave that is next in line.
    pub fn open_next_wave(&mut self) {
        let Some((next, _)) = self.next_in_line() else {
            return;
        };
        let c = &mut self.carried;
        c.closed = c.closed + plan::totals(&c.lanes);
        match next {
            NextWave::Held(i) => {
                let p = c.parked.remove(i);
                c.wave = p.wave;
                c.lanes = p.lanes.into_iter().map(Into::into).collect();
            }
            NextWave::Fresh => {
                c.wave = c.opened;
                c.opened += 1;
                self.walk_wave();
            }
        }
    }

    /// The current wave's quiet hours have begun: hold its lanes until they end, and let
    /// the other waves go on meanwhile.
    pub fn park_wave(&mut self, until_ms: i64) {
        let c = &mut self.carried;
        let lanes = std::mem::take(&mut c.lanes);
        c.parked.push(Parked {
            wave: c.wave,
            until_ms,
            lanes: lanes.into_iter().map(|l| l.cursor).collect(),
        });
    }

    /// When the current wave's quiet hours hold it now, until when.
    pub fn quiet_until(&self, now_ms: i64) -> Option<i64> {
        let c = &self.carried;
        let wave = c.waves.get(c.wave as usize)?;
        if self.lanes_done() {
            return None;
        }
        local::quiet_at(&wave.quiet, now_ms).map(|[_, end]| end)
    }

    /// When sending starts: the first wave's opening (planned from the send time, and
    /// moved past quiet hours), or the send time.
    fn starts_at_ms(&self) -> Option<i64> {
        self.carried
            .waves
            .first()
            .map(|w| w.opens_at_ms)
            .or_else(|| self.spec.send_at.map(|t| t.timestamp_millis()))
    }

    /// Every recipient has had their page, in every wave.
    pub fn all_done(&self) -> bool {
        self.lanes_done() && self.next_wave_at().is_none()
    }

    /// The row's status is not what the workflow wrote: a status written by hand.
    fn observe_stored_status(&mut self, stored: CampaignStatus) {
        let started = self.carried.lifecycle.is_started();
        let l = &mut self.carried.lifecycle;
        match stored {
            CampaignStatus::Paused if !l.is_stopped() => *l = Lifecycle::Paused { started },
            CampaignStatus::Failed if !l.is_stopped() => *l = Lifecycle::Failed { started },
            s if s.is_terminal() => *l = Lifecycle::Cancelling,
            _ => {}
        }
    }

    /// Every lane has had its last page.
    pub fn lanes_done(&self) -> bool {
        self.carried.lanes.iter().all(|l| l.cursor.done)
    }

    /// No page in flight, no lane waiting for its turn.
    pub fn lanes_idle(&self) -> bool {
        self.carried
            .lanes
            .iter()
            .all(|l| l.turn.activity == LaneActivity::Idle)
    }

    /// New pages may start: running, with every bare request in the row (so that the page
    /// statement's gate agrees with the workflow).
    pub fn may_claim(&self) -> bool {
        self.carried.lifecycle == Lifecycle::Running
            && self.status == CampaignStatus::InProgress
            && self.carried.requests.unrecorded.is_none()
    }

    /// The status a held campaign records.
    pub(super) fn held_status(&self) -> CampaignStatus {
        match self.carried.lifecycle {
            Lifecycle::Failed { .. } => CampaignStatus::Failed,
            _ => CampaignStatus::Paused,
        }
    }

    /// What to do once the lanes are idle and the ledger is in step (no request to record or
    /// read). `hand_over`: the run has done its share (pages or history) and should continue
    /// as new at the next quiet moment. `now_ms`: workflow time.
    pub fn next_step(&self, hand_over: bool, now_ms: i64) -> Step {
        use CampaignStatus::*;
        let record = |status, from: &[CampaignStatus]| Step::Record {
            status,
            from: from.to_vec(),
        };
        match self.carried.lifecycle {
            Lifecycle::Cancelling => Step::Finish(Cancelled),
            // Every recipient has had their page: a pause that came after the last one has
            // nothing left to hold back.
            l if l.is_started() && self.all_done() => Step::Finish(Completed),
            l if l.is_held() => {
                let held = self.held_status();
                if self.status != held || self.reason_changed {
                    record(held, &[NotStarted, InProgress, Paused, Failed])
                } else if hand_over {
                    Step::ContinueAsNew
                } else {
                    Step::Wait { until_ms: None }
                }
            }
            Lifecycle::Scheduled => {
                if self.status != NotStarted {
                    // Resumed before its send time.
                    record(NotStarted, &[NotStarted, Paused, Failed])
                } else if hand_over {
                    Step::ContinueAsNew
                } else {
                    match self.starts_at_ms() {
                        Some(at) if at > now_ms => Step::Wait { until_ms: Some(at) },
                        _ => record(InProgress, &[NotStarted]),
                    }
                }
            }
            _ if self.status != InProgress => {
                record(InProgress, &[NotStarted, Paused, Failed, InProgress])
            }
            _ if let Some(until) = self.quiet_until(now_ms) => Step::ParkWave { until_ms: until },
            _ if self.lanes_done() => match self.next_wave_at() {
                None => Step::Finish(Completed),
                Some(at) if at <= now_ms => Step::OpenWave,
                // Waiting for the next wave: a pause, a rate change or a cancel comes as
                // it would before the send time.
                Some(_) if hand_over => Step::ContinueAsNew,
                Some(at) => Step::Wait { until_ms: Some(at) },
            },
            _ if hand_over => Step::ContinueAsNew,
            _ => match self.rest {
                Some(rest) => Step::Rest(rest),
                None => Step::Claim,
            },
        }
    }

    /// A status write returned what the row holds now.
    pub fn on_status_recorded(&mut self, wanted: CampaignStatus, recorded: StatusRecorded) {
        let stored = recorded.status;
        self.reason_changed = false;
        self.status = stored;
        if stored == CampaignStatus::InProgress {
            // The row says it has started, whatever came meanwhile.
            let l = &mut self.carried.lifecycle;
            *l = match *l {
                Lifecycle::Scheduled => Lifecycle::Running,
                Lifecycle::Paused { .. } => Lifecycle::Paused { started: true },
                Lifecycle::Failed { .. } => Lifecycle::Failed { started: true },
                other => other,
            };
        }
        if stored != wanted {
            self.observe_stored_status(stored);
        }
        if stored.is_terminal() {
            // Page results can be lost with a failed workflow task; the ledger cannot.
            self.ledger = Some(plan::Totals {
                sent: recorded.sent,
                failed: recorded.failed,
                suppressed: recorded.suppressed,
            });
        }
    }

    /// A workflow task has just begun: signals sent before it are in, and a yield that is
    /// due but not yet taken is moot.
    pub fn note_boundary(&mut self, now_ms: i64) {
        self.last_boundary_ms = now_ms;
        if self.rest == Some(Rest::Yield) {
            self.rest = None;
        }
    }

    /// Rest briefly once pages have held the current workflow task for
    /// [`crate::options::YIELD_AFTER`].
    pub fn note_time(&mut self, now_ms: i64) {
        let held_for = now_ms.saturating_sub(self.last_boundary_ms);
        if self.rest.is_none() && held_for >= crate::options::YIELD_AFTER.as_millis() as i64 {
            self.rest = Some(Rest::Yield);
        }
    }

    /// The wait after `failures` failed pages in a row.
    pub fn backoff(&self) -> Duration {
        plan::backoff(
            self.carried.trouble.failures,
            crate::options::PAGE_BACKOFF_MAX,
        )
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs(u64::from(self.tuning.failure_grace_secs))
    }

    pub fn snapshot(&self) -> Progress {
        let c = &self.carried;
        let plan::Totals {
            sent,
            failed,
            suppressed,
        } = self.ledger.unwrap_or_else(|| {
            let held = c.parked.iter().flat_map(|p| &p.lanes);
            c.closed + plan::sum(c.lanes.iter().map(|l| &l.cursor).chain(held))
        });
        Progress {
            key: self.key.to_string(),
            status: self.status,
            total: c.total,
            sent,
            failed,
            suppressed,
            pending: (c.total - sent - failed - suppressed).max(0),
            pages_done: c.pages_done,
            lanes_active: c.lanes.iter().filter(|l| !l.cursor.done).count() as u32,
            cursor: c.lanes.iter().map(|l| l.cursor.after).collect(),
            reason: c.reason.clone(),
            run: c.run,
            wave: c.wave,
            waves: c.waves.len() as u32,
            next_wave_at_ms: self.next_wave_at(),
        }
    }
}
