//! Launching a campaign: the row and its audience first, then the workflow. Every front end
//! builds its launch through [`LaunchFields`], which checks each field once.

mod fields;

pub use fields::{AudienceGiven, FieldErrors, LaunchFields, filter_error, split_field};

use chrono::Utc;
use herald_store::{
    StoreError,
    audience::Preview,
    campaigns::{self, Created},
    saved_audiences,
};
use herald_templates::Templates;
use herald_wire::{
    CampaignInput, CampaignKey, CampaignSpec, CampaignStatus, Tuning, WebhookUrl,
    audience::{AudienceName, Filter},
    names,
    webhooks::{Host, Refused},
};
use herald_workflows::CampaignWorkflow;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowStartOptions,
    errors::{WorkflowInteractionError, WorkflowStartError},
};

use crate::{Control, ControlError, Result};

/// The memo field that carries the campaign row's launch token to its workflow.
const LAUNCH_MEMO: &str = "herald_launch";

/// How long a launch waits for a webhook URL's host to resolve.
const RESOLVE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What an operator asks to launch, checked field by field ([`LaunchFields::check`]).
#[derive(Clone, Debug)]
pub struct LaunchRequest {
    /// Generated when `None`.
    pub key: Option<CampaignKey>,
    pub spec: CampaignSpec,
    pub tuning: Tuning,
    /// A saved audience to launch to; its filter is copied into the spec at launch (the
    /// spec's own audience is then `None`).
    pub audience_name: Option<AudienceName>,
}

/// A campaign that has been launched.
#[derive(Clone, Debug)]
pub struct Launched {
    pub key: CampaignKey,
    /// Recipients in the audience, fixed at launch.
    pub total: i64,
    /// `Some` when this key had been launched before with the same spec, and nothing new was
    /// started: the campaign's status now.
    pub already: Option<CampaignStatus>,
}

fn empty_audience(field: &str, audience: Option<&Filter>) -> ControlError {
    let message = match audience {
        Some(Filter::Segment(s)) => format!(
            "the audience is empty: no user carries segment {:?}",
            s.as_str()
        ),
        Some(filter) => format!("the audience is empty: no user matches {filter}"),
        None => "the audience is empty: there are no users yet; import some first \
                 (docs/audiences.md)"
            .into(),
    };
    ControlError::Unmet {
        field: field.to_owned(),
        message,
    }
}

/// Whether Temporal has a workflow for a campaign.
enum Started {
    Yes,
    No,
    /// Temporal could not be asked.
    Unknown(String),
}

