//! How many user ids a lane's next page may scan past its cursor. A page walks `users` along
//! its primary key and keeps those its audience holds; in a sparse audience it would walk far
//! to fill a page (1,000 members among 40,000,000 users: 40,000 users per member). So a page
//! scans at most a bounded range, and a page that finds fewer recipients than its limit there
//! moves its lane's cursor to the end of that range: its work is bounded whatever the
//! audience's density, and no page is retried for ever against the statement timeout.
//!
//! The range is sized by time, per lane. A page whose range ended it (a short page) reports
//! how long its statement took: a fast one doubles the next range, a slow one halves it. A
//! page that runs past the statement timeout quarters it and is tried again at once; only at
//! the smallest range (the page size) does a timeout count as a failure, which fails the
//! campaign after its grace with the cause named. Dense audiences never meet the bound: their
//! pages fill up first.

/// The largest range a page scans (a safety bound; time sizes the range below it).
pub const MAX: u64 = 1 << 22;

/// What a page statement ended by its range should take. Well inside the statement timeout
/// (4 s), so that a busy database or a remote one has room.
pub const TARGET_MS: u32 = 400;

/// The first range of a lane: sixteen pages' worth of ids, enough for any audience of more
/// than one user in sixteen to fill its first page.
pub fn first(limit: u32) -> u64 {
    clamp(u64::from(limit) * 16, limit)
}

/// The range a lane's next page scans, from the lane's carried `scan` (0: not sized yet).
/// The page size can change with the pace; the range never falls below it.
pub fn for_page(scan: u64, limit: u32) -> u64 {
    if scan == 0 {
        first(limit)
    } else {
        clamp(scan, limit)
    }
}

/// Where a committed page leaves its lane's cursor: at its last recipient when it is full
/// (there may be more right after), else at the end of the ids it scanned. `None`: past
/// the lane (a page row from before bounded scans, which always scanned to the lane's bound,
/// and found fewer than its limit).
pub fn page_end(
    last: Option<i64>,
    recipients: u32,
    limit: u32,
    scanned_to: Option<i64>,
) -> Option<i64> {
    if recipients >= limit {
        last.or(scanned_to)
    } else {
        scanned_to
    }
}

/// The next range after a committed page scanned `scan` ids: unchanged if the page filled
/// up (its range did not end it), else sized by how long it took.
pub fn after_page(scan: u64, limit: u32, short: bool, took_ms: Option<u32>) -> u64 {
    let next = match took_ms {
        Some(ms) if short && ms <= TARGET_MS / 2 => scan.saturating_mul(2),
        Some(ms) if short && ms > TARGET_MS * 2 => scan / 2,
        _ => scan,
    };
    clamp(next, limit)
}

/// After a page's statement ran past the timeout while scanning `scan` ids: the smaller
/// range to try at once, or `None` when it was already the smallest (the failure counts).
pub fn after_timeout(scan: u64, limit: u32) -> Option<u64> {
    let smallest = clamp(0, limit);
    (scan > smallest).then(|| clamp(scan / 4, limit))
}

fn clamp(scan: u64, limit: u32) -> u64 {
    let smallest = u64::from(limit.max(1));
    scan.clamp(smallest, MAX.max(smallest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_starts_at_sixteen_pages_and_never_below_one() {
        assert_eq!(first(500), 8_000);
        assert_eq!(first(1), 16);
        assert_eq!(for_page(0, 500), 8_000);
        assert_eq!(for_page(100, 500), 500, "the pace raised the page size");
        assert_eq!(for_page(u64::MAX, 500), MAX);
    }

    #[test]
    fn a_full_page_ends_at_its_last_recipient_and_a_short_one_at_its_scan() {
        assert_eq!(page_end(Some(700), 500, 500, Some(700)), Some(700));
        assert_eq!(page_end(Some(700), 20, 500, Some(8_200)), Some(8_200));
        assert_eq!(page_end(None, 0, 500, Some(8_200)), Some(8_200));
        // Page rows from before bounded scans.
        assert_eq!(page_end(Some(700), 500, 500, None), Some(700));
        assert_eq!(page_end(Some(700), 20, 500, None), None);
    }

    #[test]
    fn a_short_page_grows_the_range_when_fast_and_shrinks_it_when_slow() {
        assert_eq!(after_page(8_000, 500, true, Some(5)), 16_000);
        assert_eq!(after_page(8_000, 500, true, Some(TARGET_MS)), 8_000);
        assert_eq!(after_page(8_000, 500, true, Some(TARGET_MS * 3)), 4_000);
        assert_eq!(after_page(MAX, 500, true, Some(1)), MAX);
        assert_eq!(after_page(600, 500, true, Some(3_000)), 500);
        // A full page says nothing of the range; a page with no time (run before) neither.
        assert_eq!(after_page(8_000, 500, false, Some(5)), 8_000);
        assert_eq!(after_page(8_000, 500, true, None), 8_000);
    }

    #[test]
    fn a_timeout_quarters_the_range_down_to_the_page_size_then_counts() {
        let mut scan = MAX;
        let mut splits = 0;
        while let Some(next) = after_timeout(scan, 500) {
            assert!(next < scan);
            scan = next;
            splits += 1;
        }
        assert_eq!(scan, 500);
        assert!(
            splits <= 8,
            "{splits} timeouts of 4 s before the failure counts"
        );
    }
}
