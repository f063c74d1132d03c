//! A user's in-app inbox and read tracking.

use herald_store::{
    StoreError, audience,
    inbox::{self, InboxItem},
};
use herald_wire::CampaignKey;

use crate::{Control, Result};

impl Control {
    /// A user's messages, newest campaign first, at most `limit` (1 to 1,000).
    pub async fn inbox(&self, user: i64, limit: i64) -> Result<Vec<InboxItem>> {
        self.known_user(user).await?;
        Ok(inbox::list(&self.db, user, limit.clamp(1, 1000)).await?)
    }

    /// Mark a campaign's message read for a user. Returns whether this call marked it
    /// (`false`: it was already read).
    pub async fn read(&self, user: i64, key: &CampaignKey) -> Result<bool> {
        self.known_user(user).await?;
        Ok(inbox::mark_read(&self.db, user, key).await?)
    }

    async fn known_user(&self, user: i64) -> Result<()> {
        if audience::user_exists(&self.db, user).await? {
            Ok(())
        } else {
            Err(StoreError::UnknownUser(user).into())
        }
    }
}
