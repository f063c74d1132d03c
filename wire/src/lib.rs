//! Herald's wire types: what the CLI, the worker, the workflow and the activities say to
//! each other through Temporal.
//!
//! This crate is deliberately tiny (serde, chrono, thiserror) so that both the deterministic
//! workflow crate and the database-facing activities crate can depend on it without the
//! workflow picking up sqlx or tokio.
//!
//! - [`names`]: durable names (workflow type, signals, query, activities, search attributes).
//!   These are contracts with running workflows and other services: never rename them.
//! - [`types`]: parsed values that can only hold valid data (`CampaignKey`, `PageSize`, …).
//! - [`status`]: the campaign status codes the user numbered (0–3) plus Herald's 4 and 5.
//! - [`messages`]: workflow input, activity inputs and outcomes, progress, signal payloads.
//!
//! Every struct that crosses the wire uses `#[serde(default)]` on fields added after the first
//! release, so a running workflow's history keeps decoding after a field is added.

pub mod messages;
pub mod names;
pub mod status;
pub mod types;

pub use messages::*;
pub use status::CampaignStatus;
pub use types::*;
