//! How a store error becomes an activity failure. The failure's type tells the workflow what
//! to do: retry a transient one, retry a permanent one only for the campaign's grace period,
//! hand work refused by a stopping worker to another.

use herald_store::{Fault, StoreError};
use herald_wire::names;
use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;
use tracing::warn;

pub fn to_activity_error(err: StoreError) -> ActivityError {
    let message = match err.sqlstate() {
        Some(code) => format!("{err} (SQLSTATE {code})"),
        None => err.to_string(),
    };
    match err.fault() {
        Fault::Transient => {
            warn!(error = %message, "activity failed; it will be retried");
            failure(message, names::FAILURE_TRANSIENT, false)
        }
        _ => {
            warn!(error = %message, "activity failed on an error that retrying cannot fix");
            failure(message, names::FAILURE_PERMANENT, true)
        }
    }
}

/// A page's error: as [`to_activity_error`], except that the statement selecting its
/// recipients cancelled at its time limit ([`StoreError::ScanTimedOut`]) is given back to
/// the workflow at once, which tries the page again over fewer user ids instead of retrying
/// the same scan. A timeout of any other statement (recording an external page's sends) is
/// transient.
pub fn page_error(err: StoreError) -> ActivityError {
    if !matches!(err, StoreError::ScanTimedOut(_)) {
        return to_activity_error(err);
    }
    let message = format!("{err} (SQLSTATE 57014)");
    warn!(error = %message, "page statement ran past its time limit; the page will scan less");
    failure(message, names::FAILURE_TOO_SLOW, true)
}

/// The worker is shutting down and did not start the activity: nothing was written.
pub fn worker_stopping() -> ActivityError {
    failure(
        "the worker is shutting down; another worker takes over".to_owned(),
        names::FAILURE_WORKER_STOPPING,
        true,
    )
}

/// A failure that retrying cannot fix and that is not the store's: a channel without its
/// settings on this worker.
pub fn permanent(message: String) -> ActivityError {
    warn!(error = %message, "activity failed on an error that retrying cannot fix");
    failure(message, names::FAILURE_PERMANENT, true)
}

fn failure(message: String, kind: &str, non_retryable: bool) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message)
            .type_name(kind.to_owned())
            .non_retryable(non_retryable)
            .build(),
    )
}
