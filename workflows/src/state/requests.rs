//! Operators' requests: pause, resume, cancel and rate.
//!
//! The ledger (the campaign's row) numbers every request, and only the ledger carries
//! authority. Herald's own front ends record a request there, then send `herald.requests`,
//! which says only "read the row". A bare signal (the web UI, another service, Temporal's own
//! cancellation) is obeyed as what it names the moment it arrives, whatever else its payload
//! says, and appended to the row as the next request before any page starts, so that the
//! page statement's gate agrees with it and later requests are numbered after it. The row
//! thus orders every request in the order they reached it, and the workflow follows the
//! newest: a request from the row is applied only if it is newer than the newest the workflow
//! knows and no bare request waits to be appended after it.

use herald_wire::{
    Applied, BareRequest, CampaignStatus, Intent, LedgerRequests, Lifecycle, Rate,
    RecordedRequests, Requested, SignalRequest, SyncRequestsInput,
};

use super::CampaignState;

impl CampaignState {
    /// A bare pause, resume or cancel signal (or Temporal's own cancellation, as a cancel).
    pub fn on_signal(&mut self, intent: Intent, request: SignalRequest) {
        self.signals += 1;
        if !self.accepts(intent) || self.repeats(intent, &request) {
            return;
        }
        self.hold_bare(intent, request.reason.clone(), false);
        self.apply_intent(intent, request.reason);
    }

    /// Keep a bare request (or the campaign's own pause) until it is appended to the row. One
    /// that arrives while the workflow still has to read the row, or while a look is on its
    /// way (which may have read the row before a front end's request now in it), waits for a
    /// look that starts after it.
    pub(super) fn hold_bare(&mut self, intent: Intent, reason: Option<String>, own: bool) {
        self.bare_arrived += 1;
        let r = &mut self.carried.requests;
        let token = r.next_token;
        r.next_token += 1;
        let replaces_from = r.unrecorded.as_ref().map_or(token, |b| b.replaces_from);
        r.unrecorded = Some(BareRequest {
            intent,
            reason,
            seen_seq: r.applied.seq,
            after_look: r.look_due || self.syncing,
            token,
            own,
            replaces_from,
        });
        self.look_for_bare = false;
    }

    /// A bare `rate` signal.
    pub fn on_rate_signal(&mut self, rate: Option<Rate>) {
        self.signals += 1;
        let r = &self.carried.requests;
        // The limit the row holds and the workflow follows, asked again: nothing to write.
        let repeat = r.rate == rate
            && !r.rate_unrecorded
            && !r.look_due
            && !self.syncing
            && self.registered();
        if self.carried.lifecycle == Lifecycle::Cancelling || repeat {
            return;
        }
        self.carried.requests.rate_unrecorded = true;
        self.set_rate(rate);
    }

    /// `herald.requests`: the row holds a request the workflow has not read. A front end
    /// records its request before it sends this, so a bare pause or resume that came earlier
    /// and is not yet appended was overtaken: it is dropped, and the workflow follows the row.
    pub fn on_requests_signal(&mut self) {
        self.signals += 1;
        let r = &mut self.carried.requests;
        r.look_due = true;
        // A cancel the workflow has taken is final: it is appended whatever came since.
        if r.unrecorded
            .as_ref()
            .is_some_and(|b| b.intent != Intent::Cancel)
        {
            r.unrecorded = None;
            r.follow_row = true;
        }
    }

    /// `herald.apply`: as `herald.requests`, answered once the request is taken. Returns the
    /// number of the first look that starts after it: the one that surely reads the request.
    /// Numbers the row is known to have reached overtake a bare request not yet appended, as
    /// `herald.requests` does. Others are not trusted before the look: they only ask for it,
    /// and a bare request is appended unless the row has moved on past it.
    pub fn on_requests_update(&mut self, recorded: RecordedRequests) -> u64 {
        let ticket = self.looks_begun + 1;
        if recorded.seq <= self.row_seq && recorded.rate_seq <= self.row_rate_seq {
            self.on_requests_signal();
        } else {
            self.signals += 1;
            let r = &mut self.carried.requests;
            r.look_due = true;
            // One waiting to be appended over what the next look reads would be appended
            // over this request too: it is dropped once the look shows the number is real.
            let waits = r
                .unrecorded
                .as_ref()
                .is_some_and(|b| b.after_look && b.intent != Intent::Cancel);
            self.overtaken_if = waits.then_some((self.bare_arrived, recorded.seq, ticket));
        }
        ticket
    }

    /// The row has been read by look `ticket` or a later one.
    pub fn looked_since(&self, ticket: u64) -> bool {
        self.looks_read >= ticket
    }

    /// Once the row has been read: whether it holds the numbers a front end says it
    /// recorded. A number the row has not reached was not given by the row; nothing in
    /// the workflow changes for it.
    pub fn check_recorded(&self, recorded: RecordedRequests) -> Result<(), String> {
        let claims = [
            ("request", recorded.seq, self.row_seq),
            ("rate change", recorded.rate_seq, self.row_rate_seq),
        ];
        match claims.into_iter().find(|(_, claim, row)| claim > row) {
            Some((what, claim, row)) => Err(format!(
                "the campaign's row holds no {what} number {claim} (its newest is {row}); \
                 record a request with herald, the API or the dashboard"
            )),
            None => Ok(()),
        }
    }

