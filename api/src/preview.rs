//! `POST /v1/preview` and `POST /v1/test-sends`: a campaign rendered for users, and sent to
//! a few of them as a test, before (or after) it is launched. Neither touches the ledger.

use axum::extract::State;
use chrono::Utc;
use herald_control::preview::Subject;
use herald_wire::CampaignKey;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::{Can, Launch, Read},
    error::{ApiError, ApiResult, Body, ErrorBody},
    schema::{PreviewAnswer, TestSendAnswer, TestSendEntry, TryBody},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(preview))
        .routes(routes!(test_send))
}

fn subject(body: TryBody) -> ApiResult<(Subject, Vec<i64>)> {
    let subject = match (body.campaign, body.launch) {
        (Some(key), None) => Subject::Campaign(CampaignKey::parse(&key).map_err(|e| {
            let mut error = ApiError::invalid(e.0);
            error.field = Some("campaign".into());
            error
        })?),
        (None, Some(launch)) => {
            let request = launch.fields().check(Utc::now()).map_err(|e| {
                let e = herald_control::ControlError::from(e);
                let mut error = ApiError::from(e);
                error.field = error.field.map(|f| format!("launch.{f}"));
                error
            })?;
            Subject::Launch(Box::new(request))
        }
        _ => {
            return Err(ApiError::invalid(
                "give either campaign (a launched campaign's key) or launch (its fields)",
            ));
        }
    };
    Ok((subject, body.user_ids))
}

/// The content rendered for each user named (or three random recipients of the audience),
/// as their page would render it now, with the variables it reads and those each user
/// lacks. Writes nothing.
#[utoipa::path(
    post, path = "/v1/preview", tag = "campaigns",
    request_body = TryBody,
    responses(
        (status = 200, body = PreviewAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn preview(
    State(state): State<AppState>,
    _: Can<Read>,
    Body(body): Body<TryBody>,
) -> ApiResult<axum::Json<PreviewAnswer>> {
    let (subject, users) = subject(body)?;
    let items = state.control.preview(subject, &users).await?;
    Ok(axum::Json(PreviewAnswer {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Send the campaign now to up to 20 users through its channel, marked as a test: `[Test]`
/// before an e-mail's subject, `herald.message.test` as a webhook's type, delivery ids of
/// their own (`test_KEY_USER_N`); an inbox campaign's test is rendered, not delivered. Each
/// is kept in the test-send log with who asked; the campaign's ledger and counts are never
/// touched.
#[utoipa::path(
    post, path = "/v1/test-sends", tag = "campaigns",
    request_body = TryBody,
    responses(
        (status = 200, body = TestSendAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn test_send(
    State(state): State<AppState>,
    caller: Can<Launch>,
    Body(body): Body<TryBody>,
) -> ApiResult<axum::Json<TestSendAnswer>> {
    let (subject, users) = subject(body)?;
    let items = state
        .control
        .test_send(subject, &users, caller.name())
        .await?;
    Ok(axum::Json(TestSendAnswer {
        items: items
            .into_iter()
            .map(|t| TestSendEntry {
                user_id: t.user_id,
                outcome: t.outcome.to_owned(),
                error: t.error,
                delivery_id: t.delivery_id,
            })
            .collect(),
    }))
}