impl Control {
    /// Create the campaign's row, fix its audience, and start its workflow. Both services are
    /// reached before anything is written; an empty audience is refused and leaves nothing.
    ///
    /// Launching is idempotent by key. The same key and spec again reports the campaign as
    /// it stands (and starts its workflow if an interrupted launch left the row without
    /// one); the same key with a different spec is refused. When starting the workflow fails
    /// in a way that leaves its fate unknown (a timeout, a dropped reply), Temporal is asked
    /// before anything is cleaned up, so an operator is never told a running campaign failed.
    /// `by` is the actor, recorded with the campaign.
    pub async fn launch(&self, mut request: LaunchRequest, by: &str) -> Result<Launched> {
        let named = request.audience_name.clone();
        // The same launch by name again (a retry with its key) is compared with the filter
        // copied the first time, whatever the name holds now.
        if let (Some(key), Some(name)) = (&request.key, &named)
            && let Some((launched, copied)) = campaigns::launched_from(&self.db, key).await?
            && &launched == name
        {
            request.spec.audience = copied;
            request.audience_name = None;
        }
        // Whether it named its cap, before the default fills it in.
        let cap_named = request.spec.frequency_cap.is_some();
        let field = self.settle_audience(&mut request).await?;
        let key = request.key.unwrap_or_else(generate_key);
        let mut spec = request.spec;
        let client = self.temporal().await?;
        let created =
            campaigns::create(&self.db, &key, &spec, &request.tuning, named.as_ref(), by).await?;
        let registered = match created {
            Created::Existing(stored) => {
                // The same launch again takes the cap the campaign got, whatever the
                // default is now.
                if !cap_named {
                    spec.frequency_cap = stored.frequency_cap;
                }
                return self
                    .relaunch(client, key, &spec, &stored, request.tuning)
                    .await;
            }
            Created::New(registered) => registered,
        };
        if spec.cap().is_some() {
            // What no window reaches any more.
            herald_store::cap::forget_old(&self.db).await?;
        }
        if registered.total == 0 {
            campaigns::delete_unstarted(&self.db, &key).await?;
            return Err(empty_audience(field, spec.audience.as_ref()));
        }
        let launch = campaigns::launch_token(&self.db, &key).await?;
        if let Err(e) = self
            .start_workflow(
                client,
                &key,
                &spec,
                request.tuning,
                WorkflowIdReusePolicy::RejectDuplicate,
                &launch,
            )
            .await
        {
            if let WorkflowStartError::AlreadyStarted { .. } = e {
                return self.started_by_another(client, key).await;
            }
            return Err(match self.started(client, &key).await {
                Started::Yes => {
                    return Ok(Launched {
                        key,
                        total: registered.total,
                        already: None,
                    });
                }
                Started::No => {
                    // Nothing runs: leave nothing behind.
                    campaigns::delete_unstarted(&self.db, &key).await.ok();
                    ControlError::Temporal {
                        action: "starting the campaign workflow".into(),
                        reason: format!("{e}; nothing was launched"),
                    }
                }
                Started::Unknown(why) => ControlError::Temporal {
                    action: format!("starting campaign {key}'s workflow"),
                    reason: format!(
                        "{e}; whether it started is unknown ({why}). The campaign is kept: \
                         launch it again with the same key, {key}, which starts it only if it \
                         did not start, and never sends twice"
                    ),
                },
            });
        }
        Ok(Launched {
            key,
            total: registered.total,
            already: None,
        })
    }

    /// What [`Control::launch`] would do, without doing it: checks the request as a launch
    /// does, and counts the recipients it would reach now, each top-level clause's share,
    /// and its first members. Writes nothing and needs only PostgreSQL. An empty audience is
    /// refused as a launch refuses it.
    pub async fn dry_run(&self, mut request: LaunchRequest) -> Result<Preview> {
        let field = self.settle_audience(&mut request).await?;
        let audience = request.spec.audience.as_ref();
        let mut preview = herald_store::audience::preview(&self.db, audience).await?;
        if preview.total == 0 {
            return Err(empty_audience(field, audience));
        }
        preview.waves = campaigns::plan_waves(&self.db, &request.spec).await?;
        if let (Some(cap), Some(limit)) = (request.spec.frequency_cap, request.spec.cap()) {
            let over = herald_store::cap::over_cap(&self.db, audience, limit).await?;
            preview.cap = Some((cap, over));
        }
        Ok(preview)
    }

