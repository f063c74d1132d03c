//! Consent (docs/consent.md): categories, a user's preferences, the suppression list, and
//! the recipients' own one-click unsubscribe at `/u/{token}`.
//!
//! `/u/{token}` needs no key and no session: the token is the authority, an HMAC of (user,
//! category, channel) that only Herald can make. `POST` unsubscribes (RFC 8058: what Gmail
//! and Yahoo send for `List-Unsubscribe-Post`, and what the page's button sends); `GET` only
//! shows the page with that button, since link scanners follow every link they see.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use herald_control::consent::{OptOutLine, OptOutSource, Place, SuppressionReason};
use maud::{DOCTYPE, Markup, html};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::{Can, Launch, Operate, Read, UserScope},
    error::{ApiError, ApiResult, Body, ErrorBody, Query, path_param},
    schema::{
        CategoryBody, CategoryEntry, CategoryList, OptOutEntry, OptOutsAdded, OptOutsBody,
        Preferences, PreferencesBody, Settings, SettingsBody, SuppressBody, Suppressed,
        SuppressionList, SuppressionQuery,
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories, add_category))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(list_suppressions))
        // Lists of up to 100,000 entries.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(add_opt_outs))
                .routes(routes!(suppress))
                .layer(axum::extract::DefaultBodyLimit::max(crate::LIST_BODY_LIMIT)),
        )
        .routes(routes!(unsuppress))
        .routes(routes!(unsubscribe_page, unsubscribe))
}

