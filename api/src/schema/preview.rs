//! The JSON of previews and test sends.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::LaunchBody;

/// What to preview or test-send: a launched campaign by key, or a launch not made.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryBody {
    /// A launched campaign's key (or give `launch`).
    #[schema(example = "spring-sale")]
    pub campaign: Option<String>,
    /// The fields of a launch, as `POST /v1/campaigns` takes them (or give `campaign`).
    pub launch: Option<LaunchBody>,
    /// The users: up to 20. A preview without them shows three random recipients of the
    /// audience; a test send needs them.
    #[serde(default)]
    pub user_ids: Vec<i64>,
}

/// One user's rendering.
#[derive(Serialize, ToSchema)]
pub struct RenderingEntry {
    pub user_id: i64,
    pub title: String,
    pub body: String,
    /// An e-mail's own subject, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// An e-mail's HTML part, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Why it cannot be rendered for this user (they would fail with class `render`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The variables the templates read (`user.name`, `user.attrs.plan`).
    pub variables: Vec<String>,
    /// Of those, the ones this user has no value for.
    pub missing: Vec<String>,
}

impl From<herald_control::preview::Rendering> for RenderingEntry {
    fn from(r: herald_control::preview::Rendering) -> Self {
        Self {
            user_id: r.user_id,
            title: r.title,
            body: r.body,
            subject: r.subject,
            html: r.html,
            error: r.error,
            variables: r.variables,
            missing: r.missing,
        }
    }
}

/// A preview: the content rendered for each user.
#[derive(Serialize, ToSchema)]
pub struct PreviewAnswer {
    pub items: Vec<RenderingEntry>,
}

/// What a test send did for one user.
#[derive(Serialize, ToSchema)]
pub struct TestSendEntry {
    pub user_id: i64,
    /// `sent`, `failed`, `render` (not sent: the content cannot be rendered for them) or
    /// `shown` (an inbox campaign: a test puts nothing in an inbox).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The id the receiver saw (`test_KEY_USER_N`), never the campaign's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// A test send, user by user.
#[derive(Serialize, ToSchema)]
pub struct TestSendAnswer {
    pub items: Vec<TestSendEntry>,
}
