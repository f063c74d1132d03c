//! Everything in Herald that touches PostgreSQL or a delivery channel.
//!
//! - [`db`]: connecting, the pool's settings, and the embedded migrations.
//! - [`ledger`]: the SQL. Campaign rows, the per-recipient ledger, lane counters, the inbox.
//!   Every write is safe to repeat: Temporal retries activities and workers die mid-page.
//! - [`channel`]: how a page is delivered. The in-app inbox is the ledger itself; other
//!   channels (webhook, e-mail) plug in here.
//! - [`worker`]: the Temporal activities, thin wrappers that map errors to retryable or not.
//! - [`error`]: typed errors, split into the caller's fault and ours.

pub mod channel;
pub mod db;
pub mod error;
pub mod ledger;
pub mod worker;

pub use error::LedgerError;
pub use worker::HeraldActivities;
