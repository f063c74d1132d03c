//! `herald-api`: serve the HTTP API until SIGTERM or Ctrl-C, then stop accepting
//! connections, end event streams, and let open requests finish (within
//! `HERALD_SHUTDOWN_GRACE`).

use std::sync::Arc;

use clap::Parser;
use herald_api::{AppState, auth::Auth, ops::Metrics};
use herald_control::{Control, config::ApiConfig, error::one_line};
use tokio::{net::TcpListener, sync::watch};

/// Each request allocates its rows, its JSON and its headers, from many tasks at once:
/// mimalloc takes about a third less of the API's own CPU a request than glibc's allocator
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    herald_control::process::no_huge_pages();
    let config = match ApiConfig::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => fail(&herald_control::config::first_line(&e.to_string()), 2),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.server.log).unwrap_or_else(|e| {
        fail(
            &format!("RUST_LOG {:?} is not a log filter ({e})", config.server.log),
            2,
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(config).await {
        fail(
            &one_line(e.chain()),
            herald_control::error::exit_code(e.chain()),
        );
    }
}

fn fail(message: &str, code: i32) -> ! {
    eprintln!("herald-api: {message}");
    std::process::exit(code)
}

async fn run(config: ApiConfig) -> anyhow::Result<()> {
    config.check()?;
    let control = Control::serve(
        config.services.clone(),
        config.api_db_connections,
        config.api_request_timeout,
    )
    .await?;
    let listener = TcpListener::bind(config.api_addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} ({e}); set HERALD_API_ADDR",
            config.api_addr
        )
    })?;
    let (stop, shutdown) = watch::channel(false);
    let state = AppState {
        control: Arc::new(control),
        auth: Arc::new(Auth::new(
            config.api_token.clone(),
            config.inbox_secret.clone(),
        )),
        metrics: Arc::new(Metrics::new()),
        readiness: Default::default(),
        request_timeout: config.api_request_timeout,
        shutdown,
        temporal_ui: config.temporal_ui.trim_end_matches('/').into(),
        streams: herald_api::streams::Streams::new(
            config.api_max_streams as usize,
            config.api_max_streams_per_key as usize,
        ),
    };
    if config.api_token.is_none() {
        tracing::warn!("HERALD_API_DEV: serving without a token; every caller is an admin");
    }
    if let Some(addr) = config.api_metrics_addr {
        let metrics = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr} ({e}); set HERALD_API_METRICS_ADDR")
        })?;
        let app = herald_api::ops::metrics_app(state.clone());
        tokio::spawn(async move { axum::serve(metrics, app).await });
        tracing::info!(%addr, "metrics served without a key");
    }
    tracing::info!(addr = %config.api_addr, "herald-api listening");
    let grace = config.server.shutdown_grace;
    axum::serve(listener, herald_api::app(state))
        .with_graceful_shutdown(async move {
            terminated().await;
            tracing::info!(
                ?grace,
                "shutting down: no new connections; open requests may finish"
            );
            let _ = stop.send(true);
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                tracing::warn!("requests still open after the grace period; exiting");
                std::process::exit(0);
            });
        })
        .await?;
    tracing::info!("herald-api stopped");
    Ok(())
}

async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
