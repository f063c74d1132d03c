//! `herald-worker`: runs campaign workflows and their page activities. Its configuration
//! (`herald-worker --help`) comes from the environment or flags: `herald_control::config`.

use clap::Parser;
use herald_control::config::WorkerConfig;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// A webhook page allocates a request, a body and a signature per recipient, from many tasks
/// at once: with glibc's allocator a fifth of the worker's time went to malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    herald_control::process::no_huge_pages();
    let config = WorkerConfig::try_parse().unwrap_or_else(|e| {
        if !e.use_stderr() {
            e.exit(); // --help, --version
        }
        eprintln!(
            "herald-worker: {}",
            herald_control::config::first_line(&e.to_string())
        );
        std::process::exit(2);
    });
    let filter = EnvFilter::try_new(&config.server.log).unwrap_or_else(|e| {
        eprintln!(
            "herald-worker: RUST_LOG {:?} is not a log filter ({e})",
            config.server.log
        );
        std::process::exit(2);
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(&config).await {
        eprintln!(
            "herald-worker: {}",
            herald_control::error::one_line(e.chain())
        );
        std::process::exit(herald_control::error::exit_code(e.chain()));
    }
}

async fn run(config: &WorkerConfig) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    herald_worker::run(config, shutdown).await
}
