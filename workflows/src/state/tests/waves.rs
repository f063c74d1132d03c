//! A local-time campaign's waves: each opens on its time, one after the other, with lanes
//! numbered in a block of its own; a pause holds the waves still to open; a recovery goes on
//! from the ledger's pages in whichever wave they are.

use super::*;
use herald_wire::{LaneProgress, WAVE_LANES, WaveOpening};

const HOUR: i64 = 3_600_000;

/// 3,000 recipients in waves of 1,000 opening at 1 h, 2 h and 3 h.
fn registered(lanes: Vec<LaneProgress>, started: bool) -> Registered {
    Registered {
        campaign_id: 9,
        total: 3_000,
        min_id: 1,
        max_id: 3_000,
        status: if started {
            CampaignStatus::InProgress
        } else {
            CampaignStatus::NotStarted
        },
        requests: LedgerRequests::default(),
        started,
        lanes,
        waves: (1..=3)
            .map(|h| WaveOpening {
                opens_at_ms: h * HOUR,
                size: 1_000,
                quiet: Vec::new(),
            })
            .collect(),
    }
}

fn written(last: i64, sent: u32) -> PageOutcome {
    PageOutcome::Written {
        last: Some(last),
        recipients: sent,
        limit: Some(500),
        sent,
        failed: 0,
        suppressed: 0,
        scanned_to: Some(last),
        took_ms: Some(1),
        deliveries: Deliveries::default(),
    }
}

/// Walk every lane of the current wave to its end, each page sending `per_page`.
fn finish_wave(s: &mut CampaignState, now: i64, per_page: u32) -> Vec<u32> {
    let mut lanes_seen = Vec::new();
    while !s.lanes_done() {
        let (pages, _) = s.claim_idle_lanes(now);
        for (i, page) in pages {
            lanes_seen.push(page.lane);
            s.apply_page(i, written(page.until, per_page), now);
        }
    }
    lanes_seen
}

#[test]
fn waves_open_in_turn_each_on_its_own_lanes_and_the_counts_add_up() {
    use CampaignStatus::*;
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&registered(Vec::new(), false));
    // Scheduled until the first wave opens.
    assert_eq!(
        s.next_step(false, 0),
        Step::Wait {
            until_ms: Some(HOUR)
        }
    );
    assert!(matches!(
        s.next_step(false, HOUR),
        Step::Record {
            status: InProgress,
            ..
        }
    ));
    record(&mut s, InProgress);
    assert_eq!(finish_wave(&mut s, HOUR, 500), [0, 1]);
    // The first wave is done: wait for the second, which then opens on lanes 64 and 65.
    assert_eq!(
        s.next_step(false, HOUR + 5),
        Step::Wait {
            until_ms: Some(2 * HOUR)
        }
    );
    assert_eq!(s.next_step(true, HOUR + 5), Step::ContinueAsNew);
    assert_eq!(s.snapshot().next_wave_at_ms, Some(2 * HOUR));
    assert_eq!(s.next_step(false, 2 * HOUR), Step::OpenWave);
    s.open_next_wave();
    assert_eq!(s.snapshot().wave, 1);
    assert_eq!(
        finish_wave(&mut s, 2 * HOUR, 400),
        [WAVE_LANES, WAVE_LANES + 1]
    );
    assert_eq!(s.snapshot().sent, 1_000 + 800);
    // A late timer: the third wave opens at once.
    assert_eq!(s.next_step(false, 4 * HOUR), Step::OpenWave);
    s.open_next_wave();
    assert_eq!(s.next_wave_at(), None);
    assert_eq!(
        finish_wave(&mut s, 4 * HOUR, 500),
        [2 * WAVE_LANES, 2 * WAVE_LANES + 1]
    );
    assert_eq!(s.next_step(false, 4 * HOUR), Step::Finish(Completed));
    let p = s.snapshot();
    assert_eq!((p.sent, p.pending, p.wave, p.waves), (2_800, 200, 2, 3));
}

#[test]
fn a_pause_holds_the_waves_still_to_open_and_a_resume_opens_the_due_one() {
    use CampaignStatus::*;
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&registered(Vec::new(), false));
    record(&mut s, InProgress);
    finish_wave(&mut s, HOUR, 500);
    s.on_signal(Intent::Pause, SignalRequest::default());
    let mut row = LedgerRequests::default();
    sync_with(&mut s, &mut row);
    // Past the second wave's time, paused: it records the pause and waits for a request.
    assert!(matches!(
        s.next_step(false, 2 * HOUR),
        Step::Record { status: Paused, .. }
    ));
    record(&mut s, Paused);
    assert_eq!(
        s.next_step(false, 2 * HOUR + 1),
        Step::Wait { until_ms: None }
    );
    assert_eq!(s.carried.wave, 0, "no wave opens while paused");
    // A carried run keeps the plan.
    let mut s = CampaignState::new(s.carry());
    s.on_signal(Intent::Run, SignalRequest::default());
    sync_with(&mut s, &mut row);
    assert!(matches!(
        s.next_step(false, 2 * HOUR + 2),
        Step::Record {
            status: InProgress,
            ..
        }
    ));
    record(&mut s, InProgress);
    assert_eq!(s.next_step(false, 2 * HOUR + 2), Step::OpenWave);
    // A cancel while waiting for a wave ends the campaign.
    s.open_next_wave();
    finish_wave(&mut s, 2 * HOUR + 2, 500);
    s.on_signal(Intent::Cancel, SignalRequest::default());
    assert_eq!(s.next_step(false, 2 * HOUR + 3), Step::Finish(Cancelled));
}

