//! Pure paging arithmetic: how the audience is cut into lanes, how a committed page moves a
//! lane's cursor, how pages are paced and failures backed off, and when a run should hand
//! over to a fresh one. No SDK types here, so all
//! of it is tested directly.

use std::time::Duration;

use herald_wire::{Lane, LaneCursor, Trouble};

/// Cut the audience's id range `[min_id, max_id]` into at most `lanes` disjoint ranges of
/// about equal width. A small audience gets fewer lanes (one per page it needs) so that no
/// lane is scheduled just to find nothing.
pub fn split_lanes(
    min_id: i64,
    max_id: i64,
    total: i64,
    page_size: u32,
    lanes: u32,
) -> Vec<LaneCursor> {
    if total <= 0 || max_id < min_id {
        return Vec::new();
    }
    let pages_needed = (total as u64).div_ceil(page_size.max(1) as u64);
    let n = (lanes.max(1) as u64).min(pages_needed).max(1) as i64;
    // i128 keeps the arithmetic exact for any i64 ids.
    let span = (max_id as i128) - (min_id as i128) + 1;
    let width = (span + n as i128 - 1) / n as i128;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n as i128 {
        let after = min_id as i128 - 1 + i * width;
        if after >= max_id as i128 {
            break;
        }
        let until = (after + width).min(max_id as i128);
        out.push(LaneCursor {
            after: after as i64,
            until: until as i64,
            done: false,
            sent: 0,
            failed: 0,
            suppressed: 0,
        });
    }
    out
}

/// Move a lane past a committed page to `end`, where the page left the lane's cursor
/// ([`crate::scan::page_end`]); `None` or the lane's bound: nobody is left in the lane, and
/// it is done without asking the database again.
pub fn advance(lane: &mut LaneCursor, end: Option<i64>, counts: Counts) {
    match end {
        Some(end) if end < lane.until => lane.after = end,
        _ => {
            lane.after = lane.until;
            lane.done = true;
        }
    }
    // Each page is applied once (its cursor moves past it), and a page that ran twice
    // reports the outcome recorded by the attempt that committed, so these sums equal the
    // ledger's counts.
    lane.sent += i64::from(counts.sent);
    lane.failed += i64::from(counts.failed);
    lane.suppressed += i64::from(counts.suppressed);
}

/// A page's recipients by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u32,
    pub failed: u32,
    pub suppressed: u32,
}

/// A campaign's committed recipients by outcome (the carried sum of closed waves is one).
pub use herald_wire::WaveTotals as Totals;

/// Sum of lanes' committed counters.
pub fn sum<'a>(cursors: impl IntoIterator<Item = &'a LaneCursor>) -> Totals {
    cursors.into_iter().fold(Totals::default(), |t, l| Totals {
        sent: t.sent + l.sent,
        failed: t.failed + l.failed,
        suppressed: t.suppressed + l.suppressed,
    })
}

/// Sum of the lanes' committed counters.
pub fn totals(lanes: &[Lane]) -> Totals {
    sum(lanes.iter().map(|l| &l.cursor))
}

/// How a paced campaign's lanes cut and space their pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Recipients per page.
    pub limit: u32,
    /// How long from the start of one page of a lane to the start of its next; zero when
    /// the campaign has no rate.
    pub interval: Duration,
}

/// A paced lane sends about one page per this long: at a slow rate pages shrink instead of
/// sending a full page at once and then waiting minutes.
pub const PACED_PAGE_EVERY: Duration = Duration::from_secs(1);

/// Pages for `lanes` lanes of at most `page_size` recipients that keep the whole campaign at
/// or under `rate` recipients per second. Any rate of at least 1/s works: the smallest page
/// is one recipient, and its interval grows as the rate falls.
pub fn pace(rate: Option<u32>, page_size: u32, lanes: usize) -> Pace {
    let page_size = page_size.max(1);
    let Some(rate) = rate.filter(|r| *r > 0) else {
        return Pace {
            limit: page_size,
            interval: Duration::ZERO,
        };
    };
    let lanes = lanes.max(1) as u64;
    let per_lane_per_tick = u64::from(rate) * PACED_PAGE_EVERY.as_millis() as u64 / 1000 / lanes;
    let limit = per_lane_per_tick.clamp(1, u64::from(page_size));
    let interval_ms = (limit * lanes * 1000).div_ceil(u64::from(rate));
    Pace {
        limit: limit as u32,
        interval: Duration::from_millis(interval_ms),
    }
}

