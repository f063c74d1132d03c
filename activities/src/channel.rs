//! Delivery channels: how the recipients of one page are reached.
//!
//! A page is delivered and recorded in one step per channel. For the in-app inbox the ledger
//! row *is* the delivery, so a page is one `INSERT … SELECT` (see [`crate::ledger::write_page`]).
//! A channel that calls out (webhook, e-mail) will plug in here: select the page's
//! recipients, claim them as pending rows, deliver, then record sent/failed per recipient —
//! each step safe to repeat, keyed on (campaign, recipient).

use herald_wire::{Channel, PageInput, PageOutcome};

use crate::{LedgerError, db::PageConnections, ledger};

/// Deliver one page through its channel and record it, on one of the worker's page
/// connections.
pub async fn deliver_page(
    pages: &PageConnections,
    page: &PageInput,
) -> Result<PageOutcome, LedgerError> {
    let mut conn = pages.get((page.message_id, page.lane)).await?;
    let outcome = match page.channel {
        Channel::Inbox => ledger::write_page(&mut conn, page).await,
    };
    conn.finish(&outcome);
    outcome
}
