//! The operator's dashboard: server-rendered pages at `/`, served by `herald-api` itself.
//!
//! It holds no rules of its own. Its pages read through the control layer with the API's
//! own types (`schema`), its forms parse with the API's parsers (`campaigns::launch_request`,
//! the wire types) and call the same use cases as the API's routes, and its script follows
//! the API's event streams (`/v1/events`, `/v1/campaigns/{key}/events`), which the session
//! cookie opens (`auth`). So a campaign launched, paused or retried here is refused or
//! accepted exactly as the same request to `/v1` would be.
//!
//! Security: sign-in with a key opens a server-side session, carried in an HttpOnly,
//! SameSite=Strict cookie; every form carries the session's CSRF token and is refused without it (and when
//! the browser says it came from another origin); every page has a Content-Security-Policy
//! that allows scripts and styles from this server only, with nothing inline; and every
//! value is HTML-escaped by the templates (`maud`).
//!
//! - [`views`]: the pages and the fragments the script swaps in.
//! - [`launch`]: the launch form, its field errors and the dry run before launching.
//! - [`session`]: the signed-in operator, signing in and out.
//! - [`actions`]: pause, resume, cancel, rate and retry-failed from the forms.

mod actions;
mod launch;
mod session;
mod views;

use actions::{cancel, cancel_page, pause, resume, retry_failed, set_rate};
pub use session::Operator;
use session::{CsrfForm, encode, sign_in, sign_in_page, sign_out};

use axum::{
    Form, Router,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use herald_control::{
    Request,
    page::{Cursor, Limit},
};
use herald_wire::{CampaignKey, Rate};
use serde::Deserialize;

use crate::{
    AppState,
    auth::{SESSION_COOKIE, SESSION_HOURS, session_cookie},
    campaigns::parse_status,
    error::ApiError,
    schema::{Campaign, Report, Timeline},
};

use views::Notice;

/// The dashboard's routes, with the security headers every answer carries.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/campaigns") }))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/campaigns", get(list))
        .route("/campaigns/{key}", get(detail))
        .route("/campaigns/{key}/row", get(row))
        .route("/campaigns/{key}/panel", get(panel))
        .route("/campaigns/{key}/failures", get(failures))
        .route("/campaigns/{key}/cancel", get(cancel_page).post(cancel))
        .route("/campaigns/{key}/pause", post(pause))
        .route("/campaigns/{key}/resume", post(resume))
        .route("/campaigns/{key}/rate", post(set_rate))
        .route("/campaigns/{key}/retry-failed", post(retry_failed))
        .route("/launch", get(launch::form_page).post(launch::submit))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Scripts and styles from this server only, nothing inline, no framing, no leaks.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/app.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/app.css"),
    )
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    /// Where this page starts: the `next` of the page before (none: the newest).
    after: Option<String>,
}

/// Campaigns, newest first, a hundred to a page.
async fn list(State(state): State<AppState>, op: Operator, Query(q): Query<ListQuery>) -> Response {
    let filter = q.status.as_deref().filter(|s| !s.is_empty());
    let status = match filter.map(parse_status).transpose() {
        Ok(s) => s,
        Err(e) => {
            return views::error_page(
                StatusCode::BAD_REQUEST,
                Some(&op),
                "No such status",
                &e.message,
            );
        }
    };
    let after = match q
        .after
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Cursor::parse)
    {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(e)) => {
            return views::error_page(StatusCode::BAD_REQUEST, Some(&op), "No such page", &e.0);
        }
    };
    let limit = Limit::new(Limit::MAX).expect("MAX is a limit");
    match state.control.campaigns(status, limit, after).await {
        Ok(page) => {
            let items: Vec<Campaign> = page.items.into_iter().map(Campaign::from).collect();
            let pages = views::Pages {
                after: after.map(|c| c.to_string()),
                next: page.next.map(|c| c.to_string()),
            };
            views::list(&op, status.map(|s| s.name()), &items, &pages).into_response()
        }
        Err(e) => unreachable_page(&op, e.into()),
    }
}

/// The ledger or Temporal cannot be reached (or another fault): say so, plainly.
fn unreachable_page(op: &Operator, e: ApiError) -> Response {
    let title = if e.status == StatusCode::SERVICE_UNAVAILABLE {
        "The API cannot reach its services"
    } else {
        "Something went wrong"
    };
    views::error_page(e.status, Some(op), title, &e.message)
}

fn key_of(raw: &str, op: &Operator) -> Result<CampaignKey, Response> {
    CampaignKey::parse(raw)
        .map_err(|e| views::error_page(StatusCode::NOT_FOUND, Some(op), "No such campaign", &e.0))
}

/// A campaign, its timeline and, for channels that can fail, its delivery report: what its
/// page shows.
async fn load(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
) -> Result<(Timeline, Option<Report>), Response> {
    let timeline = match state.control.history(key).await {
        Ok(history) => Timeline::from(history),
        Err(e) => {
            let e = ApiError::from(e);
            return Err(if e.status == StatusCode::NOT_FOUND {
                views::error_page(
                    StatusCode::NOT_FOUND,
                    Some(op),
                    "No such campaign",
                    &e.message,
                )
            } else {
                unreachable_page(op, e)
            });
        }
    };
    let campaign = &timeline.campaign;
    let report = if campaign.channel != "inbox" || campaign.failed > 0 {
        match state.control.report(key, 20).await {
            Ok(r) => Some(r.into()),
            Err(e) => return Err(unreachable_page(op, e.into())),
        }
    } else {
        None
    };
    Ok((timeline, report))
}

#[derive(Deserialize)]
struct DetailQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    op: Operator,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let notice = q.done.as_deref().and_then(Notice::done);
    show(&state, &op, &raw, notice, StatusCode::OK).await
}

async fn show(
    state: &AppState,
    op: &Operator,
    raw: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let key = match key_of(raw, op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match load(state, op, &key).await {
        Ok((timeline, report)) => {
            let link = workflow_link(state, &key);
            let mut page =
                views::detail(op, &timeline, report.as_ref(), notice, &link).into_response();
            *page.status_mut() = status;
            page
        }
        Err(r) => r,
    }
}

fn workflow_link(state: &AppState, key: &CampaignKey) -> String {
    format!(
        "{}/namespaces/{}/workflows/{}",
        state.temporal_ui,
        encode(&state.control.config().temporal_namespace),
        encode(&herald_wire::names::workflow_id(key))
    )
}

/// One row of the list, for the script to add a campaign that appeared.
async fn row(
    State(state): State<AppState>,
    op: Operator,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Response {
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match state.control.campaign(&key).await {
        Ok(view) => views::row(&Campaign::from(view)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The parts of a campaign's page that change with its status, for the script to swap in.
async fn panel(
    State(state): State<AppState>,
    op: Operator,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Response {
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match state.control.history(&key).await {
        Ok(history) => views::panel(&op, &Timeline::from(history)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The failure report, for the script to refresh as failures come in.
async fn failures(
    State(state): State<AppState>,
    op: Operator,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Response {
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match load(&state, &op, &key).await {
        Ok((_, Some(report))) => views::report(&op, &report).into_response(),
        Ok((_, None)) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Pages that are not there: the dashboard's own 404, not the API's JSON.
pub fn wants_html(headers: &HeaderMap, uri: &Uri) -> bool {
    !uri.path().starts_with("/v1/")
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The dashboard's page for a path that is not there.
pub fn not_found_page(path: &str) -> Response {
    views::error_page(
        StatusCode::NOT_FOUND,
        None,
        "No such page",
        &format!("There is no page at {path}."),
    )
}
