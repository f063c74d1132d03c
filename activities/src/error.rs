//! How a store error becomes an activity failure: only a transient one is retried.

use herald_store::{Fault, StoreError};
use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;
use tracing::warn;

pub fn to_activity_error(err: StoreError) -> ActivityError {
    match err.fault() {
        Fault::Transient => {
            warn!(error = %err, "activity failed; Temporal will retry it");
            ActivityError::application(ApplicationFailure::new(err))
        }
        Fault::Refused | Fault::Internal => {
            warn!(error = %err, "activity failed for good");
            ActivityError::application(ApplicationFailure::non_retryable(err))
        }
    }
}
