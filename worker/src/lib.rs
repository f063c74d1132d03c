//! Wiring shared by the worker binary and the CLI: configuration from the environment and
//! connections to Temporal, with errors that say what to start when something is missing.
//!
//! - [`Config`]: `DATABASE_URL`, `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `HERALD_TASK_QUEUE`.
//! - [`connect_temporal`]: a client, or one clear line explaining why not.
//! - [`ensure_search_attributes`]: the attributes the web UI shows progress with.
//! - [`run_worker`]: poll the task queue until asked to stop.

use std::{collections::HashMap, future::Future, time::Duration};

use anyhow::{Context, anyhow};
use herald_activities::{HeraldActivities, db, worker::Faults};
use herald_wire::names;
use herald_workflows::CampaignWorkflow;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression, Url,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::IndexedValueType,
    operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tracing::info;

/// How many page statements one worker runs at once, across all its campaigns: two
/// campaigns' worth at the default of 8 lanes. More wait their turn.
const PAGE_CONNECTIONS: usize = 16;

/// Where everything is. Defaults match the local services that `scripts/services up` starts.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub temporal_address: String,
    pub namespace: String,
    pub task_queue: String,
    /// `HERALD_GRPC_COMPRESSION`: `gzip`, `none`, or unset for the default (see
    /// [`grpc_compression`]).
    pub grpc_compression: Option<String>,
}