/// The wait before trying again after `failures` failures in a row: 1 s, doubling, at most
/// `max`. Waiting on a durable timer costs a handful of history events per try, so even a
/// day-long outage stays well inside a run's history budget.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(max)
}

/// Count a failure at `now_ms`. Returns whether the campaign should give up: a permanent
/// error, retried since its first occurrence in this run of failures for `grace`.
/// Transient failures never give up.
pub fn record_failure(
    trouble: &mut Trouble,
    permanent: bool,
    now_ms: i64,
    grace: Duration,
) -> bool {
    trouble.failures = trouble.failures.saturating_add(1);
    if !permanent {
        return false;
    }
    let since = *trouble.permanent_since_ms.get_or_insert(now_ms);
    now_ms.saturating_sub(since) >= grace.as_millis() as i64
}

/// Temporal warns at 10,240 events per run and fails at 51,200. Herald hands over well
/// before the warning (`Tuning::history_events`), whichever of these comes first.
pub const HISTORY_EVENTS_SOFT_LIMIT: u32 = herald_wire::Tuning::DEFAULT_HISTORY_EVENTS;

pub fn should_continue_as_new(
    pages_this_run: u32,
    pages_per_run: u32,
    history_length: u32,
    history_limit: u32,
    server_suggests: bool,
) -> bool {
    pages_this_run >= pages_per_run.max(1)
        || history_length >= history_limit.max(1)
        || server_suggests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: u32, failed: u32) -> Counts {
        Counts {
            sent,
            failed,
            suppressed: 0,
        }
    }

    fn ranges(lanes: &[LaneCursor]) -> Vec<(i64, i64)> {
        lanes.iter().map(|l| (l.after, l.until)).collect()
    }

    #[test]
    fn lanes_cover_the_range_exactly_once() {
        for (min, max, total, page, n) in [
            (1, 1_000_000, 1_000_000, 500, 4),
            (1, 10, 10, 500, 4),
            (5, 1_003, 999, 100, 3),
            (1, 7, 7, 1, 8),
            (i64::MAX - 10, i64::MAX, 11, 1, 4),
            (1, 100, 3, 500, 8),
        ] {
            let lanes = split_lanes(min, max, total, page, n);
            assert!(!lanes.is_empty());
            assert!(lanes.len() <= n as usize);
            assert_eq!(lanes[0].after, min - 1);
            assert_eq!(lanes.last().unwrap().until, max);
            for w in lanes.windows(2) {
                assert_eq!(
                    w[0].until,
                    w[1].after,
                    "adjacent, disjoint: {:?}",
                    ranges(&lanes)
                );
            }
            for l in &lanes {
                assert!(l.after < l.until, "non-empty lane {:?}", ranges(&lanes));
            }
        }
    }

    #[test]
    fn small_audiences_get_fewer_lanes() {
        assert_eq!(split_lanes(1, 300, 300, 500, 8).len(), 1);
        assert_eq!(split_lanes(1, 1_200, 1_200, 500, 8).len(), 3);
        assert_eq!(split_lanes(1, 1_000_000, 1_000_000, 500, 8).len(), 8);
        assert!(split_lanes(1, 10, 0, 500, 4).is_empty());
        assert!(split_lanes(10, 1, 5, 500, 4).is_empty());
    }

    #[test]
    fn a_page_moves_the_cursor_to_where_it_ended() {
        let mut lane = split_lanes(1, 10_000, 10_000, 500, 1)[0];
        advance(&mut lane, Some(500), counts(500, 0));
        assert_eq!((lane.after, lane.done, lane.sent), (500, false, 500));
        advance(&mut lane, Some(4_000), counts(20, 0));
        assert_eq!((lane.after, lane.done, lane.sent), (4_000, false, 520));
    }

    #[test]
    fn a_page_ending_at_or_past_the_bound_ends_the_lane() {
        for end in [Some(10_000), Some(12_000), None] {
            let mut lane = split_lanes(1, 10_000, 10_000, 500, 1)[0];
            advance(&mut lane, end, counts(20, 0));
            assert!(lane.done);
            assert_eq!(lane.after, lane.until);
        }
    }

    #[test]
    fn counters_add_each_pages_outcome() {
        let mut a = split_lanes(1, 10_000, 10_000, 500, 2)[0];
        let mut b = split_lanes(1, 10_000, 10_000, 500, 2)[1];
        advance(&mut a, Some(500), counts(498, 2));
        advance(&mut a, Some(1_000), counts(500, 0));
        advance(&mut b, Some(5_500), counts(500, 0));
        assert_eq!(
            totals(&[a.into(), b.into()]),
            Totals {
                sent: 1_498,
                failed: 2,
                suppressed: 0
            }
        );
    }

    #[test]
    fn an_unpaced_campaign_sends_full_pages_at_once() {
        let p = pace(None, 500, 4);
        assert_eq!((p.limit, p.interval), (500, Duration::ZERO));
    }

    #[test]
    fn a_fast_rate_spaces_full_pages() {
        // 4 lanes × 500 recipients every 200 ms = 10,000/s.
        let p = pace(Some(10_000), 500, 4);
        assert_eq!((p.limit, p.interval), (500, Duration::from_millis(200)));
    }

    #[test]
    fn a_slow_rate_shrinks_pages_instead_of_bursting() {
        let p = pace(Some(300), 500, 4);
        assert_eq!((p.limit, p.interval), (75, Duration::from_secs(1)));
        // One recipient per lane, every four seconds: 1/s in all.
        let p = pace(Some(1), 500, 4);
        assert_eq!((p.limit, p.interval), (1, Duration::from_secs(4)));
        let p = pace(Some(7), 500, 4);
        assert_eq!((p.limit, p.interval), (1, Duration::from_millis(572)));
    }

    #[test]
    fn every_pace_keeps_under_its_rate() {
        for rate in [1, 2, 3, 7, 99, 300, 799, 1_000, 4_321, 10_000, 10_000_000] {
            for page in [1, 7, 100, 500, 10_000] {
                for lanes in [1, 3, 4, 8, 64] {
                    let p = pace(Some(rate), page, lanes);
                    assert!(p.limit >= 1 && p.limit <= page);
                    let per_second =
                        f64::from(p.limit) * lanes as f64 / p.interval.as_secs_f64().max(1e-9);
                    assert!(
                        per_second <= f64::from(rate) * 1.000_001,
                        "rate {rate} page {page} lanes {lanes}: {per_second}/s"
                    );
                }
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let max = Duration::from_secs(10);
        let waits: Vec<u64> = (1..=6).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(u32::MAX, max), max);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
    }

    #[test]
    fn grace_runs_from_the_first_permanent_failure() {
        let grace = Duration::from_secs(30);
        let mut t = Trouble::default();
        assert!(!record_failure(&mut t, false, 0, grace));
        assert!(!record_failure(&mut t, true, 1_000, grace));
        assert!(!record_failure(&mut t, true, 30_999, grace));
        assert!(
            !record_failure(&mut t, false, 40_000, grace),
            "transient never gives up"
        );
        assert!(record_failure(&mut t, true, 31_000, grace));
        assert_eq!(t.failures, 5);
        assert_eq!(t.permanent_since_ms, Some(1_000));
    }

    #[test]
    fn continue_as_new_triggers() {
        let limit = HISTORY_EVENTS_SOFT_LIMIT;
        assert!(!should_continue_as_new(10, 1_000, 100, limit, false));
        assert!(should_continue_as_new(1_000, 1_000, 100, limit, false));
        assert!(should_continue_as_new(10, 1_000, limit, limit, false));
        assert!(should_continue_as_new(10, 1_000, 100, 100, false));
        assert!(should_continue_as_new(10, 1_000, 100, limit, true));
        assert!(
            should_continue_as_new(1, 0, 0, limit, false),
            "a zero budget still makes progress"
        );
    }
}
