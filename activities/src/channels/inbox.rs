//! The in-app inbox: writing a recipient's ledger row delivers the message, so a page is
//! delivered and recorded by one statement of the store.

use herald_store::{Result, filter::Compiled, pages, quiet_pool::Lease};
use herald_wire::{PageInput, PageOutcome};

pub async fn deliver(
    conn: &mut Lease,
    page: &PageInput,
    audience: &Compiled,
) -> Result<PageOutcome> {
    pages::write_inbox_page(conn, page, audience).await
}
