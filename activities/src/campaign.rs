//! The activities of the campaign workflow. Each is a thin wrapper over the store or a
//! channel; [`crate::error`] decides whether Temporal should retry a failure.
#![allow(unreachable_pub)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use herald_store::{
    PgPool, campaigns,
    filter::{self, Compiled},
    gates::Gates,
    pages,
    quiet_pool::QuietPool,
    sends::{self, Delivery},
    status,
};
use herald_templates::Templates;
use herald_wire::{
    Channel, LedgerRequests, PageInput, PageOutcome, RegisterInput, Registered, SetStatusInput,
    StatusRecorded, SyncRequestsInput, WAVE_LANES,
};
use herald_workflows::activities::definitions;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{debug, warn};

use crate::{
    Faults, Metrics,
    channels::{self, Channels, outbound},
    error::{page_error, permanent, to_activity_error, worker_stopping},
    stats::PageStats,
};

/// Set when the worker begins to shut down. From then on every activity refuses to start
/// (nothing written), so the workflow hands the campaign to another worker at once instead
/// of this one running it to the end.
#[derive(Clone, Debug, Default)]
pub struct Stopping(Arc<AtomicBool>);

impl Stopping {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn refuse(&self) -> Result<(), ActivityError> {
        if self.is_stopping() {
            return Err(worker_stopping());
        }
        Ok(())
    }
}

pub struct HeraldActivities {
    /// For registration and status changes.
    pool: PgPool,
    /// For pages: see [`QuietPool`].
    pages: QuietPool,
    /// The gates of the campaigns with pages sending, on a connection of their own.
    gates: Gates,
    stats: PageStats,
    faults: Faults,
    stopping: Stopping,
    channels: Channels,
    metrics: Metrics,
    /// What the external channels need of each campaign (fixed at launch), by row id.
    campaigns: std::sync::Mutex<std::collections::HashMap<i64, Arc<Delivery>>>,
    /// Each campaign's audience as SQL for its pages (fixed at launch), by row id and wave.
    audiences: std::sync::Mutex<std::collections::HashMap<(i64, u32), Arc<Compiled>>>,
    /// Each campaign's title and body, compiled (fixed at launch), by row id.
    templates: std::sync::Mutex<std::collections::HashMap<i64, Arc<Templates>>>,
}

/// Keep `value` for `id` in a cache of what campaigns fixed at launch, which never grows
/// past 1,024 campaigns (a worker runs far fewer at once).
fn keep<K: std::hash::Hash + Eq, T>(
    cache: &std::sync::Mutex<std::collections::HashMap<K, Arc<T>>>,
    id: K,
    value: Arc<T>,
) {
    let mut cache = cache.lock().expect("never poisoned");
    if cache.len() >= 1_024 {
        cache.clear();
    }
    cache.insert(id, value);
}

impl HeraldActivities {
    /// `pages`: how many page statements may run at once.
    pub fn new(
        pool: PgPool,
        pages: usize,
        channels: Channels,
        metrics: Metrics,
        faults: Faults,
        stopping: Stopping,
    ) -> Self {
        Self {
            pages: QuietPool::new(&pool, pages),
            gates: Gates::new(&pool),
            pool,
            stats: PageStats::default(),
            faults,
            stopping,
            channels,
            metrics,
            campaigns: Default::default(),
            audiences: Default::default(),
            templates: Default::default(),
        }
    }

