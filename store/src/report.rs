//! A campaign's delivery report: its items counted by outcome and error class, the most
//! common errors, and the first of its failed recipients (`herald report`, and the API).

use herald_wire::{CampaignKey, ItemStatus};
use serde::Serialize;
use sqlx::PgPool;

use crate::{
    Result,
    campaigns::{self, CampaignView},
    items::{self, FailedItem},
};

/// Items with one outcome and one error class.
#[derive(Clone, Debug, Serialize)]
pub struct OutcomeCount {
    /// `sent`, `failed`, `pending`, `suppressed` or `capped` (left out).
    pub outcome: &'static str,
    /// The last failure's class; `None` for items that never failed (or, once sent, whose
    /// last try worked).
    pub class: Option<String>,
    pub items: i64,
    /// Of those, how many needed more than one try.
    pub retried: i64,
}

/// An error and how many items it is the last error of. Failed items count by class, with
/// the class's latest message; pending ones by class and message.
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
    /// The most common last errors, at most ten, most common first (see [`ErrorCount`]).
    pub top_errors: Vec<ErrorCount>,
    /// The first failed recipients in id order, at most the `failed_limit` asked for.
    pub failed: Vec<FailedItem>,
}

/// The report of campaign `key`, with up to `failed_limit` failed recipients.
///
/// Its work does not grow with the campaign: sent items are counted by their lanes' totals
/// (`lane_totals!`), failed ones by their lanes' counts per error class
/// (`message_failures`, with each class's latest message), and only the items still pending
/// are read, from the pages that hold them (at most a page per lane, or what a paused page
/// left).
pub async fn report(pool: &PgPool, key: &CampaignKey, failed_limit: i64) -> Result<Report> {
    let campaign = campaigns::find(pool, key).await?;
    let (sent, retried): (i64, i64) = sqlx::query_as(concat!(
        "SELECT coalesce(sum(sent), 0)::bigint, coalesce(sum(retried), 0)::bigint FROM (",
        crate::lane_totals!("$1"),
        ") t"
    ))
    .bind(campaign.id)
    .fetch_one(pool)
    .await?;
    let failures: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT error_class, sum(items)::bigint, sum(retried)::bigint,
                (array_agg(error ORDER BY items DESC))[1]
         FROM message_failures WHERE message_id = $1 AND items > 0
         GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind(campaign.id)
    .fetch_all(pool)
    .await?;
    // The pending recipients, from the pages that still hold any (a page per running lane,
    // or what a pause left), each read by its own id range with the bounds as constants:
    // joined in one statement, the planner may take the campaign's items first, and read
    // them all, where no page is open. Items recorded pending come with their last error;
    // recipients not tried yet have no item (those deleted since are not waited for).
    let open: Vec<(i64, Option<i64>, Vec<i64>)> = sqlx::query_as(
        "SELECT after_user_id, last_user_id, coalesce(ids, '{}') FROM message_pages
         WHERE message_id = $1 AND recipients > sent + failed
         ORDER BY lane, after_user_id LIMIT 10000",
    )
    .bind(campaign.id)
    .fetch_all(pool)
    .await?;
    let mut pending: Vec<(Option<String>, Option<String>, i64, i64)> = Vec::new();
    for (after, last, ids) in open {
        let Some(last) = last else { continue };
        let rows: Vec<(Option<String>, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT i.error_class, i.error, count(*), count(*) FILTER (WHERE i.attempts > 1)
             FROM message_items i
             WHERE i.message_id = $1 AND i.user_id > $2 AND i.user_id <= $3 AND i.status = $4
             GROUP BY 1, 2
             UNION ALL
             SELECT NULL, NULL, count(*), 0
             FROM unnest($5::bigint[]) x(id) JOIN users u ON u.id = x.id
             WHERE NOT EXISTS (SELECT 1 FROM message_items i
                               WHERE i.message_id = $1 AND i.user_id = x.id
                                 AND i.user_id > $2 AND i.user_id <= $3)
             HAVING count(*) > 0",
        )
        .bind(campaign.id)
        .bind(after)
        .bind(last)
        .bind(ItemStatus::Pending.code())
        .bind(&ids)
        // Planned with these bounds, so that only their partitions are opened.
        .persistent(false)
        .fetch_all(pool)
        .await?;
        pending.extend(rows);
    }

    let mut outcomes = Vec::new();
    if sent > 0 {
        outcomes.push(OutcomeCount {
            outcome: ItemStatus::Sent.name(),
            class: None,
            items: sent,
            retried,
        });
    }
    if campaign.suppressed > 0 {
        outcomes.push(OutcomeCount {
            outcome: ItemStatus::Suppressed.name(),
            class: None,
            items: campaign.suppressed,
            retried: 0,
        });
    }
    if campaign.capped > 0 {
        outcomes.push(OutcomeCount {
            outcome: "capped",
            class: None,
            items: campaign.capped,
            retried: 0,
        });
    }
    let mut top_errors = Vec::new();
    for (class, items, retried, error) in failures {
        outcomes.push(OutcomeCount {
            outcome: ItemStatus::Failed.name(),
            class: Some(class.clone()),
            items,
            retried,
        });
        top_errors.push(ErrorCount {
            class: Some(class),
            error: error.unwrap_or_default(),
            items,
        });
    }
    let failed_classes = top_errors.len();
    let mut by_class: Vec<OutcomeCount> = Vec::new();
    for (class, error, items, retried) in pending {
        match by_class.iter_mut().find(|o| o.class == class) {
            Some(o) => {
                o.items += items;
                o.retried += retried;
            }
            None => by_class.push(OutcomeCount {
                outcome: ItemStatus::Pending.name(),
                class: class.clone(),
                items,
                retried,
            }),
        }
        let Some(error) = error else { continue };
        // Pending errors count by class and message, across the open pages.
        match top_errors
            .iter_mut()
            .skip(failed_classes)
            .find(|e| e.class == class && e.error == error)
        {
            Some(e) => e.items += items,
            None => top_errors.push(ErrorCount {
                class,
                error,
                items,
            }),
        }
    }
    by_class.sort_by(|a, b| b.items.cmp(&a.items).then_with(|| a.class.cmp(&b.class)));
    outcomes.extend(by_class);
    top_errors.sort_by(|a, b| b.items.cmp(&a.items).then_with(|| a.error.cmp(&b.error)));
    top_errors.truncate(10);
    let failed = if failed_limit > 0 && campaign.failed > 0 {
        items::failures(pool, key, 0, failed_limit).await?
    } else {
        Vec::new()
    };
    Ok(Report {
        campaign,
        outcomes,
        top_errors,
        failed,
    })
}
