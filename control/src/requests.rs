//! Pause, resume and cancel: the request is recorded in the campaign's row, then the workflow
//! is told by a signal that carries the request's number.

use herald_store::status::{self, Recorded, Request};
use herald_wire::{CampaignKey, SignalRequest, names};
use herald_workflows::CampaignWorkflow;
use temporalio_client::WorkflowSignalOptions;
use temporalio_common::data_converters::{PayloadConverter, RawValue};

use crate::{Control, ControlError, Result};

impl Control {
    /// Ask a campaign to pause, resume or cancel. The request is recorded first: once that
    /// commits, no new page starts writing after a pause or a cancel. The signal then tells
    /// the workflow, which stops scheduling pages and records its status itself. A request
    /// is never undone: when the signal cannot be delivered, the error says what holds and
    /// that the same command, run again, delivers it (a repeated request keeps its number).
    pub async fn request(
        &self,
        key: &CampaignKey,
        request: Request,
        reason: Option<&str>,
    ) -> Result<Recorded> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let client = self.temporal().await?;
        let recorded = status::request(&self.db, key, request, reason).await?;
        let handle = client.get_workflow_handle::<CampaignWorkflow>(names::workflow_id(key));
        let payload = RawValue::from_value(
            &SignalRequest::numbered(recorded.requested.seq, reason.map(str::to_owned)),
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
            let holds = match request {
                Request::Pause => "the pause is recorded and no new page starts",
                Request::Cancel => "the cancel is recorded and no new page starts",
                Request::Resume => {
                    "the resume is recorded, but the campaign stays still until its workflow is told"
                }
            };
            return Err(ControlError::Temporal {
                action: format!("signalling campaign {key}"),
                reason: format!(
                    "{e}; {holds}; run `herald {} {key}` again to tell it",
                    request.verb()
                ),
            });
        }
        Ok(recorded)
    }
}