impl Config {
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            database_url: var("DATABASE_URL", db::DEFAULT_DATABASE_URL),
            temporal_address: var("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            namespace: var("TEMPORAL_NAMESPACE", "default"),
            task_queue: var("HERALD_TASK_QUEUE", names::DEFAULT_TASK_QUEUE),
            grpc_compression: std::env::var("HERALD_GRPC_COMPRESSION")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

/// Connect to the Temporal frontend, failing within a few seconds with a hint when it is
/// not running.
pub async fn connect_temporal(config: &Config) -> anyhow::Result<Client> {
    let address = &config.temporal_address;
    let url = if address.contains("://") {
        address.clone()
    } else {
        format!("http://{address}")
    };
    let url = Url::parse(&url)
        .with_context(|| format!("TEMPORAL_ADDRESS {address:?} is not a host:port"))?;
    let compression = grpc_compression(config, &url)?;
    let options = ConnectionOptions::new(url)
        .identity(format!("herald@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .grpc_compression(compression)
        .build();
    let connection = tokio::time::timeout(Duration::from_secs(10), Connection::connect(options))
        .await
        .map_err(|_| anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .map_err(|e| {
            anyhow!(
                "cannot reach Temporal at {address} ({e}); start it with `scripts/services up` or set TEMPORAL_ADDRESS"
            )
        })?;
    Client::new(
        connection,
        ClientOptions::new(config.namespace.clone()).build(),
    )
    .context("creating the Temporal client")
}

/// gzip on the Temporal connection trades CPU for bandwidth. Across a network that can pay;
/// to a server on the same machine it is pure cost: each workflow task that reports a few
/// hundred page results is compressed by the worker and inflated by the server while every
/// lane waits for the reply (measured: 1M recipients 7% faster without it, on 2 cores). So
/// the default is no compression for a loopback address and gzip otherwise.
fn grpc_compression(config: &Config, url: &Url) -> anyhow::Result<GrpcCompression> {
    match config.grpc_compression.as_deref() {
        Some("gzip") => Ok(GrpcCompression::Gzip),
        Some("none") => Ok(GrpcCompression::None),
        Some(other) => Err(anyhow!(
            "HERALD_GRPC_COMPRESSION must be `gzip` or `none`, not {other:?}"
        )),
        None => {
            let host = url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let local = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            Ok(if local {
                GrpcCompression::None
            } else {
                GrpcCompression::Gzip
            })
        }
    }
}

/// Connect to PostgreSQL and apply pending migrations, failing with a hint when it is not
/// running.
pub async fn connect_database(
    config: &Config,
    settings: &db::PoolSettings,
) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::connect(&config.database_url, settings).await.map_err(|e| {
        anyhow!(
            "cannot reach PostgreSQL at {} ({e}); start it with `scripts/services up` or set DATABASE_URL",
            redact(&config.database_url)
        )
    })?;
    db::migrate(&pool, settings.migrations)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

/// Make sure the search attributes the workflow upserts exist in the namespace (the dev
/// server starts without them; a workflow that upserts an unknown attribute fails its tasks).
pub async fn ensure_search_attributes(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let wanted = [
        (names::SA_STATUS, IndexedValueType::Keyword),
        (names::SA_PROCESSED, IndexedValueType::Int),
    ];
    let mut operator = client.connection().operator_service();
    let existing = operator
        .list_search_attributes(tonic_request(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .context("listing the namespace's search attributes")?
        .into_inner()
        .custom_attributes;
    let missing: HashMap<String, i32> = wanted
        .iter()
        .filter(|(name, _)| !existing.contains_key(*name))
        .map(|(name, ty)| (name.to_string(), *ty as i32))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    info!(attributes = ?missing.keys().collect::<Vec<_>>(), "registering search attributes");
    operator
        .add_search_attributes(tonic_request(AddSearchAttributesRequest {
            search_attributes: missing,
            namespace: namespace.to_owned(),
        }))
        .await
        .with_context(|| {
            format!(
                "registering search attributes {} and {} in namespace {namespace}; \
                 register them with `temporal operator search-attribute create` or grant the worker the right",
                names::SA_STATUS,
                names::SA_PROCESSED
            )
        })?;
    Ok(())
}

fn tonic_request<T>(message: T) -> temporalio_client::tonic::Request<T> {
    temporalio_client::tonic::Request::new(message)
}

/// Connect to both services, apply migrations, and run a worker until `shutdown` resolves.
/// In-flight tasks are allowed to finish (up to a few seconds) before it returns.
pub async fn run_worker(config: &Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // The worker applies pending migrations itself, so a fresh database needs no extra step.
    // Pages run on connections of their own (see `PageConnections`); the pool serves the
    // bookkeeping: registering a campaign and mirroring its status, a few at a time.
    let pool = connect_database(config, &db::PoolSettings::worker(4)).await?;

    let client = connect_temporal(config).await?;
    ensure_search_attributes(&client, &config.namespace).await?;

    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let options = WorkerOptions::new(config.task_queue.clone())
        .register_workflow::<CampaignWorkflow>()
        .context("registering the campaign workflow")?
        .register_activities(
            HeraldActivities::new(pool, PAGE_CONNECTIONS).with_faults(Faults::from_env()),
        )
        // A workflow task waits this long on a dead worker's sticky queue before any
        // worker may take it; the default (10 s) would be most of the stall after a crash.
        .sticky_queue_schedule_to_start_timeout(Duration::from_secs(2))
        .graceful_shutdown_period(Duration::from_secs(5))
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;
    let stop = worker.shutdown_handle();
    info!(task_queue = %config.task_queue, namespace = %config.namespace, "worker started");
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

/// A connection string without its password, for error messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compression(address: &str, setting: Option<&str>) -> anyhow::Result<GrpcCompression> {
        let config = Config {
            grpc_compression: setting.map(str::to_owned),
            ..Config::from_env()
        };
        grpc_compression(&config, &Url::parse(address).unwrap())
    }

    #[test]
    fn loopback_connections_are_not_compressed_unless_asked() {
        for local in [
            "http://127.0.0.1:7233",
            "http://localhost:7233",
            "http://[::1]:7233",
        ] {
            assert_eq!(compression(local, None).unwrap(), GrpcCompression::None);
            assert_eq!(
                compression(local, Some("gzip")).unwrap(),
                GrpcCompression::Gzip
            );
        }
        let remote = "https://temporal.example.com:7233";
        assert_eq!(compression(remote, None).unwrap(), GrpcCompression::Gzip);
        assert_eq!(
            compression(remote, Some("none")).unwrap(),
            GrpcCompression::None
        );
    }

    #[test]
    fn an_unknown_compression_is_refused_by_name() {
        let err = compression("http://127.0.0.1:7233", Some("zstd")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HERALD_GRPC_COMPRESSION must be `gzip` or `none`, not \"zstd\""
        );
    }
}
