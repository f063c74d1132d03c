//! An external campaign's auto-pause: the share of failed tries among the latest `size`
//! tries, counted in a fixed number of buckets so that the state carried from run to run
//! stays small however small the pages are.

use herald_wire::{Bucket, Deliveries, DeliveryWindow};

/// Buckets per window: a bucket closes once it holds a sixteenth of the window's tries.
pub const BUCKETS: u64 = 16;

/// An error message kept for the reason is cut to this many characters.
const ERROR_CHARS: usize = 200;

/// Add a page's tries to the window of the latest `size` tries. Returns why the campaign
/// should pause itself when the window is full and more than `percent`% of its tries
/// failed; the window then starts afresh, so that a resume gets a full window of tries.
pub fn note(
    window: &mut DeliveryWindow,
    page: Deliveries,
    size: u32,
    percent: u32,
) -> Option<String> {
    if page.attempts == 0 || percent == 0 {
        return None;
    }
    let size = u64::from(size.max(1));
    let per_bucket = size.div_ceil(BUCKETS);
    let buckets = &mut window.buckets;
    if buckets.last().is_none_or(|b| b.attempts >= per_bucket) {
        buckets.push(Bucket::default());
    }
    add(buckets.last_mut().expect("just pushed"), page);
    // Drop the oldest buckets while the rest still cover the window.
    let total: u64 = buckets.iter().map(|b| b.attempts).sum();
    let mut dropped = 0;
    let mut rest = total;
    for b in buckets.iter().take(buckets.len() - 1) {
        if rest - b.attempts < size {
            break;
        }
        rest -= b.attempts;
        dropped += 1;
    }
    buckets.drain(..dropped);

    let attempts: u64 = buckets.iter().map(|b| b.attempts).sum();
    let failures: u64 = buckets.iter().map(|b| b.failures).sum();
    if attempts < size || failures * 100 <= u64::from(percent) * attempts {
        return None;
    }
    let reason = format!(
        "auto-paused: {}% of the last {} deliveries failed{}",
        failures * 100 / attempts,
        thousands(attempts),
        top_error(buckets)
            .map(|e| format!("; most common: {e}"))
            .unwrap_or_default()
    );
    buckets.clear();
    Some(reason)
}

/// Add a page to its bucket. A bucket keeps one error: the page's, if it outnumbers the one
/// kept (ties keep the older).
fn add(bucket: &mut Bucket, page: Deliveries) {
    bucket.attempts += u64::from(page.attempts);
    bucket.failures += u64::from(page.failures);
    let Some(error) = page.top_error else {
        return;
    };
    let error: String = error.chars().take(ERROR_CHARS).collect();
    let n = u64::from(page.failures);
    if bucket.top_error.as_deref() == Some(error.as_str()) {
        bucket.top_failures += n;
    } else if bucket.top_error.is_none() || n > bucket.top_failures {
        bucket.top_error = Some(error);
        bucket.top_failures = n;
    }
}

/// The error with the most failures over the buckets; ties go to the older.
fn top_error(buckets: &[Bucket]) -> Option<&str> {
    let mut errors: Vec<(&str, u64)> = Vec::new();
    for b in buckets {
        if let Some(e) = &b.top_error {
            match errors.iter_mut().find(|(k, _)| *k == e.as_str()) {
                Some((_, n)) => *n += b.top_failures,
                None => errors.push((e, b.top_failures)),
            }
        }
    }
    errors
        .iter()
        .fold(None::<(&str, u64)>, |best, &(e, n)| match best {
            Some((_, b)) if b >= n => best,
            _ => Some((e, n)),
        })
        .map(|(e, _)| e)
}

/// 1234567 as "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tries(attempts: u32, failures: u32, error: &str) -> Deliveries {
        Deliveries {
            attempts,
            failures,
            top_error: Some(error.to_owned()),
        }
    }

    #[test]
    fn a_campaign_pauses_itself_when_its_latest_tries_mostly_fail() {
        let mut w = DeliveryWindow::default();
        // Not before the window is full, however bad.
        assert_eq!(
            note(
                &mut w,
                tries(500, 500, "503 Service Unavailable"),
                1_000,
                20
            ),
            None
        );
        // Full, and 700 of 1,000 failed.
        let reason = note(&mut w, tries(500, 200, "429 Too Many Requests"), 1_000, 20);
        assert_eq!(
            reason.as_deref(),
            Some(
                "auto-paused: 70% of the last 1,000 deliveries failed; most common: 503 Service Unavailable"
            )
        );
        assert!(w.buckets.is_empty(), "a resume starts a fresh window");
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut w = DeliveryWindow::default();
        assert_eq!(note(&mut w, tries(100, 100, "timeout"), 1_000, 20), None);
        assert_eq!(note(&mut w, tries(1_000, 50, "timeout"), 1_000, 20), None);
        assert_eq!(
            w.buckets.len(),
            1,
            "the newest page covers the window alone"
        );
        for _ in 0..3 {
            assert_eq!(note(&mut w, tries(500, 10, "timeout"), 1_000, 20), None);
        }
        assert_eq!(w.buckets.len(), 2, "two pages cover the window");
        // Exactly at the threshold is not over it.
        let mut w = DeliveryWindow::default();
        assert_eq!(note(&mut w, tries(1_000, 200, "x"), 1_000, 20), None);
        // Off, and pages without tries (the inbox) are not counted.
        assert_eq!(note(&mut w, tries(1_000, 1_000, "x"), 1_000, 0), None);
        assert_eq!(note(&mut w, Deliveries::default(), 1_000, 20), None);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn pages_of_one_at_the_largest_window_keep_a_fixed_size() {
        let mut w = DeliveryWindow::default();
        let long_error = "e".repeat(300);
        for i in 0..2_000_000u32 {
            // Every tenth try fails: 10%, under the threshold.
            let failed = u32::from(i % 10 == 0);
            assert_eq!(
                note(&mut w, tries(1, failed, &long_error), 1_000_000, 20),
                None
            );
        }
        assert!(w.buckets.len() as u64 <= BUCKETS + 1, "{}", w.buckets.len());
        let bytes = serde_json::to_vec(&w).unwrap().len();
        assert!(bytes < 8_192, "{bytes} bytes");
        let attempts: u64 = w.buckets.iter().map(|b| b.attempts).sum();
        assert!(
            (1_000_000..=1_000_000 + 62_500).contains(&attempts),
            "{attempts}"
        );
        // A burst of failures the size of the window tips it over.
        let reason = note(&mut w, tries(1_000_000, 1_000_000, "boom"), 1_000_000, 20);
        assert!(reason.is_some_and(|r| r.ends_with("most common: boom")));
    }

    #[test]
    fn the_most_common_error_is_summed_across_buckets() {
        let mut w = DeliveryWindow::default();
        let mut last = None;
        for e in ["a", "b", "b", "a", "b"] {
            last = note(&mut w, tries(100, 90, e), 500, 50);
        }
        assert!(last.unwrap().ends_with("most common: b"));
        assert!(w.buckets.is_empty());
    }
}
