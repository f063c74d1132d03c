//! `herald-api`: Herald's HTTP API. Services launch, follow, pause, resume and cancel
//! campaigns; apps list a user's inbox, show its unread badge and mark messages read. Every
//! handler parses its input, calls the control layer (`herald_control`, the same use cases
//! as the CLI) and serializes what comes back: no SQL and no orchestration here.
//!
//! - [`campaigns`]: `/v1/campaigns…`, for services, with the live event streams.
//! - [`consent`]: categories, users' preferences, suppressions, and `/u/{token}`.
//! - [`dashboard`]: the operator's pages at `/`, signed in with a key.
//! - [`inbox`]: `/v1/users/{id}/inbox…`, for apps and services.
//! - [`preview`]: `/v1/preview` and `/v1/test-sends`.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, request ids and timeouts.
//! - [`auth`]: keys and their scopes, dashboard sessions, users' inbox tokens.
//! - [`streams`]: places for event streams, per server and per key.
//! - [`error`]: every error as `{"error": {"code", "message"}}`, and the extractors that
//!   refuse bad input that way.
//! - [`schema`]: the JSON in and out, with its OpenAPI schemas.
//!
//! The OpenAPI 3.1 document (`/v1/openapi.json`) is generated from the same routes that
//! serve ([`router`]), so the two cannot drift apart.

pub mod auth;
pub mod campaigns;
pub mod consent;
pub mod dashboard;
pub mod deliveries;
pub mod error;
pub mod inbox;
pub mod ops;
pub mod preview;
pub mod schema;
pub mod streams;
pub mod users;

use std::{sync::Arc, sync::LazyLock, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{Method, StatusCode, Uri},
    middleware,
    response::IntoResponse,
};
use herald_control::Control;
use tokio::sync::watch;
use tower_http::{compression::CompressionLayer, trace::TraceLayer};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;

/// The largest request body: a launch with a 32 KiB body, escaped, and its envelope.
pub const BODY_LIMIT: usize = 128 * 1024;
/// The body limit of `POST /v1/users/batch`: 1,000 users of about 2 KiB each.
pub const BATCH_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The body limit of `POST /v1/opt-outs` and `POST /v1/suppressions`: 100,000 entries of
/// up to about 80 bytes.
pub const LIST_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// When this process started, in the request ids it makes.
static STARTED: LazyLock<u64> = LazyLock::new(|| {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
});

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub control: Arc<Control>,
    pub auth: Arc<auth::Auth>,
    pub metrics: Arc<ops::Metrics>,
    /// The last readiness check, shared by every `/readyz`.
    pub readiness: Arc<ops::Readiness>,
    pub request_timeout: Duration,
    /// Turns `true` when the server is shutting down: event streams end.
    pub shutdown: watch::Receiver<bool>,
    /// The Temporal web UI the dashboard links campaigns' workflows to.
    pub temporal_ui: Arc<str>,
    /// The places for event streams (`HERALD_API_MAX_STREAMS`, and per key).
    pub streams: Arc<streams::Streams>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Send one message to millions of users; pause and resume without skipping anyone. \
                       Services use a key (`herald keys create`, with scopes) or HERALD_API_TOKEN; apps may open one user's inbox with that user's token \
                       (docs/api.md).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "campaigns", description = "Launch, follow, pause, resume and cancel campaigns (services)"),
        (name = "inbox", description = "A user's in-app inbox (apps and services)"),
        (name = "users", description = "Users and their attributes (services)"),
        (name = "consent", description = "Categories, users' opt-outs, suppressions and one-click unsubscribe"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A key of `herald keys create`, or HERALD_API_TOKEN, for services; for one user's inbox routes, the lowercase hex of \
                         HMAC-SHA256(HERALD_INBOX_SECRET, the user id in decimal)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route and the OpenAPI document describing them, from one definition.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(campaigns::routes())
        .merge(deliveries::routes())
        .merge(inbox::routes())
        .merge(users::routes())
        .merge(consent::routes())
        .merge(preview::routes())
        .merge(ops::routes())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, doc)
}

/// The OpenAPI document as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router().1
}

/// The whole service: routes, the document at `/v1/openapi.json`, and the layers every
/// request passes (request id, tracing, metrics and timeout, compression, body limit).
pub fn app(state: AppState) -> Router {
    let (router, doc) = router();
    let doc = Arc::new(doc.to_json().expect("the document serializes"));
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.as_str().to_owned(),
                    )
                }
            }),
        )
        .merge(dashboard::routes(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), ops::observe))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(ops::request_id))
        .with_state(state)
}

async fn not_found(headers: axum::http::HeaderMap, uri: Uri) -> axum::response::Response {
    if dashboard::wants_html(&headers, &uri) {
        return dashboard::not_found_page(uri.path());
    }
    ApiError::not_found(format!(
        "no route {}; the routes are listed at /v1/openapi.json",
        uri.path()
    ))
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}
