//! One page of an external channel: claim, send, record (see `herald_store::sends`).
//!
//! Sends run [`Settings::concurrency`] at a time. Before each one starts, the page checks its
//! gate: the campaign's row, read every [`GATE_EVERY`] while the page sends, must still say
//! in progress and run, and the worker must not be stopping. So once a pause is committed no
//! new send starts after the next read (a send already on the wire finishes and is recorded).
//!
//! A transient failure is retried inside the page when its wait (exponential with jitter, or
//! the receiver's `Retry-After`) is short; otherwise the page records what it has and returns
//! [`PageOutcome::Unfinished`] with the wait, and the workflow runs the same page again when
//! it is over, on a durable timer. A recipient that has used its tries is recorded failed.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use futures::StreamExt;
use herald_store::{
    PgPool, Result,
    filter::Compiled,
    page_connections::PageConnections,
    sends::{self, Claim, Claimed, Delivery, Outcome, Pending},
};
use herald_wire::{Deliveries, ItemStatus, PageInput, PageOutcome};
use temporalio_sdk::activities::ActivityContext;
use tracing::debug;

use super::{Attempt, Deliver, Message, lease};
use crate::{Metrics, Stopping};

/// How the worker's external channels behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The webhook signing secret (`HERALD_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// The longest one request or SMTP exchange may take.
    pub webhook_timeout: Duration,
    /// The SMTP relay (`HERALD_SMTP_URL`) and the sender (`HERALD_EMAIL_FROM`).
    pub smtp_url: Option<String>,
    pub email_from: Option<String>,
    /// Sends in flight at once in one page.
    pub concurrency: usize,
}

/// How often a sending page reads its campaign's row (its gate) and reports to Temporal.
pub use herald_workflows::options::SEND_GATE_EVERY as GATE_EVERY;

/// A page stops starting sends after this long, records what it has and lets the workflow
/// run it again: progress is recorded at least this often, and an attempt stays far inside
/// its timeout.
pub const SEND_BUDGET: Duration = Duration::from_secs(30);

/// A retry whose wait is at most this is waited out inside the page; a longer one is the
/// workflow's, on a durable timer.
const IN_PAGE_WAIT_MAX: Duration = Duration::from_secs(2);

/// Backoff between tries of one recipient: from this, doubling, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest `Retry-After` obeyed; a longer one is cut to this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(600);

/// What a page needs besides its input.
pub struct PageRun<'a> {
    pub ctx: &'a ActivityContext,
    pub campaign_id: i64,
    pub pool: &'a PgPool,
    pub pages: &'a PageConnections,
    pub campaign: &'a Delivery,
    /// The campaign's audience, as SQL for its pages.
    pub audience: &'a Compiled,
    pub settings: &'a Settings,
    pub stopping: &'a Stopping,
    pub metrics: &'a Metrics,
}

/// One recipient's progress through the page.
struct Item {
    pending: Pending,
    tries: u32,
    status: ItemStatus,
    last: Option<Attempt>,
}

pub async fn deliver_page<D: Deliver>(
    sender: &D,
    run: &PageRun<'_>,
    page: &PageInput,
) -> Result<PageOutcome> {
    let claimed = {
        let mut conn = lease(run.pages, page, None).await?;
        let claim = sends::claim(&mut conn, page, run.audience).await;
        conn.finish(&claim);
        claim?
    };
    let mut claimed = match claimed {
        Claim::Halted { status, requested } => {
            return Ok(PageOutcome::Halted { status, requested });
        }
        Claim::Page(c) => c,
    };
    if claimed.pending.is_empty() {
        return Ok(written(
            &claimed,
            claimed.recipients,
            claimed.sent,
            claimed.failed,
            Deliveries::default(),
        ));
    }

    let max_tries = run.campaign.spec.attempts();
    let mut items: Vec<Item> = std::mem::take(&mut claimed.pending)
        .into_iter()
        .map(|pending| Item {
            tries: pending.attempts,
            pending,
            status: ItemStatus::Pending,
            last: None,
        })
        .collect();
    // Recipients who used their tries in earlier runs (a crash after the last try was sent
    // but before it was recorded) are recorded failed without another.
    for item in items.iter_mut().filter(|i| i.tries >= max_tries) {
        item.status = ItemStatus::Failed;
        item.last = Some(Attempt::fail(
            "attempts",
            format!("no answer recorded after {} tries", item.tries),
        ));
    }

    let started = Instant::now();
    let open = AtomicBool::new(true);
    let mut deliveries = Deliveries::default();
    let mut errors: HashMap<String, u32> = HashMap::new();
    let mut retry_after = Duration::ZERO;
    loop {
        let round: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].status == ItemStatus::Pending)
            .collect();
        if round.is_empty() {
            break;
        }
        let results = send_round(sender, run, &items, &round, &open, started).await;
        let mut wait = Duration::ZERO;
        for (i, attempt) in results {
            let item = &mut items[i];
            item.tries += 1;
            deliveries.attempts += 1;
            match &attempt {
                Attempt::Sent => item.status = ItemStatus::Sent,
                Attempt::Fail { error, .. } => {
                    item.status = ItemStatus::Failed;
                    deliveries.failures += 1;
                    *errors.entry(error.clone()).or_default() += 1;
                }
                Attempt::Retry { error, after, .. } => {
                    deliveries.failures += 1;
                    *errors.entry(error.clone()).or_default() += 1;
                    if item.tries >= max_tries {
                        item.status = ItemStatus::Failed;
                    } else {
                        let next = backoff(item.tries, item.pending.user_id)
                            .max(after.unwrap_or_default().min(RETRY_AFTER_MAX));
                        wait = wait.max(next);
                    }
                }
            }
            item.last = Some(attempt);
        }
        let still_pending = items.iter().any(|i| i.status == ItemStatus::Pending);
        if !still_pending {
            break;
        }
        let elapsed = started.elapsed();
        if !open.load(Ordering::Relaxed) || run.stopping.is_stopping() || elapsed >= SEND_BUDGET {
            retry_after = Duration::ZERO;
            break;
        }
        if wait > IN_PAGE_WAIT_MAX || elapsed + wait >= SEND_BUDGET {
            retry_after = wait;
            break;
        }
        tokio::time::sleep(wait).await;
        // A pause may have come while the page waited.
        if !sends::may_send(run.pool, page.campaign_id)
            .await
            .unwrap_or(true)
        {
            retry_after = Duration::ZERO;
            break;
        }
    }

    let outcomes: Vec<Outcome> = items
        .iter()
        .filter(|i| i.last.is_some())
        .map(|i| Outcome {
            user_id: i.pending.user_id,
            status: i.status,
            attempts: i.tries,
            error: match &i.last {
                Some(Attempt::Retry { class, error, .. }) if i.status == ItemStatus::Failed => {
                    Some((class.clone(), format!("{error} ({} tries)", i.tries)))
                }
                Some(Attempt::Retry { class, error, .. } | Attempt::Fail { class, error }) => {
                    Some((class.clone(), error.clone()))
                }
                _ => None,
            },
        })
        .collect();
    deliveries.top_error = errors
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map(|(e, _)| e);
    let recorded = {
        let mut conn = lease(run.pages, page, None).await?;
        let recorded = sends::record(&mut conn, page, &outcomes).await;
        conn.finish(&recorded);
        recorded?
    };
    let count = |s: ItemStatus| outcomes.iter().filter(|o| o.status == s).count() as u64;
    run.metrics.recorded(
        run.campaign.spec.channel.name(),
        count(ItemStatus::Sent),
        count(ItemStatus::Failed),
    );
    debug!(
        campaign.id = page.campaign_id,
        page.lane = page.lane,
        page.after = page.after,
        attempts = deliveries.attempts,
        failures = deliveries.failures,
        "page sent"
    );
    let (recipients, sent, failed) = (
        recorded.recipients as u32,
        recorded.sent as u32,
        recorded.failed as u32,
    );
    if sent + failed >= recipients {
        Ok(written(&claimed, recipients, sent, failed, deliveries))
    } else {
        Ok(PageOutcome::Unfinished {
            retry_after_millis: retry_after.as_millis().min(u128::from(u32::MAX)) as u32,
            deliveries,
        })
    }
}

