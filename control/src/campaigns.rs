//! Reading campaigns: one, the list, and one watched live.

use std::{sync::Arc, time::Duration};

use herald_store::{
    PgPool,
    campaigns::{self, CampaignView},
    status::StatusChanges,
};
use herald_wire::{CampaignKey, CampaignStatus};
use tokio::sync::broadcast;

use crate::{
    Control, Result,
    page::{Cursor, Limit, Page},
};

impl Control {
    pub async fn campaign(&self, key: &CampaignKey) -> Result<CampaignView> {
        Ok(campaigns::find(&self.db, key).await?)
    }

    /// The campaign and every status it has had, oldest first, with its reasons. (The view
    /// comes along because finding the campaign is how an unknown key becomes a 404 rather
    /// than an empty history.)
    pub async fn history(
        &self,
        key: &CampaignKey,
    ) -> Result<(CampaignView, Vec<campaigns::StatusChange>)> {
        let view = self.campaign(key).await?;
        Ok((view, campaigns::history(&self.db, key).await?))
    }

    /// A page of campaigns, newest first, only those with `status` when it is given.
    pub async fn campaigns(
        &self,
        status: Option<CampaignStatus>,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<CampaignView>> {
        let rows =
            campaigns::list(&self.db, status, after.map(Cursor::id), limit.get() + 1).await?;
        Ok(Page::of(rows, limit, |c| c.id))
    }

    /// Follow a campaign: [`Watch::next`] returns its view now, then at every change of its
    /// status and every [`Watch::EVERY`] between them. Every watch of one `Control` shares
    /// one listening session.
    pub async fn watch(&self, key: &CampaignKey) -> Result<Watch> {
        let first = self.campaign(key).await?;
        Ok(Watch {
            db: self.db.clone(),
            key: key.clone(),
            changes: self.status_changes().await,
            first: Some(first),
        })
    }

    /// The shared feed of status changes (campaign keys), started by the first watch. `None`
    /// when no session can be had for it: watchers then rely on their regular looks.
    async fn status_changes(&self) -> Option<broadcast::Receiver<Arc<str>>> {
        let mut feed = self.changes.lock().await;
        if let Some(sender) = feed.as_ref() {
            return Some(sender.subscribe());
        }
        let mut listener = StatusChanges::listen(&self.db).await?;
        let (sender, receiver) = broadcast::channel(256);
        let forward = sender.clone();
        tokio::spawn(async move {
            loop {
                match listener.next().await {
                    Ok(key) => {
                        // No receivers is fine: the next watch subscribes.
                        let _ = forward.send(key.into());
                    }
                    // The session is re-established on the next receive (sqlx's listener
                    // reconnects); changes meanwhile are caught by the regular looks.
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
        *feed = Some(sender);
        Some(receiver)
    }
}

pub struct Watch {
    db: PgPool,
    key: CampaignKey,
    changes: Option<broadcast::Receiver<Arc<str>>>,
    first: Option<CampaignView>,
}

impl Watch {
    pub const EVERY: Duration = Duration::from_millis(500);

    /// The campaign's next view: after its status changes, or [`Self::EVERY`] after the last.
    pub async fn next(&mut self) -> Result<CampaignView> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let tick = tokio::time::sleep(Self::EVERY);
        tokio::pin!(tick);
        loop {
            let Some(changes) = &mut self.changes else {
                tick.await;
                break;
            };
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(key) if *key == *self.key.as_str() => break,
                    Ok(_) => continue,
                    // Missed some: one of them may have been ours.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => self.changes = None,
                },
                _ = &mut tick => break,
            }
        }
        Ok(campaigns::find(&self.db, &self.key).await?)
    }
}
