//! The worker's Prometheus metrics: deliveries by channel and outcome, their latency, retries,
//! pages in flight. `herald-worker` serves them at `HERALD_METRICS_ADDR` with the campaigns
//! by status, read from the ledger at each scrape.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    exponential_buckets,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    deliveries: IntCounterVec,
    latency: HistogramVec,
    retries: IntCounterVec,
    pages_in_flight: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let deliveries = IntCounterVec::new(
            Opts::new(
                "herald_deliveries_total",
                "Deliveries recorded, by channel and outcome (sent, failed)",
            ),
            &["channel", "outcome"],
        )
        .expect("a valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "herald_delivery_seconds",
                "How long one try of a webhook request or an e-mail took",
            )
            .buckets(exponential_buckets(0.001, 2.0, 15).expect("valid buckets")),
            &["channel"],
        )
        .expect("a valid metric");
        let retries = IntCounterVec::new(
            Opts::new(
                "herald_delivery_retries_total",
                "Tries that failed in a way worth retrying, by channel and error class",
            ),
            &["channel", "class"],
        )
        .expect("a valid metric");
        let pages_in_flight = IntGauge::new(
            "herald_pages_in_flight",
            "Page activities running on this worker",
        )
        .expect("a valid metric");
        for collector in [
            Box::new(deliveries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(retries.clone()),
            Box::new(pages_in_flight.clone()),
        ] {
            registry.register(collector).expect("registered once");
        }
        Self {
            registry,
            deliveries,
            latency,
            retries,
            pages_in_flight,
        }
    }

    /// How long a channel's tries take: a page looks it up once and observes each try.
    pub(crate) fn latency(&self, channel: &str) -> Histogram {
        self.latency.with_label_values(&[channel])
    }

    pub(crate) fn retry(&self, channel: &str, class: &str) {
        self.retries.with_label_values(&[channel, class]).inc();
    }

    pub(crate) fn recorded(&self, channel: &str, sent: u64, failed: u64) {
        self.deliveries
            .with_label_values(&[channel, "sent"])
            .inc_by(sent);
        self.deliveries
            .with_label_values(&[channel, "failed"])
            .inc_by(failed);
    }

    pub(crate) fn page_started(&self) -> PageGuard<'_> {
        self.pages_in_flight.inc();
        PageGuard(self)
    }
}

pub(crate) struct PageGuard<'a>(&'a Metrics);

impl Drop for PageGuard<'_> {
    fn drop(&mut self) {
        self.0.pages_in_flight.dec();
    }
}
