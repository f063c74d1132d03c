//! The consent routes' JSON: categories, a user's preferences, the suppression list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A campaign category.
#[derive(Serialize, ToSchema)]
pub struct CategoryEntry {
    #[schema(example = "product-news")]
    pub name: String,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Users opted out of it, on one channel or more.
    pub opted_out: i64,
}

impl From<herald_control::consent::CategoryView> for CategoryEntry {
    fn from(c: herald_control::consent::CategoryView) -> Self {
        Self {
            name: c.name,
            description: c.description,
            created_by: c.created_by,
            created_at: c.created_at,
            opted_out: c.opted_out,
        }
    }
}

/// Every category.
#[derive(Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<CategoryEntry>,
}

/// A category to declare.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    /// 1–40 characters of `a-z 0-9 _ -`.
    #[schema(
        example = "product-news",
        min_length = 1,
        max_length = 40,
        pattern = "^[a-z0-9][a-z0-9_-]*$"
    )]
    pub name: String,
    #[schema(max_length = 200)]
    pub description: Option<String>,
}

/// Settings every process reads alike.
#[derive(Serialize, ToSchema)]
pub struct Settings {
    /// The frequency cap of launches that name none; `null`: they are not capped.
    #[schema(example = "2/24h")]
    pub frequency_cap: Option<String>,
}

/// Settings to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// The frequency cap of launches that name none, `2/24h` (1–20 campaigns per 1 minute
    /// to 30 days), or `none`. Campaigns launched before keep theirs.
    #[schema(example = "2/24h")]
    pub frequency_cap: String,
}

/// One opt-out of a user.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutEntry {
    #[schema(example = "marketing")]
    pub category: String,
    /// `inbox`, `webhook`, `email`, or `all`.
    #[schema(example = "email")]
    pub channel: String,
    /// How it was made: `one-click`, `api`, `operator` or `import` (ignored in a `PUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When it was made (ignored in a `PUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl From<herald_control::consent::OptOut> for OptOutEntry {
    fn from(o: herald_control::consent::OptOut) -> Self {
        Self {
            category: o.category,
            channel: o.channel,
            source: Some(o.source),
            created_at: Some(o.created_at),
        }
    }
}

/// A user's preferences: what they opted out of.
#[derive(Serialize, ToSchema)]
pub struct Preferences {
    pub user_id: i64,
    pub opt_outs: Vec<OptOutEntry>,
}

/// A user's opt-outs, all of them: those not listed are removed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    pub opt_outs: Vec<OptOutEntry>,
}

/// Opt-outs to add, for many users at once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutsBody {
    /// 1–100,000 opt-outs; one wrong entry adds none.
    pub opt_outs: Vec<NewOptOut>,
}

/// One user's "no" to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOptOut {
    #[schema(example = 7)]
    pub user_id: i64,
    /// `marketing` when absent.
    #[schema(example = "marketing")]
    pub category: Option<String>,
    /// `inbox`, `webhook`, `email`, or `all` (the default).
    #[schema(example = "all")]
    pub channel: Option<String>,
}

/// What adding opt-outs did.
#[derive(Serialize, ToSchema)]
pub struct OptOutsAdded {
    /// Opt-outs given.
    pub read: usize,
    /// Of those, new; the others were there already (and keep their time and source).
    pub added: u64,
}

/// One suppressed address.
#[derive(Serialize, ToSchema)]
pub struct SuppressionEntry {
    #[schema(example = "email")]
    pub channel: String,
    /// The lower-cased e-mail address, or the user id for inbox and webhook.
    #[schema(example = "gone@example.com")]
    pub address: String,
    /// `bounce`, `import` or `operator`.
    pub reason: String,
    pub detail: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<herald_control::consent::Suppression> for SuppressionEntry {
    fn from(s: herald_control::consent::Suppression) -> Self {
        Self {
            channel: s.channel,
            address: s.address,
            reason: s.reason,
            detail: s.detail,
            actor: s.actor,
            created_at: s.created_at,
        }
    }
}

/// A page of the suppression list, newest first.
#[derive(Serialize, ToSchema)]
pub struct SuppressionList {
    pub items: Vec<SuppressionEntry>,
    /// Entries on the list (of the channel asked for).
    pub total: i64,
}

/// Filters for the suppression list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// `inbox`, `webhook` or `email`; every channel when absent.
    pub channel: Option<String>,
    /// Only addresses containing this.
    #[param(max_length = 320)]
    pub search: Option<String>,
    /// 1–1,000 (50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Addresses to suppress.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressBody {
    /// `email` (the default), `webhook` or `inbox`.
    #[schema(example = "email")]
    pub channel: Option<String>,
    /// E-mail addresses, or user ids for inbox and webhook; 1–100,000.
    #[schema(example = json!(["gone@example.com"]))]
    pub addresses: Vec<String>,
    /// Why, kept with each entry.
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

/// What suppressing did.
#[derive(Serialize, ToSchema)]
pub struct Suppressed {
    /// Addresses given.
    pub read: usize,
    /// Of those, newly suppressed; the others were already.
    pub added: u64,
}
