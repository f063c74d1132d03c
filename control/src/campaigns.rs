//! Reading campaigns: one, the list, and one watched live.

use std::time::Duration;

use herald_store::{
    campaigns::{self, CampaignView},
    status::StatusChanges,
};
use herald_wire::CampaignKey;

use crate::{Control, Result};

impl Control {
    pub async fn campaign(&self, key: &CampaignKey) -> Result<CampaignView> {
        Ok(campaigns::find(&self.db, key).await?)
    }

    /// Newest first, at most `limit` (1 to 1,000).
    pub async fn campaigns(&self, limit: i64) -> Result<Vec<CampaignView>> {
        Ok(campaigns::list(&self.db, limit.clamp(1, 1000)).await?)
    }

    /// Follow a campaign: [`Watch::next`] returns its view now, then at every status change
    /// and every [`Watch::EVERY`] between them.
    pub async fn watch(&self, key: &CampaignKey) -> Result<Watch<'_>> {
        let first = self.campaign(key).await?;
        Ok(Watch {
            control: self,
            key: key.clone(),
            changes: StatusChanges::listen(&self.db).await,
            first: Some(first),
        })
    }
}

pub struct Watch<'a> {
    control: &'a Control,
    key: CampaignKey,
    /// `None` when listening is not possible: the regular looks still come.
    changes: Option<StatusChanges>,
    first: Option<CampaignView>,
}

impl Watch<'_> {
    pub const EVERY: Duration = Duration::from_millis(500);

    /// The campaign's next view.
    pub async fn next(&mut self) -> Result<CampaignView> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let tick = tokio::time::sleep(Self::EVERY);
        match &mut self.changes {
            Some(changes) => {
                let lost = tokio::select! {
                    change = changes.next() => change.is_err(),
                    _ = tick => false,
                };
                if lost {
                    self.changes = None;
                }
            }
            None => tick.await,
        }
        self.control.campaign(&self.key).await
    }
}
