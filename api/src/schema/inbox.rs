//! A user's inbox as the API pages it.

use chrono::{DateTime, Utc};
use herald_control::InboxItem;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Filters for a user's inbox.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// `unread`, `read` or `all` (the default).
    pub status: Option<String>,
    /// Items per page, 1–100 (20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next` of the page before.
    pub after: Option<String>,
}

/// A message in a user's inbox.
#[derive(Serialize, ToSchema)]
pub struct InboxEntry {
    /// The campaign's key: mark it read with `POST …/inbox/{key}/read`.
    pub key: String,
    pub title: String,
    pub body: String,
    pub delivered_at: Option<DateTime<Utc>>,
    /// `null` while unread.
    pub read_at: Option<DateTime<Utc>>,
    /// Present only when the campaign's title or body could not be rendered for this user
    /// (they are then empty): why, as `field: reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_error: Option<String>,
    /// The link that opts this user out of the campaign's category in the inbox (a `POST`
    /// to it, or the page a `GET` shows); for an app's "stop these" button.
    pub unsubscribe_url: Option<String>,
}

impl From<InboxItem> for InboxEntry {
    fn from(i: InboxItem) -> Self {
        Self {
            key: i.key.to_string(),
            title: i.title,
            body: i.body,
            delivered_at: i.sent_at,
            read_at: i.read_at,
            render_error: i.render_error,
            unsubscribe_url: i.unsubscribe_url,
        }
    }
}

/// A page of a user's inbox, newest campaign first, with the unread badge.
#[derive(Serialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxEntry>,
    /// Every unread message the user has, counted as the list counts them.
    pub unread_count: i64,
    /// Pass as `after` for the next page; `null` on the last.
    pub next: Option<String>,
}

/// The unread badge.
#[derive(Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread_count: i64,
}

/// What marking read changed.
#[derive(Serialize, ToSchema)]
pub struct Marked {
    /// Items this call marked read: 0 when they already were.
    pub changed: i64,
    /// The user's unread count afterwards.
    pub unread_count: i64,
}
