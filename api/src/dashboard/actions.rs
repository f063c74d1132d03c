//! The operator's requests from the dashboard's forms: pause, resume, cancel, rate and
//! retry-failed, each recorded as the same request to `/v1` would be.

use super::*;
use herald_wire::keys::Scope;

#[derive(Deserialize)]
pub(super) struct RequestForm {
    #[serde(default)]
    csrf: String,
    reason: Option<String>,
}

/// Record an operator's request as `POST /v1/campaigns/{key}/<verb>` would, then show the
/// campaign again (with the API's refusal, if it refused).
pub(super) async fn request(
    state: AppState,
    op: Operator,
    headers: HeaderMap,
    raw: String,
    request: Request,
    form: RequestForm,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf, Scope::Operate) {
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
    match state
        .control
        .request(&key, request, reason, &op.actor.name)
        .await
    {
        Ok(recorded) => {
            let done = match recorded.applied {
                Some(_) => request.verb(),
                None if recorded.recovered => "recovered",
                None => "unconfirmed",
            };
            Redirect::to(&format!("/campaigns/{key}?done={done}")).into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status;
            show(&state, &op, &raw, Some(Notice::refused(e.message)), status).await
        }
    }
}

pub(super) async fn pause(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    request(state, op, headers, raw, Request::Pause, form).await
}

pub(super) async fn resume(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    request(state, op, headers, raw, Request::Resume, form).await
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    request(state, op, headers, raw, Request::Cancel, form).await
}

/// Cancelling cannot be undone: ask first.
pub(super) async fn cancel_page(
    State(state): State<AppState>,
    op: Operator,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Response {
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match load(&state, &op, &key).await {
        Ok((timeline, _)) => views::cancel_confirm(&op, &timeline.campaign).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(super) struct RateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rate: String,
    /// Set by the "no limit" button.
    unlimited: Option<String>,
}

pub(super) async fn set_rate(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<RateForm>,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf, Scope::Operate) {
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
            .set_rate(&key, rate, &op.actor.name)
            .await
            .map_err(ApiError::from),
        Err(message) => Err(ApiError::invalid(message)),
    };
    match outcome {
        Ok(changed) => {
            let done = if changed.applied {
                "rate"
            } else {
                "unconfirmed"
            };
            Redirect::to(&format!("/campaigns/{key}?done={done}")).into_response()
        }
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

pub(super) async fn retry_failed(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf, Scope::Operate) {
        return refused;
    }
    let key = match key_of(&raw, &op) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match state.control.retry_failed(&key, &op.actor.name).await {
        Ok(_) => Redirect::to(&format!("/campaigns/{key}?done=retry")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status;
            show(&state, &op, &raw, Some(Notice::refused(e.message)), status).await
        }
    }
}
