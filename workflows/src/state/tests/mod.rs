//! The campaign's rules, as tables and properties over [`CampaignState`].

use super::*;
use herald_wire::{
    CampaignInput, CampaignKey, CampaignSpec, CampaignStatus, Content, Deliveries, Intent,
    LaneActivity, LedgerRequests, Lifecycle, PageOutcome, Registered, Requested, SignalRequest,
    StatusRecorded, Tuning,
};

mod interleavings;
mod requests;
mod waves;

const ALL_LIFECYCLES: [Lifecycle; 7] = [
    Lifecycle::Scheduled,
    Lifecycle::Running,
    Lifecycle::Paused { started: false },
    Lifecycle::Paused { started: true },
    Lifecycle::Failed { started: false },
    Lifecycle::Failed { started: true },
    Lifecycle::Cancelling,
];

fn input(tuning: Tuning) -> CampaignInput {
    CampaignInput {
        key: CampaignKey::parse("k").unwrap(),
        spec: CampaignSpec {
            content: Content::new("T", "B").unwrap(),
            channel: Default::default(),
            category: Default::default(),
            audience: None,
            send_at: None,
            send_at_local: None,
            fallback_timezone: None,
            past_zones: None,
            quiet_hours: None,
            frequency_cap: None,
            page_size: Default::default(),
            lanes: 2.try_into().unwrap(),
            execution: Default::default(),
            rate: None,
            webhook_url: None,
            attempts: None,
        },
        carried: None,
        tuning,
    }
}

/// A registered campaign of 2,000 recipients in two lanes, in progress.
fn running() -> CampaignState {
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&Registered {
        campaign_id: 7,
        total: 2_000,
        min_id: 1,
        max_id: 2_000,
        status: CampaignStatus::NotStarted,
        requests: LedgerRequests::default(),
        started: false,
        lanes: Vec::new(),
        waves: Vec::new(),
    });
    record(&mut s, CampaignStatus::InProgress);
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    s
}

fn record(s: &mut CampaignState, status: CampaignStatus) {
    s.on_status_recorded(
        status,
        StatusRecorded {
            status,
            sent: 0,
            failed: 0,
            suppressed: 0,
        },
    );
}

fn with(lifecycle: Lifecycle) -> CampaignState {
    let mut s = running();
    s.carried.lifecycle = lifecycle;
    s
}

fn bare(reason: &str) -> SignalRequest {
    SignalRequest {
        reason: Some(reason.to_owned()),
    }
}

fn ledger(intent: Intent, seq: i64) -> LedgerRequests {
    LedgerRequests {
        requested: Requested {
            intent,
            seq,
            reason: None,
        },
        ..Default::default()
    }
}

/// Square the state with a ledger that holds `row`, as `store::status::sync_requests` does:
/// a bare request is appended only over the request it knew of, and never over a cancel
/// unless it is one.
fn sync_with(s: &mut CampaignState, row: &mut LedgerRequests) {
    let sent = s.begin_sync();
    append(&sent, row);
    s.end_sync(&sent, row.clone());
}

/// What `store::status::sync_requests` does to the row with what a sync sent.
fn append(sent: &herald_wire::SyncRequestsInput, row: &mut LedgerRequests) {
    if let Some(b) = &sent.intent {
        let cancel = b.intent == Intent::Cancel;
        let final_cancel = row.requested.intent == Intent::Cancel && !cancel;
        if (row.requested.seq == b.seen_seq || cancel) && !final_cancel {
            row.requested = Requested {
                intent: b.intent,
                seq: row.requested.seq + 1,
                reason: b.reason.clone(),
            };
            row.token = Some(b.token);
        }
    }
    if let Some(rate) = sent.rate {
        row.rate = rate;
        row.rate_seq += 1;
    }
}

#[test]
fn a_start_written_while_a_pause_came_is_remembered() {
    use CampaignStatus::*;
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&Registered {
        campaign_id: 1,
        total: 10,
        min_id: 1,
        max_id: 10,
        status: NotStarted,
        requests: LedgerRequests::default(),
        started: false,
        lanes: Vec::new(),
        waves: Vec::new(),
    });
    // The start's status write is on its way when a pause arrives.
    s.on_signal(Intent::Pause, SignalRequest::default());
    record(&mut s, InProgress);
    assert_eq!(s.lifecycle(), Lifecycle::Paused { started: true });
    s.on_signal(Intent::Run, SignalRequest::default());
    assert_eq!(s.lifecycle(), Lifecycle::Running, "not back to not started");
}

