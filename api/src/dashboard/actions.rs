//! The operator's requests from the dashboard's forms: pause, resume, cancel, rate and
//! retry-failed, each recorded as the same request to `/v1` would be.

use super::*;
use pages::{show, timeline};

#[derive(Deserialize)]
pub(super) struct RequestForm {
    #[serde(default)]
    csrf: String,
    reason: Option<String>,
}

impl ChangeForm for RequestForm {
    const SCOPE: Scope = Scope::Operate;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Record an operator's request as `POST /v1/campaigns/{key}/<verb>` would, then show the
/// campaign again (with the API's refusal, if it refused).
async fn request(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
    request: Request,
    form: RequestForm,
) -> Result<Response, Refused> {
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    match state
        .control
        .request(key, request, reason, &op.actor.name)
        .await
    {
        Ok(recorded) => {
            let done = match recorded.applied {
                Some(_) => request.verb(),
                None if recorded.recovered => "recovered",
                None => "unconfirmed",
            };
            Ok(Redirect::to(&format!("/campaigns/{key}?done={done}")).into_response())
        }
        Err(e) => pages::show_refused(state, op, key, e).await,
    }
}

pub(super) async fn pause(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Checked(form): Checked<RequestForm>,
) -> Result<Response, Refused> {
    request(&state, &op, &key, Request::Pause, form).await
}

pub(super) async fn resume(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Checked(form): Checked<RequestForm>,
) -> Result<Response, Refused> {
    request(&state, &op, &key, Request::Resume, form).await
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Checked(form): Checked<RequestForm>,
) -> Result<Response, Refused> {
    request(&state, &op, &key, Request::Cancel, form).await
}

/// Cancelling cannot be undone: ask first.
pub(super) async fn cancel_page(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
) -> Result<Response, Refused> {
    let timeline = timeline(&state, &op, &key).await?;
    Ok(views::cancel_confirm(&op, &timeline.campaign).into_response())
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

impl ChangeForm for RateForm {
    const SCOPE: Scope = Scope::Operate;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn set_rate(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Checked(form): Checked<RateForm>,
) -> Result<Response, Refused> {
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
            Ok(Redirect::to(&format!("/campaigns/{key}?done={done}")).into_response())
        }
        Err(e) => {
            let notice = Notice::rate_refused(e.message);
            show(&state, &op, &key, Some(notice), e.status).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RetryForm {
    #[serde(default)]
    csrf: String,
}

impl ChangeForm for RetryForm {
    const SCOPE: Scope = Scope::Operate;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn retry_failed(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Checked(_): Checked<RetryForm>,
) -> Result<Response, Refused> {
    match state.control.retry_failed(&key, &op.actor.name).await {
        Ok(_) => Ok(Redirect::to(&format!("/campaigns/{key}?done=retry")).into_response()),
        Err(e) => pages::show_refused(&state, &op, &key, e).await,
    }
}

#[derive(Deserialize)]
pub(super) struct TestSendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    users: String,
}

impl ChangeForm for TestSendForm {
    const SCOPE: Scope = Scope::Launch;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Send the campaign to a few users now, as a test, as `POST /v1/test-sends` would.
pub(super) async fn test_send(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Checked(form): Checked<TestSendForm>,
) -> Result<Response, Refused> {
    use herald_control::preview::Subject;
    let users = match parse_user_list(&form.users) {
        Ok(users) => users,
        Err(message) => {
            let notice = Notice::refused(message);
            return show(&state, &op, &key, Some(notice), StatusCode::BAD_REQUEST).await;
        }
    };
    match state
        .control
        .test_send(Subject::Campaign(key.clone()), &users, &op.actor.name)
        .await
    {
        Ok(sent) => {
            let markup = views::test_results(&sent);
            pages::show_with(&state, &op, &key, None, StatusCode::OK, Some(markup)).await
        }
        Err(e) => {
            let e = ApiError::from(e);
            show(
                &state,
                &op,
                &key,
                Some(Notice::refused(e.message)),
                e.status,
            )
            .await
        }
    }
}
