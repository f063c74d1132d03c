//! `/v1/users/{id}/inbox`: a user's messages, the unread badge and marking read, for apps
//! (with the user's token) and services.
//!
//! What an app sees: items of inbox campaigns delivered to the user, newest campaign first.
//! A paused campaign's delivered items stay and more arrive when it resumes; a cancelled
//! campaign's delivered items stay, and nobody else receives it.

use axum::extract::State;
use herald_control::{
    ReadFilter,
    page::{Cursor, Limit},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::UserScope,
    campaigns::KeyPath,
    error::{ApiError, ApiResult, ErrorBody, Query},
    schema::{InboxEntry, InboxPage, InboxQuery, Marked, UnreadCount},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread_count))
        .routes(routes!(read))
        .routes(routes!(read_all))
}

/// A page of a user's inbox, newest campaign first, with the unread badge.
///
/// Keyset pagination: follow `next` until it is `null`. A walk never repeats or skips an
/// item, whatever campaigns arrive meanwhile (their items appear on the first page).
#[utoipa::path(
    get, path = "/v1/users/{id}/inbox", tag = "inbox",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id"), InboxQuery),
    responses(
        (status = 200, body = InboxPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    UserScope(user): UserScope,
    Query(q): Query<InboxQuery>,
) -> ApiResult<axum::Json<InboxPage>> {
    let filter = match q.status.as_deref() {
        None | Some("all") => ReadFilter::All,
        Some("unread") => ReadFilter::Unread,
        Some("read") => ReadFilter::Read,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "status {other:?} is not one of unread, read, all"
            )));
        }
    };
    let limit = q.limit.map(Limit::new).transpose()?.unwrap_or_default();
    let after = q.after.as_deref().map(Cursor::parse).transpose()?;
    let inbox = state.control.inbox(user, filter, limit, after).await?;
    Ok(axum::Json(InboxPage {
        items: inbox.page.items.into_iter().map(InboxEntry::from).collect(),
        unread_count: inbox.unread,
        next: inbox.page.next.map(|c| c.to_string()),
    }))
}

/// The unread badge: the count the list's `unread_count` gives.
#[utoipa::path(
    get, path = "/v1/users/{id}/inbox/unread-count", tag = "inbox",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id")),
    responses(
        (status = 200, body = UnreadCount),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn unread_count(
    State(state): State<AppState>,
    UserScope(user): UserScope,
) -> ApiResult<axum::Json<UnreadCount>> {
    Ok(axum::Json(UnreadCount {
        unread_count: state.control.unread_count(user).await?,
    }))
}

/// Mark a campaign's message read. Idempotent: a second call changes nothing (`changed`
/// 0), and the campaign's read count moves once.
#[utoipa::path(
    post, path = "/v1/users/{id}/inbox/{key}/read", tag = "inbox",
    params(
        ("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id"),
        ("key" = String, Path, description = "The campaign key"),
    ),
    responses(
        (status = 200, body = Marked),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such user or campaign, or the user did not receive it", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn read(
    State(state): State<AppState>,
    UserScope(user): UserScope,
    KeyPath(key): KeyPath,
) -> ApiResult<axum::Json<Marked>> {
    let changed = state.control.read(user, &key).await?;
    Ok(axum::Json(Marked {
        changed: i64::from(changed),
        unread_count: state.control.unread_count(user).await?,
    }))
}

/// Mark everything in a user's inbox read. Idempotent: a second call changes nothing.
#[utoipa::path(
    post, path = "/v1/users/{id}/inbox/read-all", tag = "inbox",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id")),
    responses(
        (status = 200, body = Marked),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn read_all(
    State(state): State<AppState>,
    UserScope(user): UserScope,
) -> ApiResult<axum::Json<Marked>> {
    let changed = state.control.read_all(user).await?;
    Ok(axum::Json(Marked {
        changed,
        unread_count: state.control.unread_count(user).await?,
    }))
}
