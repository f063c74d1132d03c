//! Herald's campaign workflow. Deterministic by construction: no clock, randomness, I/O or
//! tokio here; time comes from `ctx.workflow_time()`, waiting from SDK timers and conditions.
//!
//! - [`campaign`]: the workflow: the SDK loop that turns Temporal's events into transitions
//!   of the state and its answers into commands; `steps` holds those commands (pages, the
//!   ledger look, waits, bookkeeping, status writes).
//! - [`state`]: the campaign's state and every transition (requests, pages, failures, what
//!   comes next), with no SDK in it, unit- and property-tested.
//! - [`plan`]: pure arithmetic (lane split, cursor advance, pace, backoff, when to
//!   continue-as-new); [`scan`]: how far a page may scan past its lane's cursor.
//! - [`activities`]: typed declarations of the activities the workflow calls. They are
//!   implemented in the `herald-activities` crate, so this crate never sees sqlx.
//! - [`options`]: timeouts and retry policies, with the reasoning beside each number.

pub mod activities;
pub mod campaign;
pub mod options;
pub mod plan;
pub mod scan;
pub mod state;
mod steps;

pub use campaign::CampaignWorkflow;
