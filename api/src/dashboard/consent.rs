//! The consent page: the categories campaigns are launched in (and declaring one), and the
//! suppression list, searched, imported from CSV and pruned, each through the same use
//! cases as `/v1/categories` and `/v1/suppressions`.

use herald_control::consent::SuppressionReason;

use super::*;
use crate::schema::{CategoryEntry, SuppressionEntry};

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct ConsentQuery {
    channel: String,
    search: String,
}

/// What the page shows, and the message of the form just sent.
pub(super) struct ConsentView {
    pub categories: Vec<CategoryEntry>,
    pub suppressions: Vec<SuppressionEntry>,
    pub total: i64,
    pub channel: String,
    pub search: String,
    pub notice: Option<Notice>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    op: Operator,
    Query(q): Query<ConsentQuery>,
) -> Result<Response, Refused> {
    show(&state, &op, &q.channel, &q.search, None, StatusCode::OK).await
}

async fn show(
    state: &AppState,
    op: &Operator,
    channel: &str,
    search: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, Refused> {
    let categories = state
        .control
        .categories()
        .await
        .map_err(|e| Refused::unreachable(op, e.into()))?;
    let channel_filter = Some(channel.trim()).filter(|c| !c.is_empty());
    let search_filter = Some(search.trim()).filter(|s| !s.is_empty());
    let (suppressions, total) = match state
        .control
        .suppressions(channel_filter, search_filter, None, 100)
        .await
    {
        Ok(found) => found,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::SERVICE_UNAVAILABLE {
                return Err(Refused::unreachable(op, e));
            }
            return Err(Refused::page(e.status, op, "No such channel", &e.message));
        }
    };
    let view = ConsentView {
        categories: categories.into_iter().map(Into::into).collect(),
        suppressions: suppressions.into_iter().map(Into::into).collect(),
        total,
        channel: channel.trim().to_owned(),
        search: search.trim().to_owned(),
        notice,
    };
    let mut page = views::consent_page(op, &view).into_response();
    *page.status_mut() = status;
    Ok(page)
}

/// The page again, saying why the form was refused.
async fn refused(
    state: &AppState,
    op: &Operator,
    e: herald_control::ControlError,
) -> Result<Response, Refused> {
    let e = ApiError::from(e);
    show(
        state,
        op,
        "",
        "",
        Some(Notice::refused(e.message)),
        e.status,
    )
    .await
}

/// The page again, saying what the form did. (Rendered, not redirected to: a notice taken
/// from the address could be made to say anything.)
async fn done(state: &AppState, op: &Operator, message: String) -> Result<Response, Refused> {
    let notice = Notice {
        text: message,
        error: false,
        at_rate: false,
    };
    show(state, op, "", "", Some(notice), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct CategoryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

impl ChangeForm for CategoryForm {
    const SCOPE: Scope = Scope::Launch;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn add_category(
    State(state): State<AppState>,
    op: Operator,
    Checked(form): Checked<CategoryForm>,
) -> Result<Response, Refused> {
    let name = form.name.trim();
    let description = Some(form.description.trim()).filter(|d| !d.is_empty());
    match state
        .control
        .add_category(name, description, &op.actor.name)
        .await
    {
        Ok(true) => done(&state, &op, format!("Category {name} declared.")).await,
        Ok(false) => done(&state, &op, format!("Category {name} existed already.")).await,
        Err(e) => refused(&state, &op, e).await,
    }
}

#[derive(Deserialize)]
pub(super) struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    addresses: String,
}

impl ChangeForm for ImportForm {
    const SCOPE: Scope = Scope::Operate;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Suppress the addresses pasted or loaded into the form: CSV, one a line.
pub(super) async fn import(
    State(state): State<AppState>,
    op: Operator,
    Checked(form): Checked<ImportForm>,
) -> Result<Response, Refused> {
    let channel = Some(form.channel.trim())
        .filter(|c| !c.is_empty())
        .unwrap_or("email");
    match state
        .control
        .import_suppressions(channel, &form.addresses, &op.actor.name)
        .await
    {
        Ok(done_) => {
            done(
                &state,
                &op,
                format!(
                    "{} addresses read, {} newly suppressed on {channel}.",
                    done_.read, done_.added
                ),
            )
            .await
        }
        Err(e) => refused(&state, &op, e).await,
    }
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    address: String,
}

impl ChangeForm for RemoveForm {
    const SCOPE: Scope = Scope::Operate;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn remove(
    State(state): State<AppState>,
    op: Operator,
    Checked(form): Checked<RemoveForm>,
) -> Result<Response, Refused> {
    match state.control.unsuppress(&form.channel, &form.address).await {
        Ok(true) => {
            done(
                &state,
                &op,
                format!(
                    "{} is no longer suppressed on {}.",
                    form.address, form.channel
                ),
            )
            .await
        }
        Ok(false) => {
            done(
                &state,
                &op,
                format!("{} was not suppressed on {}.", form.address, form.channel),
            )
            .await
        }
        Err(e) => refused(&state, &op, e).await,
    }
}

/// The reasons an entry can have, for the view's legend.
pub(super) const REASONS: [SuppressionReason; 3] = [
    SuppressionReason::Bounce,
    SuppressionReason::Import,
    SuppressionReason::Operator,
];
