//! Failures injected on purpose, for the fault suite: they prove that a page which committed
//! but whose completion never reached Temporal is retried without being counted twice. Off
//! unless the worker is configured with `HERALD_FAULT_FAIL_AFTER_COMMIT_EVERY`.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

#[derive(Default)]
pub struct Faults {
    fail_after_commit_every: Option<u64>,
    pages: AtomicU64,
}

impl Faults {
    /// Every `n`th page reports a failure after its commit (`None` or 0: never).
    pub fn fail_after_commit_every(n: Option<u64>) -> Self {
        let every = n.filter(|n| *n > 0);
        if let Some(n) = every {
            warn!(
                every = n,
                "fault injection on: every Nth page fails after its commit"
            );
        }
        Self {
            fail_after_commit_every: every,
            pages: AtomicU64::new(0),
        }
    }

    pub(crate) fn fail_after_commit(&self) -> bool {
        self.fail_after_commit_every
            .is_some_and(|n| (self.pages.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n))
    }
}
