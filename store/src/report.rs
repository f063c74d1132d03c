//! A campaign's delivery report: its items counted by outcome and error class, the most
//! common errors, and the first of its failed recipients (`herald report`, and the API).

use herald_wire::{CampaignKey, ItemStatus};
use serde::Serialize;
use sqlx::PgPool;

use crate::{
    Result, StoreError,
    campaigns::{self, CampaignView},
    items::{self, FailedItem},
};

/// Items with one outcome and one error class.
#[derive(Clone, Debug, Serialize)]
pub struct OutcomeCount {
    /// `sent`, `failed` or `pending`.
    pub outcome: &'static str,
    /// The last failure's class; `None` for items that never failed (or, once sent, whose
    /// last try worked).
    pub class: Option<String>,
    pub items: i64,
    /// Of those, how many needed more than one try.
    pub retried: i64,
}

/// One error message and how many items it is the last error of.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorCount {
    pub class: Option<String>,
    pub error: String,
    pub items: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub campaign: CampaignView,
    pub outcomes: Vec<OutcomeCount>,
    /// The most common last errors, at most ten, most common first.
    pub top_errors: Vec<ErrorCount>,
    /// The first failed recipients in id order, at most the `failed_limit` asked for.
    pub failed: Vec<FailedItem>,
}

/// The report of campaign `key`, with up to `failed_limit` failed recipients.
pub async fn report(pool: &PgPool, key: &CampaignKey, failed_limit: i64) -> Result<Report> {
    let campaign = campaigns::find(pool, key).await?;
    let rows: Vec<(i16, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT status, error_class, count(*), count(*) FILTER (WHERE attempts > 1)
         FROM message_items WHERE message_id = $1 GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
    )
    .bind(campaign.id)
    .fetch_all(pool)
    .await?;
    let outcomes = rows
        .into_iter()
        .map(|(status, class, items, retried)| {
            let outcome = ItemStatus::try_from(status)
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))?
                .name();
            Ok(OutcomeCount {
                outcome,
                class,
                items,
                retried,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let top: Vec<(Option<String>, String, i64)> = sqlx::query_as(
        "SELECT error_class, error, count(*) FROM message_items
         WHERE message_id = $1 AND error IS NOT NULL AND status <> $2
         GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 10",
    )
    .bind(campaign.id)
    .bind(ItemStatus::Sent.code())
    .fetch_all(pool)
    .await?;
    let failed = if failed_limit > 0 && campaign.failed > 0 {
        items::failures(pool, key, 0, failed_limit).await?
    } else {
        Vec::new()
    };
    Ok(Report {
        campaign,
        outcomes,
        top_errors: top
            .into_iter()
            .map(|(class, error, items)| ErrorCount {
                class,
                error,
                items,
            })
            .collect(),
        failed,
    })
}
