//! Herald's Temporal activities: thin adapters that call the store and the delivery
//! channels, and tell Temporal whether a failure is worth retrying.
//!
//! - [`campaign`]: the activities the campaign workflow calls (register, page, set status).
//! - [`channels`]: how a page is delivered, one module per channel; add a channel here.
//! - [`error`]: the one mapping from a store error's [`Fault`](herald_store::Fault) to a
//!   retryable or non-retryable activity failure.
//! - [`faults`]: failures injected on purpose, for the fault suite.
//! - [`metrics`]: the worker's Prometheus metrics.
//! - [`stats`]: page metrics in the worker's log.

pub mod campaign;
pub mod channels;
pub mod error;
pub mod faults;
pub mod metrics;
mod stats;

pub use campaign::{HeraldActivities, Stopping};
pub use faults::Faults;
pub use metrics::Metrics;
