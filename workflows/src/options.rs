//! Timeouts and retry policies for the campaign's activities.
//!
//! The numbers come from one question: how long may a campaign stand still after a worker
//! dies? Temporal only notices a lost activity when its start-to-close timeout expires, so
//! that timeout *is* the recovery time for a killed worker. A page is a single SQL statement
//! that takes tens of milliseconds, so 5 s is generous headroom and still a short stall.
//! (The database side is bounded too: the activities' pool sets a statement timeout below it.)

use std::time::Duration;

use temporalio_sdk::{ActivityOptions, LocalActivityOptions};
use temporalio_workflow::RetryPolicy;

/// Start-to-close for one page: the upper bound on the stall after a worker is killed.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Retry until it works. A page must eventually be written: database restarts and
/// connection drops are waited out, never turned into a skipped page. Errors that retrying
/// cannot fix are raised as non-retryable by the activity itself.
fn retry_forever() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(3))
        .build()
}

pub fn page() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(PAGE_TIMEOUT)
        .retry_policy(retry_forever())
        .build()
}

pub fn page_local() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(PAGE_TIMEOUT)
        .retry_policy(retry_forever())
        .build()
}

/// Bookkeeping activities (register, set status): short, idempotent, retried forever.
/// Registration counts the audience, which on ten million users takes a second or two.
pub fn bookkeeping() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry_forever())
        .build()
}

/// The no-op round trip that lets signals in between rounds of local activities.
pub fn yield_now() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(5))
        .retry_policy(retry_forever())
        .build()
}