/// Every category campaigns may be launched in, with how many users opted out of each.
#[utoipa::path(
    get, path = "/v1/categories", tag = "consent",
    responses(
        (status = 200, body = CategoryList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_categories(
    State(state): State<AppState>,
    _: Can<Read>,
) -> ApiResult<axum::Json<CategoryList>> {
    let items = state.control.categories().await?;
    Ok(axum::Json(CategoryList {
        items: items.into_iter().map(CategoryEntry::from).collect(),
    }))
}

/// Declare a category. Idempotent: declaring one that exists answers 200 and changes
/// nothing.
#[utoipa::path(
    post, path = "/v1/categories", tag = "consent",
    request_body = CategoryBody,
    responses(
        (status = 200, description = "It existed already", body = CategoryList),
        (status = 201, description = "Declared", body = CategoryList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_category(
    State(state): State<AppState>,
    caller: Can<Launch>,
    Body(body): Body<CategoryBody>,
) -> ApiResult<Response> {
    let added = state
        .control
        .add_category(&body.name, body.description.as_deref(), caller.name())
        .await?;
    let items = state.control.categories().await?;
    let list = axum::Json(CategoryList {
        items: items.into_iter().map(CategoryEntry::from).collect(),
    });
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, list).into_response())
}

/// Settings every process reads alike: the default frequency cap (docs/local-time.md).
#[utoipa::path(
    get, path = "/v1/settings", tag = "consent",
    responses(
        (status = 200, body = Settings),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_settings(
    State(state): State<AppState>,
    _: Can<Read>,
) -> ApiResult<axum::Json<Settings>> {
    let cap = state.control.default_cap().await?;
    Ok(axum::Json(Settings {
        frequency_cap: cap.map(|c| c.to_string()),
    }))
}

/// Change the settings: the frequency cap of launches that name none. Campaigns launched
/// before keep theirs.
#[utoipa::path(
    put, path = "/v1/settings", tag = "consent",
    request_body = SettingsBody,
    responses(
        (status = 200, body = Settings),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn put_settings(
    State(state): State<AppState>,
    caller: Can<Launch>,
    Body(body): Body<SettingsBody>,
) -> ApiResult<axum::Json<Settings>> {
    let cap = state
        .control
        .set_default_cap(&body.frequency_cap, caller.name())
        .await?;
    Ok(axum::Json(Settings {
        frequency_cap: cap.map(|c| c.to_string()),
    }))
}

/// A user's preferences: the categories and channels they opted out of, with when and how.
/// Open to the user's own token, as the inbox is.
#[utoipa::path(
    get, path = "/v1/users/{id}/preferences", tag = "consent",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id")),
    responses(
        (status = 200, body = Preferences),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_preferences(
    State(state): State<AppState>,
    UserScope(user): UserScope,
) -> ApiResult<axum::Json<Preferences>> {
    let opt_outs = state.control.preferences(user).await?;
    Ok(axum::Json(Preferences {
        user_id: user,
        opt_outs: opt_outs.into_iter().map(OptOutEntry::from).collect(),
    }))
}

/// Replace a user's opt-outs: those listed are kept (or added, with source `api`), the
/// others removed. Open to the user's own token (a key needs `operate`). `transactional`
/// cannot be opted out of.
#[utoipa::path(
    put, path = "/v1/users/{id}/preferences", tag = "consent",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id")),
    request_body = PreferencesBody,
    responses(
        (status = 200, body = Preferences),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such user, or a category nobody declared", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn put_preferences(
    State(state): State<AppState>,
    UserScope(user): UserScope,
    Body(body): Body<PreferencesBody>,
) -> ApiResult<axum::Json<Preferences>> {
    let wanted: Vec<(String, String)> = body
        .opt_outs
        .into_iter()
        .map(|o| (o.category, o.channel))
        .collect();
    let opt_outs = state
        .control
        .set_preferences(user, &wanted, OptOutSource::Api, "api")
        .await?;
    Ok(axum::Json(Preferences {
        user_id: user,
        opt_outs: opt_outs.into_iter().map(OptOutEntry::from).collect(),
    }))
}

/// A page of the suppression list (the addresses no campaign sends to), newest first.
#[utoipa::path(
    get, path = "/v1/suppressions", tag = "consent",
    params(SuppressionQuery),
    responses(
        (status = 200, body = SuppressionList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_suppressions(
    State(state): State<AppState>,
    _: Can<Read>,
    Query(q): Query<SuppressionQuery>,
) -> ApiResult<axum::Json<SuppressionList>> {
    if let Some(limit) = q.limit
        && !(1..=1_000).contains(&limit)
    {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let (items, total) = state
        .control
        .suppressions(
            q.channel.as_deref(),
            q.search.as_deref(),
            None,
            q.limit.unwrap_or(50),
        )
        .await?;
    Ok(axum::Json(SuppressionList {
        items: items.into_iter().map(Into::into).collect(),
        total,
    }))
}

/// Suppress addresses: no page sends to them from now on, whatever the category. One that
/// is not an address refuses the whole request, named by its place (`addresses[3]`).
#[utoipa::path(
    post, path = "/v1/suppressions", tag = "consent",
    request_body = SuppressBody,
    responses(
        (status = 200, body = Suppressed),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn suppress(
    State(state): State<AppState>,
    caller: Can<Operate>,
    Body(body): Body<SuppressBody>,
) -> ApiResult<axum::Json<Suppressed>> {
    let entries: Vec<(String, Option<String>)> = body
        .addresses
        .into_iter()
        .map(|a| (a, body.note.clone()))
        .collect();
    let done = state
        .control
        .suppress(
            body.channel.as_deref().unwrap_or("email"),
            &entries,
            SuppressionReason::Operator,
            caller.name(),
        )
        .await?;
    Ok(axum::Json(Suppressed {
        read: done.read,
        added: done.added,
    }))
}

/// Opt many users out at once (a list from another sender or a CRM). All or nothing: a
/// wrong entry is named (`opt_outs[2].user_id`) and none is added. Opt-outs already there
/// keep their first time and source.
#[utoipa::path(
    post, path = "/v1/opt-outs", tag = "consent",
    request_body = OptOutsBody,
    responses(
        (status = 200, body = OptOutsAdded),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_opt_outs(
    State(state): State<AppState>,
    caller: Can<Operate>,
    Body(body): Body<OptOutsBody>,
) -> ApiResult<axum::Json<OptOutsAdded>> {
    let entries: Vec<OptOutLine> = body
        .opt_outs
        .into_iter()
        .enumerate()
        .map(|(i, o)| OptOutLine {
            place: Place::Index(i),
            user_id: o.user_id,
            category: o.category.unwrap_or_else(|| "marketing".into()),
            channel: o.channel.unwrap_or_else(|| "all".into()),
        })
        .collect();
    let done = state
        .control
        .add_opt_outs(&entries, OptOutSource::Api, caller.name())
        .await?;
    Ok(axum::Json(OptOutsAdded {
        read: done.read,
        added: done.added,
    }))
}

/// Take an address off a channel's suppression list.
#[utoipa::path(
    delete, path = "/v1/suppressions/{channel}/{address}", tag = "consent",
    params(
        ("channel" = String, Path, description = "`inbox`, `webhook` or `email`"),
        ("address" = String, Path, description = "The address (URL-encoded)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not on the list", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn unsuppress(
    State(state): State<AppState>,
    _: Can<Operate>,
    ChannelAddress(channel, address): ChannelAddress,
) -> ApiResult<StatusCode> {
    if state.control.unsuppress(&channel, &address).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "{address} is not suppressed on {channel}"
        )))
    }
}

/// `{channel}/{address}` from the path.
struct ChannelAddress(String, String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ChannelAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> ApiResult<Self> {
        Ok(Self(
            path_param(parts, "channel").await?,
            path_param(parts, "address").await?,
        ))
    }
}

/// The token from `/u/{token}`.
struct TokenPath(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TokenPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> ApiResult<Self> {
        Ok(Self(path_param(parts, "token").await?))
    }
}

/// The page of an unsubscribe link: what it unsubscribes from, and a button that does it.
/// Showing it changes nothing.
#[utoipa::path(
    get, path = "/u/{token}", tag = "consent",
    params(("token" = String, Path, description = "The token of the recipient's link")),
    responses(
        (status = 200, description = "The page, with its button", content_type = "text/html"),
        (status = 404, description = "Not a link Herald made", content_type = "text/html"),
        (status = 503, description = "The database is unreachable; try again", content_type = "text/html"),
    )
)]
async fn unsubscribe_page(State(state): State<AppState>, TokenPath(token): TokenPath) -> Response {
    match state.control.unsubscribe_link(&token).await {
        Ok(link) => page(
            StatusCode::OK,
            html! {
                h1 { "Unsubscribe" }
                p { "Stop receiving " b { (link.category) } " messages by " (channel_words(link.channel)) "?" }
                // The page's own address: right behind a proxy that serves under a prefix.
                form method="post" action="" {
                    button type="submit" { "Unsubscribe" }
                }
            },
        ),
        Err(e) => failure_page(e),
    }
}

/// Unsubscribe: opt the link's user out of its category on its channel. Idempotent; a
/// second `POST` answers the same. This is the `List-Unsubscribe-Post` target (RFC 8058):
/// any body is accepted and none is needed.
#[utoipa::path(
    post, path = "/u/{token}", tag = "consent",
    params(("token" = String, Path, description = "The token of the recipient's link")),
    responses(
        (status = 200, description = "Unsubscribed (now or before)", content_type = "text/html"),
        (status = 404, description = "Not a link Herald made", content_type = "text/html"),
        (status = 503, description = "The database is unreachable; try again", content_type = "text/html"),
    )
)]
async fn unsubscribe(State(state): State<AppState>, TokenPath(token): TokenPath) -> Response {
    match state.control.unsubscribe(&token).await {
        Ok(done) => page(
            StatusCode::OK,
            html! {
                h1 { "You are unsubscribed" }
                p {
                    "You will not receive " b { (done.link.category) } " messages by "
                    (channel_words(done.link.channel)) " any more."
                }
            },
        ),
        Err(e) => failure_page(e),
    }
}

fn channel_words(channel: herald_wire::Channel) -> &'static str {
    match channel {
        herald_wire::Channel::Inbox => "in-app message",
        herald_wire::Channel::Webhook => "notification",
        herald_wire::Channel::Email => "e-mail",
    }
}

fn failure_page(e: herald_control::ControlError) -> Response {
    use herald_control::Fault;
    let (status, message) = match e.fault() {
        Fault::NotFound | Fault::Invalid => (
            StatusCode::NOT_FOUND,
            "This unsubscribe link is not valid. It may have been cut short: open it from the message again.",
        ),
        _ => {
            tracing::warn!(error = %e, "unsubscribe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side; nothing was changed. Please try again in a moment.",
            )
        }
    };
    page(
        status,
        html! {
            h1 { "Unsubscribe" }
            p { (message) }
        },
    )
}

/// A page for recipients: plain, small, no script, no outside resources.
fn page(status: StatusCode, content: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "Unsubscribe" }
                style {
                    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}"
                    "button{font:inherit;padding:.5rem 1.25rem;border:0;border-radius:4px;background:#1f4f8f;color:#fff;cursor:pointer}"
                }
            }
            body { (content) }
        }
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        doc.into_string(),
    )
        .into_response()
}
