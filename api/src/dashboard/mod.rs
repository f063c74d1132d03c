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
//! - [`pages`]: the campaign list, a campaign's page and the fragments the script swaps in.
//! - [`views`]: their HTML.
//! - [`launch`]: the launch form, its field errors and the dry run before launching.
//! - [`session`]: the signed-in operator, signing in and out.
//! - [`actions`]: pause, resume, cancel, rate and retry-failed from the forms.
//! - [`consent`]: categories and the suppression list.
//!
//! Handlers end in `?`: what is not the page asked for is a [`Refused`], already rendered,
//! and the extractors here refuse before a handler runs: [`KeyPath`] a path that cannot name
//! a campaign, [`Checked`] a form without the session's CSRF token or beyond its key.

mod actions;
mod consent;
mod launch;
mod pages;
mod session;
mod views;

use actions::{cancel, cancel_page, pause, resume, retry_failed, set_rate};
use pages::{detail, failures, list, panel, row};
pub use session::Operator;
use session::{encode, sign_in, sign_in_page, sign_out};

use axum::{
    Form, Router,
    extract::{FromRequest, FromRequestParts, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use herald_control::{
    Request,
    page::{Cursor, Limit},
};
use herald_wire::{CampaignKey, Rate, keys::Scope};
use serde::{Deserialize, de::DeserializeOwned};

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
        .route("/campaigns/{key}/preview", get(pages::preview))
        .route("/campaigns/{key}/test-send", post(actions::test_send))
        .route("/launch", get(launch::form_page).post(launch::submit))
        .route("/consent", get(consent::page))
        .route("/consent/categories", post(consent::add_category))
        .route("/consent/suppressions", post(consent::import))
        .route("/consent/suppressions/remove", post(consent::remove))
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

/// A dashboard answer that is not the page asked for, rendered for the operator: an error
/// page, or the way to sign in.
pub struct Refused(Response);

impl Refused {
    /// The dashboard's error page, with the operator's header.
    pub(super) fn page(status: StatusCode, op: &Operator, title: &str, message: &str) -> Self {
        Self(views::error_page(status, Some(op), title, message))
    }

    /// The ledger or Temporal cannot be reached (or another fault): say so, plainly.
    pub(super) fn unreachable(op: &Operator, e: ApiError) -> Self {
        let title = if e.status == StatusCode::SERVICE_UNAVAILABLE {
            "The API cannot reach its services"
        } else {
            "Something went wrong"
        };
        Self::page(e.status, op, title, &e.message)
    }
}

impl From<Response> for Refused {
    fn from(response: Response) -> Self {
        Self(response)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.0
    }
}

/// The campaign key in a page's path (`/campaigns/{key}/…`): one that cannot be a key is
/// that page's 404.
pub(super) struct KeyPath(pub CampaignKey);

impl FromRequestParts<AppState> for KeyPath {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refused> {
        let op = Operator::from_request_parts(parts, state).await?;
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        CampaignKey::parse(&raw)
            .map(Self)
            .map_err(|e| Refused::page(StatusCode::NOT_FOUND, &op, "No such campaign", &e.0))
    }
}

/// A form that changes something: it carries the session's CSRF token, and what it asks
/// needs a scope of the operator's key.
pub(super) trait ChangeForm: DeserializeOwned {
    const SCOPE: Scope;
    fn csrf(&self) -> &str;
}

/// A [`ChangeForm`] that passed [`Operator::check`]: its token, where the browser says it
/// came from, and the key's scope. Anything else is refused before the handler runs.
pub(super) struct Checked<F>(pub F);

impl<F: ChangeForm + Send> FromRequest<AppState> for Checked<F> {
    type Rejection = Refused;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Refused> {
        let (mut parts, body) = request.into_parts();
        let op = Operator::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let request = axum::extract::Request::from_parts(parts, body);
        let Form(form) = Form::<F>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        op.check(&headers, form.csrf(), F::SCOPE)?;
        Ok(Self(form))
    }
}

/// User ids as an operator types them: comma- or space-separated.
pub(super) fn parse_user_list(text: &str) -> Result<Vec<i64>, String> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<i64>()
                .ok()
                .filter(|id| herald_wire::users::is_user_id(*id))
                .ok_or_else(|| format!("{t:?} is not a user id"))
        })
        .collect()
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
