//! Operators' requests: bare signals, front ends' requests and their answers, and the row.

use herald_wire::{
    BareRequest, CampaignStatus, Intent, LaneActivity, LedgerRequests, Lifecycle, PageOutcome,
    Rate, Requested, SignalRequest,
};

use super::*;
use crate::state::FailureKind;

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

    // The same limit again writes nothing; while a front end's change waits to be read,
    // it is a newer request, and is appended after it.
    for _ in 0..1_000 {
        s.on_rate_signal(r(20));
    }
    assert!(!s.sync_due(), "nothing to append");
    s.on_requests_signal();
    s.on_rate_signal(r(20));
    assert!(s.carried.requests.rate_unrecorded);
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
            token: 0,
            own: false,
            replaces_from: 0,
        })
    );
}

/// Temporal runs a failed workflow task again, its looks included, while what a look wrote
/// to the row stays. A bare pause appended in the lost task, then replaced in the rerun by
/// a newer bare request, leaves the row a request newer than the one the newer request knew
/// of: it is the workflow's own, and the newer request is appended over it.
#[test]
fn a_bare_request_survives_the_look_of_a_lost_task() {
    let mut s = with(Lifecycle::Paused { started: true });
    let mut row = ledger(Intent::Pause, 141);
    s.observe_ledger(row.clone());
    let done = s.clone();

    s.on_signal(Intent::Pause, bare("typo"));
    sync_with(&mut s, &mut row);
    assert_eq!(row.requested.seq, 142);

    // The task is lost; in its rerun the newer signal comes before the look.
    let mut s = done;
    s.on_signal(Intent::Pause, bare("typo"));
    s.on_signal(Intent::Pause, bare("last"));
    while s.sync_due() {
        sync_with(&mut s, &mut row);
    }
    assert_eq!(row.requested.seq, 143);
    assert_eq!(row.requested.reason.as_deref(), Some("last"));
    assert_eq!(s.carried.requests.applied, row.requested);
    assert_eq!(s.carried.reason.as_deref(), Some("last"));

    // A front end's request in the row is never taken for the workflow's own.
    let mut s = with(Lifecycle::Running);
    let mut row = ledger(Intent::Run, 7);
    s.observe_ledger(row.clone());
    s.on_signal(Intent::Pause, bare("bare"));
    s.on_signal(Intent::Pause, bare("newer bare"));
    row.requested = Requested {
        intent: Intent::Run,
        seq: 8,
        reason: Some("front end".into()),
    };
    row.token = None;
    while s.sync_due() {
        sync_with(&mut s, &mut row);
    }
    assert_eq!(row.requested.seq, 8);
    assert_eq!(s.lifecycle(), Lifecycle::Running);
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
