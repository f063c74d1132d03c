//! One page of an external channel: claim, send, record (see `herald_store::sends`).
//!
//! Sends run [`Settings::concurrency`] at a time. Before each one starts, the page checks its
//! gate (`herald_store::gates`: the campaign's row, read on the worker's gate connection,
//! must say in progress and run, on the word of a recent read), that Temporal has not given
//! up on the attempt and no other run has claimed the page since, and that the worker is not
//! stopping. So once a pause is committed no new send starts after the next read (a send
//! already on the wire finishes and is recorded). Outcomes are recorded as they arrive, in
//! batches, and the page reports in to Temporal on a timer of its own.
//!
//! A transient failure is retried inside the page when its wait (exponential with jitter, or
//! the receiver's `Retry-After`) is short; otherwise the page records what it has and returns
//! [`PageOutcome::Unfinished`] with the wait, and the workflow runs the same page again when
//! it is over, on a durable timer. A recipient that has used its tries is recorded failed.

use std::{
    collections::HashMap,
    future::Future,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use herald_store::{
    Result,
    filter::Compiled,
    gates::{GateWatch, Gates},
    quiet_pool::QuietPool,
    sends::{self, Claim, Claimed, Delivery, Outcome, Pending, Recorded, Writes},
};
use herald_templates::{Profile, Templates};
use herald_wire::{
    Channel, Deliveries, Destinations, ItemStatus, PageInput, PageOutcome, UnsubscribeKey,
    WebhookSecret,
};
use herald_workflows::options::{SEND_BUDGET, SEND_HEARTBEAT_EVERY};
use temporalio_sdk::activities::ActivityContext;
use tokio::sync::{Semaphore, SemaphorePermit, mpsc};
use tracing::debug;

use super::{Attempt, Deliver, Message, lease};
use crate::{Metrics, Stopping};

/// How the worker's external channels behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The webhook signing secret (`HERALD_WEBHOOK_SECRET`).
    pub webhook_secret: Option<WebhookSecret>,
    /// Where webhooks may go (`HERALD_WEBHOOK_ALLOW`, Herald's own services refused).
    pub destinations: Destinations,
    /// The longest one request or SMTP exchange may take.
    pub webhook_timeout: Duration,
    /// The SMTP relay (`HERALD_SMTP_URL`) and the sender (`HERALD_EMAIL_FROM`).
    pub smtp_url: Option<String>,
    pub email_from: Option<String>,
    /// Sends in flight at once in one page.
    pub concurrency: usize,
    /// How recipients' unsubscribe links are made (docs/consent.md).
    pub unsubscribe: Unsubscribing,
    /// Whether an address its server refuses for good is suppressed
    /// (`HERALD_SUPPRESS_BOUNCES`).
    pub suppress_bounces: bool,
}

/// What makes a recipient's unsubscribe link.
#[derive(Clone, Debug)]
pub struct Unsubscribing {
    pub key: UnsubscribeKey,
    /// `HERALD_PUBLIC_URL`.
    pub base: String,
    /// `HERALD_UNSUBSCRIBE_MAILTO`.
    pub mailto: Option<String>,
}

impl Unsubscribing {
    /// The link that opts `user_id` out of `spec`'s category on its channel; `None` for a
    /// transactional campaign, which nobody opts out of.
    pub fn url(&self, user_id: i64, spec: &herald_wire::CampaignSpec) -> Option<String> {
        if spec.category.is_transactional() {
            return None;
        }
        Some(self.key.url(
            &self.base,
            &herald_wire::Unsubscribe {
                user_id,
                category: spec.category.clone(),
                channel: spec.channel,
            },
        ))
    }
}

/// The SMTP replies that may say an address does not exist or may not receive mail.
pub const BOUNCE_CLASSES: [&str; 3] = ["smtp_550", "smtp_551", "smtp_553"];

/// Whether a permanent failure is a hard bounce, which suppresses the address when
/// `HERALD_SUPPRESS_BOUNCES` is on: a 550, 551 or 553 whose enhanced status (RFC 3463) is
/// 5.1.x, a bad mailbox. Relays answer 550 for their own refusals too (relaying denied,
/// a sender they reject, spam and DMARC blocks: 5.7.x); those say nothing about the
/// recipient's address, and one misconfiguration must not suppress a whole audience.
pub fn is_hard_bounce(class: &str, error: &str) -> bool {
    BOUNCE_CLASSES.contains(&class) && error.split_whitespace().any(|w| w.starts_with("5.1."))
}