    async fn campaign(&self, id: i64) -> Result<Arc<Delivery>, ActivityError> {
        if let Some(c) = self.campaigns.lock().expect("never poisoned").get(&id) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            sends::delivery(&self.pool, id)
                .await
                .map_err(to_activity_error)?,
        );
        keep(&self.campaigns, id, c.clone());
        Ok(c)
    }

    /// The audience of a page's wave (its lane's block, [`WAVE_LANES`]), as SQL for its
    /// pages.
    async fn audience(&self, page: &PageInput) -> Result<Arc<Compiled>, ActivityError> {
        let key = (page.campaign_id, page.lane / WAVE_LANES);
        if let Some(a) = self.audiences.lock().expect("never poisoned").get(&key) {
            return Ok(a.clone());
        }
        let compiled = async {
            let mut conn = self.pool.acquire().await?;
            filter::of_campaign(&mut conn, key.0, key.1, pages::AUDIENCE_PARAMS).await
        };
        let a = Arc::new(compiled.await.map_err(to_activity_error)?);
        keep(&self.audiences, key, a.clone());
        Ok(a)
    }

    /// The campaign's title and body, compiled.
    fn templates(&self, id: i64, campaign: &Delivery) -> Result<Arc<Templates>, ActivityError> {
        if let Some(t) = self.templates.lock().expect("never poisoned").get(&id) {
            return Ok(t.clone());
        }
        let key = campaign.key.as_str();
        let (content, channel) = (&campaign.content, campaign.spec.channel);
        let t = Templates::compile(key, content, channel).unwrap_or_else(|e| {
            // Launch refuses such text since templates came in; a campaign launched before
            // them is sent as it was written.
            warn!(
                campaign = key,
                field = e.field,
                error = e.message,
                "content sent verbatim"
            );
            Templates::verbatim(key, content, channel)
        });
        let t = Arc::new(t);
        keep(&self.templates, id, t.clone());
        Ok(t)
    }

    /// Send one page of an external channel.
    async fn send_page(
        &self,
        ctx: &ActivityContext,
        input: &PageInput,
    ) -> Result<PageOutcome, ActivityError> {
        if let Some(problem) = self.channels.problem(input.channel) {
            return Err(permanent(problem.to_owned()));
        }
        let campaign = self.campaign(input.campaign_id).await?;
        let audience = self.audience(input).await?;
        let templates = self.templates(input.campaign_id, &campaign)?;
        let run = outbound::PageRun {
            ctx,
            pages: &self.pages,
            gates: &self.gates,
            campaign: &campaign,
            audience: &audience,
            templates: &templates,
            settings: &self.channels.settings,
            stopping: &self.stopping,
            metrics: &self.metrics,
        };
        let outcome = match input.channel {
            Channel::Webhook => {
                let webhook = self
                    .channels
                    .webhook()
                    .map_err(|e| permanent(e.to_owned()))?;
                outbound::deliver_page(webhook, &run, input).await
            }
            Channel::Email => {
                let email = self.channels.email().map_err(|e| permanent(e.to_owned()))?;
                outbound::deliver_page(email, &run, input).await
            }
            Channel::Inbox => unreachable!("inbox pages are one statement"),
        };
        outcome.map_err(page_error)
    }
}

#[activities]
impl HeraldActivities {
    #[activity(definition = definitions::Register)]
    pub async fn register(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RegisterInput,
    ) -> Result<Registered, ActivityError> {
        self.stopping.refuse()?;
        campaigns::register(&self.pool, &input.key, &input.spec)
            .await
            .map_err(to_activity_error)
    }

    #[activity(definition = definitions::Page)]
    pub async fn page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: PageInput,
    ) -> Result<PageOutcome, ActivityError> {
        self.stopping.refuse()?;
        if input.delay_millis > 0 {
            // A paced lane's turn comes shortly; the page's timeout includes this wait.
            tokio::time::sleep(Duration::from_millis(u64::from(input.delay_millis))).await;
            self.stopping.refuse()?;
        }
        let started = Instant::now();
        let budget = ctx
            .info()
            .deadline
            .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default());
        let outcome = {
            let _in_flight = self.stats.in_flight();
            let _page = self.metrics.page_started();
            if input.channel.is_external() {
                self.send_page(&ctx, &input).await
            } else {
                let audience = self.audience(&input).await?;
                channels::deliver_page(&self.pages, &input, &audience, budget)
                    .await
                    .map_err(page_error)
            }
        };
        let outcome = outcome?;
        if let PageOutcome::Written { recipients, .. } = outcome {
            self.stats.record(recipients, started.elapsed());
            if !input.channel.is_external() {
                self.metrics
                    .recorded(input.channel.name(), u64::from(recipients), 0);
            }
        }
        if self.faults.fail_after_commit() {
            warn!(
                page.lane = input.lane,
                page.after = input.after,
                "injected fault: page committed, reporting failure"
            );
            return Err(ActivityError::application(ApplicationFailure::new(
                "injected fault after commit",
            )));
        }
        debug!(
            campaign.id = input.campaign_id,
            page.lane = input.lane,
            page.after = input.after,
            ?outcome,
            "page committed"
        );
        Ok(outcome)
    }

    #[activity(definition = definitions::YieldTask)]
    pub async fn yield_task(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<(), ActivityError> {
        Ok(())
    }

    #[activity(definition = definitions::SetStatus)]
    pub async fn set_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SetStatusInput,
    ) -> Result<StatusRecorded, ActivityError> {
        self.stopping.refuse()?;
        self.faults.delay_status().await;
        status::record(&self.pool, &input)
            .await
            .map_err(to_activity_error)
    }

    #[activity(definition = definitions::SyncRequests)]
    pub async fn sync_requests(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SyncRequestsInput,
    ) -> Result<LedgerRequests, ActivityError> {
        self.stopping.refuse()?;
        status::sync_requests(&self.pool, &input)
            .await
            .map_err(to_activity_error)
    }
}
