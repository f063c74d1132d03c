//! The campaign's rules, as tables and properties over [`CampaignState`].

use super::*;
use herald_wire::{
    BareRequest, CampaignInput, CampaignKey, CampaignSpec, CampaignStatus, Content, Deliveries,
    Intent, LaneActivity, LedgerRequests, Lifecycle, PageOutcome, Rate, Registered, Requested,
    SignalRequest, StatusRecorded, Tuning,
};

mod interleavings;

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
            segment: None,
            send_at: None,
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
        }
    }
    if let Some(rate) = sent.rate {
        row.rate = rate;
        row.rate_seq += 1;
    }
}

#[test]
fn every_bare_request_in_every_lifecycle() {
    use Intent::*;
    use Lifecycle::*;
    #[rustfmt::skip]
    let table = [
        // (in, request, out, appended to the ledger)
        (Scheduled, Pause, Paused { started: false }, true),
        (Scheduled, Run, Scheduled, true),
        (Scheduled, Cancel, Cancelling, true),
        (Running, Pause, Paused { started: true }, true),
        (Running, Run, Running, true),
        (Running, Cancel, Cancelling, true),
        (Paused { started: false }, Run, Scheduled, true),
        (Paused { started: true }, Run, Running, true),
        (Paused { started: true }, Pause, Paused { started: true }, true),
        (Paused { started: true }, Cancel, Cancelling, true),
        // A failed campaign is already still: a pause changes nothing, its reason stays.
        (Failed { started: true }, Pause, Failed { started: true }, false),
        (Failed { started: true }, Run, Running, true),
        (Failed { started: false }, Run, Scheduled, true),
        (Failed { started: true }, Cancel, Cancelling, true),
        // A cancel is final.
        (Cancelling, Pause, Cancelling, false),
        (Cancelling, Run, Cancelling, false),
        (Cancelling, Cancel, Cancelling, false),
    ];
    for (from, intent, to, appended) in table {
        let mut s = with(from);
        s.carried.reason = Some("before".into());
        s.on_signal(intent, bare("asked"));
        assert_eq!(s.lifecycle(), to, "{intent:?} in {from:?}");
        assert_eq!(
            s.carried.requests.unrecorded.is_some(),
            appended,
            "{intent:?} in {from:?}"
        );
        let reason = if appended { "asked" } else { "before" };
        assert_eq!(
            s.carried.reason.as_deref(),
            Some(reason),
            "{intent:?} in {from:?}"
        );
    }
}

