//! Launching a campaign: the row and its audience first, then the workflow.

use chrono::Utc;
use herald_store::{StoreError, campaigns};
use herald_wire::{CampaignInput, CampaignKey, CampaignSpec, Tuning, names};
use herald_workflows::CampaignWorkflow;
use temporalio_client::{
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
    errors::WorkflowStartError,
};

use crate::{Control, ControlError, Result};

/// What an operator asks to launch.
#[derive(Clone, Debug)]
pub struct LaunchRequest {
    /// Generated when `None`.
    pub key: Option<CampaignKey>,
    pub spec: CampaignSpec,
    pub tuning: Tuning,
}

/// A campaign that has been launched.
#[derive(Clone, Debug)]
pub struct Launched {
    pub key: CampaignKey,
    /// Recipients in the audience, fixed at launch.
    pub total: i64,
}

impl Control {
    /// Create the campaign's row, fix its audience, and start its workflow. Both services are
    /// reached before anything is written; an empty audience is refused and leaves nothing.
    pub async fn launch(&self, request: LaunchRequest) -> Result<Launched> {
        let key = request.key.unwrap_or_else(generate_key);
        let spec = request.spec;
        let client = self.temporal().await?;
        let registered = campaigns::create(&self.db, &key, &spec).await?;
        if registered.total == 0 {
            campaigns::delete_unstarted(&self.db, &key).await?;
            return Err(ControlError::Refused(match &spec.segment {
                Some(s) => format!("the audience is empty: no user carries segment {s:?}"),
                None => "the audience is empty: there are no users; add some with `herald users seed --count N`"
                    .into(),
            }));
        }
        let input = CampaignInput {
            key: key.clone(),
            spec: spec.clone(),
            carried: None,
            tuning: request.tuning,
        };
        let options =
            WorkflowStartOptions::new(self.config.task_queue.clone(), names::workflow_id(&key))
                .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
                .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
                // Crash recovery against a slow link: see `herald_workflows::options`.
                .task_timeout(self.config.workflow_task_timeout)
                .static_summary(format!("Herald campaign {key}: {}", spec.content.title()))
                .build();
        if let Err(e) = client
            .start_workflow(CampaignWorkflow::run, input, options)
            .await
        {
            // Leave nothing behind: the campaign row without its workflow would never run.
            campaigns::delete_unstarted(&self.db, &key).await.ok();
            return Err(match e {
                WorkflowStartError::AlreadyStarted { .. } => {
                    ControlError::Store(StoreError::DuplicateKey(key))
                }
                other => ControlError::Temporal {
                    action: "starting the campaign workflow".into(),
                    reason: other.to_string(),
                },
            });
        }
        Ok(Launched {
            key,
            total: registered.total,
        })
    }
}

/// A key from the time of launch, e.g. `c-20261201-093000-1a2b`.
fn generate_key() -> CampaignKey {
    let now = Utc::now();
    let key = format!(
        "c-{}-{:04x}",
        now.format("%Y%m%d-%H%M%S"),
        now.timestamp_subsec_micros() % 0xffff
    );
    CampaignKey::parse(&key).expect("generated keys are valid")
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_keys_are_valid_and_say_when() {
        let key = super::generate_key();
        assert!(key.as_str().starts_with("c-20"), "{key}");
    }
}