    /// Check what needs the database and the settings: the channel is configured, a saved
    /// audience is copied in, and the filter and the templates fit the attributes users
    /// have. Returns the
    /// field the audience came from, for its errors.
    pub(crate) async fn settle_audience(
        &self,
        request: &mut LaunchRequest,
    ) -> Result<&'static str> {
        request.spec.check()?;
        self.config
            .check_channel(request.spec.channel)
            .map_err(|e| e.at("channel"))?;
        if let Some(url) = &request.spec.webhook_url {
            self.check_destination(url).await?;
        }
        let mut conn = self.db.acquire().await.map_err(StoreError::from)?;
        if !herald_store::consent::category_exists(&mut conn, &request.spec.category).await? {
            return Err(ControlError::Unmet {
                field: "category".into(),
                message: format!(
                    "no category is called {:?}; declare it first (herald categories add {0}, or POST /v1/categories)",
                    request.spec.category.as_str()
                ),
            });
        }
        drop(conn);
        // Not named at launch: the operators' default, written into the spec so that the
        // campaign keeps it whatever the default becomes.
        if request.spec.frequency_cap.is_none() && !request.spec.category.is_transactional() {
            request.spec.frequency_cap = herald_store::cap::default_cap(&self.db).await?;
        }
        let field = match (&request.audience_name, &request.spec.audience) {
            (Some(name), _) => {
                let filter = saved_audiences::get(&self.db, name).await?.ok_or_else(|| {
                    ControlError::Unmet {
                        field: "audience_name".into(),
                        message: format!("no audience is saved as {:?}", name.as_str()),
                    }
                })?;
                request.spec.audience = Some(filter);
                "audience_name"
            }
            (None, Some(Filter::Segment(_))) => "segment",
            (None, Some(_)) => "audience",
            // Every user: no field chose it.
            (None, None) => "",
        };
        let attributes = herald_store::filter::attribute_types(&self.db).await?;
        if let Some(filter) = &request.spec.audience {
            filter
                .check(&|name: &str| attributes.get(name).copied())
                .map_err(|e| ControlError::from(filter_error(field, e)))?;
        }
        Templates::compile("", &request.spec.content, request.spec.channel)?
            .check_names(|name| attributes.contains_key(name))?;
        Ok(field)
    }

    /// Refuse a webhook URL that `HERALD_WEBHOOK_ALLOW` does not allow, by its host and by
    /// the addresses the host resolves to now (the worker checks again on every connection).
    async fn check_destination(&self, url: &WebhookUrl) -> Result<()> {
        let refuse = |why: String| ControlError::Field {
            field: "webhook_url".into(),
            message: format!("{url} is refused: {why}"),
        };
        let policy = self.config.destinations();
        let (host, port) = url.host_port();
        let resolved = match &host {
            Host::Name(name) => {
                let lookup = tokio::net::lookup_host((name.as_str(), port));
                match tokio::time::timeout(RESOLVE_WAIT, lookup).await {
                    Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                    Ok(Err(e)) => return Err(refuse(format!("its host does not resolve ({e})"))),
                    Err(_) => {
                        return Err(refuse(format!(
                            "its host did not resolve within {RESOLVE_WAIT:?}"
                        )));
                    }
                }
            }
            Host::Ip(_) => Vec::new(),
        };
        policy
            .check(&host, port, &resolved)
            .map_err(|Refused(why)| refuse(why))
    }

    /// A key that exists: the same launch again, or a different campaign under its key.
    async fn relaunch(
        &self,
        client: &Client,
        key: CampaignKey,
        spec: &CampaignSpec,
        stored: &CampaignSpec,
        tuning: Tuning,
    ) -> Result<Launched> {
        if stored != spec {
            return Err(ControlError::Conflict(format!(
                "campaign {key} already exists with a different {}; pick another key",
                differences(stored, spec).join(", ")
            )));
        }
        let view = self.campaign(&key).await?;
        let never_started = view.status == CampaignStatus::NotStarted && view.started_at.is_none();
        // A launch interrupted between the row and the workflow: finish it.
        let interrupted = never_started
            && match self.started(client, &key).await {
                Started::Yes => false,
                Started::No => true,
                Started::Unknown(why) => {
                    return Err(ControlError::Temporal {
                        action: format!("checking campaign {key}'s workflow"),
                        reason: format!(
                            "{why}; run the same launch again to find out (it never sends twice)"
                        ),
                    });
                }
            };
        if interrupted {
            let launch = campaigns::launch_token(&self.db, &key).await?;
            self.start_workflow(
                client,
                &key,
                spec,
                tuning,
                WorkflowIdReusePolicy::RejectDuplicate,
                &launch,
            )
            .await
            .or_else(|e| match e {
                // Started meanwhile (another launch of the same key).
                WorkflowStartError::AlreadyStarted { .. } => Ok(()),
                e => Err(e),
            })
            .map_err(|e| ControlError::Temporal {
                action: format!("starting campaign {key}'s workflow"),
                reason: e.to_string(),
            })?;
        }
        Ok(Launched {
            key,
            total: view.total,
            already: Some(view.status),
        })
    }

    /// The workflow of a key this launch has just created the row for exists already. The
    /// same launch racing this one (a double click, a client's retry) may have found the
    /// row and started it first: then the workflow carries this row's launch token in its
    /// memo, it is this campaign, and the row stays. Any other workflow (a campaign of
    /// another ledger on this Temporal namespace, whatever its spec) means the key is
    /// taken, and the new row is removed.
    async fn started_by_another(&self, client: &Client, key: CampaignKey) -> Result<Launched> {
        let ours = campaigns::launch_token(&self.db, &key).await?;
        let handle = client.get_workflow_handle::<CampaignWorkflow>(names::workflow_id(&key));
        let theirs = match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(described) => described.memo().get::<String>(LAUNCH_MEMO).ok().flatten(),
            // Gone meanwhile (terminated): not this campaign's.
            Err(WorkflowInteractionError::NotFound(_)) => None,
            Err(e) => {
                return Err(ControlError::Temporal {
                    action: format!("checking campaign {key}'s workflow"),
                    reason: format!(
                        "asking Temporal failed: {e}; the campaign is kept: run the same \
                         launch again to find out (it never sends twice)"
                    ),
                });
            }
        };
        if theirs.as_deref() == Some(ours.as_str()) {
            let view = self.campaign(&key).await?;
            return Ok(Launched {
                key,
                total: view.total,
                already: Some(view.status),
            });
        }
        campaigns::delete_unstarted(&self.db, &key).await?;
        Err(ControlError::Store(StoreError::DuplicateKey(key)))
    }

    /// Start the campaign's workflow. A launch refuses a workflow id used before
    /// (`RejectDuplicate`: a key is one campaign); `herald retry-failed` starts a new run of
    /// a completed campaign's workflow (`AllowDuplicate`). `launch` is the row's launch token
    /// ([`campaigns::launch_token`]), kept in the workflow's memo.
    pub(crate) async fn start_workflow(
        &self,
        client: &Client,
        key: &CampaignKey,
        spec: &CampaignSpec,
        tuning: Tuning,
        reuse: WorkflowIdReusePolicy,
        launch: &str,
    ) -> Result<(), WorkflowStartError> {
        let mut memo = temporalio_common::MemoValues::new();
        memo.insert(LAUNCH_MEMO, launch.to_owned());
        let input = CampaignInput {
            key: key.clone(),
            spec: spec.clone(),
            carried: None,
            tuning,
        };
        let options =
            WorkflowStartOptions::new(self.config.task_queue.clone(), names::workflow_id(key))
                .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
                .id_reuse_policy(reuse)
                // Crash recovery against a slow link: see `herald_workflows::options`.
                .task_timeout(self.config.workflow_task_timeout)
                .static_summary(format!("Herald campaign {key}: {}", spec.content.title()))
                .memo(memo)
                .build();
        client
            .start_workflow(CampaignWorkflow::run, input, options)
            .await
            .map(|_| ())
    }

    /// Ask Temporal whether the campaign's workflow exists (running or closed).
    async fn started(&self, client: &Client, key: &CampaignKey) -> Started {
        let handle = client.get_workflow_handle::<CampaignWorkflow>(names::workflow_id(key));
        match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(_) => Started::Yes,
            Err(WorkflowInteractionError::NotFound(_)) => Started::No,
            Err(e) => Started::Unknown(format!("asking Temporal failed: {e}")),
        }
    }
}

/// The fields in which two specs differ, by their names in the launch's options.
fn differences(a: &CampaignSpec, b: &CampaignSpec) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return vec!["spec".into()];
    };
    let mut fields: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| match k.as_str() {
            "content" => "title or body".to_owned(),
            k => k.replace('_', "-"),
        })
        .collect();
    fields.sort();
    fields.dedup();
    if fields.is_empty() {
        fields.push("spec".into());
    }
    fields
}

/// A key from the time of launch, e.g. `c-20261201-093000-1a2b`.
pub fn generate_key() -> CampaignKey {
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
