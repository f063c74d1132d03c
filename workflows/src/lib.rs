//! Herald's campaign workflow. Deterministic by construction: no clock, randomness, I/O or
//! tokio here; time comes from `ctx.workflow_time()`, waiting from SDK timers and conditions.
//!
//! - [`campaign`]: the workflow: register, wait for `send_at`, page through the audience in
//!   lanes, obey pause/resume/cancel between pages, continue-as-new to bound history.
//! - [`plan`]: pure arithmetic and state transitions (lane split, cursor advance, when to
//!   continue-as-new), unit-tested without a server.
//! - [`activities`]: typed declarations of the activities the workflow calls. They are
//!   implemented in the `herald-activities` crate, so this crate never sees sqlx.
//! - [`options`]: timeouts and retry policies, with the reasoning beside each number.

pub mod activities;
pub mod campaign;
pub mod options;
pub mod plan;

pub use campaign::CampaignWorkflow;