/// A retry whose wait is at most this is waited out inside the page; a longer one is the
/// workflow's, on a durable timer.
const IN_PAGE_WAIT_MAX: Duration = Duration::from_secs(2);

/// The longest a recorded outcome waits for others to share its statement.
const BATCH_WAIT: Duration = Duration::from_millis(10);

/// Backoff between tries of one recipient: from this, doubling, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest `Retry-After` obeyed; a longer one is cut to this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(600);

/// What a page needs besides its input.
pub struct PageRun<'a> {
    pub ctx: &'a ActivityContext,
    pub pages: &'a QuietPool,
    pub gates: &'a Gates,
    pub campaign: &'a Delivery,
    /// The campaign's audience, as SQL for its pages.
    pub audience: &'a Compiled,
    /// The campaign's title and body, compiled.
    pub templates: &'a Templates,
    pub settings: &'a Settings,
    pub stopping: &'a Stopping,
    pub metrics: &'a Metrics,
}

/// One recipient's progress through the page.
struct Item {
    pending: Pending,
    /// Their data as of this run of the page, when the content is a template.
    profile: Option<Arc<Profile>>,
    tries: u32,
    status: ItemStatus,
}

pub async fn deliver_page<D: Deliver>(
    sender: &D,
    run: &PageRun<'_>,
    page: &PageInput,
) -> Result<PageOutcome> {
    // This run's number: the page's owner once claimed (see `sends::claim`).
    let owner = RandomState::new().hash_one((page.campaign_id, page.lane, page.after)) as i64;
    let mut claimed_at = Instant::now();
    let pulse = Pulse::new(run.ctx);
    let claimed = pulse
        .during(async {
            let mut conn = lease(run.pages, page, None).await?;
            // The claim reads the gate as it is sent: a wait for the connection must not count.
            claimed_at = Instant::now();
            let profiles =
                Some(run.templates.user_fields()).filter(|_| run.templates.is_personal());
            let claim = sends::claim(&mut conn, page, run.audience, owner, profiles).await;
            conn.finish(&claim);
            claim
        })
        .await?;
    let mut claimed = match claimed {
        Claim::Halted { status, requested } => {
            return Ok(PageOutcome::Halted { status, requested });
        }
        Claim::Page(c) => c,
    };
    let mut counters = Recorded {
        recipients: claimed.recipients as i32,
        sent: claimed.sent as i32,
        failed: claimed.failed as i32,
        suppressed: claimed.suppressed as i32,
        owner: Some(owner),
    };
    if claimed.pending.is_empty() {
        return Ok(written(&claimed, counters, Deliveries::default()));
    }
    let gate = run.gates.watch(page.campaign_id, claimed_at);

    let max_tries = run.campaign.spec.attempts();
    let mut items: Vec<Item> = std::mem::take(&mut claimed.pending)
        .into_iter()
        .map(|mut pending| Item {
            tries: pending.attempts,
            profile: pending.profile.take().map(Arc::new),
            pending,
            status: ItemStatus::Pending,
        })
        .collect();
    // Recipients who used their tries in earlier runs (a crash after the last try was sent
    // but before it was recorded) are recorded failed without another.
    let spent: Vec<Outcome> = items
        .iter_mut()
        .filter(|i| i.tries >= max_tries)
        .map(|item| {
            item.status = ItemStatus::Failed;
            let error = format!("no answer recorded after {} tries", item.tries);
            outcome(item, Some(("attempts".into(), error)))
        })
        .collect();
    if !spent.is_empty() {
        counters = pulse.during(record(run, page, &spent, Writes::Any)).await?;
    }

    let page_run = Round {
        run,
        page,
        gate: &gate,
        started: Instant::now(),
        owner,
        overtaken: AtomicBool::new(false),
        claimed_now: claimed.took_ms.is_some(),
        max_tries,
        nobody: Arc::default(),
    };
    let mut deliveries = Deliveries::default();
    let mut errors: HashMap<String, u32> = HashMap::new();
    let mut retry_after = Duration::ZERO;
    // Addresses their servers refused for good, to suppress.
    let mut bounced: Vec<(String, String)> = Vec::new();
    loop {
        let round: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].status == ItemStatus::Pending)
            .collect();
        if round.is_empty() {
            break;
        }
        let (results, recorded) = pulse.during(page_run.send(sender, &items, &round)).await?;
        counters = recorded.unwrap_or(counters);
        let mut wait = Duration::ZERO;
        for (i, attempt) in results {
            if let Attempt::Fail { class, error } = &attempt
                && is_hard_bounce(class, error)
            {
                bounced.push((items[i].pending.email.clone(), error.clone()));
            }
            let item = &mut items[i];
            item.tries += 1;
            item.status = status_after(&attempt, item.tries, max_tries);
            // A recipient whose data does not fit the template was not sent to: no delivery
            // the receiver failed, so nothing for auto-pause to weigh (the report has it).
            if matches!(&attempt, Attempt::Fail { class, .. } if class == RENDER) {
                continue;
            }
            deliveries.attempts += 1;
            match &attempt {
                Attempt::Sent => {}
                Attempt::Fail { error, .. } | Attempt::Retry { error, .. } => {
                    deliveries.failures += 1;
                    *errors.entry(error.clone()).or_default() += 1;
                }
            }
            if let (Attempt::Retry { after, .. }, ItemStatus::Pending) = (&attempt, item.status) {
                let next = backoff(item.tries, item.pending.user_id)
                    .max(after.unwrap_or_default().min(RETRY_AFTER_MAX));
                wait = wait.max(next);
            }
        }
        if !items.iter().any(|i| i.status == ItemStatus::Pending) {
            break;
        }
        let elapsed = page_run.started.elapsed();
        if !page_run.may_start() {
            retry_after = Duration::ZERO;
            break;
        }
        if wait > IN_PAGE_WAIT_MAX || elapsed + wait >= SEND_BUDGET {
            retry_after = wait;
            break;
        }
        pulse.during(tokio::time::sleep(wait)).await;
        // A pause may have come while the page waited: the next round's sends look first.
    }

    if run.settings.suppress_bounces && !bounced.is_empty() {
        pulse.during(suppress_bounced(run, page, bounced)).await?;
    }
    deliveries.top_error = errors
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map(|(e, _)| e);
    debug!(
        campaign.id = page.campaign_id,
        page.lane = page.lane,
        page.after = page.after,
        attempts = deliveries.attempts,
        failures = deliveries.failures,
        "page sent"
    );
    if counters.sent + counters.failed >= counters.recipients {
        Ok(written(&claimed, counters, deliveries))
    } else {
        Ok(PageOutcome::Unfinished {
            retry_after_millis: retry_after.as_millis().min(u128::from(u32::MAX)) as u32,
            deliveries,
        })
    }
}

