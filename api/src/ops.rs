//! Operating the API: liveness, readiness, Prometheus metrics, and the request id and
//! timeout every request gets.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use tracing::Instrument;
use utoipa_axum::{router::OpenApiRouter, routes};

use herald_control::Control;

use crate::{
    AppState,
    auth::{Can, Read},
    error::{ApiError, ApiResult, ErrorBody},
    schema::Health,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// Ready: PostgreSQL and Temporal both answered within the last second. Open to anyone, so
/// the services are asked at most once a second however often it is called.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "A service does not answer", body = ErrorBody))
)]
async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    state.readiness.check(&state.control).await?;
    Ok(axum::Json(Health {
        status: "ready".into(),
    }))
}

/// How long one readiness check answers for.
pub const READY_EVERY: Duration = Duration::from_secs(1);

/// The last readiness check and when it ran. Callers within [`READY_EVERY`] of it get its
/// answer; one that comes later runs the next check while the others wait for it, so a
/// burst of callers costs one query and one Temporal call.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, ApiResult<()>)>>,
    checks: AtomicU64,
}

impl Readiness {
    pub async fn check(&self, control: &Control) -> ApiResult<()> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < READY_EVERY
        {
            return answer.clone();
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let answer = control.ready().await.map_err(ApiError::from);
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Checks run so far.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

/// Prometheus metrics: requests by route, method and status, and their latency; the event
/// streams open, the reads of watched campaigns (one per campaign per look, however many
/// streams follow it) and the readiness checks run. A service's key is needed here; with
/// `HERALD_API_METRICS_ADDR` they are also served, to anyone who can reach that address,
/// on a listener of their own.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn metrics(_: Can<Read>, State(state): State<AppState>) -> Response {
    prometheus_text(State(state)).await
}

/// The metrics alone, for `HERALD_API_METRICS_ADDR`.
pub fn metrics_app(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(prometheus_text))
        .with_state(state)
}

async fn prometheus_text(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    m.streams.set(state.streams.open() as i64);
    {
        // The control's count is the truth; the counter catches up with it, one scrape at a
        // time.
        let _one = m.catching_up.lock().expect("the metrics' lock");
        let looks = state.control.campaign_looks();
        m.looks.inc_by(looks.saturating_sub(m.looks.get()));
        let checks = state.readiness.checks();
        m.ready_checks
            .inc_by(checks.saturating_sub(m.ready_checks.get()));
    }
    let mut text = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&state.metrics.registry.gather(), &mut text)
        .expect("encoding to memory");
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

/// The API's own metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    streams: IntGauge,
    looks: IntCounter,
    ready_checks: IntCounter,
    catching_up: std::sync::Mutex<()>,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("herald_api_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "herald_api_request_duration_seconds",
                "Time to answer (to the response's head, for event streams)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let streams =
            IntGauge::new("herald_api_event_streams", "Event streams open").expect("valid metric");
        let looks = IntCounter::new(
            "herald_api_campaign_looks_total",
            "Reads of watched campaigns: one per campaign per look, shared by its streams",
        )
        .expect("valid metric");
        let ready_checks = IntCounter::new(
            "herald_api_ready_checks_total",
            "Readiness checks that asked PostgreSQL and Temporal (at most one a second)",
        )
        .expect("valid metric");
        let collectors: [Box<dyn prometheus::core::Collector>; 5] = [
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(streams.clone()),
            Box::new(looks.clone()),
            Box::new(ready_checks.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("registered once");
        }
        Self {
            registry,
            requests,
            latency,
            streams,
            looks,
            ready_checks,
            catching_up: std::sync::Mutex::new(()),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Count and time every request by its route (the pattern, never the ids in it), and
/// answer 503 to one that takes longer than the configured timeout (event streams excepted).
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = if route.ends_with("/events") {
        next.run(request).await
    } else {
        match tokio::time::timeout(state.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::unavailable(format!(
                "the request took longer than {:?}; try again",
                state.request_timeout
            ))
            .into_response(),
        }
    };
    let m = &state.metrics;
    m.latency
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    response
}

/// Give every response an `x-request-id`: the caller's, when it sent a sensible one, or a
/// new one; logs of the request carry it.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let given = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| {
        format!(
            "{:x}-{:x}",
            *crate::STARTED,
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    });
    let value = HeaderValue::from_str(&id).expect("checked or generated as visible ASCII");
    request.headers_mut().insert("x-request-id", value.clone());
    let mut response = next
        .run(request)
        .instrument(tracing::info_span!("request", id = %id))
        .await;
    response.headers_mut().insert("x-request-id", value);
    response
}
