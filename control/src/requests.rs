//! Pause, resume, cancel and rate: the request is recorded in the campaign's row, then the
//! workflow is told by the `herald.requests` signal to read the row. The signal carries
//! nothing, so nobody can forge a request through it: the ledger is the only authority. A
//! campaign whose workflow is gone gets a new run, which reads the request from the row
//! (`recovery`).

use herald_store::StoreError;
use herald_store::status::{self, RateChanged, Recorded, Request};
use herald_wire::{CampaignKey, InvalidInput, Rate, names};
use herald_workflows::{CampaignWorkflow, options::SEND_GATE_EVERY};
use temporalio_client::{Client, WorkflowSignalOptions, errors::WorkflowInteractionError};
use temporalio_common::data_converters::RawValue;

use crate::{Control, ControlError, Result};

/// The longest reason a request may give (a signal's reason is cut to the same length).
pub const MAX_REASON_CHARS: usize = 500;

impl Control {
    /// Ask a campaign to pause, resume or cancel. The request is recorded first: once that
    /// commits, no new page starts writing after a pause or a cancel. The signal then tells
    /// the workflow, which stops scheduling pages and records its status itself. A request
    /// is never undone: when the signal cannot be delivered, the error says what holds and
    /// that the same command, run again, delivers it (a repeated request keeps its number).
    /// `Recorded::recovered` says a new run was started because no workflow ran the campaign.
    pub async fn request(
        &self,
        key: &CampaignKey,
        request: Request,
        reason: Option<&str>,
    ) -> Result<Recorded> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if let Some(r) = reason
            && r.chars().count() > MAX_REASON_CHARS
        {
            return Err(InvalidInput(format!(
                "reason is {} characters; the limit is {MAX_REASON_CHARS}",
                r.chars().count()
            ))
            .into());
        }
        if reason.is_some_and(|r| r.contains('\0')) {
            return Err(InvalidInput(
                "reason contains a NUL character, which text cannot hold".into(),
            )
            .into());
        }
        let client = self.temporal().await?;
        let mut recorded = status::request(&self.db, key, request, reason).await?;
        let told = self.tell(client, key, request.action()).await?;
        if let Err(e) = &told {
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
        recorded.recovered = told == Ok(Told::Recovered);
        if recorded.channel.is_external() && request != Request::Resume {
            // A webhook or e-mail page reads its gate between sends; once it has read this
            // request, no send starts. Return after every page has had its next look, so
            // that "paused" holds from the moment the command returns.
            tokio::time::sleep(SEND_GATE_EVERY * 2 + SEND_GATE_EVERY / 2).await;
        }
        Ok(recorded)
    }
}

impl Control {
    /// Change a running campaign's speed limit (`None`: none). Recorded in the campaign's
    /// row, then the workflow is told by the `rate` signal; it paces its next pages by the
    /// new rate within a second, whichever workers run them.
    pub async fn set_rate(&self, key: &CampaignKey, rate: Option<Rate>) -> Result<RateChanged> {
        let client = self.temporal().await?;
        let changed = status::set_rate(&self.db, key, rate).await?;
        if let Err(e) = self.tell(client, key, "changing its rate").await? {
            return Err(ControlError::Temporal {
                action: format!("signalling campaign {key}"),
                reason: format!(
                    "{e}; the new rate is recorded but the campaign keeps its old pace until told; \
                     run the same `herald rate` again"
                ),
            });
        }
        Ok(changed)
    }

    /// Tell the campaign's workflow that its row holds a request. `Err` inside says why it
    /// could not be told (the request stays recorded).
    ///
    /// A signal that finds no workflow open has two meanings. The campaign ended between the
    /// request being judged and the signal: that is its status refusing the request (a 409
    /// in the API), said as the campaign stands now, not an outage. Or its workflow is gone
    /// while the row says it has not finished: a new run is started, which reads the
    /// request from the row.
    async fn tell(
        &self,
        client: &Client,
        key: &CampaignKey,
        action: &'static str,
    ) -> Result<std::result::Result<Told, String>> {
        match tell_workflow(client, key).await {
            Ok(()) => return Ok(Ok(Told::Delivered)),
            Err(WorkflowInteractionError::NotFound(_)) => {}
            Err(e) => return Ok(Err(e.to_string())),
        }
        let now = self.campaign(key).await?;
        if now.status.is_terminal() {
            return Err(StoreError::WrongStatus {
                key: key.clone(),
                status: now.status,
                action,
            }
            .into());
        }
        Ok(self.recover(client, key).await.map(|()| Told::Recovered))
    }
}

/// How the workflow heard of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    /// Its running workflow was signalled.
    Delivered,
    /// No workflow ran it: a new run was started.
    Recovered,
}

/// Tell a campaign's workflow that its row holds a request it has not read. A signal, not an
/// update, so that it is delivered while no worker runs (the row's gate holds meanwhile).
pub(crate) async fn tell_workflow(
    client: &Client,
    key: &CampaignKey,
) -> std::result::Result<(), WorkflowInteractionError> {
    client
        .get_workflow_handle::<CampaignWorkflow>(names::workflow_id(key))
        .signal(
            CampaignWorkflow::requests,
            RawValue::new(Vec::new()),
            WorkflowSignalOptions::default(),
        )
        .await
}
