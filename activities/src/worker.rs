//! The Temporal activities. Each is a thin wrapper over [`crate::ledger`] that decides, per
//! error, whether Temporal should retry: a database hiccup is retried (forever, with
//! backoff; see `herald_workflows::options`), a request that can never succeed is not.
#![allow(unreachable_pub)]

use std::sync::Arc;

use herald_wire::{
    CampaignStatus, PageInput, PageOutcome, RegisterInput, Registered, SetStatusInput,
};
use sqlx::PgPool;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{debug, warn};

use crate::{LedgerError, channel, ledger};

pub struct HeraldActivities {
    pool: PgPool,
}

impl HeraldActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn to_activity_error(err: LedgerError) -> ActivityError {
    if err.is_retryable() {
        warn!(error = %err, "activity failed; Temporal will retry it");
        ActivityError::application(ApplicationFailure::new(err))
    } else {
        warn!(error = %err, "activity failed for good");
        ActivityError::application(ApplicationFailure::non_retryable(err))
    }
}

#[activities]
impl HeraldActivities {
    #[activity(definition = herald_workflows::activities::definitions::Register)]
    pub async fn register(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RegisterInput,
    ) -> Result<Registered, ActivityError> {
        ledger::register(&self.pool, &input.key, &input.spec)
            .await
            .map_err(to_activity_error)
    }

    #[activity(definition = herald_workflows::activities::definitions::Page)]
    pub async fn page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PageInput,
    ) -> Result<PageOutcome, ActivityError> {
        let outcome = channel::deliver_page(&self.pool, &input)
            .await
            .map_err(to_activity_error)?;
        debug!(
            campaign.message_id = input.message_id,
            page.lane = input.lane,
            page.after = input.after,
            ?outcome,
            "page committed"
        );
        Ok(outcome)
    }

    #[activity(definition = herald_workflows::activities::definitions::YieldNow)]
    pub async fn yield_now(self: Arc<Self>, _ctx: ActivityContext, _input: ()) -> Result<(), ActivityError> {
        Ok(())
    }

    #[activity(definition = herald_workflows::activities::definitions::SetStatus)]
    pub async fn set_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SetStatusInput,
    ) -> Result<CampaignStatus, ActivityError> {
        ledger::set_status(&self.pool, &input)
            .await
            .map_err(to_activity_error)
    }
}
