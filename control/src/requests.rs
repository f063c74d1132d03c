//! Pause, resume, cancel and rate: the request is recorded in the campaign's row, then the
//! workflow is asked, by the `herald.apply` update, to read the row and answer once it has
//! taken the request. The update carries only the numbers the row gave the request, which
//! the workflow checks against the row: the ledger is the only authority. When no worker
//! takes the update in time, the `herald.requests` signal tells the workflow instead (a
//! signal is kept by Temporal until a worker runs). A campaign whose workflow is gone gets a
//! new run, which reads the request from the row (`recovery`).

use std::time::Duration;

use herald_store::StoreError;
use herald_store::gates::GATE_STALE;
use herald_store::status::{self, RateChanged, Recorded, Request};
use herald_wire::{
    Applied, CampaignKey, CampaignStatus, Intent, InvalidInput, Rate, RecordedRequests, Requested,
    names,
};
use herald_workflows::CampaignWorkflow;
use temporalio_client::{
    Client, RpcOptions, WorkflowSignalOptions, WorkflowStartUpdateOptions,
    errors::{WorkflowInteractionError, WorkflowUpdateError},
};
use temporalio_common::data_converters::{PayloadConverter, RawValue};

use crate::{Control, ControlError, Result};

/// The longest reason a request may give (a signal's reason is cut to the same length).
pub const MAX_REASON_CHARS: usize = 500;

/// How long a front end waits for a worker to take its request in hand. A running worker
/// does within one workflow task; past this, no worker is taken to run the campaign.
pub const ACCEPT_WAIT: Duration = Duration::from_secs(5);

/// After a gate's word expires, how long a send that looked at it just before may take to
/// be on its way.
const STARTING_MARGIN: Duration = Duration::from_millis(100);

/// How long a front end then waits for the workflow to have taken the request. A stop waits
/// for the pages in flight to return: an external page stops at its next look at the gate
/// and finishes the sends it has started (each within `HERALD_SEND_TIMEOUT`). Past this the
/// front end says the workflow has not confirmed it; the row's gate holds meanwhile.
pub const APPLY_WAIT: Duration = Duration::from_secs(30);

impl Control {
    /// Ask a campaign to pause, resume or cancel. The request is recorded first: once that
    /// commits, no new page starts writing after a pause or a cancel. The signal then tells
    /// the workflow, which stops scheduling pages and records its status itself. A request
    /// is never undone: when the signal cannot be delivered, the error says what holds and
    /// that the same command, run again, delivers it (a repeated request keeps its number).
    /// `Recorded::recovered` says a new run was started because no workflow ran the campaign.
    /// `by` is the actor, recorded with the request (see `herald_store::campaigns::StatusChange`).
    pub async fn request(
        &self,
        key: &CampaignKey,
        request: Request,
        reason: Option<&str>,
        by: &str,
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
        let mut recorded = status::request(&self.db, key, request, reason, by).await?;
        let committed = std::time::Instant::now();
        let asked = RecordedRequests {
            seq: recorded.requested.seq,
            rate_seq: 0,
        };
        let told = self.tell(client, key, asked, Some(request)).await?;
        let told = match told {
            Ok(told) => told,
            Err(e) => {
                let holds = match request {
                    Request::Pause => "the pause is recorded and no new page starts",
                    Request::Cancel => "the cancel is recorded and no new page starts",
                    Request::Resume => {
                        "the resume is recorded, but the campaign stays still until its workflow is told"
                    }
                };
                return Err(ControlError::Temporal {
                    action: format!("telling campaign {key}"),
                    reason: format!(
                        "{e}; {holds}; run `herald {} {key}` again to tell it",
                        request.verb()
                    ),
                });
            }
        };
        recorded.recovered = matches!(told, Told::Recovered);
        if let Told::Applied(applied) = told {
            recorded.applied = Some(applied);
        } else if recorded.channel.is_external() && request != Request::Resume {
            // Not confirmed: a webhook or e-mail page starts a send only on the word of a
            // gate read sent less than `GATE_STALE` ago, so once that has passed since the
            // request committed no send starts, whatever the workers are doing
            // (`herald_store::gates`). The margin covers a send between its look and the wire.
            let since = committed.elapsed();
            tokio::time::sleep((GATE_STALE + STARTING_MARGIN).saturating_sub(since)).await;
        }
        Ok(recorded)
    }
}

