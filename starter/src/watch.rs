//! `herald watch`: follow a campaign's committed progress until it ends, or fails and waits
//! for an operator. A progress bar on a
//! terminal, one line every two seconds otherwise (logs, CI). The control layer's watch
//! wakes on every status change, so a script waiting on `herald watch` learns that a
//! campaign ended or paused the moment it is committed.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use anyhow::Result;
use herald_control::Control;
use herald_wire::{CampaignKey, CampaignStatus};

use crate::shared::progress_bar;

pub async fn watch(control: &Control, key: &CampaignKey) -> Result<()> {
    let mut watch = control.watch(key).await?;
    let tty = std::io::stderr().is_terminal();
    let bar = progress_bar(0, "recipients");
    if !tty {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let mut last_status = None;
    let mut last_processed: Option<(Instant, i64)> = None;
    loop {
        let v = watch.next().await?;
        let processed = v.done();
        let (t0, p0) = *last_processed.get_or_insert((Instant::now(), processed));
        bar.set_length(v.total.max(processed).max(0) as u64);
        bar.set_position(processed.max(0) as u64);
        bar.set_message(match v.status {
            CampaignStatus::Paused | CampaignStatus::Failed => format!(
                "{}{}",
                v.status.name().to_uppercase(),
                v.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            s => s.name().to_owned(),
        });
        if !tty && (last_line.elapsed() >= Duration::from_secs(2) || last_status != Some(v.status))
        {
            let rate = (processed - p0) as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            eprintln!(
                "{:>7.1}s {:<12} {processed}/{} processed ({} sent, {} failed, {} suppressed, {} capped, {} pending) {rate:.0}/s",
                started.elapsed().as_secs_f64(),
                v.status.name(),
                v.total,
                v.sent,
                v.failed,
                v.suppressed,
                v.capped,
                v.pending
            );
            last_line = Instant::now();
            last_processed = Some((Instant::now(), processed));
        }
        last_status = Some(v.status);
        if v.status == CampaignStatus::Failed {
            bar.finish_and_clear();
            anyhow::bail!(
                "{key} failed: {}; fix the cause, then `herald resume {key}` continues from where it stopped",
                v.reason.as_deref().unwrap_or("no reason recorded")
            );
        }
        if v.status.is_terminal() {
            bar.finish_and_clear();
            let took = match (v.started_at, v.finished_at) {
                (Some(a), Some(b)) => {
                    format!(" in {:.1}s", (b - a).num_milliseconds() as f64 / 1000.0)
                }
                _ => String::new(),
            };
            println!(
                "{key} {}{took}: {} sent, {} failed, {} suppressed, {} capped, {} pending of {}",
                v.status.name(),
                v.sent,
                v.failed,
                v.suppressed,
                v.capped,
                v.pending,
                v.total
            );
            // A script waiting on `herald watch` can tell a cancelled campaign by the exit code.
            if v.status == CampaignStatus::Cancelled {
                anyhow::bail!(
                    "{key} was cancelled{}",
                    v.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
            return Ok(());
        }
    }
}