#[test]
fn a_forged_request_number_carries_no_authority() {
    let mut s = running();
    let mut row = ledger(Intent::Run, 1);
    s.observe_ledger(row.clone());
    // `temporal workflow signal --name pause --input '{"seq": 1000000}'`
    let forged = SignalRequest::from_payload(Some(b"json/plain"), br#"{"seq":1000000}"#);
    s.on_signal(Intent::Pause, forged);
    sync_with(&mut s, &mut row);
    assert_eq!(
        row.requested.seq, 2,
        "appended as the next request, not as 1,000,000"
    );
    assert_eq!(s.carried.requests.applied.seq, 2);
    // The CLI's cancel, recorded as 3 and read from the row, is obeyed.
    row.requested = Requested {
        intent: Intent::Cancel,
        seq: 3,
        reason: None,
    };
    s.on_requests_signal();
    sync_with(&mut s, &mut row);
    assert_eq!(s.lifecycle(), Lifecycle::Cancelling);
    assert_eq!(
        s.next_step(false, 0),
        Step::Finish(CampaignStatus::Cancelled)
    );
}

#[test]
fn a_request_recorded_after_a_bare_one_arrived_wins() {
    // The CLI's resume is recorded (5) after the bare pause arrived, and a page reports it
    // before the pause is appended: the pause is not appended over it.
    let mut s = running();
    let mut row = ledger(Intent::Run, 4);
    s.observe_ledger(row.clone());
    s.on_signal(Intent::Pause, bare("web UI"));
    row.requested = Requested {
        intent: Intent::Run,
        seq: 5,
        reason: None,
    };
    s.carried.lanes[0].turn.activity = LaneActivity::Paging { limit: 500 };
    s.apply_page(
        0,
        PageOutcome::Halted {
            status: CampaignStatus::InProgress,
            requested: row.requested.clone(),
        },
        0,
    );
    assert_eq!(s.lifecycle(), Lifecycle::Paused { started: true });
    assert!(
        !s.may_claim(),
        "no page starts before the bare pause is settled"
    );
    sync_with(&mut s, &mut row);
    assert_eq!(row.requested.seq, 5, "not appended over the newer resume");
    assert_eq!(s.lifecycle(), Lifecycle::Running);

    // The same, with the CLI's `herald.requests` arriving before the pause is appended.
    let mut s = running();
    let mut row = ledger(Intent::Run, 4);
    s.observe_ledger(row.clone());
    s.on_signal(Intent::Pause, bare("web UI"));
    row.requested.seq = 5;
    s.on_requests_signal();
    sync_with(&mut s, &mut row);
    assert_eq!(row.requested.seq, 5);
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    assert!(!s.sync_due());
}

#[test]
fn a_bare_request_after_an_unread_cli_request_is_appended_over_it() {
    // `herald pause` recorded 5 and signalled; a bare resume arrives before the workflow has
    // read the row: the resume came later, and is appended after the pause.
    let mut s = running();
    let mut row = ledger(Intent::Run, 4);
    s.observe_ledger(row.clone());
    row.requested = Requested {
        intent: Intent::Pause,
        seq: 5,
        reason: None,
    };
    s.on_requests_signal();
    s.on_signal(Intent::Run, bare("go on"));
    sync_with(&mut s, &mut row); // reads the row
    assert!(s.sync_due(), "the resume is still to be appended");
    sync_with(&mut s, &mut row);
    assert_eq!((row.requested.intent, row.requested.seq), (Intent::Run, 6));
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    assert!(!s.sync_due());
}

#[test]
fn a_bare_request_that_arrives_while_one_is_appended_comes_after_it() {
    // A bare pause is on its way to the row when a bare resume arrives: the resume is the
    // operator's last word, and is appended after the pause (150 such pairs once ended
    // paused, the resume refused as stale).
    let mut s = running();
    let mut row = ledger(Intent::Run, 4);
    s.observe_ledger(row.clone());
    s.on_signal(Intent::Pause, bare("one"));
    let sent = s.begin_sync();
    s.on_signal(Intent::Run, bare("two"));
    append(&sent, &mut row);
    s.end_sync(&sent, row.clone());
    assert_eq!(
        (row.requested.intent, row.requested.seq),
        (Intent::Pause, 5)
    );
    assert!(s.sync_due(), "the resume is still to be appended");
    // A look that starts after it arrived, then the append over what it read.
    sync_with(&mut s, &mut row);
    sync_with(&mut s, &mut row);
    assert_eq!((row.requested.intent, row.requested.seq), (Intent::Run, 6));
    assert_eq!(row.requested.reason.as_deref(), Some("two"));
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    assert!(!s.sync_due());
}

#[test]
fn a_new_reason_with_a_repeated_request_is_followed() {
    let mut s = with(Lifecycle::Paused { started: true });
    s.observe_ledger(ledger(Intent::Pause, 3));
    let mut again = ledger(Intent::Pause, 3);
    again.requested.reason = Some("still a typo".into());
    s.observe_ledger(again);
    assert_eq!(s.carried.reason.as_deref(), Some("still a typo"));
    assert!(s.reason_changed);
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
    });
    // The start's status write is on its way when a pause arrives.
    s.on_signal(Intent::Pause, SignalRequest::default());
    record(&mut s, InProgress);
    assert_eq!(s.lifecycle(), Lifecycle::Paused { started: true });
    s.on_signal(Intent::Run, SignalRequest::default());
    assert_eq!(s.lifecycle(), Lifecycle::Running, "not back to not started");
}

#[test]
fn a_request_read_from_the_row_is_followed_only_when_newer() {
    let mut s = with(Lifecycle::Paused { started: true });
    s.observe_ledger(ledger(Intent::Pause, 3));
    s.observe_ledger(ledger(Intent::Run, 2));
    assert_eq!(
        s.lifecycle(),
        Lifecycle::Paused { started: true },
        "older: ignored"
    );
    s.observe_ledger(ledger(Intent::Run, 4));
    assert_eq!(s.lifecycle(), Lifecycle::Running);
    // A page that read the row before the resume tries again later; it moves nothing.
    s.carried.lanes[1].turn.activity = LaneActivity::Paging { limit: 500 };
    let before = s.carried.lanes[1].cursor;
    s.apply_page(
        1,
        PageOutcome::Halted {
            status: CampaignStatus::InProgress,
            requested: ledger(Intent::Pause, 3).requested,
        },
        0,
    );
    assert_eq!(s.carried.lanes[1].cursor, before);
    assert_eq!(s.rest, Some(Rest::Backoff));
    assert_eq!(s.lifecycle(), Lifecycle::Running);
}

