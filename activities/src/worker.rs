//! The Temporal activities. Each is a thin wrapper over [`crate::ledger`] that decides, per
//! error, whether Temporal should retry: a database hiccup is retried (forever, with
//! backoff; see `herald_workflows::options`), a request that can never succeed is not.
#![allow(unreachable_pub)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use herald_wire::{
    CampaignStatus, PageInput, PageOutcome, RegisterInput, Registered, SetStatusInput,
};
use sqlx::PgPool;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{debug, info, warn};

use crate::{LedgerError, channel, db::PageConnections, ledger};

pub struct HeraldActivities {
    /// For the bookkeeping activities.
    pool: PgPool,
    /// For pages: see [`PageConnections`].
    pages: PageConnections,
    stats: PageStats,
    faults: Faults,
}

impl HeraldActivities {
    /// `pages`: how many page statements may run at once.
    pub fn new(pool: PgPool, pages: usize) -> Self {
        Self {
            pages: PageConnections::new(&pool, pages),
            pool,
            stats: PageStats::default(),
            faults: Faults::default(),
        }
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// Faults injected on purpose, for the fault suite: they prove that a page which committed
/// but whose completion never reached Temporal is retried without being counted twice.
/// Off unless `HERALD_FAULT_FAIL_AFTER_COMMIT_EVERY=N` is set for the worker.
#[derive(Default)]
pub struct Faults {
    fail_after_commit_every: Option<u64>,
    pages: AtomicU64,
}

impl Faults {
    pub fn from_env() -> Self {
        let every = std::env::var("HERALD_FAULT_FAIL_AFTER_COMMIT_EVERY")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0);
        if let Some(n) = every {
            warn!(
                every = n,
                "fault injection on: every Nth page fails after its commit"
            );
        }
        Self {
            fail_after_commit_every: every,
            pages: AtomicU64::new(0),
        }
    }

    fn fail_after_commit(&self) -> bool {
        self.fail_after_commit_every
            .is_some_and(|n| (self.pages.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n))
    }
}

/// Page metrics, logged every [`PageStats::REPORT_EVERY`] pages: how many, how many
/// recipients, and how long the page statement took (mean and worst), so that an operator can
/// tell database time from everything else.
#[derive(Default)]
struct PageStats {
    pages: AtomicU64,
    recipients: AtomicU64,
    micros: AtomicU64,
    max_micros: AtomicU64,
    in_flight: AtomicU64,
}

impl PageStats {
    const REPORT_EVERY: u64 = 1_000;

    fn record(&self, recipients: u32, elapsed: std::time::Duration) {
        let micros = elapsed.as_micros() as u64;
        let total_micros = self.micros.fetch_add(micros, Ordering::Relaxed) + micros;
        let total_recipients = self
            .recipients
            .fetch_add(u64::from(recipients), Ordering::Relaxed)
            + u64::from(recipients);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        if pages.is_multiple_of(Self::REPORT_EVERY) {
            info!(
                pages,
                recipients = total_recipients,
                page.statement_ms_mean = total_micros as f64 / pages as f64 / 1000.0,
                page.statement_ms_max = self.max_micros.swap(0, Ordering::Relaxed) as f64 / 1000.0,
                pages.in_flight = self.in_flight.load(Ordering::Relaxed),
                "page statistics"
            );
        }
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
        if input.min_millis > 0 {
            // Rate limit: wait first, so that a pause arriving meanwhile is obeyed by the
            // page statement's status check.
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(
                input.min_millis,
            )))
            .await;
        }
        let started = Instant::now();
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = channel::deliver_page(&self.pages, &input).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
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
            campaign.message_id = input.message_id,
            page.lane = input.lane,
            page.after = input.after,
            ?outcome,
            "page committed"
        );
        Ok(outcome)
    }

    #[activity(definition = herald_workflows::activities::definitions::YieldNow)]
    pub async fn yield_now(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<(), ActivityError> {
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
