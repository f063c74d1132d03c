//! Page metrics, logged every [`PageStats::REPORT_EVERY`] pages: how many, how many
//! recipients, and how long the page statement took (mean and worst), so that an operator can
//! tell database time from everything else.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tracing::info;

#[derive(Default)]
pub(crate) struct PageStats {
    pages: AtomicU64,
    recipients: AtomicU64,
    micros: AtomicU64,
    max_micros: AtomicU64,
    in_flight: AtomicU64,
}

impl PageStats {
    const REPORT_EVERY: u64 = 1_000;

    /// Count a page in flight until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub(crate) fn record(&self, recipients: u32, elapsed: Duration) {
        let micros = elapsed.as_micros() as u64;
        let total_micros = self.micros.fetch_add(micros, Ordering::Relaxed) + micros;
        let total_recipients = self
            .recipients
            .fetch_add(u64::from(recipients), Ordering::Relaxed)
            + u64::from(recipients);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        if pages.is_multiple_of(Self::REPORT_EVERY) {
            info!(
                pages,
                recipients = total_recipients,
                page.statement_ms_mean = total_micros as f64 / pages as f64 / 1000.0,
                page.statement_ms_max = self.max_micros.swap(0, Ordering::Relaxed) as f64 / 1000.0,
                pages.in_flight = self.in_flight.load(Ordering::Relaxed),
                "page statistics"
            );
        }
    }
}

pub(crate) struct InFlight<'a>(&'a PageStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