#[test]
fn a_recovered_campaign_goes_on_from_the_ledger_in_every_wave() {
    let progress = |lane: u32, after: i64, done: bool| LaneProgress {
        lane,
        after,
        done,
        pages: 1,
        sent: 100,
        failed: 0,
        suppressed: 0,
    };
    // The first wave finished; the second had lane 64 done and lane 65 half way.
    let lanes = vec![
        progress(0, 1_500, true),
        progress(1, 3_000, true),
        progress(WAVE_LANES, 1_500, true),
        progress(WAVE_LANES + 1, 2_200, false),
    ];
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&registered(lanes, true));
    assert!(s.lanes_done());
    assert_eq!(s.carried.recovered.len(), 2, "kept for the second wave");
    assert_eq!(s.next_step(false, 3 * HOUR), Step::OpenWave);
    s.open_next_wave();
    let (pages, _) = s.claim_idle_lanes(3 * HOUR);
    assert_eq!(pages.len(), 1);
    assert_eq!((pages[0].1.lane, pages[0].1.after), (WAVE_LANES + 1, 2_200));
    assert!(s.carried.recovered.is_empty());
    assert_eq!(s.snapshot().sent, 400);
}

#[test]
fn quiet_hours_hold_a_wave_half_way_while_the_next_one_goes_on() {
    use CampaignStatus::*;
    let mut r = registered(Vec::new(), false);
    // The first wave's quiet hours run from 1 h 30 to 5 h.
    r.waves[0].quiet = vec![[HOUR + HOUR / 2, 5 * HOUR]];
    let mut s = CampaignState::new(input(Tuning::default()));
    s.register(&r);
    record(&mut s, InProgress);
    // One page per lane before the window.
    let (pages, _) = s.claim_idle_lanes(HOUR);
    for (i, page) in pages {
        s.apply_page(i, written(page.after + 500, 500), HOUR);
    }
    // Inside it: no page is claimed, and the wave is held until it ends.
    let quiet = HOUR + HOUR / 2;
    assert!(s.claim_idle_lanes(quiet).0.is_empty());
    assert_eq!(
        s.next_step(false, quiet),
        Step::ParkWave { until_ms: 5 * HOUR }
    );
    s.park_wave(5 * HOUR);
    assert_eq!(s.snapshot().sent, 1_000, "held lanes still count");
    // The second wave opens at 2 h, before the first is released.
    assert_eq!(
        s.next_step(false, quiet),
        Step::Wait {
            until_ms: Some(2 * HOUR)
        }
    );
    assert_eq!(s.next_step(false, 2 * HOUR), Step::OpenWave);
    s.open_next_wave();
    assert_eq!(s.carried.wave, 1);
    finish_wave(&mut s, 2 * HOUR, 500);
    // Then the third opens (3 h) before the first's release (5 h).
    assert_eq!(s.next_step(false, 3 * HOUR), Step::OpenWave);
    s.open_next_wave();
    assert_eq!(s.carried.wave, 2);
    finish_wave(&mut s, 3 * HOUR, 500);
    assert_eq!(
        s.next_step(false, 3 * HOUR),
        Step::Wait {
            until_ms: Some(5 * HOUR)
        }
    );
    // A carried run keeps the held wave.
    let mut s = CampaignState::new(s.carry());
    assert_eq!(s.next_step(false, 5 * HOUR), Step::OpenWave);
    s.open_next_wave();
    assert_eq!(s.carried.wave, 0);
    let (pages, _) = s.claim_idle_lanes(5 * HOUR);
    assert_eq!(pages.len(), 2);
    assert_eq!(
        pages[0].1.after, 500,
        "the held wave goes on from its cursor"
    );
    for (i, page) in pages {
        s.apply_page(i, written(page.until, 250), 5 * HOUR);
    }
    assert_eq!(s.next_step(false, 5 * HOUR), Step::Finish(Completed));
    assert_eq!(s.snapshot().sent, 1_000 + 500 + 2_000);
}

#[test]
fn a_send_time_waits_for_the_first_wave_when_quiet_hours_moved_it() {
    // Sent at 1 h, but quiet hours moved the only wave to 4 h.
    let mut i = input(Tuning::default());
    i.spec.send_at = chrono::DateTime::from_timestamp_millis(HOUR);
    let mut s = CampaignState::new(i);
    let mut r = registered(Vec::new(), false);
    r.waves.truncate(1);
    r.waves[0].opens_at_ms = 4 * HOUR;
    s.register(&r);
    assert_eq!(
        s.next_step(false, HOUR),
        Step::Wait {
            until_ms: Some(4 * HOUR)
        }
    );
}
