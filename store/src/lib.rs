//! Herald's PostgreSQL store: every SQL statement Herald runs lives here, in a module named
//! after its concept. Every write is safe to repeat: Temporal retries activities, workers die
//! mid-page, operators run a command twice.
//!
//! The tables keep the names the product was specified with: `messages` holds one row per
//! campaign, `message_items` one row per (campaign, recipient). The Rust side calls them
//! campaigns and items.
//!
//! - [`connect`]: connecting, the pool's settings, and the embedded schema.
//! - [`quiet_pool`]: connections without sqlx's round trips: the worker's for pages, the API's for apps.
//! - [`gates`]: the worker's reader of its sending campaigns' gates, on a connection of its own.
//! - [`campaigns`]: creating and registering a campaign, fixing its audience, views.
//! - [`consent`]: categories, opt-outs, suppressions, and how a page leaves their recipients out.
//! - [`cap`]: the frequency cap, and how a page leaves out those it caps.
//! - [`status`]: the workflow's status and operators' requests, each with one writer.
//! - [`pages`]: the page statement that writes a page's ledger rows.
//! - [`report`]: a campaign's deliveries by outcome and error, and its failed recipients.
//! - [`sends`]: the ledger of an external channel: claim, send, record.
//! - [`inbox`]: a user's messages and read tracking.
//! - [`items`]: a campaign's items, found through its pages (the failure listing).
//! - [`audience`]: counting an audience, adding test users.
//! - [`users`]: users written by imports and the API, and their attributes' types.
//! - [`filter`]: audience filters compiled to parameterized SQL.
//! - [`saved_audiences`]: filters kept under a name.
//! - [`partitions`]: the ledger's partitions by user id.
//! - [`error`]: [`StoreError`] and [`Fault`], whose fault an error is.

pub mod audience;
pub mod campaigns;
pub mod cap;
pub mod connect;
pub mod consent;
pub mod error;
pub mod filter;
pub mod gates;
pub mod inbox;
pub mod items;
pub mod keys;
pub mod pages;
pub mod partitions;
pub mod quiet_pool;
pub mod report;
pub mod saved_audiences;
pub mod sends;
pub mod status;
pub mod users;

pub use error::{Fault, Result, StoreError};
/// The connection pool type, so that callers need not depend on sqlx themselves.
pub use sqlx::{PgConnection, PgPool};
