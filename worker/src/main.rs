//! `herald-worker`: runs campaign workflows and their page activities.
//! Configuration comes from the environment (see `herald_worker::Config`).

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run().await {
        eprintln!("herald-worker: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let config = herald_worker::Config::from_env();
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    herald_worker::run_worker(&config, shutdown).await
}
