//! `/v1/users`: creating, replacing and reading users, for services. Each user is checked
//! field by field (herald_wire::users); an error names its field.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::{Can, Launch, Read, parse_user},
    error::{ApiResult, Body, ErrorBody, path_param},
    schema::{User, UserBatch, UserBody, UsersWritten},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_user, get_user))
        .merge(OpenApiRouter::new().routes(routes!(put_users)).layer(
            axum::extract::DefaultBodyLimit::max(crate::BATCH_BODY_LIMIT),
        ))
}

/// A user id from the path.
pub struct IdPath(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdPath {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> ApiResult<Self> {
        Ok(Self(parse_user(&path_param(parts, "id").await?)?))
    }
}

/// Create or replace a user.
///
/// Every field not given is cleared (`segments` emptied, `attrs` replaced whole). An
/// attribute new to Herald takes the type its value has (a string in RFC 3339 is a time);
/// after that, every user's value of it must have that type.
#[utoipa::path(
    put, path = "/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id")),
    request_body = UserBody,
    responses(
        (status = 200, description = "Replaced", body = User),
        (status = 201, description = "Created", body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn put_user(
    State(state): State<AppState>,
    _: Can<Launch>,
    IdPath(id): IdPath,
    Body(body): Body<serde_json::Value>,
) -> ApiResult<Response> {
    let (user, created) = state.control.put_user(id, &body).await?;
    let user = User::from(user);
    if created {
        let location = format!("/v1/users/{id}");
        return Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            axum::Json(user),
        )
            .into_response());
    }
    Ok(axum::Json(user).into_response())
}

/// A user as stored.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The user id")),
    responses(
        (status = 200, body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_user(
    State(state): State<AppState>,
    _: Can<Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.control.user(id).await?.into()))
}

/// Create or replace up to 1,000 users at once, each as `PUT /v1/users/{id}` would, in one
/// transaction: a user that cannot be stored (the error names it, `users[3].email`) stores
/// none of them.
#[utoipa::path(
    post, path = "/v1/users/batch", tag = "users",
    request_body = UserBatch,
    responses(
        (status = 200, body = UsersWritten),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn put_users(
    State(state): State<AppState>,
    _: Can<Launch>,
    Body(body): Body<UserBatch>,
) -> ApiResult<axum::Json<UsersWritten>> {
    let written = state.control.put_users(&body.users).await?;
    Ok(axum::Json(UsersWritten {
        inserted: written.inserted,
        updated: written.updated,
        unchanged: written.unchanged,
    }))
}