    /// The workflow does what its newest request asks, and the row says so: no look due or
    /// on its way; a held campaign has no page in flight and its status written; a running
    /// one is recorded as running. A cancelled one is settled only once finished.
    pub fn settled(&self) -> bool {
        if self.syncing || self.sync_due() {
            return false;
        }
        match self.carried.lifecycle {
            Lifecycle::Running => self.status == CampaignStatus::InProgress,
            Lifecycle::Scheduled => self.status == CampaignStatus::NotStarted,
            Lifecycle::Paused { .. } | Lifecycle::Failed { .. } => {
                self.lanes_idle() && self.status == self.held_status() && !self.reason_changed
            }
            // Answered once the run has ended it (`closing`), with its last status.
            Lifecycle::Cancelling => false,
        }
    }

    /// What the workflow answers a front end that waited for it.
    pub fn applied(&self) -> Applied {
        Applied {
            status: self.status,
            following: self.carried.requests.applied.clone(),
            taken: true,
        }
    }

    /// Whether an intent changes anything now. A cancel is final; a failed campaign is
    /// already still, and its reason stays the error's.
    fn accepts(&self, intent: Intent) -> bool {
        match self.carried.lifecycle {
            Lifecycle::Cancelling => false,
            Lifecycle::Failed { .. } => intent != Intent::Pause,
            _ => true,
        }
    }

    /// A bare request that asks for what the workflow already does, as the newest request in
    /// the row, with the same reason: it changes nothing and writes nothing (so a reconciler
    /// may repeat `pause` every minute for a month).
    fn repeats(&self, intent: Intent, request: &SignalRequest) -> bool {
        let r = &self.carried.requests;
        let doing = match self.carried.lifecycle {
            Lifecycle::Paused { .. } => Intent::Pause,
            Lifecycle::Running | Lifecycle::Scheduled => Intent::Run,
            Lifecycle::Failed { .. } | Lifecycle::Cancelling => return false,
        };
        r.unrecorded.is_none()
            && !r.look_due
            && !self.syncing
            && r.applied.intent == intent
            && doing == intent
            && self.carried.reason == request.reason
    }

    fn apply_intent(&mut self, intent: Intent, reason: Option<String>) {
        let before = self.carried.lifecycle;
        self.apply_lifecycle(intent);
        if self.carried.lifecycle != before {
            // What a failing bookkeeping step was for has changed: a fresh grace.
            self.carried.bookkeeping.clear();
        }
        if self.carried.lifecycle != before || self.carried.reason != reason {
            self.carried.reason = reason;
            self.reason_changed = true;
        }
    }

    fn apply_lifecycle(&mut self, intent: Intent) {
        let l = &mut self.carried.lifecycle;
        match (intent, *l) {
            (Intent::Cancel, _) => *l = Lifecycle::Cancelling,
            (_, Lifecycle::Cancelling) | (Intent::Pause, Lifecycle::Failed { .. }) => {}
            (Intent::Pause, _) => {
                *l = Lifecycle::Paused {
                    started: l.is_started(),
                }
            }
            (Intent::Run, Lifecycle::Paused { started } | Lifecycle::Failed { started }) => {
                if matches!(*l, Lifecycle::Failed { .. }) {
                    // The operator fixed the cause: try again from the cursor, with a fresh
                    // grace.
                    self.carried.trouble = Default::default();
                    self.rest = None;
                }
                *l = if started {
                    Lifecycle::Running
                } else {
                    Lifecycle::Scheduled
                };
            }
            (Intent::Run, _) => {}
        }
    }

    fn set_rate(&mut self, rate: Option<Rate>) {
        if self.carried.requests.rate != rate {
            self.carried.requests.rate = rate;
            self.rate_changed = true;
        }
    }

    /// Whether the ledger needs a look: a bare request to append, or a `herald.requests`.
    pub fn sync_due(&self) -> bool {
        let r = &self.carried.requests;
        r.unrecorded.is_some() || r.rate_unrecorded || r.look_due
    }

    /// What to append to the row and read back, now. A `herald.requests` that comes while
    /// this is on its way asks for another look. A bare request that came after a
    /// `herald.requests` not yet served, or while a look was on its way, waits for the row to
    /// be read first, and is then appended over what it held (over the bare request on its
    /// way, or the front end's request the look is reading).
    pub fn begin_sync(&mut self) -> SyncRequestsInput {
        self.syncing = true;
        self.looks_begun += 1;
        let r = &mut self.carried.requests;
        r.look_due = false;
        let intent = r.unrecorded.clone().filter(|b| !b.after_look);
        self.look_for_bare = r.unrecorded.as_ref().is_some_and(|b| b.after_look);
        SyncRequestsInput {
            campaign_id: self.carried.campaign_id,
            intent,
            rate: r.rate_unrecorded.then_some(r.rate),
        }
    }

