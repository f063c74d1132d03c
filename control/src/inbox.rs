//! A user's in-app inbox and read tracking.

use herald_store::{
    StoreError,
    inbox::{self, InboxItem, ReadFilter},
};
use herald_wire::CampaignKey;

use crate::{
    Control, Result,
    page::{Cursor, Limit, Page},
};

/// A page of a user's inbox, with the badge.
#[derive(Clone, Debug)]
pub struct Inbox {
    pub page: Page<InboxItem>,
    /// Every unread item the user has, counted as the list counts them.
    pub unread: i64,
}

impl Control {
    /// A page of a user's messages, newest campaign first.
    pub async fn inbox(
        &self,
        user: i64,
        filter: ReadFilter,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Inbox> {
        let found = inbox::page(
            &self.db,
            user,
            filter,
            after.map(Cursor::id),
            limit.get() + 1,
        )
        .await?;
        if !found.known_user {
            return Err(StoreError::UnknownUser(user).into());
        }
        Ok(Inbox {
            page: Page::of(found.items, limit, |i| i.campaign_id),
            unread: found.unread,
        })
    }

    /// The unread badge.
    pub async fn unread_count(&self, user: i64) -> Result<i64> {
        self.known_user(user).await?;
        Ok(inbox::unread_count(&self.db, user).await?)
    }

    /// Mark a campaign's message read for a user. Returns whether this call marked it
    /// (`false`: it was already read).
    pub async fn read(&self, user: i64, key: &CampaignKey) -> Result<bool> {
        match inbox::mark_read(&self.db, user, key).await {
            // Said more precisely when the user does not exist at all.
            Err(e @ StoreError::NotARecipient { .. }) => {
                self.known_user(user).await?;
                Err(e.into())
            }
            marked => Ok(marked?),
        }
    }

    /// Mark everything in a user's inbox read. Returns how many items this call marked.
    pub async fn read_all(&self, user: i64) -> Result<i64> {
        self.known_user(user).await?;
        Ok(inbox::mark_all_read(&self.db, user).await?)
    }

    async fn known_user(&self, user: i64) -> Result<()> {
        if herald_store::audience::user_exists(&self.db, user).await? {
            Ok(())
        } else {
            Err(StoreError::UnknownUser(user).into())
        }
    }
}
