//! The activities of the campaign workflow. Each is a thin wrapper over the store or a
//! channel; [`crate::error`] decides whether Temporal should retry a failure.
#![allow(unreachable_pub)]

use std::{sync::Arc, time::Instant};

use herald_store::{PgPool, campaigns, page_connections::PageConnections, status};
use herald_wire::{
    CampaignStatus, PageInput, PageOutcome, RegisterInput, Registered, SetStatusInput,
};
use herald_workflows::activities::definitions;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{debug, warn};

use crate::{Faults, channels, error::to_activity_error, stats::PageStats};

pub struct HeraldActivities {
    /// For registration and status changes.
    pool: PgPool,
    /// For pages: see [`PageConnections`].
    pages: PageConnections,
    stats: PageStats,
    faults: Faults,
}

impl HeraldActivities {
    /// `pages`: how many page statements may run at once.
    pub fn new(pool: PgPool, pages: usize, faults: Faults) -> Self {
        Self {
            pages: PageConnections::new(&pool, pages),
            pool,
            stats: PageStats::default(),
            faults,
        }
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
        campaigns::register(&self.pool, &input.key, &input.spec)
            .await
            .map_err(to_activity_error)
    }

    #[activity(definition = definitions::Page)]
    pub async fn page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PageInput,
    ) -> Result<PageOutcome, ActivityError> {
        if input.min_millis > 0 {
            // Rate limit: wait first, so that a pause arriving meanwhile is obeyed by the
            // page statement's status check.
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(
                input.min_millis,
            )))
            .await;
        }
        let started = Instant::now();
        let outcome = {
            let _in_flight = self.stats.in_flight();
            channels::deliver_page(&self.pages, &input).await
        };
        let outcome = outcome.map_err(to_activity_error)?;
        if let PageOutcome::Written { recipients, .. } = outcome {
            self.stats.record(recipients, started.elapsed());
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

    #[activity(definition = definitions::SetStatus)]
    pub async fn set_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SetStatusInput,
    ) -> Result<CampaignStatus, ActivityError> {
        status::record(&self.pool, &input)
            .await
            .map_err(to_activity_error)
    }
}