#[test]
fn a_held_campaign_records_its_status_then_waits_then_hands_over() {
    use CampaignStatus::*;
    let mut s = running();
    s.on_signal(Intent::Pause, bare("x"));
    let mut row = LedgerRequests::default();
    sync_with(&mut s, &mut row);
    let step = s.next_step(false, 0);
    assert!(
        matches!(step, Step::Record { status: Paused, .. }),
        "{step:?}"
    );
    record(&mut s, Paused);
    assert_eq!(s.next_step(false, 0), Step::Wait { until_ms: None });
    assert_eq!(s.next_step(true, 0), Step::ContinueAsNew);
    // The next run starts where this one stood.
    let next = CampaignState::new(s.carry());
    assert_eq!(next.lifecycle(), Lifecycle::Paused { started: true });
    assert_eq!(next.status, Paused);
    assert_eq!(next.carried.run, s.carried.run + 1);
    assert_eq!(next.next_step(false, 0), Step::Wait { until_ms: None });
    // A resume: the status is written before any page.
    let mut s = next;
    s.on_signal(Intent::Run, SignalRequest::default());
    assert!(!s.may_claim());
    sync_with(&mut s, &mut row);
    assert!(!s.may_claim(), "not before the row says in progress");
    let step = s.next_step(false, 0);
    assert!(
        matches!(
            step,
            Step::Record {
                status: InProgress,
                ..
            }
        ),
        "{step:?}"
    );
    record(&mut s, InProgress);
    assert!(s.may_claim());
}

#[test]
fn a_scheduled_campaign_waits_for_its_send_time_and_holds_when_paused() {
    use CampaignStatus::*;
    let mut i = input(Tuning::default());
    let at = chrono::DateTime::from_timestamp_millis(1_000_000).unwrap();
    i.spec.send_at = Some(at);
    let mut s = CampaignState::new(i);
    s.register(&Registered {
        campaign_id: 1,
        total: 10,
        min_id: 1,
        max_id: 10,
        status: NotStarted,
        requests: LedgerRequests::default(),
        started: false,
        lanes: Vec::new(),
        waves: Vec::new(),
    });
    assert_eq!(
        s.next_step(false, 0),
        Step::Wait {
            until_ms: Some(1_000_000)
        }
    );
    assert_eq!(s.next_step(true, 0), Step::ContinueAsNew);
    s.on_signal(Intent::Pause, SignalRequest::default());
    let mut row = LedgerRequests::default();
    sync_with(&mut s, &mut row);
    assert!(matches!(
        s.next_step(false, 0),
        Step::Record { status: Paused, .. }
    ));
    record(&mut s, Paused);
    s.on_signal(Intent::Run, SignalRequest::default());
    sync_with(&mut s, &mut row);
    assert!(matches!(
        s.next_step(false, 0),
        Step::Record {
            status: NotStarted,
            ..
        }
    ));
    record(&mut s, NotStarted);
    let step = s.next_step(false, 1_000_000);
    assert!(matches!(step, Step::Record { status: InProgress, ref from } if from == &[NotStarted]));
    record(&mut s, InProgress);
    assert_eq!(s.lifecycle(), Lifecycle::Running);
}

#[test]
fn a_cursor_moves_only_with_a_committed_page() {
    let mut s = running();
    let (pages, _) = s.claim_idle_lanes(0);
    assert_eq!(pages.len(), 2);
    let before = s.carried.lanes[0].cursor;
    s.page_failed(0, FailureKind::Transient, "connection reset", 0);
    assert_eq!(s.carried.lanes[0].cursor, before);
    assert_eq!(s.rest, Some(Rest::Backoff));
    s.apply_page(
        1,
        PageOutcome::Written {
            last: Some(1_500),
            recipients: 500,
            limit: Some(500),
            sent: 500,
            failed: 0,
            suppressed: 0,
            scanned_to: Some(1_500),
            took_ms: Some(3),
            deliveries: Deliveries::default(),
        },
        0,
    );
    assert_eq!(s.carried.lanes[1].cursor.after, 1_500);
    assert_eq!(s.snapshot().sent, 500);
}

#[test]
fn a_permanent_failure_fails_the_campaign_after_its_grace() {
    let mut s = running();
    s.claim_idle_lanes(0);
    assert!(!s.page_failed(0, FailureKind::Permanent, "denied", 0));
    s.claim_idle_lanes(0);
    assert!(s.page_failed(0, FailureKind::Permanent, "denied", 30_000));
    assert_eq!(s.lifecycle(), Lifecycle::Failed { started: true });
    assert_eq!(s.carried.reason.as_deref(), Some("page failed: denied"));
    // A pause changes nothing; a resume tries again with a fresh grace.
    s.on_signal(Intent::Pause, bare("x"));
    assert_eq!(s.carried.reason.as_deref(), Some("page failed: denied"));
    s.on_signal(Intent::Run, SignalRequest::default());
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    assert_eq!(s.carried.trouble.failures, 0);
}

