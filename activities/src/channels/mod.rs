//! Delivery channels: how the recipients of one page are reached, one module per channel.
//!
//! A page is delivered and recorded in one step per channel. For the in-app inbox the ledger
//! row *is* the delivery, so a page is one statement. A channel that calls out (webhook,
//! e-mail) goes in a module beside [`inbox`] and a case in [`deliver_page`]: select the
//! page's recipients, claim them as pending rows, deliver, then record the outcomes, each
//! step safe to repeat, keyed on (campaign, recipient).

pub mod inbox;

use std::time::Duration;

use herald_store::{Result, StoreError, page_connections::PageConnections};
use herald_wire::{Channel, PageInput, PageOutcome};
use herald_workflows::options::PAGE_STATEMENT_TIMEOUT;

/// Deliver one page through its channel and record it, on one of the worker's page
/// connections. `budget` is what is left of the attempt's time: a page that cannot get a
/// connection early enough for its statement to end inside it gives up without writing,
/// so that no attempt commits after Temporal has given up on it and started another.
pub async fn deliver_page(
    pages: &PageConnections,
    page: &PageInput,
    budget: Option<Duration>,
) -> Result<PageOutcome> {
    let lane = (page.campaign_id, page.lane);
    let mut conn = match budget {
        None => pages.get(lane).await?,
        Some(budget) => {
            let wait = budget.saturating_sub(PAGE_STATEMENT_TIMEOUT);
            tokio::time::timeout(wait, pages.get(lane))
                .await
                .map_err(|_| StoreError::Busy)??
        }
    };
    let outcome = match page.channel {
        Channel::Inbox => inbox::deliver(&mut conn, page).await,
    };
    conn.finish(&outcome);
    outcome
}
