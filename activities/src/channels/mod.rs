//! Delivery channels: how the recipients of one page are reached, one module per channel.
//!
//! A page is delivered and recorded in one step per channel. For the in-app inbox the ledger
//! row *is* the delivery, so a page is one statement. A channel that calls out (webhook,
//! e-mail) goes in a module beside [`inbox`] and a case in [`deliver_page`]: select the
//! page's recipients, claim them as pending rows, deliver, then record the outcomes, each
//! step safe to repeat, keyed on (campaign, recipient).

pub mod inbox;

use herald_store::{Result, page_connections::PageConnections};
use herald_wire::{Channel, PageInput, PageOutcome};

/// Deliver one page through its channel and record it, on one of the worker's page
/// connections.
pub async fn deliver_page(pages: &PageConnections, page: &PageInput) -> Result<PageOutcome> {
    let mut conn = pages.get((page.campaign_id, page.lane)).await?;
    let outcome = match page.channel {
        Channel::Inbox => inbox::deliver(&mut conn, page).await,
    };
    conn.finish(&outcome);
    outcome
}
