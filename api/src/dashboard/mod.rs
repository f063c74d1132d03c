//! The operator's dashboard: server-rendered pages at `/`, served by `herald-api` itself.
//!
//! It holds no rules of its own. Its pages read through the control layer with the API's
//! own types (`schema`), its forms parse with the API's parsers (`campaigns::launch_request`,
//! the wire types) and call the same use cases as the API's routes, and its script follows
//! the API's event streams (`/v1/events`, `/v1/campaigns/{key}/events`), which the session
//! cookie opens (`auth`). So a campaign launched, paused or retried here is refused or
//! accepted exactly as the same request to `/v1` would be.
//!
//! Security: sign-in with the service token sets an HttpOnly, SameSite=Strict session
//! cookie; every form carries the session's CSRF token and is refused without it (and when
//! the browser says it came from another origin); every page has a Content-Security-Policy
//! that allows scripts and styles from this server only, with nothing inline; and every
//! value is HTML-escaped by the templates (`maud`).
//!
//! - [`views`]: the pages and the fragments the script swaps in.
//! - [`launch`]: the launch form, its field errors and the dry run before launching.

mod launch;
mod views;

use axum::{
    Form, Router,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
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
    schema::{Campaign, Report, StatusChange},
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

/// A signed-in operator (anyone, in development mode), with the CSRF token their forms
/// carry. A request without a valid session is sent to the sign-in page and back.
pub struct Operator {
    pub csrf: String,
    /// Whether there is a session to sign out of (not in development mode).
    pub signed_in: bool,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let auth = &state.auth;
        if !auth.required() {
            return Ok(Self {
                csrf: auth.csrf_token(None),
                signed_in: false,
            });
        }
        match session_cookie(&parts.headers) {
            Some(s) if auth.session_valid(s, Utc::now().timestamp()) => Ok(Self {
                csrf: auth.csrf_token(Some(s)),
                signed_in: true,
            }),
            _ => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                Err(Redirect::to(&format!("/sign-in?next={}", encode(next))).into_response())
            }
        }
    }
}

/// Whether the browser says a request comes from another site (`Sec-Fetch-Site`) or another
/// origin (`Origin`).
fn cross_origin(headers: &HeaderMap) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    let foreign_origin = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let host = host.to_str().unwrap_or("");
            origin != "null" && origin.split_once("://").map(|(_, h)| h) != Some(host)
        }
        (Some(origin), None) => origin != "null",
        _ => false,
    };
    cross_site || foreign_origin
}

impl Operator {
    /// Refuse a form that does not carry this session's CSRF token, or that the browser says
    /// comes from another site.
    fn check(&self, headers: &HeaderMap, shown: &str) -> Result<(), Response> {
        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(
            shown.as_bytes(),
            self.csrf.as_bytes(),
        ));
        if cross_origin(headers) || !matches {
            return Err(views::error_page(
                StatusCode::FORBIDDEN,
                Some(self),
                "This form has expired or came from another site",
                "Nothing was changed. Reload the page and try again.",
            ));
        }
        Ok(())
    }
}

/// Percent-encode a value for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path on this server only.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/campaigns",
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

