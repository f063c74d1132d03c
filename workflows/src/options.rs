//! Timeouts and retry policies for the campaign and its activities.
//!
//! The numbers answer two questions: how soon does a signal sent straight to Temporal take
//! effect, and how long may a campaign stand still after its worker dies?
//!
//! - Local-activity pages (the default) run inside one long workflow task. Signals reach the
//!   workflow only when a task ends, and the SDK ends it on its own, without pausing the
//!   pages, at 80% of the **workflow task timeout** (its "workflow task heartbeat"). With
//!   [`TASK_TIMEOUT`] at 1 s, a bare `pause` signal takes effect within about a second.
//! - After a crash the server hands the task to another worker when the same timeout
//!   expires. The new worker replays history and re-runs the pages since the last completed
//!   task; they find their page rows and write nothing twice.
//! - Regular-activity pages are noticed lost when their **start-to-close timeout**
//!   ([`PAGE_TIMEOUT`]) expires. A page is one short transaction, so that is ample headroom;
//!   the worker's page connections cancel any statement after [`PAGE_STATEMENT_TIMEOUT`],
//!   below it, so PostgreSQL abandons a stuck statement before Temporal retries the page.
//! - Retries never give up: a database restart or a dropped connection is waited out, never
//!   turned into a skipped page. What retrying cannot fix is raised as non-retryable by the
//!   activity itself.
//!
//! docs/architecture.md explains the choices; docs/performance.md holds the measurements.

use std::time::Duration;

use temporalio_sdk::{ActivityOptions, LocalActivityOptions};
use temporalio_workflow::{RetryPolicy, WorkflowCancellationToken};

/// The campaign's workflow task timeout, set at launch and kept across continue-as-new by
/// the server. Its 80% is how often a workflow task running local activities reports in, so
/// it bounds how late a signal is seen; it is also how long a task lost with a killed worker
/// waits before another worker takes it.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Start-to-close for one page: the stall after a worker running regular pages is killed.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL's limit on one page statement: four fifths of [`PAGE_TIMEOUT`], so that the
/// server gives up on a stuck statement before Temporal starts the page again elsewhere.
pub const PAGE_STATEMENT_TIMEOUT: Duration =
    Duration::from_millis(PAGE_TIMEOUT.as_millis() as u64 * 4 / 5);

/// Start-to-close for registration and status changes. Registration counts the audience,
/// which on ten million users takes a second or two.
pub const BOOKKEEPING_TIMEOUT: Duration = Duration::from_secs(30);

/// Retry until it works. Errors that retrying cannot fix are raised as non-retryable by the
/// activity itself.
fn retry_forever() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(3))
        .build()
}

/// Activities are detached from Temporal's workflow cancellation (the web UI's "Request
/// Cancellation"): the workflow notices the request between pages and ends the campaign as
/// cancelled itself, recording the status, instead of having its bookkeeping cut off.
fn detached() -> WorkflowCancellationToken {
    WorkflowCancellationToken::new()
}

pub fn page() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(PAGE_TIMEOUT)
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

pub fn page_local() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(PAGE_TIMEOUT)
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

/// Registration and status changes, as local activities.
pub fn bookkeeping() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(BOOKKEEPING_TIMEOUT)
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_statement_ends_before_its_page_times_out() {
        assert!(PAGE_STATEMENT_TIMEOUT < PAGE_TIMEOUT);
        assert_eq!(PAGE_STATEMENT_TIMEOUT, Duration::from_secs(4));
    }
}
