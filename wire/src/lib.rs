//! Herald's wire types: what the CLI, the worker, the workflow and the activities say to
//! each other through Temporal.
//!
//! This crate is deliberately small (serde, chrono, thiserror; url, ipnet and base64 for
//! webhooks) so that both the deterministic workflow crate and the database-facing
//! activities crate can depend on it without the workflow picking up sqlx or tokio.
//!
//! - [`names`]: durable names (workflow type, signals, query, activities, search attributes).
//!   These are contracts with running workflows and other services: never rename them.
//! - [`types`]: parsed values that can only hold valid data (`CampaignKey`, `PageSize`, …).
//! - [`status`]: the campaign status codes 0–3 of the specification, Herald's 4 and 5, and
//!   the status of one recipient's item.
//! - [`carried`]: the campaign workflow's durable state, carried from run to run.
//! - [`messages`]: workflow input, activity inputs and outcomes, progress, signal payloads.
//! - [`audience`]: audience filters, the JSON expression trees that choose a campaign's users.
//! - [`users`]: users as imports and the API give them, checked field by field.
//! - [`local`]: delivery at the recipient's local time: the waves of a campaign.
//! - [`cap`]: the frequency cap, how many capped campaigns may reach a user in a window.
//! - [`webhooks`]: webhook endpoints, the signing secret, and where webhooks may go.
//!
//! After the first release, every field added to a struct that crosses the wire gets
//! `#[serde(default)]`, so running workflows' histories keep decoding (docs/operations.md).

pub mod audience;
pub mod cap;
pub mod carried;
pub mod consent;
pub mod keys;
pub mod local;
pub mod messages;
pub mod names;
pub mod status;
pub mod types;
pub mod users;
pub mod webhooks;

pub use cap::FrequencyCap;
pub use carried::*;
pub use consent::{Category, OptOutChannel, Unsubscribe, UnsubscribeKey};
pub use messages::*;
pub use status::{CampaignStatus, Intent, ItemStatus, Requested};
pub use types::*;
pub use webhooks::{Destinations, WebhookSecret, WebhookUrl};
