//! `herald-worker`'s one job: poll the task queue, running campaign workflows and their
//! activities, until asked to stop ([`run`]).

use std::{future::Future, time::Duration};

use anyhow::Context;
use herald_activities::{
    Faults, HeraldActivities, Metrics, Stopping,
    channels::{Channels, Settings, Unsubscribing},
};
use herald_control::{config::WorkerConfig, connect_database, temporal};
use herald_store::connect::PoolSettings;
use herald_workflows::{CampaignWorkflow, options};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tracing::{info, warn};

/// Sessions for registration and status changes; pages have their own connections.
const BOOKKEEPING_CONNECTIONS: u32 = 4;

/// Connect to both services, check the schema (or migrate it, with `HERALD_MIGRATE=true`),
/// and run a worker until `shutdown` resolves.
///
/// Then it hands its campaigns over: activities refuse new work at once (each campaign's
/// workflow waits a second on a durable timer, which another worker picks up), in-flight
/// pages finish, and it returns. Whatever is still running after `config.server.shutdown_grace` is
/// abandoned; another worker runs it again, and the ledger makes that harmless.
pub async fn run(config: &WorkerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let services = &config.services;
    let pool = connect_database(
        services,
        &PoolSettings::worker(
            BOOKKEEPING_CONNECTIONS,
            options::PAGE_STATEMENT_TIMEOUT,
            config.migrate,
        ),
    )
    .await?;
    let client = temporal::connect(services).await?;
    temporal::ensure_search_attributes(&client, &services.temporal_namespace).await?;

    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let stopping = Stopping::default();
    let metrics = Metrics::new();
    if let Some(addr) = config.metrics_addr {
        serve_metrics(addr, metrics.clone(), pool.clone()).await?;
    }
    let unsubscribe_key = services.unsubscribe_key(&pool).await?;
    let activities = HeraldActivities::new(
        pool,
        config.page_connections as usize,
        Channels::new(Settings {
            webhook_secret: services.signing_secret()?,
            destinations: services.destinations(),
            webhook_timeout: config.send_timeout,
            smtp_url: services.smtp_url.clone(),
            email_from: services.email_from.clone(),
            concurrency: config.send_concurrency as usize,
            unsubscribe: Unsubscribing {
                key: unsubscribe_key,
                base: services.public_url.clone(),
                mailto: services.unsubscribe_mailto.clone(),
            },
            suppress_bounces: services.suppress_bounces,
        }),
        metrics,
        Faults::default()
            .fail_after_commit_every(config.fault_fail_after_commit_every)
            .delay_status_writes(config.fault_status_delay),
        stopping.clone(),
    );
    let options = WorkerOptions::new(services.task_queue.clone())
        .register_workflow::<CampaignWorkflow>()
        .context("registering the campaign workflow")?
        .register_activities(activities)
        // A workflow task waits this long on a dead worker's sticky queue before any
        // worker may take it; the default (10 s) would be most of the stall after a crash.
        .sticky_queue_schedule_to_start_timeout(Duration::from_secs(2))
        // Regular activities still running this long after the stop are cancelled.
        .graceful_shutdown_period(config.server.shutdown_grace.mul_f64(0.8))
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;
    let stop = worker.shutdown_handle();
    info!(task_queue = %services.task_queue, namespace = %services.temporal_namespace, "worker started");
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result.context("worker stopped"),
        () = shutdown => {
            info!(grace = ?config.server.shutdown_grace, "shutting down: refusing new pages, finishing the ones in flight");
            stopping.stop();
            stop();
        }
    }
    match tokio::time::timeout(config.server.shutdown_grace, run).await {
        Ok(result) => {
            result.context("worker shutdown")?;
            info!("worker stopped");
        }
        Err(_) => warn!(
            grace = ?config.server.shutdown_grace,
            "worker stopped with tasks still running; another worker runs them again"
        ),
    }
    Ok(())
}

/// Serve `/metrics` at `addr`: the worker's own metrics, and the campaigns by status as the
/// ledger has them at each scrape.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: Metrics,
    pool: herald_store::PgPool,
) -> anyhow::Result<()> {
    use axum::{Router, http::header, response::IntoResponse, routing::get};
    let campaigns = prometheus::IntGaugeVec::new(
        prometheus::Opts::new("herald_campaigns", "Campaigns in the ledger, by status"),
        &["status"],
    )?;
    metrics.registry.register(Box::new(campaigns.clone()))?;
    let scrape = move || {
        let (metrics, campaigns, pool) = (metrics.clone(), campaigns.clone(), pool.clone());
        async move {
            if let Ok(counts) = herald_store::campaigns::counts_by_status(&pool).await {
                for (status, n) in counts {
                    campaigns.with_label_values(&[status.name()]).set(n);
                }
            }
            let mut text = Vec::new();
            let _ = prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                &metrics.registry.gather(),
                &mut text,
            );
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
    };
    let app = Router::new().route("/metrics", get(scrape));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("HERALD_METRICS_ADDR {addr}: cannot listen"))?;
    info!(%addr, "serving metrics at /metrics");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
