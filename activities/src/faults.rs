//! Failures and delays injected on purpose, for the fault suite. Off unless the worker is
//! configured with `HERALD_FAULT_*` settings.
//!
//! - Failing every Nth page after its commit proves that a page which committed but whose
//!   completion never reached Temporal is retried without being counted twice.
//! - Delaying the workflow's status writes widens the window in which an operator's request
//!   and the workflow's own write race, which proves that neither can undo the other.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tracing::warn;

#[derive(Default)]
pub struct Faults {
    fail_after_commit_every: Option<u64>,
    status_delay: Option<Duration>,
    pages: AtomicU64,
}

impl Faults {
    /// Every `n`th page reports a failure after its commit (`None` or 0: never).
    pub fn fail_after_commit_every(mut self, n: Option<u64>) -> Self {
        self.fail_after_commit_every = n.filter(|n| *n > 0);
        if let Some(n) = self.fail_after_commit_every {
            warn!(
                every = n,
                "fault injection on: every Nth page fails after its commit"
            );
        }
        self
    }

    /// Every status write of the workflow waits this long first (`None` or zero: none).
    pub fn delay_status_writes(mut self, delay: Option<Duration>) -> Self {
        self.status_delay = delay.filter(|d| !d.is_zero());
        if let Some(d) = self.status_delay {
            warn!(delay = ?d, "fault injection on: status writes are delayed");
        }
        self
    }

    pub(crate) fn fail_after_commit(&self) -> bool {
        self.fail_after_commit_every
            .is_some_and(|n| (self.pages.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n))
    }

    pub(crate) async fn delay_status(&self) {
        if let Some(d) = self.status_delay {
            tokio::time::sleep(d).await;
        }
    }
}
