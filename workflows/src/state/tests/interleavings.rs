//! The property: any interleaving of bare and CLI requests, page commits, failures, claims
//! and steps ends as the last request asked.

use herald_wire::{
    CampaignStatus, Deliveries, Intent, LaneActivity, LedgerRequests, Lifecycle, PageOutcome,
    Requested, SignalRequest,
};
use proptest::prelude::*;

use super::{append, record, running, sync_with};
use crate::state::{CampaignState, FailureKind, Step};

/// What can happen to a campaign, in any order.
#[derive(Clone, Debug)]
enum Happening {
    Bare(Intent),
    /// Herald's CLI records a request in the row and sends `herald.apply` (or, when no
    /// worker answers, signals `herald.requests`).
    Cli(Intent, bool),
    /// A look at the row starts (if one is due and none is on its way).
    SyncStart,
    /// The look on its way reaches the row (appends, reads).
    SyncWrite,
    /// The look's answer comes back to the workflow.
    SyncEnd,
    /// A page in flight on this lane commits.
    Commit(usize),
    /// A page in flight on this lane fails.
    Fail(usize, bool),
    /// A page in flight on this lane runs past its statement timeout.
    TooSlow(usize),
    /// The lanes claim pages (if they may).
    Claim,
    /// The loop takes its next step if the lanes are idle.
    Step,
    /// The workflow task completes: what the workflow did so far is in the history.
    TaskDone,
    /// The workflow task fails (a continue-as-new refused because signals came, a worker
    /// lost): Temporal runs it again from the last completed task, delivering the signals
    /// that came since, and its looks run again, while what they wrote to the row stays.
    TaskLost,
}

/// A signal that a lost task's rerun is delivered again.
#[derive(Clone, Debug)]
enum Delivered {
    Bare(Intent, Option<String>),
    Requests,
}

