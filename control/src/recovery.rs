//! A campaign whose workflow is gone. Its row says it has not finished, but Temporal runs
//! nothing for it: the workflow was terminated (by hand, or at the history limit), failed, or
//! lost with a dev server's data. The ledger holds everything a new run needs (the spec and
//! tuning it was launched with, the requests, and the page rows that say where each lane
//! stands), so any request to such a campaign starts one; it goes on from the ledger's
//! cursors, and the ledger records every recipient once.

use std::time::Duration;

use herald_store::campaigns;
use herald_wire::{CampaignKey, Intent, names};
use herald_workflows::CampaignWorkflow;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowIdReusePolicy,
    errors::{WorkflowInteractionError, WorkflowStartError},
};

use crate::{Control, Result};

/// Whether Temporal runs a campaign's workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkflowState {
    Running,
    /// No run of it is open: closed, or never known to this namespace.
    Gone,
    /// Temporal could not be asked (the reason).
    Unknown(String),
}

impl WorkflowState {
    /// What `herald status` says of a campaign that has not finished, asked `intent`.
    pub fn note(&self, key: &CampaignKey, intent: Intent) -> Option<String> {
        match self {
            Self::Running => None,
            Self::Gone if intent == Intent::Cancel => Some(format!(
                "no workflow is running this campaign; run `herald cancel {key}` to end it"
            )),
            Self::Gone => Some(format!(
                "no workflow is running this campaign; run `herald resume {key}` to go on from \
                 where its pages stand"
            )),
            Self::Unknown(why) => Some(format!("whether its workflow runs is unknown: {why}")),
        }
    }
}

impl Control {
    /// Ask Temporal whether the campaign's workflow runs.
    pub async fn workflow_state(&self, key: &CampaignKey) -> WorkflowState {
        let client = match self.temporal().await {
            Ok(client) => client,
            Err(e) => return WorkflowState::Unknown(e.to_string()),
        };
        match describe(client, key).await {
            Ok(WorkflowExecutionStatus::Running) => WorkflowState::Running,
            Ok(_) | Err(WorkflowInteractionError::NotFound(_)) => WorkflowState::Gone,
            Err(e) => WorkflowState::Unknown(e.to_string()),
        }
    }

    /// Start a new run of a campaign whose workflow is gone, from the launch stored in its
    /// row. `Err` says why it could not be started. A run that another request started
    /// meanwhile is told instead.
    pub(crate) async fn recover(
        &self,
        client: &Client,
        key: &CampaignKey,
    ) -> std::result::Result<(), String> {
        let (spec, tuning) = campaigns::launch_of(&self.db, key)
            .await
            .map_err(|e| e.to_string())?;
        let launch = campaigns::launch_token(&self.db, key)
            .await
            .map_err(|e| e.to_string())?;
        let reuse = WorkflowIdReusePolicy::AllowDuplicate;
        match self
            .start_workflow(client, key, &spec, tuning, reuse, &launch)
            .await
        {
            Ok(()) => {
                tracing::warn!(campaign.id = %key, "no workflow ran this campaign: started a new run");
                Ok(())
            }
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                crate::requests::tell_workflow(client, key)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Wait up to `timeout` for the campaign's workflow to close (a run finishing its last
    /// step). `Ok(true)` once no run is open.
    pub(crate) async fn wait_closed(
        &self,
        client: &Client,
        key: &CampaignKey,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match describe(client, key).await {
                Ok(WorkflowExecutionStatus::Running) => {}
                Ok(_) | Err(WorkflowInteractionError::NotFound(_)) => return Ok(true),
                Err(e) => {
                    return Err(crate::ControlError::Temporal {
                        action: format!("asking whether campaign {key}'s workflow runs"),
                        reason: e.to_string(),
                    });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn describe(
    client: &Client,
    key: &CampaignKey,
) -> std::result::Result<WorkflowExecutionStatus, WorkflowInteractionError> {
    client
        .get_workflow_handle::<CampaignWorkflow>(names::workflow_id(key))
        .describe(WorkflowDescribeOptions::default())
        .await
        .map(|d| d.status())
}