#[test]
fn every_lifecycle_survives_continue_as_new() {
    for l in ALL_LIFECYCLES {
        let mut s = with(l);
        s.carried.lanes[0].turn.activity = LaneActivity::Pacing;
        let next = CampaignState::new(s.carry());
        assert_eq!(next.lifecycle(), l);
        assert_eq!(next.carried.lanes[0].cursor, s.carried.lanes[0].cursor);
        assert_eq!(
            next.carried.lanes[0].turn.activity,
            LaneActivity::Idle,
            "a lane's turn lives within its run"
        );
        let json = serde_json::to_string(&s.carry()).unwrap();
        let back: CampaignInput = serde_json::from_str(&json).unwrap();
        assert_eq!(back.carried.unwrap().lifecycle, l);
    }
}

#[test]
fn a_run_started_afresh_goes_on_from_the_ledgers_lanes() {
    // The workflow was lost while the campaign was paused: lane 0 had committed pages up to
    // id 600, lane 1 had a page with pending recipients starting after id 1,400.
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&Registered {
        campaign_id: 7,
        total: 2_000,
        min_id: 1,
        max_id: 2_000,
        status: CampaignStatus::Paused,
        requests: ledger(Intent::Pause, 3),
        started: true,
        lanes: vec![
            herald_wire::LaneProgress {
                lane: 0,
                after: 600,
                done: false,
                pages: 2,
                sent: 600,
                failed: 0,
                suppressed: 0,
            },
            herald_wire::LaneProgress {
                lane: 1,
                after: 1_400,
                done: false,
                pages: 1,
                sent: 380,
                failed: 0,
                suppressed: 20,
            },
        ],
        waves: Vec::new(),
    });
    let cursors: Vec<_> = s.carried.lanes.iter().map(|l| l.cursor).collect();
    assert_eq!((cursors[0].after, cursors[0].sent), (600, 600));
    assert_eq!(
        (cursors[1].after, cursors[1].sent, cursors[1].suppressed),
        (1_400, 380, 20)
    );
    let p = s.snapshot();
    assert_eq!((p.sent, p.suppressed, p.pending), (980, 20, 1_000));
    assert_eq!(s.carried.pages_done, 3);
    assert_eq!(s.lifecycle(), Lifecycle::Paused { started: true });
    // Resumed, it sends again at once (it does not wait for a send time).
    s.on_signal(Intent::Run, SignalRequest::default());
    assert_eq!(s.lifecycle(), Lifecycle::Running);
}

#[test]
fn bookkeeping_that_fails_for_good_fails_the_campaign_until_a_resume() {
    let mut s = running();
    s.bookkeeping_failed(
        "recording status paused",
        "permission denied (SQLSTATE 42501)",
    );
    assert_eq!(s.lifecycle(), Lifecycle::Failed { started: true });
    assert!(s.carried.reason.as_deref().unwrap().contains("42501"));
    assert!(matches!(
        s.next_step(false, 0),
        Step::Record {
            status: CampaignStatus::Failed,
            ..
        }
    ));
    s.on_signal(Intent::Run, SignalRequest::default());
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    // A campaign being cancelled stays so: its end is tried again.
    let mut s = with(Lifecycle::Cancelling);
    s.bookkeeping_failed("finishing", "boom");
    assert_eq!(s.lifecycle(), Lifecycle::Cancelling);
    assert_eq!(
        s.next_step(false, 0),
        Step::Finish(CampaignStatus::Cancelled)
    );
}

/// A run that hands over in the middle of a failing status write (its history grew while it
/// retried) leaves the write to the next run, with the reason it was to carry.
#[test]
fn a_status_write_owed_at_hand_over_is_the_next_runs() {
    let mut s = running();
    s.on_signal(Intent::Pause, bare("grant lost"));
    s.carried.requests.unrecorded = None; // appended
    assert!(matches!(
        s.next_step(false, 0),
        Step::Record {
            status: CampaignStatus::Paused,
            ..
        }
    ));
    let mut next = CampaignState::new(s.carry());
    assert_eq!(
        next.status,
        CampaignStatus::InProgress,
        "the row's, as known"
    );
    assert!(matches!(
        next.next_step(false, 0),
        Step::Record {
            status: CampaignStatus::Paused,
            ..
        }
    ));
    record(&mut next, CampaignStatus::Paused);
    let after = CampaignState::new(next.carry());
    assert_eq!(after.status, CampaignStatus::Paused);
    assert!(!after.reason_changed);
}
