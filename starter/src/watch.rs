//! `herald watch`: follow a campaign's committed progress until it ends. A progress bar on a
//! terminal, one line every two seconds otherwise (logs, CI). It looks every 0.5 s, and at
//! once when PostgreSQL announces a status change, so a script waiting on `herald watch`
//! learns that a campaign ended or paused the moment it is committed.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use anyhow::Result;
use herald_activities::ledger;
use herald_wire::{CampaignKey, CampaignStatus};
use sqlx::{PgPool, postgres::PgListener};

use crate::commands::progress_bar;

pub async fn watch(pool: &PgPool, key: &CampaignKey) -> Result<()> {
    let first = ledger::campaign(pool, key).await?;
    let tty = std::io::stderr().is_terminal();
    let bar = progress_bar(first.total.max(0) as u64, "recipients");
    if !tty {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut changes = status_changes(pool).await;
    let started = Instant::now();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let mut last_status = None;
    let mut last_processed = (Instant::now(), first.sent + first.failed);
    loop {
        let v = ledger::campaign(pool, key).await?;
        let processed = v.sent + v.failed;
        let status = v.status();
        bar.set_length(v.total.max(0) as u64);
        bar.set_position(processed.max(0) as u64);
        bar.set_message(match status {
            CampaignStatus::Paused => format!(
                "PAUSED{}",
                v.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            s => s.name().to_owned(),
        });
        if !tty && (last_line.elapsed() >= Duration::from_secs(2) || last_status != Some(status)) {
            let (t0, p0) = last_processed;
            let rate = (processed - p0) as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            eprintln!(
                "{:>7.1}s {:<12} {processed}/{} processed ({} sent, {} failed, {} pending) {rate:.0}/s",
                started.elapsed().as_secs_f64(),
                status.name(),
                v.total,
                v.sent,
                v.failed,
                v.pending
            );
            last_line = Instant::now();
            last_processed = (Instant::now(), processed);
        }
        last_status = Some(status);
        if status.is_terminal() {
            bar.finish_and_clear();
            let took = match (v.started_at, v.finished_at) {
                (Some(a), Some(b)) => {
                    format!(" in {:.1}s", (b - a).num_milliseconds() as f64 / 1000.0)
                }
                _ => String::new(),
            };
            println!(
                "{key} {}{took}: {} sent, {} failed, {} pending of {}",
                status.name(),
                v.sent,
                v.failed,
                v.pending,
                v.total
            );
            return Ok(());
        }
        next_look(&mut changes).await;
    }
}

/// A session listening for status changes; `None` if it cannot be had, and watching then
/// relies on its regular looks alone.
async fn status_changes(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(ledger::STATUS_CHANNEL).await.ok()?;
    Some(listener)
}

/// Wait for the next look: 0.5 s, or less if any campaign's status changes meanwhile.
async fn next_look(changes: &mut Option<PgListener>) {
    let tick = tokio::time::sleep(Duration::from_millis(500));
    let Some(listener) = changes else {
        return tick.await;
    };
    let lost = tokio::select! {
        change = listener.recv() => change.is_err(),
        _ = tick => false,
    };
    if lost {
        *changes = None;
    }
}