#[test]
fn repeating_the_current_request_changes_nothing() {
    let mut s = running();
    let mut row = ledger(Intent::Run, 0);
    s.on_signal(Intent::Pause, bare("typo"));
    sync_with(&mut s, &mut row);
    record(&mut s, CampaignStatus::Paused);
    assert_eq!(s.next_step(false, 0), Step::Wait { until_ms: None });
    let before = s.clone();
    for _ in 0..1_000 {
        s.on_signal(Intent::Pause, bare("typo"));
    }
    assert!(!s.sync_due(), "nothing to append");
    assert_eq!(s.carried, before.carried);
    assert_eq!(s.next_step(false, 0), Step::Wait { until_ms: None });
    // A new reason is a new request.
    s.on_signal(Intent::Pause, bare("still a typo"));
    assert!(s.sync_due());
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
fn a_rate_read_from_the_row_is_followed_unless_a_bare_one_waits() {
    let mut s = running();
    let r = |n| Some(Rate::new(n).unwrap());
    s.observe_ledger(LedgerRequests {
        rate: r(10),
        rate_seq: 1,
        ..Default::default()
    });
    assert_eq!(s.carried.requests.rate, r(10));
    assert!(s.rate_changed);
    s.on_rate_signal(r(20));
    s.observe_ledger(LedgerRequests {
        rate: r(30),
        rate_seq: 2,
        ..Default::default()
    });
    assert_eq!(
        s.carried.requests.rate,
        r(20),
        "the bare change is appended after"
    );
    let sent = s.begin_sync();
    assert_eq!(sent.rate, Some(r(20)));
    s.end_sync(
        &sent,
        LedgerRequests {
            rate: r(20),
            rate_seq: 3,
            ..Default::default()
        },
    );
    assert!(!s.carried.requests.rate_unrecorded);
    assert_eq!(s.carried.requests.rate_seq, 3);
}

#[test]
fn a_bare_request_is_recorded_with_its_reason() {
    let mut s = running();
    s.observe_ledger(ledger(Intent::Run, 2));
    s.on_signal(Intent::Cancel, bare("wrong audience"));
    assert_eq!(
        s.begin_sync().intent,
        Some(BareRequest {
            intent: Intent::Cancel,
            reason: Some("wrong audience".into()),
            seen_seq: 2,
            after_look: false,
        })
    );
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
            },
            herald_wire::LaneProgress {
                lane: 1,
                after: 1_400,
                done: false,
                pages: 1,
                sent: 400,
                failed: 0,
            },
        ],
    });
    let cursors: Vec<_> = s.carried.lanes.iter().map(|l| l.cursor).collect();
    assert_eq!((cursors[0].after, cursors[0].sent), (600, 600));
    assert_eq!((cursors[1].after, cursors[1].sent), (1_400, 400));
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

#[test]
fn a_front_end_is_answered_once_the_row_is_read_and_the_pause_taken() {
    use herald_wire::RecordedRequests;
    let mut s = running();
    let mut row = ledger(Intent::Run, 4);
    s.observe_ledger(row.clone());
    s.carried.lanes[0].turn.activity = LaneActivity::Paging { limit: 500 };

    // A look already on its way may have read the row before the pause was recorded: the
    // answer waits for the next one.
    let early = s.begin_sync();
    row.requested = Requested {
        intent: Intent::Pause,
        seq: 5,
        reason: None,
    };
    let ticket = s.on_requests_update(RecordedRequests {
        seq: 5,
        rate_seq: 0,
    });
    s.end_sync(&early, ledger(Intent::Run, 4));
    assert!(
        !s.looked_since(ticket),
        "answered from a look that began before it"
    );
    sync_with(&mut s, &mut row);
    assert!(s.looked_since(ticket));
    let asked = RecordedRequests {
        seq: 5,
        rate_seq: 0,
    };
    assert_eq!(s.check_recorded(asked), Ok(()));

    // Taken once the page in flight has returned and the status is written.
    assert_eq!(s.lifecycle(), Lifecycle::Paused { started: true });
    assert!(!s.settled(), "a page is still in flight");
    s.page_failed(0, FailureKind::Transient, "stopped", 0);
    assert!(!s.settled(), "the status is not written yet");
    record(&mut s, CampaignStatus::Paused);
    assert!(s.settled());
    let applied = s.applied();
    assert_eq!(applied.status, CampaignStatus::Paused);
    assert_eq!(applied.following, row.requested);
}

#[test]
fn a_number_the_row_never_gave_is_refused_and_changes_nothing() {
    use herald_wire::RecordedRequests;
    let mut s = running();
    let mut row = ledger(Intent::Run, 4);
    row.rate_seq = 2;
    s.observe_ledger(row.clone());
    // A bare pause waits to be appended: a number the row never gave does not drop it.
    s.on_signal(Intent::Pause, bare("web UI"));
    let before = s.carried.clone();
    let ticket = s.on_requests_update(RecordedRequests {
        seq: 1_000_000,
        rate_seq: 0,
    });
    assert_eq!(s.carried.requests.unrecorded, before.requests.unrecorded);
    sync_with(&mut s, &mut row);
    assert!(s.looked_since(ticket));
    assert_eq!(
        row.requested.intent,
        Intent::Pause,
        "the bare pause is appended"
    );
    assert_eq!(row.requested.seq, 5);
    for (seq, rate_seq) in [(1_000_000, 0), (0, 3), (6, 2)] {
        let refused = s.check_recorded(RecordedRequests { seq, rate_seq });
        assert!(refused.is_err(), "{seq}/{rate_seq} accepted");
    }
    assert_eq!(
        s.check_recorded(RecordedRequests {
            seq: 5,
            rate_seq: 2
        }),
        Ok(())
    );
    assert_eq!(s.carried.lifecycle, Lifecycle::Paused { started: true });
    assert_eq!(s.carried.requests.applied, row.requested);
}