    /// The look [`Self::begin_sync`] started failed: what it was to append still waits, and
    /// the row is to be read again.
    pub fn sync_failed(&mut self) {
        self.syncing = false;
        self.look_for_bare = false;
        self.carried.requests.look_due = true;
    }

    /// The row's requests after [`Self::begin_sync`]'s input was appended to them (or
    /// refused: the row held a request newer than the one the bare request knew of). Either
    /// way the row's newest request is then the last word, and the workflow follows it, even
    /// one it had read before but set aside for the bare one.
    pub fn end_sync(&mut self, sent: &SyncRequestsInput, stored: LedgerRequests) {
        self.syncing = false;
        self.looks_read = self.looks_begun;
        self.row_seq = self.row_seq.max(stored.requested.seq);
        self.row_rate_seq = self.row_rate_seq.max(stored.rate_seq);
        let looked_for_bare = std::mem::take(&mut self.look_for_bare);
        // The number a front end's update claimed is real once a look reads it; a look that
        // began after the update and did not read it shows it forged.
        let overtaken = match self.overtaken_if.take() {
            Some((bare, claimed, _)) if stored.requested.seq >= claimed => Some(bare),
            Some(pending) if self.looks_read < pending.2 => {
                self.overtaken_if = Some(pending);
                None
            }
            _ => None,
        };
        let r = &mut self.carried.requests;
        let mut follow = std::mem::take(&mut r.follow_row);
        if r.unrecorded.is_some() && overtaken == Some(self.bare_arrived) {
            r.unrecorded = None;
            follow = true;
        }
        if sent.intent.is_some() && r.unrecorded == sent.intent {
            match r.unrecorded.as_mut() {
                // Refused over a request that a look of a lost workflow task appended (for a
                // bare request this one replaced, or one the rerun numbered differently):
                // the workflow's own, so this one is appended over it, with a new token.
                Some(bare) if lost_append(bare, &stored) => {
                    let token = r.next_token.max(stored.token.unwrap_or(0) + 1);
                    r.next_token = token + 1;
                    bare.seen_seq = stored.requested.seq;
                    bare.token = token;
                    bare.replaces_from = token;
                }
                _ => {
                    r.unrecorded = None;
                    follow = true;
                }
            }
        }
        if let Some(bare) = r
            .unrecorded
            .as_mut()
            .filter(|b| b.after_look && looked_for_bare)
        {
            // The row is read: append over what it holds now.
            bare.after_look = false;
            bare.seen_seq = stored.requested.seq;
            bare.replaces_from = bare.token;
        }
        if sent.rate.is_some() && r.rate_unrecorded && sent.rate == Some(r.rate) {
            r.rate_unrecorded = false;
            if stored.rate_seq >= r.rate_seq {
                r.rate_seq = stored.rate_seq - 1;
            }
        }
        if follow && r.unrecorded.is_none() {
            if stored.requested.seq >= r.applied.seq {
                r.applied.seq = stored.requested.seq - 1;
            } else {
                // A page reported a newer request than this look read, set aside for the
                // bare one: read the row again and follow that.
                r.look_due = true;
                r.follow_row = true;
            }
        }
        self.observe_ledger(stored);
    }

    /// Follow the row's requests where they are newer than any the workflow knows and no
    /// bare request waits to be appended after them.
    pub(super) fn observe_ledger(&mut self, stored: LedgerRequests) {
        self.observe_request(stored.requested);
        let r = &mut self.carried.requests;
        // Tokens only grow, across runs and a recovered campaign's new workflow alike.
        if let Some(token) = stored.token {
            r.next_token = r.next_token.max(token + 1);
        }
        if stored.rate_seq > r.rate_seq {
            r.rate_seq = stored.rate_seq;
            if !r.rate_unrecorded {
                self.set_rate(stored.rate);
            }
        }
    }

    /// Follow the row's newest pause, resume or cancel if it is newer than any known, or a
    /// new reason given with a repeat of the newest (which keeps its number).
    pub(super) fn observe_request(&mut self, stored: Requested) {
        let r = &mut self.carried.requests;
        let new_reason = stored.seq == r.applied.seq
            && stored.intent == r.applied.intent
            && stored.reason != r.applied.reason;
        if stored.seq < r.applied.seq || (stored.seq == r.applied.seq && !new_reason) {
            return;
        }
        r.applied = stored.clone();
        if r.unrecorded.is_none() && self.accepts(stored.intent) {
            self.apply_intent(stored.intent, stored.reason);
        }
    }
}

/// Whether the row's newest request, over which `bare` was refused, was appended by a look
/// of a workflow task that was lost: its token is one this workflow handed out since `bare`'s
/// predecessors were last appended (a front end's request has none), and it is not `bare`
/// itself. A token is only ever written by this workflow, and the workflow has read every
/// one its completed tasks wrote.
fn lost_append(bare: &BareRequest, stored: &LedgerRequests) -> bool {
    let own = stored.token.is_some_and(|t| t >= bare.replaces_from);
    let itself = stored.token == Some(bare.token)
        && stored.requested.intent == bare.intent
        && stored.requested.reason == bare.reason;
    own && !itself
}
