//! Delivery channels: how the recipients of one page are reached.
//!
//! A page is delivered and recorded in one step per channel. For the in-app inbox the ledger
//! row *is* the delivery, so a page is one `INSERT … SELECT` (see [`crate::ledger::write_page`]).
//! A channel that calls out (webhook, e-mail) will plug in here: select the page's
//! recipients, claim them as pending rows, deliver, then record sent/failed per recipient —
//! each step safe to repeat, keyed on (campaign, recipient).

use herald_wire::{Channel, PageInput, PageOutcome};
use sqlx::PgPool;

use crate::{LedgerError, ledger};

/// Deliver one page through its channel and record it.
pub async fn deliver_page(pool: &PgPool, page: &PageInput) -> Result<PageOutcome, LedgerError> {
    match page.channel {
        Channel::Inbox => ledger::write_page(pool, page).await,
    }
}
