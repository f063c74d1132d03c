//! Lanes and their pages: which lanes take a page now, what a committed page does to its
//! lane, and what a failed or halted page does to the campaign. A lane's cursor moves only
//! here, and only from a committed page's outcome.

use std::time::Duration;

use herald_wire::{
    CampaignStatus, Deliveries, Intent, LaneActivity, Lifecycle, PageInput, PageOutcome, Requested,
    WAVE_LANES,
};

use super::{CampaignState, PUBLISH_EVERY_PAGES, Rest, window};
use crate::{options, plan, scan};

/// How a failed activity is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The worker refused it before doing anything: hand over.
    WorkerStopping,
    /// Retrying cannot fix it: retry for the grace period, then mark the campaign failed.
    Permanent,
    /// It may go away: back off and retry.
    Transient,
    /// The page's statement ran past its timeout: scan less, and try again at once.
    TooSlow,
}

impl CampaignState {
    fn pace(&self) -> plan::Pace {
        plan::pace(
            self.carried.requests.rate.map(|r| r.get()),
            self.spec.page_size.get(),
            self.carried.lanes.len(),
        )
    }

    /// Pages for the lanes whose turn it is (or comes within
    /// [`options::IN_PAGE_DELAY_MAX`]: the page waits first), and a pacing wait for each lane
    /// whose turn is further off. Turns are kept on a schedule, so a late timer or a slow
    /// page is made up for at the next turn instead of slowing the campaign.
    pub fn claim_idle_lanes(
        &mut self,
        now_ms: i64,
    ) -> (Vec<(usize, PageInput)>, Vec<(usize, Duration)>) {
        let mut pages = Vec::new();
        let mut waits = Vec::new();
        if self.quiet_until(now_ms).is_some() {
            // Quiet hours: the lanes finish their pages and the wave is held.
            return (pages, waits);
        }
        let pace = self.pace();
        let interval_ms = pace.interval.as_millis() as i64;
        for (i, lane) in self.carried.lanes.iter_mut().enumerate() {
            if lane.cursor.done || lane.turn.activity != LaneActivity::Idle {
                continue;
            }
            let delay_ms = lane.turn.next_at_ms.saturating_sub(now_ms).max(0);
            if delay_ms > options::IN_PAGE_DELAY_MAX.as_millis() as i64 {
                lane.turn.activity = LaneActivity::Pacing;
                waits.push((i, Duration::from_millis(delay_ms as u64)));
                continue;
            }
            // A turn taken a little late (a yield, a slow page) is made up for; after a pause
            // or an outage the schedule restarts from now instead of rushing to catch up.
            let behind = now_ms - lane.turn.next_at_ms;
            let base = if behind > interval_ms.max(1_000) {
                now_ms
            } else {
                lane.turn.next_at_ms
            };
            lane.turn.next_at_ms = base + interval_ms;
            lane.turn.activity = LaneActivity::Paging { limit: pace.limit };
            lane.scan = scan::for_page(lane.scan, pace.limit);
            pages.push((
                i,
                PageInput {
                    campaign_id: self.carried.campaign_id,
                    lane: self.carried.wave * WAVE_LANES + i as u32,
                    after: lane.cursor.after,
                    until: lane.cursor.until,
                    scan: Some(lane.scan),
                    limit: pace.limit,
                    channel: self.spec.channel,
                    delay_millis: delay_ms as u32,
                },
            ));
        }
        (pages, waits)
    }

    /// A new pace: every lane's next turn is now.
    pub fn restart_turns(&mut self, now_ms: i64) {
        self.rate_changed = false;
        for lane in &mut self.carried.lanes {
            lane.turn.next_at_ms = now_ms;
        }
    }

    /// A lane's pacing wait is over (or was cut short).
    pub fn paced(&mut self, lane: usize) {
        self.carried.lanes[lane].turn.activity = LaneActivity::Idle;
    }

