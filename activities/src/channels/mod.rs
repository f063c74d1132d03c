//! Delivery channels: how the recipients of one page are reached, one module per channel.
//!
//! - [`inbox`]: the ledger row *is* the delivery, so a page is one statement.
//! - Channels that call out ([`webhook`], [`email`]) implement [`Deliver`]: send one message
//!   to one recipient and say what happened. [`outbound`] runs a page of them: claim the
//!   page's recipients as pending, send with bounded concurrency and retries, record the
//!   outcomes in one statement. A third channel (FCM, APNs) is one module with a [`Deliver`]
//!   and a case in [`Channels::sender`].

pub mod email;
mod http;
pub mod inbox;
pub mod outbound;
pub mod webhook;

use std::{future::Future, time::Duration};

use herald_store::{Result, StoreError, filter::Compiled, quiet_pool::QuietPool, sends::Delivery};
use herald_wire::{Channel, PageInput, PageOutcome};
use herald_workflows::options::PAGE_STATEMENT_TIMEOUT;

pub use outbound::{Settings, Unsubscribing};

/// One message to one recipient, its content rendered for them.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub campaign: &'a Delivery,
    pub user_id: i64,
    pub email: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    /// An e-mail's own subject (else the title) and HTML part.
    pub subject: Option<&'a str>,
    pub html: Option<&'a str>,
    /// A test send (`herald test-send`), by its number in the test-send log: marked as one
    /// to its receiver, with an id of its own.
    pub test: Option<i64>,
    /// The link that opts the recipient out of the campaign's category on its channel
    /// (`None` for a transactional campaign: nobody opts out of it).
    pub unsubscribe_url: Option<&'a str>,
    /// `HERALD_UNSUBSCRIBE_MAILTO`, for e-mail's `List-Unsubscribe`.
    pub unsubscribe_mailto: Option<&'a str>,
}

impl Message<'_> {
    /// The idempotency id of this recipient's message: the same for every try, so that a
    /// receiver that deduplicates on it sees a resent message once.
    pub fn delivery_id(&self) -> String {
        match self.test {
            // Never the campaign's own id: a receiver that deduplicates would drop the real
            // message after a test.
            Some(n) => format!("test_{}_{}_{n}", self.campaign.key, self.user_id),
            None => format!("msg_{}_{}", self.campaign.key, self.user_id),
        }
    }
}

/// What one try did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver accepted it.
    Sent,
    /// Failed in a way that may pass: try again, not before `after` if the receiver said so.
    Retry {
        class: String,
        error: String,
        after: Option<Duration>,
    },
    /// Failed in a way that trying again will not fix.
    Fail { class: String, error: String },
}

impl Attempt {
    pub fn retry(class: impl Into<String>, error: impl Into<String>) -> Self {
        Self::Retry {
            class: class.into(),
            error: short(error.into()),
            after: None,
        }
    }

    pub fn fail(class: impl Into<String>, error: impl Into<String>) -> Self {
        Self::Fail {
            class: class.into(),
            error: short(error.into()),
        }
    }
}

/// Errors are stored per recipient: keep them to one short line.
fn short(error: String) -> String {
    const MAX: usize = 200;
    let line = error.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= MAX {
        return line.replace('\0', "");
    }
    let mut s: String = line.chars().take(MAX).filter(|c| *c != '\0').collect();
    s.push('…');
    s
}

/// A channel that sends one message at a time.
pub trait Deliver: Sync {
    fn send(&self, message: Message<'_>) -> impl Future<Output = Attempt> + Send;
}

/// Make rustls use ring's primitives, process-wide: the webhook client and lettre need a
/// provider before their first connection. Safe to call any number of times (in any program
/// that builds another rustls client beside these crates: their features are unified).
pub fn install_crypto() {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The external channels a worker is configured for.
pub struct Channels {
    pub settings: Settings,
    webhook: std::result::Result<webhook::Webhook, String>,
    email: std::result::Result<email::Email, String>,
}

impl Channels {
    /// Build the channels from the worker's settings. A channel whose settings are missing
    /// or wrong is kept as the reason, and its pages fail with it (visibly, after the
    /// campaign's grace) instead of the worker refusing to start for a channel it may never
    /// be asked for.
    pub fn new(settings: Settings) -> Self {
        install_crypto();
        Self {
            webhook: webhook::Webhook::new(&settings),
            email: email::Email::new(&settings),
            settings,
        }
    }

    /// The configuration error of a channel, if it has one.
    pub fn problem(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Inbox => None,
            Channel::Webhook => self.webhook.as_ref().err().map(String::as_str),
            Channel::Email => self.email.as_ref().err().map(String::as_str),
        }
    }

    pub(crate) fn webhook(&self) -> std::result::Result<&webhook::Webhook, &str> {
        self.webhook.as_ref().map_err(String::as_str)
    }

    pub(crate) fn email(&self) -> std::result::Result<&email::Email, &str> {
        self.email.as_ref().map_err(String::as_str)
    }
}

/// Deliver one inbox page and record it, on one of the worker's page connections. `budget`
/// is what is left of the attempt's time: a page that cannot get a connection early enough
/// for its statement to end inside it gives up without writing, so that no attempt commits
/// after Temporal has given up on it and started another.
pub async fn deliver_page(
    pages: &QuietPool,
    page: &PageInput,
    audience: &Compiled,
    budget: Option<Duration>,
) -> Result<PageOutcome> {
    let mut conn = lease(pages, page, budget).await?;
    let outcome = match page.channel {
        Channel::Inbox => inbox::deliver(&mut conn, page, audience).await,
        channel => unreachable!("{channel} pages go through outbound::deliver_page"),
    };
    conn.finish(&outcome);
    outcome
}

/// A page connection for `page`, within `budget` (see [`deliver_page`]).
pub(crate) async fn lease(
    pages: &QuietPool,
    page: &PageInput,
    budget: Option<Duration>,
) -> Result<herald_store::quiet_pool::Lease> {
    let lane = (page.campaign_id, page.lane);
    Ok(match budget {
        None => pages.get(lane).await?,
        Some(budget) => {
            let wait = budget.saturating_sub(PAGE_STATEMENT_TIMEOUT);
            tokio::time::timeout(wait, pages.get(lane))
                .await
                .map_err(|_| StoreError::Busy)??
        }
    })
}