fn happening() -> impl Strategy<Value = Happening> {
    let intent = prop_oneof![Just(Intent::Run), Just(Intent::Pause), Just(Intent::Cancel)];
    prop_oneof![
        1 => intent.clone().prop_map(Happening::Bare),
        1 => (intent, any::<bool>()).prop_map(|(i, update)| Happening::Cli(i, update)),
        1 => Just(Happening::SyncStart),
        1 => Just(Happening::SyncWrite),
        1 => Just(Happening::SyncEnd),
        // Pages come and go more often than requests, so that lanes finish.
        4 => (0..2usize).prop_map(Happening::Commit),
        1 => (0..2usize, any::<bool>()).prop_map(|(l, p)| Happening::Fail(l, p)),
        1 => (0..2usize).prop_map(Happening::TooSlow),
        4 => Just(Happening::Claim),
        2 => Just(Happening::Step),
        1 => Just(Happening::TaskDone),
        1 => Just(Happening::TaskLost),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any interleaving of requests, page results and failures: the campaign ends in the
    /// state the last request asked for, no cursor moves without a committed page, nothing
    /// runs again after a cancel, and the carried state stays small.
    #[test]
    fn any_interleaving_ends_as_the_last_request_asked(
        happenings in proptest::collection::vec(happening(), 1..120),
        every in prop_oneof![Just(1i64), Just(3), Just(7), Just(23), Just(97)],
        took_ms in prop_oneof![Just(None), Just(Some(1u32)), Just(Some(300)), Just(Some(2_000))],
    ) {
        let mut s = running();
        // Pages of 20 in two lanes of 100 ids, to an audience of every `every`th user: pages
        // that fill up, pages that end at their scan, lanes that end.
        s.spec.page_size = herald_wire::PageSize::new(20).unwrap();
        for (i, lane) in s.carried.lanes.iter_mut().enumerate() {
            (lane.cursor.after, lane.cursor.until) = (i as i64 * 100, (i as i64 + 1) * 100);
        }
        // A grace a few steps long, so that permanent failures fail the campaign.
        s.tuning.failure_grace_secs = 1;
        let mut row = LedgerRequests::default();
        let mut last: Option<Intent> = None;
        let mut cancelled = false;
        let mut now = 0i64;
        let mut committed = [0i64; 2];
        // A look on its way: what it sent, and the row it read once it got there.
        let mut syncing: Option<(herald_wire::SyncRequestsInput, Option<LedgerRequests>)> = None;
        // Requests made so far, and the CLI's updates not yet answered: (ticket, the
        // number recorded, the intent, requests made before it).
        let mut requests = 0u32;
        let mut waiting: Vec<(u64, i64, Intent, u32)> = Vec::new();
        // The state as of the last completed task and the signals since; `None` once the
        // workflow has done more than take signals and look at the row since.
        let mut task: Option<(CampaignState, Vec<Delivered>)> = Some((s.clone(), Vec::new()));
        let mut last_reason: Option<String> = None;
        for h in happenings {
            now += 100;
            let lanes_before: Vec<_> = s.carried.lanes.iter().map(|l| l.cursor).collect();
            match h {
                Happening::Bare(intent) => {
                    requests += 1;
                    let reason = Some(format!("request {requests}"));
                    s.on_signal(intent, SignalRequest { reason: reason.clone() });
                    if let Some((_, delivered)) = &mut task {
                        delivered.push(Delivered::Bare(intent, reason.clone()));
                    }
                    if !cancelled && !(intent == Intent::Pause && matches!(s.lifecycle(), Lifecycle::Failed { .. })) {
                        last = Some(intent);
                        last_reason = reason;
                    }
                    if intent == Intent::Cancel { cancelled = true; }
                }
                Happening::Cli(intent, update) => {
                    // The CLI refuses anything but a cancel once a cancel is in the row.
                    if row.requested.intent == Intent::Cancel && intent != Intent::Cancel { continue; }
                    // It refuses to pause a failed campaign: it is already still.
                    if intent == Intent::Pause && s.status == CampaignStatus::Failed { continue; }
                    // Recorded, then told: it overtakes any bare request that came before
                    // it and is not yet appended.
                    requests += 1;
                    let reason = Some(format!("request {requests}"));
                    row.requested = Requested { intent, seq: row.requested.seq + 1, reason: reason.clone() };
                    row.token = None;
                    // A cancel the workflow has taken is final, whatever comes after it. A
                    // pause does nothing to a failed campaign, unless a look on its way has
                    // read a resume the workflow has not seen, which will take it out of
                    // its failure first.
                    let resume_on_its_way = matches!(&syncing, Some((_, Some(read)))
                        if read.requested.intent == Intent::Run
                            && read.requested.seq > s.carried.requests.applied.seq);
                    let takes = !cancelled
                        && !(intent == Intent::Pause
                            && matches!(s.lifecycle(), Lifecycle::Failed { .. })
                            && !resume_on_its_way);
                    if update {
                        let asked = herald_wire::RecordedRequests { seq: row.requested.seq, rate_seq: 0 };
                        let ticket = s.on_requests_update(asked);
                        // One that cannot take effect is answered all the same.
                        let made = if takes { requests } else { 0 };
                        waiting.push((ticket, row.requested.seq, intent, made));
                        task = None;
                    } else {
                        s.on_requests_signal();
                        if let Some((_, delivered)) = &mut task {
                            delivered.push(Delivered::Requests);
                        }
                    }
                    if takes {
                        last = Some(intent);
                        last_reason = reason;
                    }
                    if intent == Intent::Cancel { cancelled = true; }
                }
                Happening::SyncStart => if syncing.is_none() && s.sync_due() {
                    syncing = Some((s.begin_sync(), None));
                }
                Happening::SyncWrite => if let Some((sent, read @ None)) = &mut syncing {
                    append(sent, &mut row);
                    *read = Some(row.clone());
                }
                Happening::SyncEnd => if let Some((sent, Some(read))) = &syncing {
                    s.end_sync(sent, read.clone());
                    syncing = None;
                }
                Happening::Commit(lane) if row.requested.intent != Intent::Run => {
                    // The page statement's gate: the row asks the campaign to stand still.
                    if matches!(s.carried.lanes[lane].turn.activity, LaneActivity::Paging { .. }) {
                        task = None;
                        s.apply_page(lane, PageOutcome::Halted {
                            status: CampaignStatus::InProgress,
                            requested: row.requested.clone(),
                        }, now);
                    }
                }
                Happening::Commit(lane) => {
                    if let LaneActivity::Paging { limit } = s.carried.lanes[lane].turn.activity {
                        task = None;
                        let l = s.carried.lanes[lane];
                        let end = (l.cursor.after + l.scan as i64).min(l.cursor.until);
                        let found: Vec<i64> = (l.cursor.after + 1..=end)
                            .filter(|id| id % every == 0)
                            .take(limit as usize)
                            .collect();
                        let n = found.len() as u32;
                        let scanned_to = if n == limit { found.last().copied() } else { Some(end) };
                        s.apply_page(lane, PageOutcome::Written {
                            last: found.last().copied(), recipients: n, limit: Some(limit),
                            sent: n, failed: 0, suppressed: 0, scanned_to, took_ms,
                            deliveries: Deliveries::default(),
                        }, now);
                        committed[lane] += i64::from(n);
                    }
                }
                Happening::Fail(lane, permanent) => {
                    if matches!(s.carried.lanes[lane].turn.activity, LaneActivity::Paging { .. }) {
                        task = None;
                        let kind = if permanent { FailureKind::Permanent } else { FailureKind::Transient };
                        s.page_failed(lane, kind, "boom", now);
                    }
                }
                Happening::TooSlow(lane) => {
                    if matches!(s.carried.lanes[lane].turn.activity, LaneActivity::Paging { .. }) {
                        task = None;
                        s.page_failed(lane, FailureKind::TooSlow, "statement timeout", now);
                    }
                }
                Happening::Claim => {
                    if s.lifecycle() == Lifecycle::Cancelling {
                        prop_assert!(!s.may_claim(), "a page may start after a cancel");
                    }
                    if s.may_claim() {
                        task = None;
                        s.rest = None;
                        s.claim_idle_lanes(now);
                    }
                }
                Happening::Step => {
                    if s.lanes_idle() && !s.sync_due() && syncing.is_none() {
                        task = None;
                        match s.next_step(false, now) {
                            Step::Record { status, .. } => record(&mut s, status),
                            Step::Finish(_) => break,
                            _ => {}
                        }
                    }
                }
                Happening::TaskDone => if syncing.is_none() {
                    task = Some((s.clone(), Vec::new()));
                }
                Happening::TaskLost => if let Some((done, delivered)) = &task {
                    s = done.clone();
                    syncing = None;
                    for d in delivered.clone() {
                        match d {
                            Delivered::Bare(intent, reason) => s.on_signal(intent, SignalRequest { reason }),
                            Delivered::Requests => s.on_requests_signal(),
                        }
                    }
                }
            }
            // An update is answered once the row is read and the workflow settled; the
            // answer then holds what it asked, unless a later request overtook it.
            let mut answered = Vec::new();
            for (i, &(ticket, seq, intent, made)) in waiting.iter().enumerate() {
                if !(s.looked_since(ticket) && s.settled()) { continue; }
                answered.push(i);
                let asked = herald_wire::RecordedRequests { seq, rate_seq: 0 };
                prop_assert_eq!(s.check_recorded(asked), Ok(()));
                prop_assert!(s.carried.requests.applied.seq >= seq);
                if made != requests || s.lanes_done() { continue; }
                let l = s.lifecycle();
                match intent {
                    Intent::Pause => {
                        prop_assert!(l.is_held(), "a pause answered while {:?}", l);
                        prop_assert!(s.lanes_idle(), "a pause answered with a page in flight");
                        prop_assert!(matches!(s.status, CampaignStatus::Paused | CampaignStatus::Failed));
                    }
                    Intent::Cancel => prop_assert!(false, "a cancel answered before the run ended"),
                    // Running, unless its pages have failed for good since it was taken
                    // (the answer then says so).
                    Intent::Run if matches!(l, Lifecycle::Failed { .. }) => {
                        prop_assert_eq!(s.status, CampaignStatus::Failed);
                    }
                    Intent::Run => {
                        prop_assert_eq!(l, Lifecycle::Running);
                        prop_assert_eq!(s.status, CampaignStatus::InProgress);
                    }
                }
            }
            for i in answered.into_iter().rev() { waiting.remove(i); }
            // No cursor moves but by a committed page.
            for (i, l) in s.carried.lanes.iter().enumerate() {
                prop_assert!(l.cursor.after >= lanes_before[i].after);
                prop_assert_eq!(l.cursor.sent, committed[i]);
            }
            prop_assert!(serde_json::to_vec(&s.carried).unwrap().len() < 2_048);
        }
        // Settle: pages in flight return, the row is read, statuses are written.
        for lane in 0..2 {
            if matches!(s.carried.lanes[lane].turn.activity, LaneActivity::Paging { .. }) {
                s.page_failed(lane, FailureKind::Transient, "settling", now);
            }
        }
        if let Some((sent, read)) = syncing.take() {
            let read = read.unwrap_or_else(|| { append(&sent, &mut row); row.clone() });
            s.end_sync(&sent, read);
        }
        // Every look asked for is served, and every bare request appended (one that came
        // after an unread `herald.requests` takes two looks).
        while s.sync_due() { sync_with(&mut s, &mut row); }
        let ended = loop {
            match s.next_step(false, now) {
                Step::Record { status, .. } => record(&mut s, status),
                Step::Finish(status) => break Some(status),
                _ => break None,
            }
        };
        // Every update waiting is answered: a finished run answers all (`closing`), and
        // otherwise the row is read and the workflow settled.
        if ended.is_none() {
            for &(ticket, _, intent, _) in &waiting {
                if intent == Intent::Cancel { continue; } // a cancel that did not take
                prop_assert!(s.looked_since(ticket), "an update's look never came");
                prop_assert!(s.settled(), "settled yet not answerable: {:?}", s.lifecycle());
            }
        }
        let failed = matches!(s.lifecycle(), Lifecycle::Failed { .. });
        match last {
            Some(Intent::Cancel) => prop_assert_eq!(ended, Some(CampaignStatus::Cancelled)),
            // Every recipient has had their page: nothing is left for a pause to hold.
            _ if s.lanes_done() => {
                prop_assert_eq!(ended, Some(CampaignStatus::Completed));
                // Nobody skipped, nobody twice.
                prop_assert_eq!(committed.iter().sum::<i64>(), 200 / every);
            }
            Some(Intent::Pause) if !failed => {
                prop_assert_eq!(s.lifecycle(), Lifecycle::Paused { started: true });
                prop_assert_eq!(s.status, CampaignStatus::Paused);
            }
            _ if failed => prop_assert_eq!(s.status, CampaignStatus::Failed),
            _ => {
                prop_assert_eq!(s.lifecycle(), Lifecycle::Running);
                prop_assert!(s.may_claim() || s.lanes_done());
            }
        }
        // The row agrees: its newest request is what the workflow follows, and it is the
        // last request, with its reason (a cancel's reason is the first cancel's).
        prop_assert_eq!(&s.carried.requests.applied, &row.requested);
        if last.is_some_and(|l| l != Intent::Cancel) && !failed {
            prop_assert_eq!(&row.requested.reason, &last_reason);
        }
        prop_assert!(s.carried.requests.unrecorded.is_none());
    }
}
