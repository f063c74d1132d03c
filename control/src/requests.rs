//! Pause, resume and cancel: the database fence first, then the signal.

use herald_store::status::{self, Fenced, Request};
use herald_wire::{CampaignKey, SignalRequest, names};
use herald_workflows::CampaignWorkflow;
use temporalio_client::WorkflowSignalOptions;
use temporalio_common::data_converters::{PayloadConverter, RawValue};

use crate::{Control, ControlError, Result};

impl Control {
    /// Ask a campaign to pause, resume or cancel. The status is written first: once that
    /// commits, no new page starts writing. The signal then tells the workflow, which stops
    /// scheduling pages and records the status itself. When the signal cannot be delivered,
    /// the status is put back.
    pub async fn request(
        &self,
        key: &CampaignKey,
        request: Request,
        reason: Option<&str>,
    ) -> Result<Fenced> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let client = self.temporal().await?;
        let fenced = status::fence(&self.db, key, request, reason).await?;
        let handle = client.get_workflow_handle::<CampaignWorkflow>(names::workflow_id(key));
        let payload = RawValue::from_value(
            &SignalRequest::with_reason(reason.map(str::to_owned)),
            &PayloadConverter::default(),
        );
        let options = WorkflowSignalOptions::default();
        let sent = match request {
            Request::Pause => {
                handle
                    .signal(CampaignWorkflow::pause, payload, options)
                    .await
            }
            Request::Resume => {
                handle
                    .signal(CampaignWorkflow::resume, payload, options)
                    .await
            }
            Request::Cancel => {
                handle
                    .signal(CampaignWorkflow::cancel, payload, options)
                    .await
            }
        };
        if let Err(e) = sent {
            let outcome = match status::unfence(&self.db, key, &fenced).await {
                Ok(true) => "nothing was changed".to_owned(),
                Ok(false) => format!(
                    "the campaign was moved meanwhile and stays {}",
                    self.campaign(key).await?.status
                ),
                Err(undo) => format!(
                    "the campaign stays {} (putting back {} failed: {undo})",
                    fenced.written(),
                    fenced.before()
                ),
            };
            return Err(ControlError::Temporal {
                action: format!("signalling campaign {key}"),
                reason: format!("{e}; {outcome}"),
            });
        }
        Ok(fenced)
    }
}
