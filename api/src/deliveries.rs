//! What the webhook and e-mail channels add: changing a campaign's rate while it runs, its
//! delivery report, and retrying its failed deliveries.

use axum::extract::State;
use herald_wire::Rate;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::{Can, Operate, Read},
    campaigns::KeyPath,
    error::{ApiError, ApiResult, Body, ErrorBody, Query},
    schema::{RateAnswer, RateBody, Report, ReportQuery, RetryAnswer},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_rate))
        .routes(routes!(report))
        .routes(routes!(retry_failed))
}

/// Change a campaign's speed limit while it runs; its next pages follow it within a second,
/// whichever workers run them.
#[utoipa::path(
    post, path = "/v1/campaigns/{key}/rate", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    request_body = RateBody,
    responses(
        (status = 200, body = RateAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The campaign has finished", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_rate(
    State(state): State<AppState>,
    caller: Can<Operate>,
    KeyPath(key): KeyPath,
    Body(body): Body<RateBody>,
) -> ApiResult<axum::Json<RateAnswer>> {
    let rate = body.rate.map(Rate::new).transpose()?;
    let changed = state.control.set_rate(&key, rate, caller.name()).await?;
    Ok(axum::Json(RateAnswer {
        number: changed.seq,
        before: changed.before,
        confirmed: changed.applied,
        campaign: state.control.campaign(&key).await?.into(),
    }))
}

/// A campaign's deliveries: counts by outcome and error class, the most common errors, and
/// the first of its failed recipients with their last error.
#[utoipa::path(
    get, path = "/v1/campaigns/{key}/report", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key"), ReportQuery),
    responses(
        (status = 200, body = Report),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn report(
    State(state): State<AppState>,
    _: Can<Read>,
    KeyPath(key): KeyPath,
    Query(q): Query<ReportQuery>,
) -> ApiResult<axum::Json<Report>> {
    let failed = q.failed.unwrap_or(20);
    if !(0..=1_000).contains(&failed) {
        return Err(ApiError::invalid(format!(
            "failed must be 0–1000, got {failed}"
        )));
    }
    Ok(axum::Json(state.control.report(&key, failed).await?.into()))
}

/// Send again to a completed webhook or e-mail campaign's failed recipients, with the same
/// idempotency ids: it goes back to in progress and completes again.
#[utoipa::path(
    post, path = "/v1/campaigns/{key}/retry-failed", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    responses(
        (status = 202, body = RetryAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The campaign has not completed", body = ErrorBody),
        (status = 422, description = "Nothing to retry", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn retry_failed(
    State(state): State<AppState>,
    caller: Can<Operate>,
    KeyPath(key): KeyPath,
) -> ApiResult<(axum::http::StatusCode, axum::Json<RetryAnswer>)> {
    let retried = state.control.retry_failed(&key, caller.name()).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(RetryAnswer {
            retrying: retried.failed,
            campaign: state.control.campaign(&key).await?.into(),
        }),
    ))
}
