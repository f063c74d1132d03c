//! Timeouts and retry policies for the campaign and its activities.
//!
//! The numbers answer two questions: how soon does a signal sent straight to Temporal take
//! effect, and how long may a campaign stand still after its worker dies?
//!
//! - Local-activity pages (the default) run inside one long workflow task. Signals reach the
//!   workflow only when a task ends, and the SDK ends it on its own, without pausing the
//!   pages, at 80% of the **workflow task timeout** (its "workflow task heartbeat"). With
//!   [`TASK_TIMEOUT`] at 1 s, that is every 0.8 s: a bare `pause` signal takes effect within
//!   about a second, and no page waits for it (the earlier design drained every lane and ran a
//!   no-op activity every 200 pages, which cost 5-8% of the throughput).
//! - After a crash the server hands the task to another worker when the same timeout
//!   expires (1 s). The new worker replays history and re-runs the pages since the last
//!   completed task (at most 0.8 s of pages); they find their page rows and write nothing
//!   twice.
//! - The worker's sticky queue timeout (2 s, in `herald-worker`) bounds the wait for a task
//!   queued to a dead worker's sticky queue; the default 10 s would dominate the stall.
//! - Regular-activity pages are noticed lost when their **start-to-close timeout** expires:
//!   [`PAGE_TIMEOUT`], 5 s. A page is one transaction of tens of milliseconds, so that is
//!   ample headroom; the worker's database pool cancels any statement after 4 s, below it, so
//!   a stuck statement is abandoned by PostgreSQL before Temporal retries the page elsewhere.
//!   No heartbeats: a page is too short to need them.
//! - Retries never give up (capped at 3 s between attempts): a database restart or a dropped
//!   connection is waited out, never turned into a skipped page. What retrying cannot fix (an
//!   unknown campaign) is raised as non-retryable by the activity itself.
//! - A worker stopped with SIGTERM finishes its in-flight pages (up to 5 s) and exits; its
//!   workflows are picked up by the next worker at once.

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

/// Bookkeeping activities (register, set status): short, idempotent, retried forever.
/// Registration counts the audience, which on ten million users takes a second or two.
pub fn bookkeeping() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

/// The same, run as local activities: no round trip through the server, so a campaign's first
/// page starts and its final status is stored without waiting on Temporal's task queue.
pub fn bookkeeping_local() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

/// The no-op round trip that lets signals in between rounds of local activities.
pub fn yield_now() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(5))
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}
