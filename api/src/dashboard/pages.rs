//! The pages that read: the campaign list, a campaign's page, and the fragments of it the
//! script swaps in as the campaign moves.

use super::*;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    /// Where this page starts: the `next` of the page before (none: the newest).
    after: Option<String>,
}

/// Campaigns, newest first, a hundred to a page.
pub(super) async fn list(
    State(state): State<AppState>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Response, Refused> {
    let filter = q.status.as_deref().filter(|s| !s.is_empty());
    let status = filter
        .map(parse_status)
        .transpose()
        .map_err(|e| Refused::page(StatusCode::BAD_REQUEST, &op, "No such status", &e.message))?;
    let after = q
        .after
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Cursor::parse)
        .transpose()
        .map_err(|e| Refused::page(StatusCode::BAD_REQUEST, &op, "No such page", &e.0))?;
    let limit = Limit::LARGEST;
    let page = state
        .control
        .campaigns(status, limit, after)
        .await
        .map_err(|e| Refused::unreachable(&op, e.into()))?;
    let items: Vec<Campaign> = page.items.into_iter().map(Campaign::from).collect();
    let pages = views::Pages {
        after: after.map(|c| c.to_string()),
        next: page.next.map(|c| c.to_string()),
    };
    Ok(views::list(&op, status.map(|s| s.name()), &items, &pages).into_response())
}

/// A campaign with its timeline.
pub(super) async fn timeline(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
) -> Result<Timeline, Refused> {
    let history = state.control.history(key).await.map_err(|e| {
        let e = ApiError::from(e);
        if e.status == StatusCode::NOT_FOUND {
            Refused::page(StatusCode::NOT_FOUND, op, "No such campaign", &e.message)
        } else {
            Refused::unreachable(op, e)
        }
    })?;
    Ok(Timeline::from(history))
}

/// A campaign, its timeline and, for channels that can fail, its delivery report: what its
/// page shows.
async fn load(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
) -> Result<(Timeline, Option<Report>), Refused> {
    let timeline = timeline(state, op, key).await?;
    let campaign = &timeline.campaign;
    let report = if campaign.channel != "inbox" || campaign.failed > 0 {
        let report = state.control.report(key, 20).await;
        Some(
            report
                .map_err(|e| Refused::unreachable(op, e.into()))?
                .into(),
        )
    } else {
        None
    };
    Ok((timeline, report))
}

#[derive(Deserialize)]
pub(super) struct DetailQuery {
    done: Option<String>,
}

pub(super) async fn detail(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Query(q): Query<DetailQuery>,
) -> Result<Response, Refused> {
    let notice = q.done.as_deref().and_then(Notice::done);
    show(&state, &op, &key, notice, StatusCode::OK).await
}

/// A campaign's page, with a notice (what was just done, or why it was refused) and the
/// status to answer with.
pub(super) async fn show(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, Refused> {
    show_with(state, op, key, notice, status, None).await
}

/// The campaign's page saying why a request was refused, with the API's status for it.
pub(super) async fn show_refused(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
    e: impl Into<ApiError>,
) -> Result<Response, Refused> {
    let e = e.into();
    show(state, op, key, Some(Notice::refused(e.message)), e.status).await
}

/// [`show`], with a preview or a test send's results on the page.
pub(super) async fn show_with(
    state: &AppState,
    op: &Operator,
    key: &CampaignKey,
    notice: Option<Notice>,
    status: StatusCode,
    tried: Option<maud::Markup>,
) -> Result<Response, Refused> {
    let (timeline, report) = load(state, op, key).await?;
    let link = workflow_link(state, key);
    let mut page =
        views::detail(op, &timeline, report.as_ref(), notice, &link, tried).into_response();
    *page.status_mut() = status;
    Ok(page)
}

#[derive(Deserialize)]
pub(super) struct PreviewQuery {
    #[serde(default)]
    users: String,
}

/// A campaign's page with its content rendered for the users asked (or three random
/// recipients). Reads only.
pub(super) async fn preview(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, Refused> {
    use herald_control::preview::Subject;
    let users = match parse_user_list(&q.users) {
        Ok(users) => users,
        Err(message) => {
            let notice = Notice::refused(message);
            return show(&state, &op, &key, Some(notice), StatusCode::BAD_REQUEST).await;
        }
    };
    match state
        .control
        .preview(Subject::Campaign(key.clone()), &users)
        .await
    {
        Ok(shown) => {
            let markup = views::renderings(&shown);
            show_with(&state, &op, &key, None, StatusCode::OK, Some(markup)).await
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

fn workflow_link(state: &AppState, key: &CampaignKey) -> String {
    format!(
        "{}/namespaces/{}/workflows/{}",
        state.temporal_ui,
        encode(&state.control.config().temporal_namespace),
        encode(&herald_wire::names::workflow_id(key))
    )
}

/// One row of the list, for the script to add a campaign that appeared.
pub(super) async fn row(
    State(state): State<AppState>,
    _op: Operator,
    KeyPath(key): KeyPath,
) -> Result<Response, ApiError> {
    let view = state.control.campaign(&key).await?;
    Ok(views::row(&Campaign::from(view)).into_response())
}

/// The parts of a campaign's page that change with its status, for the script to swap in.
pub(super) async fn panel(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
) -> Result<Response, ApiError> {
    let history = state.control.history(&key).await?;
    Ok(views::panel(&op, &Timeline::from(history)).into_response())
}

/// The failure report, for the script to refresh as failures come in.
pub(super) async fn failures(
    State(state): State<AppState>,
    op: Operator,
    KeyPath(key): KeyPath,
) -> Result<Response, Refused> {
    Ok(match load(&state, &op, &key).await? {
        (_, Some(report)) => views::report(&op, &report).into_response(),
        (_, None) => StatusCode::NO_CONTENT.into_response(),
    })
}