impl Control {
    /// Change a running campaign's speed limit (`None`: none). Recorded in the campaign's
    /// row, then the workflow is told by the `rate` signal; it paces its next pages by the
    /// new rate within a second, whichever workers run them. `by` is the actor.
    pub async fn set_rate(
        &self,
        key: &CampaignKey,
        rate: Option<Rate>,
        by: &str,
    ) -> Result<RateChanged> {
        let client = self.temporal().await?;
        let mut changed = status::set_rate(&self.db, key, rate, by).await?;
        let asked = RecordedRequests {
            seq: 0,
            rate_seq: changed.seq,
        };
        match self.tell(client, key, asked, None).await? {
            Ok(told) => changed.applied = matches!(told, Told::Applied(_)),
            Err(e) => {
                return Err(ControlError::Temporal {
                    action: format!("telling campaign {key}"),
                    reason: format!(
                        "{e}; the new rate is recorded but the campaign keeps its old pace until told; \
                         run the same `herald rate` again"
                    ),
                });
            }
        }
        Ok(changed)
    }

    /// Tell the campaign's workflow that its row holds `asked`, and wait for it to take it.
    /// `Err` inside says why it could not be told (the request stays recorded).
    ///
    /// No workflow open has three meanings. A cancel was taken, and the campaign ended
    /// cancelled before the answer could be read: that is the answer. The campaign ended
    /// otherwise between the request being judged and the telling: that is its status
    /// refusing the request (a 409 in the API), said as the campaign stands now, not an
    /// outage. Or its workflow is gone while the row says it has not finished: a new run is
    /// started, which reads the request from the row. `request`: `None` for a rate.
    async fn tell(
        &self,
        client: &Client,
        key: &CampaignKey,
        asked: RecordedRequests,
        request: Option<Request>,
    ) -> Result<std::result::Result<Told, String>> {
        match ask(client, key, asked).await {
            Asked::Applied(applied) => return Ok(Ok(Told::Applied(applied))),
            Asked::Gone => {}
            // Taken in hand: the workflow (or the run it hands over to) reads the row. A
            // signal now would come late, and could drop a bare request made meanwhile.
            Asked::Unconfirmed => return Ok(Ok(Told::Unconfirmed)),
            Asked::NotAccepted => match tell_workflow(client, key).await {
                Ok(()) => return Ok(Ok(Told::Unconfirmed)),
                Err(WorkflowInteractionError::NotFound(_)) => {}
                Err(e) => return Ok(Err(e.to_string())),
            },
        }
        let now = self.campaign(key).await?;
        if now.status == CampaignStatus::Cancelled && request == Some(Request::Cancel) {
            return Ok(Ok(Told::Applied(Applied {
                status: now.status,
                following: Requested {
                    intent: Intent::Cancel,
                    seq: asked.seq,
                    reason: None,
                },
                taken: true,
            })));
        }
        if now.status.is_terminal() {
            return Err(StoreError::WrongStatus {
                key: key.clone(),
                status: now.status,
                action: request.map_or("changing its rate", Request::action),
            }
            .into());
        }
        Ok(self.recover(client, key).await.map(|()| Told::Recovered))
    }
}

/// How the workflow heard of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Told {
    /// It took the request, and answered so.
    Applied(Applied),
    /// It did not answer in time: it takes the request when it runs.
    Unconfirmed,
    /// No workflow ran it: a new run was started.
    Recovered,
}

/// What asking the workflow to apply a request came to.
enum Asked {
    Applied(Applied),
    /// No workflow of the campaign is open.
    Gone,
    /// The update was not accepted: no worker took it in time, the worker has no handler
    /// for it (an older one, during a deploy), or the run closed as it came. The durable
    /// signal tells the workflow instead, or finds it gone.
    NotAccepted,
    /// Accepted, but not answered as taken in time (a slow receiver, an outage, a run that
    /// handed over first).
    Unconfirmed,
}

/// Ask the campaign's workflow to read its row and answer once it has taken `asked`. Herald
/// sends only numbers the row gave, so a refusal is not the workflow's verdict on them: it
/// is an update the workflow could not take, and the signal takes over.
async fn ask(client: &Client, key: &CampaignKey, asked: RecordedRequests) -> Asked {
    let handle = client.get_workflow_handle::<CampaignWorkflow>(names::workflow_id(key));
    let options = WorkflowStartUpdateOptions::default();
    let started = tokio::time::timeout(
        ACCEPT_WAIT,
        handle.start_update(
            CampaignWorkflow::apply,
            RawValue::from_value(&asked, &PayloadConverter::default()),
            options,
        ),
    );
    let update = match started.await {
        Ok(Ok(update)) => update,
        Ok(Err(WorkflowUpdateError::NotFound(_))) => return Asked::Gone,
        Ok(Err(_)) | Err(_) => return Asked::NotAccepted,
    };
    match tokio::time::timeout(APPLY_WAIT, update.get_result(RpcOptions::default())).await {
        Ok(Ok(applied)) if applied.taken => Asked::Applied(applied),
        // Rejected before acceptance (no handler), or the run closed before it answered.
        Ok(Err(WorkflowUpdateError::Failed(_) | WorkflowUpdateError::NotFound(_))) => {
            Asked::NotAccepted
        }
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => Asked::Unconfirmed,
    }
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