async fn sign_in_page(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    if !state.auth.required() {
        return Redirect::to("/campaigns").into_response();
    }
    let notice = q.signed_out.is_some().then_some("You are signed out.");
    views::sign_in(safe_next(q.next.as_deref()), None, notice).into_response()
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if !state.auth.required() {
        return Redirect::to(next).into_response();
    }
    // There is no session to tie a token to yet: the browser's word on where the form came
    // from, with the SameSite cookie, is the sign-in's CSRF protection.
    if cross_origin(&headers) {
        return views::error_page(
            StatusCode::FORBIDDEN,
            None,
            "This sign-in came from another site",
            "Nothing was changed. Open the dashboard's own sign-in page and try again.",
        );
    }
    let error = if form.token.trim().is_empty() {
        Some("Enter the API token (HERALD_API_TOKEN).")
    } else if !state.auth.is_service_token(&form.token) {
        Some("That is not this server's API token.")
    } else {
        None
    };
    if let Some(error) = error {
        let mut page = views::sign_in(next, Some(error), None).into_response();
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    }
    let session = state
        .auth
        .new_session(Utc::now().timestamp())
        .expect("a token is configured");
    // Secure whenever the browser reached us over HTTPS (directly or through a proxy).
    let https = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if https { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(op: Operator, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf) {
        return refused;
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/sign-in?signed_out=1"),
    )
        .into_response()
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

/// A campaign, its history of statuses and, for channels that can fail, its delivery
/// report: what its page shows.
async fn load(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
) -> Result<(Campaign, Vec<StatusChange>, Option<Report>), Response> {
    let (campaign, changes): (Campaign, Vec<StatusChange>) = match state.control.history(key).await
    {
        Ok((view, changes)) => (view.into(), changes.into_iter().map(Into::into).collect()),
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
    let report = if campaign.channel != "inbox" || campaign.failed > 0 {
        match state.control.report(key, 20).await {
            Ok(r) => Some(r.into()),
            Err(e) => return Err(unreachable_page(op, e.into())),
        }
    } else {
        None
    };
    Ok((campaign, changes, report))
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
        Ok((campaign, changes, report)) => {
            let link = workflow_link(state, &key);
            let mut page = views::detail(op, &campaign, &changes, report.as_ref(), notice, &link)
                .into_response();
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
        Ok((view, changes)) => {
            let changes: Vec<StatusChange> = changes.into_iter().map(Into::into).collect();
            views::panel(&op, &Campaign::from(view), &changes).into_response()
        }
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
        Ok((_, _, Some(report))) => views::report(&op, &report).into_response(),
        Ok((_, _, None)) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RequestForm {
    #[serde(default)]
    csrf: String,
    reason: Option<String>,
}

/// Record an operator's request as `POST /v1/campaigns/{key}/<verb>` would, then show the
/// campaign again (with the API's refusal, if it refused).
async fn request(
    state: AppState,
    op: Operator,
    headers: HeaderMap,
    raw: String,
    request: Request,
    form: RequestForm,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf) {
        return refused;
    }
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    match state.control.request(&key, request, reason).await {
        Ok(_) => Redirect::to(&format!("/campaigns/{key}?done={}", request.verb())).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status;
            show(&state, &op, &raw, Some(Notice::refused(e.message)), status).await
        }
    }
}

async fn pause(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    request(state, op, headers, raw, Request::Pause, form).await
}

async fn resume(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    request(state, op, headers, raw, Request::Resume, form).await
}

async fn cancel(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    request(state, op, headers, raw, Request::Cancel, form).await
}

/// Cancelling cannot be undone: ask first.
async fn cancel_page(
    State(state): State<AppState>,
    op: Operator,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Response {
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match load(&state, &op, &key).await {
        Ok((campaign, _, _)) => views::cancel_confirm(&op, &campaign).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rate: String,
    /// Set by the "no limit" button.
    unlimited: Option<String>,
}

async fn set_rate(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RateForm>,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf) {
        return refused;
    }
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let rate = if form.unlimited.is_some() {
        Ok(None)
    } else {
        let text = form.rate.trim();
        text.parse::<u32>()
            .map_err(|_| {
                format!("the rate must be a whole number of recipients per second, got {text:?}")
            })
            .and_then(|n| Rate::new(n).map(Some).map_err(|e| e.0))
    };
    let outcome = match rate {
        Ok(rate) => state
            .control
            .set_rate(&key, rate)
            .await
            .map_err(ApiError::from),
        Err(message) => Err(ApiError::invalid(message)),
    };
    match outcome {
        Ok(_) => Redirect::to(&format!("/campaigns/{key}?done=rate")).into_response(),
        Err(e) => {
            let status = e.status;
            show(
                &state,
                &op,
                &raw,
                Some(Notice::rate_refused(e.message)),
                status,
            )
            .await
        }
    }
}

async fn retry_failed(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf) {
        return refused;
    }
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match state.control.retry_failed(&key).await {
        Ok(_) => Redirect::to(&format!("/campaigns/{key}?done=retry")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status;
            show(&state, &op, &raw, Some(Notice::refused(e.message)), status).await
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/campaigns/a?x=1")), "/campaigns/a?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "campaigns",
        ] {
            assert_eq!(safe_next(Some(bad)), "/campaigns", "{bad}");
        }
        assert_eq!(
            encode("/campaigns?status=paused&x= y"),
            "/campaigns%3Fstatus%3Dpaused%26x%3D%20y"
        );
    }
}