fn written(
    claimed: &Claimed,
    recipients: u32,
    sent: u32,
    failed: u32,
    deliveries: Deliveries,
) -> PageOutcome {
    PageOutcome::Written {
        last: claimed.last,
        recipients,
        limit: Some(claimed.limit),
        sent,
        failed,
        scanned_to: claimed.scanned_to,
        took_ms: claimed.took_ms,
        deliveries,
    }
}

/// Send to the items of `round`, [`Settings::concurrency`] at a time, while the gate is open
/// and the page's time lasts. Returns what each send that started did; one that did not
/// start is left out (its item stays pending, its tries unspent).
async fn send_round<D: Deliver>(
    sender: &D,
    run: &PageRun<'_>,
    items: &[Item],
    round: &[usize],
    open: &AtomicBool,
    started: Instant,
) -> Vec<(usize, Attempt)> {
    let sends = futures::stream::iter(round.iter().copied())
        .map(|i| async move {
            if !open.load(Ordering::Relaxed)
                || run.stopping.is_stopping()
                || started.elapsed() >= SEND_BUDGET
            {
                return None;
            }
            let item = &items[i].pending;
            let started = Instant::now();
            let attempt = sender
                .send(Message {
                    campaign: run.campaign,
                    user_id: item.user_id,
                    email: &item.email,
                })
                .await;
            let channel = run.campaign.spec.channel.name();
            run.metrics.tried(channel, started.elapsed());
            if let Attempt::Retry { class, .. } = &attempt {
                run.metrics.retry(channel, class);
            }
            Some((i, attempt))
        })
        .buffer_unordered(run.settings.concurrency.max(1))
        .filter_map(|r| async move { r })
        .collect::<Vec<_>>();
    let gate = async {
        let mut beats = 0u32;
        loop {
            tokio::time::sleep(GATE_EVERY).await;
            if let Ok(may) = sends::may_send(run.pool, run.campaign_id).await {
                open.store(may, Ordering::Relaxed);
            }
            beats += 1;
            if beats.is_multiple_of(10) {
                // Tells Temporal the page is alive: a killed worker's page is retried after
                // the heartbeat timeout instead of the page's whole timeout.
                let _ = run.ctx.record_heartbeat(()).await;
            }
        }
    };
    tokio::select! {
        results = sends => results,
        () = gate => unreachable!("the gate loops until the sends end"),
    }
}

/// The wait before try `tries + 1` of one recipient: exponential, with jitter so that the
/// failures of one moment do not all come back at once.
fn backoff(tries: u32, salt: i64) -> Duration {
    let base = BACKOFF_FIRST
        .saturating_mul(1 << tries.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    // 50% to 100% of the base.
    let jitter = RandomState::new().hash_one((salt, tries)) % 1_000;
    base.mul_f64(0.5 + jitter as f64 / 2_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_ceiling() {
        for tries in 1..10 {
            let d = backoff(tries, 7);
            let base = BACKOFF_FIRST
                .saturating_mul(1 << (tries - 1))
                .min(BACKOFF_MAX);
            assert!(d >= base / 2 && d <= base, "{tries}: {d:?}");
        }
        assert!(backoff(30, 1) <= BACKOFF_MAX);
    }
}
