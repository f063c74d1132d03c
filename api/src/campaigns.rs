//! `/v1/campaigns`: launching, reading, requests and the live event stream, for services.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use chrono::Utc;
use futures::{Stream, StreamExt};
use herald_control::{
    ControlError, Request,
    campaigns::{Shown, Watch},
    launch::LaunchRequest,
    page::{Cursor, Limit},
};
use herald_wire::{CampaignKey, CampaignStatus};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::{Can, Credential, Launch, Operate, Read},
    error::{ApiError, ApiResult, Body, ErrorBody, OptionalBody, Query, path_param},
    schema::{
        Campaign, CampaignList, CampaignListQuery, DryRun, EventsQuery, LaunchBody, RequestAnswer,
        RequestBody, StreamEvent, Timeline,
    },
    streams::{self, StreamPlace},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(launch, list))
        .routes(routes!(show))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(cancel))
        .routes(routes!(events))
        .routes(routes!(dry_run))
        .routes(routes!(timeline))
        .routes(routes!(list_events))
}

/// The campaign key of the path.
pub struct KeyPath(pub CampaignKey);

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let raw = path_param(parts, "key").await?;
        Ok(Self(CampaignKey::parse(&raw)?))
    }
}

/// Launch a campaign.
///
/// The key is the idempotency key: the same key with the same campaign answers 200 with the
/// campaign as it stands and starts nothing; a different campaign under a key in use is 409.
#[utoipa::path(
    post, path = "/v1/campaigns", tag = "campaigns",
    params(("Idempotency-Key" = Option<String>, Header, description = "The campaign key, when the body has none")),
    request_body = LaunchBody,
    responses(
        (status = 201, description = "Launched", body = Campaign, headers(("Location" = String, description = "The campaign"))),
        (status = 200, description = "Already launched with this spec: nothing new started", body = Campaign),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The key is used by a different campaign", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "Refused at its field: an empty audience, an unknown saved audience, a channel without its settings", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn launch(
    State(state): State<AppState>,
    caller: Can<Launch>,
    headers: HeaderMap,
    Body(body): Body<LaunchBody>,
) -> ApiResult<Response> {
    let request = launch_request(&headers, body)?;
    let launched = state.control.launch(request, caller.name()).await?;
    let campaign: Campaign = state.control.campaign(&launched.key).await?.into();
    if launched.already.is_some() {
        return Ok((StatusCode::OK, axum::Json(campaign)).into_response());
    }
    let location = format!("/v1/campaigns/{}", launched.key);
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("keys are URL-safe"),
        )],
        axum::Json(campaign),
    )
        .into_response())
}

/// Count a launch's audience without launching: the body is checked as a launch checks it
/// (an empty audience is refused the same way), and nothing is written.
#[utoipa::path(
    post, path = "/v1/dry-run", tag = "campaigns",
    request_body = LaunchBody,
    responses(
        (status = 200, description = "What the launch would reach now", body = DryRun),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "Refused at its field: an empty audience, an unknown saved audience, a channel without its settings", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn dry_run(
    State(state): State<AppState>,
    _: Can<Launch>,
    headers: HeaderMap,
    Body(body): Body<LaunchBody>,
) -> ApiResult<axum::Json<DryRun>> {
    let request = launch_request(&headers, body)?;
    Ok(axum::Json(state.control.dry_run(request).await?.into()))
}

/// The launch in a request: the body's fields, and its key or the `Idempotency-Key` header.
pub(crate) fn launch_request(headers: &HeaderMap, body: LaunchBody) -> ApiResult<LaunchRequest> {
    let header_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("the Idempotency-Key header is not text"))?
                .to_owned(),
        ),
    };
    let mut fields = body.fields();
    fields.key = match (fields.key, header_key) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid(format!(
                "the body's key {a:?} and the Idempotency-Key header {b:?} differ; send one"
            )));
        }
        (key, header) => key.or(header),
    };
    Ok(fields.check(Utc::now()).map_err(ControlError::from)?)
}

/// List campaigns, newest first.
#[utoipa::path(
    get, path = "/v1/campaigns", tag = "campaigns",
    params(CampaignListQuery),
    responses(
        (status = 200, body = CampaignList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    _: Can<Read>,
    Query(q): Query<CampaignListQuery>,
) -> ApiResult<axum::Json<CampaignList>> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let limit = q.limit.map(Limit::new).transpose()?.unwrap_or_default();
    let after = q.after.as_deref().map(Cursor::parse).transpose()?;
    let page = state.control.campaigns(status, limit, after).await?;
    Ok(axum::Json(CampaignList {
        items: page.items.into_iter().map(Campaign::from).collect(),
        next: page.next.map(|c| c.to_string()),
    }))
}

