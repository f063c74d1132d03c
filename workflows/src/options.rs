//! Timeouts and retry policies for the campaign and its activities.
//!
//! The numbers answer three questions: how soon does a signal sent straight to Temporal take
//! effect, how long may a campaign stand still after its worker dies or is stopped, and how
//! much history does a campaign write while something is broken?
//!
//! - Local-activity pages (the default) run inside a workflow task, and signals reach the
//!   workflow only when a task ends. The workflow ends its task itself after
//!   [`YIELD_AFTER`] of page work (by scheduling a do-nothing activity), so a bare `pause`
//!   signal takes effect within about that, whatever the task timeout.
//! - The **workflow task timeout** is set at launch (`HERALD_WORKFLOW_TASK_TIMEOUT`, kept
//!   across continue-as-new): how long the server waits for a worker that took a task and
//!   died, and the time a task may take on a slow link to a remote cluster (a replay after
//!   a failover included). The SDK reports in at 80% of it while pages run.
//! - A worker told to stop refuses new work with [`names::FAILURE_WORKER_STOPPING`]; the
//!   workflow then waits [`HANDOVER_WAIT`] on a durable timer, which ends its task on that
//!   worker, and carries on wherever the timer's task is picked up.
//! - Pages are one short statement: [`PAGE_TIMEOUT`] is ample, and the worker's page
//!   connections cancel any statement after [`PAGE_STATEMENT_TIMEOUT`], below it, so a
//!   timed-out attempt never commits behind its retry.
//! - A failing activity is retried a few times in place ([`IN_PLACE_ATTEMPTS`]), then the
//!   workflow waits on a durable timer ([`crate::plan::backoff`]) before trying again. A
//!   database restart is waited out; an hours-long outage writes a few events a minute.
//!   An error that retrying cannot fix is retried for the campaign's grace period, then the
//!   campaign is marked failed and waits for `herald resume`.
//!
//! docs/architecture.md explains the choices; docs/performance.md holds the measurements.

use std::time::Duration;

use herald_wire::names;
use temporalio_sdk::{ActivityOptions, LocalActivityOptions};
use temporalio_workflow::{RetryPolicy, WorkflowCancellationToken};

/// End the workflow task after about this much page work, so that signals get in.
pub const YIELD_AFTER: Duration = Duration::from_millis(300);

/// Start-to-close of the do-nothing activity that ends a workflow task on purpose
/// ([`YIELD_AFTER`]). An activity, not a timer: a timer of a millisecond takes the Temporal
/// dev server 0.6–0.8 s to fire, an activity on a polled queue a few milliseconds.
const YIELD_TIMEOUT: Duration = Duration::from_secs(10);

/// A paced lane whose next turn is at most this far off waits inside its page activity
/// (whose timeout grows by the wait); a longer wait is a durable timer. Timers are late by
/// up to a second on the dev server; pacing makes up for any lateness at the next turn.
pub const IN_PAGE_DELAY_MAX: Duration = Duration::from_secs(1);

/// After a worker refused work because it is stopping: the wait, on a durable timer, before
/// the workflow carries on (on another worker).
pub const HANDOVER_WAIT: Duration = Duration::from_secs(1);

/// Attempts of a failing local activity inside its workflow task before the workflow backs
/// off on a durable timer instead.
pub const IN_PLACE_ATTEMPTS: u32 = 3;

/// The longest wait between tries of a failing page: how soon a campaign resumes after the
/// database comes back.
pub const PAGE_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The longest wait between tries of failing registration or status change.
pub const BOOKKEEPING_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Start-to-close for one page: the stall after a worker running regular pages is killed.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL's limit on one page statement: four fifths of [`PAGE_TIMEOUT`], so that the
/// server gives up on a stuck statement before Temporal starts the page again elsewhere.
pub const PAGE_STATEMENT_TIMEOUT: Duration =
    Duration::from_millis(PAGE_TIMEOUT.as_millis() as u64 * 4 / 5);

/// Start-to-close for registration and status changes. Registration counts the audience,
/// which on ten million users takes a second or two.
pub const BOOKKEEPING_TIMEOUT: Duration = Duration::from_secs(30);

