//! What the external channels add for operators: a campaign's delivery report, and sending
//! again to the recipients whose delivery failed.

use herald_store::{
    StoreError, campaigns,
    report::{self, Report},
    sends::{self, Retry},
};
use std::time::Duration;

use herald_wire::{CampaignKey, CampaignStatus};
use temporalio_client::{WorkflowIdReusePolicy, errors::WorkflowStartError};

use crate::{Control, ControlError, Result};

/// How long a retry waits for a completed campaign's last run to close (it closes within
/// moments of writing "completed"; a run still open after this is another retry's).
const CLOSING_WAIT: Duration = Duration::from_secs(5);

/// What `retry_failed` started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retried {
    /// Failed items made pending again; `None` when an interrupted retry was only resumed.
    pub failed: Option<i64>,
}

impl Control {
    /// The campaign's deliveries by outcome and error, with up to `failed_limit` of its
    /// failed recipients.
    pub async fn report(&self, key: &CampaignKey, failed_limit: i64) -> Result<Report> {
        Ok(report::report(&self.db, key, failed_limit).await?)
    }

    /// Failed recipients with ids above `after`, in id order, at most `limit` (1–10,000).
    pub async fn failures(
        &self,
        key: &CampaignKey,
        after: i64,
        limit: i64,
    ) -> Result<Vec<herald_store::items::FailedItem>> {
        Ok(herald_store::items::failures(&self.db, key, after, limit).await?)
    }

    /// Send again to a completed campaign's failed recipients, with the same idempotency
    /// ids: the campaign goes back to in progress under the next retry number (one row),
    /// then a new run of its workflow walks its pages, each making its failures pending
    /// again as the run reaches it and sending only to pending recipients, and completes
    /// it again. Run again after an interruption, it starts
    /// the run that did not start; it never sends to anyone twice.
    ///
    /// Asked the moment a campaign completes, its last run may still be closing (it has
    /// written "completed" and not yet ended): the retry waits for it to close, then starts
    /// its own run. `by` is the actor.
    pub async fn retry_failed(&self, key: &CampaignKey, by: &str) -> Result<Retried> {
        let client = self.temporal().await?;
        let Retry {
            spec,
            tuning,
            reopened: failed,
        } = sends::retry_failed(&self.db, key, by).await?;
        // The launch's tuning: a campaign launched never to auto-pause does not start
        // pausing itself when its failures are retried.
        let launch = campaigns::launch_token(&self.db, key).await?;
        let started = self
            .start_workflow(
                client,
                key,
                &spec,
                tuning,
                WorkflowIdReusePolicy::AllowDuplicate,
                &launch,
            )
            .await;
        match started {
            Ok(()) => Ok(Retried { failed }),
            // Reopened while a run is open: the completed campaign's last run, closing (it
            // closes within moments), or a run another retry started meanwhile (which is
            // retrying, and runs on).
            Err(WorkflowStartError::AlreadyStarted { .. }) if failed.is_some() => {
                if self.wait_closed(client, key, CLOSING_WAIT).await? {
                    self.recover(client, key)
                        .await
                        .map_err(|reason| ControlError::Temporal {
                            action: format!("starting campaign {key}'s retry"),
                            reason: format!(
                                "{reason}; its failed recipients are pending again: run \
                                 `herald retry-failed {key}` again to start it"
                            ),
                        })?;
                }
                Ok(Retried { failed })
            }

            // In progress, and its workflow runs: there is nothing to retry yet.
            Err(WorkflowStartError::AlreadyStarted { .. }) => Err(StoreError::WrongStatus {
                key: key.clone(),
                status: CampaignStatus::InProgress,
                action: "retrying its failed deliveries (it must have completed)",
            }
            .into()),
            Err(e) => Err(ControlError::Temporal {
                action: format!("starting campaign {key}'s retry"),
                reason: format!(
                    "{e}; its failed recipients are pending again: run `herald retry-failed {key}` again to start it"
                ),
            }),
        }
    }
}