pub(crate) fn parse_status(s: &str) -> ApiResult<CampaignStatus> {
    CampaignStatus::ALL
        .into_iter()
        .find(|st| st.name() == s || st.code().to_string() == s)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "status {s:?} is not one of not_started, in_progress, paused, completed, cancelled, failed (or 0–5)"
            ))
        })
}

/// A campaign: status, counters and times.
#[utoipa::path(
    get, path = "/v1/campaigns/{key}", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    responses(
        (status = 200, body = Campaign),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn show(
    State(state): State<AppState>,
    _: Can<Read>,
    KeyPath(key): KeyPath,
) -> ApiResult<axum::Json<Campaign>> {
    Ok(axum::Json(state.control.campaign(&key).await?.into()))
}

/// A campaign's timeline: every status it has had (each pause and resume) and every request
/// made of it (launch, pause, resume, cancel, retry-failed, rate), oldest first, with the
/// reasons given and who made each.
#[utoipa::path(
    get, path = "/v1/campaigns/{key}/timeline", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    responses(
        (status = 200, body = Timeline),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn timeline(
    State(state): State<AppState>,
    _: Can<Read>,
    KeyPath(key): KeyPath,
) -> ApiResult<axum::Json<Timeline>> {
    Ok(axum::Json(state.control.history(&key).await?.into()))
}

async fn request(
    state: AppState,
    key: CampaignKey,
    request: Request,
    body: RequestBody,
    by: &str,
) -> ApiResult<axum::Json<RequestAnswer>> {
    let recorded = state
        .control
        .request(&key, request, body.reason.as_deref(), by)
        .await?;
    Ok(axum::Json(RequestAnswer {
        request: request.verb().to_owned(),
        number: recorded.requested.seq,
        repeated: recorded.repeated,
        confirmed: recorded.applied.is_some(),
        campaign: state.control.campaign(&key).await?.into(),
    }))
}

/// Pause a campaign before its next page. Once this answers, no new page starts. With
/// `confirmed: true` the workflow has taken the pause: the pages that were in flight (at
/// most one per lane) have returned and the status is written. Pausing a paused campaign
/// repeats the request.
#[utoipa::path(
    post, path = "/v1/campaigns/{key}/pause", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    request_body(content = Option<RequestBody>, description = "Optional: why"),
    responses(
        (status = 200, body = RequestAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The campaign has finished, failed or is being cancelled", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, description = "A service is down; the request may have been recorded: send it again", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn pause(
    State(state): State<AppState>,
    caller: Can<Operate>,
    KeyPath(key): KeyPath,
    OptionalBody(body): OptionalBody<RequestBody>,
) -> ApiResult<axum::Json<RequestAnswer>> {
    request(state, key, Request::Pause, body, caller.name()).await
}

/// Resume a paused or failed campaign from the next unprocessed recipient.
#[utoipa::path(
    post, path = "/v1/campaigns/{key}/resume", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    request_body(content = Option<RequestBody>, description = "Optional: why"),
    responses(
        (status = 200, body = RequestAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The campaign has finished or is being cancelled", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn resume(
    State(state): State<AppState>,
    caller: Can<Operate>,
    KeyPath(key): KeyPath,
    OptionalBody(body): OptionalBody<RequestBody>,
) -> ApiResult<axum::Json<RequestAnswer>> {
    request(state, key, Request::Resume, body, caller.name()).await
}

/// Cancel a campaign for good (status 4).
#[utoipa::path(
    post, path = "/v1/campaigns/{key}/cancel", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    request_body(content = Option<RequestBody>, description = "Optional: why"),
    responses(
        (status = 200, body = RequestAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The campaign has finished", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn cancel(
    State(state): State<AppState>,
    caller: Can<Operate>,
    KeyPath(key): KeyPath,
    OptionalBody(body): OptionalBody<RequestBody>,
) -> ApiResult<axum::Json<RequestAnswer>> {
    request(state, key, Request::Cancel, body, caller.name()).await
}

/// Follow a campaign live (Server-Sent Events).
///
/// Each `progress` event's data is the campaign (the JSON of `GET /v1/campaigns/{key}`): one
/// at once, one at every status change, and one at most every 500 ms while its counters
/// move. When it completes or is cancelled, a last `progress` event is followed by an `end`
/// event and the stream closes. A failed campaign's stream stays open: it may be resumed.
/// Every stream of one campaign shares one read of it per look. At most
/// `HERALD_API_MAX_STREAMS` streams (this one and the list's) are open at once: one more is
/// answered 503 `too_many_streams`; and at most `HERALD_API_MAX_STREAMS_PER_KEY` for one key
/// (its dashboard sessions included): one more is 429. A stream ends within seconds of its
/// key being revoked or its session ended.
#[utoipa::path(
    get, path = "/v1/campaigns/{key}/events", tag = "campaigns",
    params(("key" = String, Path, description = "The campaign key")),
    responses(
        (status = 200, description = "An event stream of `progress` events, then `end`", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "This key holds as many event streams as it may", body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn events(
    State(state): State<AppState>,
    caller: Can<Read>,
    KeyPath(key): KeyPath,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let place = state.streams.place(caller.name())?;
    let watch = state.control.watch(&key).await?;
    Ok(while_allowed(
        state,
        caller.credential(),
        place,
        progress(watch),
    ))
}

/// An event stream that ends when the server starts shutting down or when what it was opened
/// with no longer opens the API (the key revoked, the session ended), with a keep-alive
/// comment every 15 s. It holds its `place` among the streams until it closes.
fn while_allowed<S>(
    state: AppState,
    credential: Credential,
    place: StreamPlace,
    events: S,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<S>>
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut shutdown = state.shutdown.clone();
    let ended = async move {
        let _place = place;
        let revoked = async {
            loop {
                tokio::time::sleep(streams::RECHECK_EVERY).await;
                if !credential.still_good(&state).await {
                    return;
                }
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            () = revoked => {}
        }
    };
    Sse::new(events.take_until(Box::pin(ended)))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The events of one watch: a view whenever it differs from the last one sent, and `end`
/// after the last.
fn progress(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    let follow = Follow {
        watch,
        last: None,
        ended: false,
    };
    futures::stream::unfold(follow, |mut f| async move {
        if f.ended {
            return None;
        }
        let events = f.step().await;
        Some((events, f))
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok)))
}

struct Follow {
    watch: Watch,
    /// What the last event showed.
    last: Option<Shown>,
    ended: bool,
}

impl Follow {
    /// The next events: waits until the campaign shows something new.
    async fn step(&mut self) -> Vec<Event> {
        loop {
            let view = match self.watch.next().await {
                Ok(view) => view,
                Err(e) => {
                    // The database went away mid-stream: say so and end; the client
                    // reconnects when it likes.
                    let e = ApiError::from(e);
                    self.ended = true;
                    let data = serde_json::json!({"error": {"code": e.code, "message": e.message}});
                    return vec![Event::default().event("error").data(data.to_string())];
                }
            };
            let shown = Shown::of(&view);
            let finished = view.status.is_terminal();
            if self.last == Some(shown) && !finished {
                continue;
            }
            self.last = Some(shown);
            let campaign = Campaign::from(view);
            let mut events = vec![progress_event(&campaign)];
            if finished {
                self.ended = true;
                events.push(Event::default().event("end").data(campaign.status_name));
            }
            return events;
        }
    }
}

/// A `progress` event: the campaign, as `GET /v1/campaigns/{key}` shows it.
fn progress_event(campaign: &Campaign) -> Event {
    Event::default()
        .event("progress")
        .json_data(campaign)
        .expect("a campaign serializes")
}

/// Follow the campaign list live (Server-Sent Events).
///
/// A `progress` event for each of the newest 100 campaigns (with `status`, only those; with
/// `after`, the 100 after that cursor) at once, then one for each whenever its status,
/// request or counters change, looked at every second. Each event's data is the campaign, as
/// `GET /v1/campaigns/{key}` shows it. Launched campaigns appear as they come; one that
/// leaves the followed set (its status no longer matches, or newer campaigns pushed it out)
/// gets one last event as it stands. The stream stays open. It counts against
/// `HERALD_API_MAX_STREAMS` and `HERALD_API_MAX_STREAMS_PER_KEY`, and ends with its key or
/// session, as a campaign's stream does.
#[utoipa::path(
    get, path = "/v1/events", tag = "campaigns",
    params(EventsQuery),
    responses(
        (status = 200, description = "An event stream of `progress` events", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, description = "This key holds as many event streams as it may", body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_events(
    State(state): State<AppState>,
    caller: Can<Read>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let after = q.after.as_deref().map(Cursor::parse).transpose()?;
    let place = state.streams.place(caller.name())?;
    // The first look answers now, so a database that is down is a 503, not an empty stream.
    let watch = state.control.watch_list(status, after).await?;
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        let changed = watch.next().await;
        Some((changed, watch))
    })
    .flat_map(|changed| {
        let events = changed
            .into_iter()
            .map(|view| Ok(progress_event(&Campaign::from(view))));
        futures::stream::iter(events)
    });
    Ok(while_allowed(state, caller.credential(), place, stream))
}