    /// Apply a page's result. Returns whether it is time to publish progress to the UI.
    pub fn apply_page(&mut self, lane: usize, outcome: PageOutcome, now_ms: i64) -> bool {
        let turn = &mut self.carried.lanes[lane].turn;
        let taken_with = match turn.activity {
            LaneActivity::Paging { limit } => limit,
            _ => self.spec.page_size.get(),
        };
        turn.activity = LaneActivity::Idle;
        match outcome {
            PageOutcome::Written {
                last,
                recipients,
                limit,
                sent,
                failed,
                suppressed,
                scanned_to,
                took_ms,
                deliveries,
            } => {
                // The page's own size decides where it ended: the pace may have changed
                // since it was taken.
                let limit = limit.unwrap_or(taken_with);
                let lane = &mut self.carried.lanes[lane];
                let end = scan::page_end(last, recipients, limit, scanned_to);
                let counts = plan::Counts {
                    sent,
                    failed,
                    suppressed,
                };
                plan::advance(&mut lane.cursor, end, counts);
                lane.scan = scan::after_page(lane.scan, limit, recipients < limit, took_ms);
                self.carried.trouble = Default::default();
                self.carried.pages_done += 1;
                self.pages_this_run += 1;
                self.note_deliveries(deliveries);
                self.carried.pages_done.is_multiple_of(PUBLISH_EVERY_PAGES)
            }
            PageOutcome::Unfinished {
                retry_after_millis,
                deliveries,
            } => {
                // The same page again (it sends only to those still pending), once the wait
                // is over: the lane's next turn moves, its cursor does not.
                self.carried.trouble = Default::default();
                let at = now_ms + i64::from(retry_after_millis);
                let turn = &mut self.carried.lanes[lane].turn;
                turn.next_at_ms = turn.next_at_ms.max(at);
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
        let (size, percent) = (
            self.tuning.auto_pause_window,
            self.tuning.auto_pause_percent,
        );
        let Some(reason) = window::note(&mut self.carried.window, deliveries, size, percent) else {
            return;
        };
        if self.carried.lifecycle != Lifecycle::Running {
            return;
        }
        self.pause_itself(reason);
    }

    /// The campaign pauses itself: applied at once, and appended to the row like a bare pause,
    /// so that pages obey it and an operator's resume continues.
    fn pause_itself(&mut self, reason: String) {
        self.hold_bare(Intent::Pause, Some(reason.clone()), true);
        self.carried.lifecycle = Lifecycle::Paused { started: true };
        self.carried.reason = Some(reason);
        self.reason_changed = true;
    }

    /// A page found the campaign's row saying it must not run, and wrote nothing.
    fn page_halted(&mut self, lane: usize, status: CampaignStatus, stored: Requested) {
        if stored.seq < self.carried.requests.applied.seq {
            // It read the row before a request the workflow has applied since (a resume that
            // overtook it): try the page again, after a moment in case the row is odd.
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
        if asked != Intent::Run || self.carried.lifecycle == Lifecycle::Cancelling {
            return;
        }
        // Asked to run, yet not in progress: the status was changed by hand.
        if status.is_terminal() {
            self.carried.lifecycle = Lifecycle::Cancelling;
        } else if self.carried.lifecycle == Lifecycle::Running {
            // Stop, and record it as a pause so that an operator can resume.
            self.pause_itself(format!(
                "paused by Herald: the campaign's status was set to {status} outside Herald"
            ));
        }
    }

    /// A page failed without being committed. Returns whether the campaign is now failed
    /// for good (until a resume).
    pub fn page_failed(
        &mut self,
        lane: usize,
        kind: FailureKind,
        message: &str,
        now_ms: i64,
    ) -> bool {
        let the_lane = &mut self.carried.lanes[lane];
        let taken_with = match the_lane.turn.activity {
            LaneActivity::Paging { limit } => limit,
            _ => self.spec.page_size.get(),
        };
        the_lane.turn.activity = LaneActivity::Idle;
        let (mut kind, mut message) = (kind, message.to_owned());
        if kind == FailureKind::TooSlow {
            match scan::after_timeout(the_lane.scan, taken_with) {
                Some(smaller) => {
                    // Split the page: the same cursor, a smaller range, at once.
                    the_lane.scan = smaller;
                    return false;
                }
                None => {
                    kind = FailureKind::Permanent;
                    message = format!(
                        "{message}: the page statement ran past its time limit while scanning \
                         only {} user ids after {} (lane {lane}); the database is too slow, or \
                         something holds a lock that pages wait on",
                        the_lane.scan, the_lane.cursor.after
                    );
                }
            }
        }
        let rest = if kind == FailureKind::WorkerStopping {
            Rest::Handover
        } else {
            let (permanent, grace) = (kind == FailureKind::Permanent, self.grace());
            if plan::record_failure(&mut self.carried.trouble, permanent, now_ms, grace) {
                if self.carried.lifecycle == Lifecycle::Running {
                    self.carried.lifecycle = Lifecycle::Failed { started: true };
                    self.carried.reason = Some(format!("page failed: {message}"));
                    self.reason_changed = true;
                }
                self.carried.trouble = Default::default();
                self.rest = None;
                return matches!(self.carried.lifecycle, Lifecycle::Failed { .. });
            }
            Rest::Backoff
        };
        // A handover outranks a backoff: the next try is on another worker anyway.
        if self.rest != Some(Rest::Handover) {
            self.rest = Some(rest);
        }
        false
    }

    /// Bookkeeping (a status write, a look at the requests) failed on an error that retrying
    /// for the grace period did not fix: the campaign fails with it, as on a page's, and
    /// waits for an operator. One being cancelled stays so: its end is tried again.
    pub fn bookkeeping_failed(&mut self, what: &str, message: &str) {
        let l = &mut self.carried.lifecycle;
        if *l != Lifecycle::Cancelling {
            *l = Lifecycle::Failed {
                started: l.is_started(),
            };
        }
        let reason = Some(format!("{what} failed: {message}"));
        if self.carried.reason != reason {
            self.carried.reason = reason;
            self.reason_changed = true;
        }
        self.rest = None;
    }
}