/// Failures that go straight back to the workflow instead of being retried in place.
const GIVE_BACK: [&str; 3] = [
    names::FAILURE_PERMANENT,
    names::FAILURE_WORKER_STOPPING,
    names::FAILURE_TOO_SLOW,
];

/// Regular activities: the server retries them without writing history, so until it works.
/// Errors that retrying cannot fix, and a stopping worker, are raised as non-retryable by
/// the activity itself, and the workflow decides.
fn retry_forever() -> RetryPolicy {
    retry(Duration::from_secs(3), 0)
}

/// Local activities: a few quick tries inside the workflow task, then the workflow's own
/// backoff on durable timers, which writes far less history than a task held open.
fn retry_in_place() -> RetryPolicy {
    retry(Duration::from_secs(1), IN_PLACE_ATTEMPTS)
}

/// From 200 ms, doubling up to `max_interval`; `attempts` 0 means without end.
fn retry(max_interval: Duration, attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(max_interval)
        .maximum_attempts(attempts)
        .non_retryable_error_types(GIVE_BACK)
        .build()
}

/// Activities are detached from Temporal's workflow cancellation (the web UI's "Request
/// Cancellation"): the workflow notices the request between pages and ends the campaign as
/// cancelled itself, recording the status, instead of having its bookkeeping cut off.
fn detached() -> WorkflowCancellationToken {
    WorkflowCancellationToken::new()
}

/// A page that first waits `delay` for its turn gets that much longer.
pub fn page(delay: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(PAGE_TIMEOUT + delay)
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

/// How long an external channel's page may go without reporting in before Temporal runs it
/// again elsewhere (its worker died). Generous: a page reports in every
/// [`SEND_HEARTBEAT_EVERY`] on a timer of its own, and a remote cluster or a busy worker can
/// delay a report by several seconds.
pub const SEND_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a sending page reports in, whatever its sends and the database are doing.
pub const SEND_HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A page stops starting sends after this long, records what it has and lets the workflow
/// run it again: an attempt stays far inside its timeout.
pub const SEND_BUDGET: Duration = Duration::from_secs(30);

/// The longest `HERALD_SEND_TIMEOUT` the configuration accepts: a page's last send starts
/// before [`SEND_BUDGET`] ends and lasts at most this, so every attempt ends inside
/// [`SEND_PAGE_TIMEOUT`] (a test keeps them in step).
pub const SEND_TIMEOUT_MAX: Duration = Duration::from_secs(60);

/// Start-to-close of an external channel's page: the page stops starting sends after
/// [`SEND_BUDGET`], and its last sends take at most [`SEND_TIMEOUT_MAX`]; this only bounds
/// a page that hangs while it keeps reporting in.
pub const SEND_PAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// A page of the webhook or e-mail channel: a regular activity that reports in while it
/// waits on receivers.
pub fn send_page(delay: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(SEND_PAGE_TIMEOUT + delay)
        .heartbeat_timeout(SEND_HEARTBEAT_TIMEOUT + delay)
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

pub fn page_local(delay: Duration) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(PAGE_TIMEOUT + delay)
        .retry_policy(retry_in_place())
        .cancellation_token(detached())
        .build()
}

pub fn yield_task() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(YIELD_TIMEOUT)
        .retry_policy(retry_forever())
        .cancellation_token(detached())
        .build()
}

/// Registration and status changes, as local activities.
pub fn bookkeeping() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(BOOKKEEPING_TIMEOUT)
        .retry_policy(retry_in_place())
        .cancellation_token(detached())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sending_attempt_ends_inside_its_timeout() {
        // The budget, then the slowest send, a wait for a page connection and the last
        // record (each statement bounded), with room to spare.
        let longest = SEND_BUDGET + SEND_TIMEOUT_MAX + PAGE_STATEMENT_TIMEOUT * 4;
        assert!(longest * 2 < SEND_PAGE_TIMEOUT, "{longest:?}");
        assert!(SEND_HEARTBEAT_EVERY * 5 <= SEND_HEARTBEAT_TIMEOUT);
    }

    #[test]
    fn a_stuck_statement_ends_before_its_page_times_out() {
        assert!(PAGE_STATEMENT_TIMEOUT < PAGE_TIMEOUT);
        assert_eq!(PAGE_STATEMENT_TIMEOUT, Duration::from_secs(4));
    }
}
