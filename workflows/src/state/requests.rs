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
    BareRequest, Intent, LedgerRequests, Lifecycle, Rate, Requested, SignalRequest,
    SyncRequestsInput,
};

use super::CampaignState;

impl CampaignState {
    /// A bare pause, resume or cancel signal (or Temporal's own cancellation, as a cancel).
    pub fn on_signal(&mut self, intent: Intent, request: SignalRequest) {
        self.signals += 1;
        if !self.accepts(intent) || self.repeats(intent, &request) {
            return;
        }
        self.carried.requests.unrecorded = Some(BareRequest {
            intent,
            reason: request.reason.clone(),
        });
        self.apply_intent(intent, request.reason);
    }

    /// A bare `rate` signal.
    pub fn on_rate_signal(&mut self, rate: Option<Rate>) {
        self.signals += 1;
        if self.carried.lifecycle == Lifecycle::Cancelling {
            return;
        }
        self.carried.requests.rate_unrecorded = true;
        self.set_rate(rate);
    }

    /// `herald.requests`: the row holds a request the workflow has not read.
    pub fn on_requests_signal(&mut self) {
        self.signals += 1;
        self.carried.requests.look_due = true;
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
            && r.applied.intent == intent
            && doing == intent
            && self.carried.reason == request.reason
    }

    fn apply_intent(&mut self, intent: Intent, reason: Option<String>) {
        let before = self.carried.lifecycle;
        self.apply_lifecycle(intent);
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
    /// this is on its way asks for another look.
    pub fn begin_sync(&mut self) -> SyncRequestsInput {
        let r = &mut self.carried.requests;
        r.look_due = false;
        SyncRequestsInput {
            campaign_id: self.carried.campaign_id,
            intent: r.unrecorded.clone(),
            rate: r.rate_unrecorded.then_some(r.rate),
        }
    }

    /// The row's requests after [`Self::begin_sync`]'s input was appended to them. With
    /// no bare request left to append, the row's newest request is the last word: the
    /// workflow follows it, even one it had read before but set aside for a bare request
    /// that the row then refused (a pause after a cancel).
    pub fn end_sync(&mut self, sent: &SyncRequestsInput, stored: LedgerRequests) {
        let r = &mut self.carried.requests;
        // Appended, unless another bare request came meanwhile (it is appended next).
        if sent.intent.is_some() && r.unrecorded == sent.intent {
            r.unrecorded = None;
        }
        if sent.rate.is_some() && r.rate_unrecorded && sent.rate == Some(r.rate) {
            r.rate_unrecorded = false;
        }
        if sent.intent.is_some() && stored.requested.seq >= r.applied.seq {
            r.applied.seq = stored.requested.seq - 1;
        }
        if sent.rate.is_some() && stored.rate_seq >= r.rate_seq {
            r.rate_seq = stored.rate_seq - 1;
        }
        self.observe_ledger(stored);
    }

    /// Follow the row's requests where they are newer than any the workflow knows and no
    /// bare request waits to be appended after them.
    pub(super) fn observe_ledger(&mut self, stored: LedgerRequests) {
        self.observe_request(stored.requested);
        let r = &mut self.carried.requests;
        if stored.rate_seq > r.rate_seq {
            r.rate_seq = stored.rate_seq;
            if !r.rate_unrecorded {
                self.set_rate(stored.rate);
            }
        }
    }

    /// Follow the row's newest pause, resume or cancel if it is newer than any known.
    pub(super) fn observe_request(&mut self, stored: Requested) {
        let r = &mut self.carried.requests;
        if stored.seq <= r.applied.seq {
            return;
        }
        r.applied = stored.clone();
        if r.unrecorded.is_none() && self.accepts(stored.intent) {
            self.apply_intent(stored.intent, stored.reason);
        }
    }
}