fn written(claimed: &Claimed, counters: Recorded, deliveries: Deliveries) -> PageOutcome {
    PageOutcome::Written {
        last: claimed.last,
        // Everyone the page took: those it delivers to and those it left out.
        recipients: (counters.recipients + counters.suppressed) as u32,
        limit: Some(claimed.limit),
        sent: counters.sent as u32,
        failed: counters.failed as u32,
        suppressed: counters.suppressed as u32,
        scanned_to: claimed.scanned_to,
        took_ms: claimed.took_ms,
        deliveries,
    }
}

/// Where a recipient stands after a try.
fn status_after(attempt: &Attempt, tries: u32, max_tries: u32) -> ItemStatus {
    match attempt {
        Attempt::Sent => ItemStatus::Sent,
        Attempt::Fail { .. } => ItemStatus::Failed,
        Attempt::Retry { .. } if tries >= max_tries => ItemStatus::Failed,
        Attempt::Retry { .. } => ItemStatus::Pending,
    }
}

/// What is recorded of an item, with its last failure.
fn outcome(item: &Item, error: Option<(String, String)>) -> Outcome {
    Outcome {
        user_id: item.pending.user_id,
        status: item.status,
        attempts: item.tries,
        error,
    }
}

/// Suppress the e-mail addresses that bounced for good, so that no later campaign sends to
/// them (docs/consent.md). Their recipients are already recorded failed.
async fn suppress_bounced(
    run: &PageRun<'_>,
    page: &PageInput,
    bounced: Vec<(String, String)>,
) -> Result<()> {
    let entries: Vec<(String, Option<String>)> = bounced
        .into_iter()
        .filter_map(|(email, error)| {
            let address = herald_store::consent::normalize_address(Channel::Email, &email).ok()?;
            Some((address, Some(format!("{}: {error}", run.campaign.key))))
        })
        .collect();
    let mut conn = lease(run.pages, page, None).await?;
    let done = herald_store::consent::suppress_on(
        &mut conn,
        Channel::Email,
        &entries,
        herald_store::consent::SuppressionReason::Bounce,
        "herald",
    )
    .await;
    conn.finish(&done);
    done.map(|_| ())
}

