//! `herald-worker`'s one job: poll the task queue, running campaign workflows and their
//! activities, until asked to stop ([`run`]).

use std::{future::Future, time::Duration};

use anyhow::Context;
use herald_activities::{Faults, HeraldActivities};
use herald_control::{config::WorkerConfig, connect_database, temporal};
use herald_store::connect::PoolSettings;
use herald_workflows::{CampaignWorkflow, options};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tracing::info;

/// Sessions for registration and status changes; pages have their own connections.
const BOOKKEEPING_CONNECTIONS: u32 = 4;

/// Connect to both services, apply migrations, and run a worker until `shutdown` resolves.
/// In-flight tasks are allowed to finish (up to a few seconds) before it returns.
pub async fn run(config: &WorkerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let services = &config.services;
    let pool = connect_database(
        services,
        &PoolSettings::worker(BOOKKEEPING_CONNECTIONS, options::PAGE_STATEMENT_TIMEOUT),
    )
    .await?;
    let client = temporal::connect(services).await?;
    temporal::ensure_search_attributes(&client, &services.temporal_namespace).await?;

    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let activities = HeraldActivities::new(
        pool,
        config.page_connections as usize,
        Faults::fail_after_commit_every(config.fault_fail_after_commit_every),
    );
    let options = WorkerOptions::new(services.task_queue.clone())
        .register_workflow::<CampaignWorkflow>()
        .context("registering the campaign workflow")?
        .register_activities(activities)
        // A workflow task waits this long on a dead worker's sticky queue before any
        // worker may take it; the default (10 s) would be most of the stall after a crash.
        .sticky_queue_schedule_to_start_timeout(Duration::from_secs(2))
        .graceful_shutdown_period(Duration::from_secs(5))
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;
    let stop = worker.shutdown_handle();
    info!(task_queue = %services.task_queue, namespace = %services.temporal_namespace, "worker started");
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result.context("worker stopped"),
        () = shutdown => {
            info!("shutting down: finishing in-flight tasks");
            stop();
        }
    }
    run.await.context("worker shutdown")?;
    info!("worker stopped");
    Ok(())
}