/// Record outcomes on one of the page connections.
async fn record(
    run: &PageRun<'_>,
    page: &PageInput,
    outcomes: &[Outcome],
    writes: Writes,
) -> Result<Recorded> {
    let mut conn = lease(run.pages, page, None).await?;
    let recorded = sends::record(&mut conn, page, outcomes, writes).await;
    conn.finish(&recorded);
    let recorded = recorded?;
    let count = |s: ItemStatus| outcomes.iter().filter(|o| o.status == s).count() as u64;
    run.metrics.recorded(
        run.campaign.spec.channel.name(),
        count(ItemStatus::Sent),
        count(ItemStatus::Failed),
    );
    Ok(recorded)
}

/// A page's reports to Temporal: one every [`SEND_HEARTBEAT_EVERY`] on one clock for the
/// whole page, whatever the page is waiting on (a receiver, a page connection, the database).
/// The first is one interval in, so a page that ends sooner costs Temporal no heartbeat.
struct Pulse<'a> {
    ctx: &'a ActivityContext,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl<'a> Pulse<'a> {
    fn new(ctx: &'a ActivityContext) -> Self {
        let next = tokio::time::Instant::now() + SEND_HEARTBEAT_EVERY;
        Self {
            ctx,
            next: std::sync::Mutex::new(next),
        }
    }

    /// Run `work`, reporting in whenever the page's clock says so.
    async fn during<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let due = *self.next.lock().expect("the pulse's clock");
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(due) => {
                    *self.next.lock().expect("the pulse's clock") =
                        tokio::time::Instant::now() + SEND_HEARTBEAT_EVERY;
                    let _ = self.ctx.record_heartbeat(()).await;
                }
            }
        }
    }
}

/// What the rounds of one page share.
struct Round<'a> {
    run: &'a PageRun<'a>,
    page: &'a PageInput,
    gate: &'a GateWatch,
    started: Instant,
    owner: i64,
    /// Another run claimed the page since this one did (Temporal gave up on this one).
    overtaken: AtomicBool,
    /// This run claimed the page: its items are expected to have no rows yet (a run that
    /// took the page over may write some first; `Writes::First` falls back then).
    claimed_now: bool,
    max_tries: u32,
    /// The profile of a recipient of text that is not a template.
    nobody: Arc<Profile>,
}

/// The class of a recipient whose content could not be rendered (their data did not fit
/// the template): failed without a send, and sent by `herald retry-failed` once fixed.
pub const RENDER: &str = "render";

impl Round<'_> {
    /// The content for `item`'s recipient.
    fn render<'t>(
        &'t self,
        item: &Item,
        unsubscribe_url: Option<&str>,
    ) -> std::result::Result<herald_templates::Rendered<'t>, herald_templates::RenderError> {
        let templates = self.run.templates;
        match &item.profile {
            Some(profile) => templates.render_with(profile, unsubscribe_url),
            // The same text for everyone: nobody's data is read.
            None if !templates.is_personal() => templates.render(&self.nobody),
            // Deleted between the claim and the read of their data: not rendered from nothing.
            None => Err(herald_templates::RenderError {
                field: herald_templates::Field::Body,
                message: "the user's data could not be read (deleted?)".into(),
            }),
        }
    }

    /// Whether a new send may start: the gate is open, Temporal has not given up on the
    /// attempt (its cancellation, or another run owning the page), the worker is not
    /// stopping and the page's time lasts.
    fn may_start(&self) -> bool {
        self.gate.may_send()
            && !self.run.ctx.is_cancelled()
            && !self.overtaken.load(Ordering::Relaxed)
            && !self.run.stopping.is_stopping()
            && self.started.elapsed() < SEND_BUDGET
    }

    /// Send to the items of `round`, [`Settings::concurrency`] at a time while
    /// [`Round::may_start`], recording outcomes as they come. Returns what each send that
    /// started did (one that did not start is left out: its item stays pending, its tries
    /// unspent), and the page's counters after the last record.
    ///
    /// A send holds one of `concurrency` permits from before it starts until its outcome is
    /// recorded, and a batch (three quarters of the permits, or what came within
    /// [`BATCH_WAIT`]) is recorded whenever the last has committed. So a crash finds at most
    /// `concurrency` recipients of the page sent but not recorded, which is all a re-run can
    /// send twice.
    async fn send<D: Deliver>(
        &self,
        sender: &D,
        items: &[Item],
        round: &[usize],
    ) -> Result<(Vec<(usize, Attempt)>, Option<Recorded>)> {
        let concurrency = self.run.settings.concurrency.max(1);
        let permits = Semaphore::new(concurrency);
        let (tx, mut rx) = mpsc::unbounded_channel::<(Outcome, SemaphorePermit<'_>)>();
        let channel = self.run.campaign.spec.channel.name();
        let latency = self.run.metrics.latency(channel);
        let sends = async {
            let tx = tx;
            futures::stream::iter(round.iter().copied())
                .map(|i| {
                    let (tx, permits, latency) = (&tx, &permits, &latency);
                    async move {
                        let permit = permits.acquire().await.ok()?;
                        if !self.may_start() {
                            return None;
                        }
                        let item = &items[i];
                        let sending = Instant::now();
                        let user_id = item.pending.user_id;
                        let unsubscribe = self
                            .run
                            .settings
                            .unsubscribe
                            .url(user_id, &self.run.campaign.spec);
                        let attempt = match self.render(item, unsubscribe.as_deref()) {
                            Ok(content) => {
                                let attempt = sender
                                    .send(Message {
                                        campaign: self.run.campaign,
                                        user_id,
                                        email: &item.pending.email,
                                        title: &content.title,
                                        body: &content.body,
                                        subject: content.subject.as_deref(),
                                        html: content.html.as_deref(),
                                        test: None,
                                        unsubscribe_url: unsubscribe.as_deref(),
                                        unsubscribe_mailto: self
                                            .run
                                            .settings
                                            .unsubscribe
                                            .mailto
                                            .as_deref(),
                                    })
                                    .await;
                                latency.observe(sending.elapsed().as_secs_f64());
                                attempt
                            }
                            Err(e) => Attempt::fail(RENDER, e.to_string()),
                        };
                        if let Attempt::Retry { class, .. } = &attempt {
                            self.run.metrics.retry(channel, class);
                        }
                        let tries = item.tries + 1;
                        let status = status_after(&attempt, tries, self.max_tries);
                        let error = match &attempt {
                            Attempt::Sent => None,
                            Attempt::Retry { class, error, .. } if status == ItemStatus::Failed => {
                                Some((class.clone(), format!("{error} ({tries} tries)")))
                            }
                            Attempt::Retry { class, error, .. }
                            | Attempt::Fail { class, error } => {
                                Some((class.clone(), error.clone()))
                            }
                        };
                        let outcome = Outcome {
                            user_id: item.pending.user_id,
                            status,
                            attempts: tries,
                            error,
                        };
                        let _ = tx.send((outcome, permit));
                        Some((i, attempt))
                    }
                })
                .buffer_unordered(concurrency)
                .filter_map(|r| async move { r })
                .collect::<Vec<_>>()
                .await
        };
        let recorder = async {
            let mut last = None;
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                batch.push(first);
                // Three quarters of the places in a batch, or what came within a short wait:
                // a statement costs the database as much as some twenty rows do, and the
                // quarter left keeps sends on the wire while the batch commits.
                let until = tokio::time::Instant::now() + BATCH_WAIT;
                while batch.len() < (concurrency * 3 / 4).max(1) {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(more)) => batch.push(more),
                        Ok(None) | Err(_) => break,
                    }
                }
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let (outcomes, held): (Vec<Outcome>, Vec<SemaphorePermit<'_>>) =
                    batch.drain(..).unzip();
                // First tries on a page this run claimed have no items yet.
                let writes = if self.claimed_now && outcomes.iter().all(|o| o.attempts == 1) {
                    Writes::First
                } else {
                    Writes::Any
                };
                match record(self.run, self.page, &outcomes, writes).await {
                    Ok(recorded) => {
                        if recorded.owner != Some(self.owner) {
                            self.overtaken.store(true, Ordering::Relaxed);
                        }
                        last = Some(recorded);
                        drop(held);
                    }
                    Err(e) => {
                        // No send starts after this; those in flight end unrecorded.
                        permits.close();
                        return Err(e);
                    }
                }
            }
            Ok(last)
        };
        let (results, recorded) = tokio::join!(sends, recorder);
        Ok((results, recorded?))
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
