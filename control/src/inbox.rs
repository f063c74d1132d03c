//! A user's in-app inbox and read tracking.
//!
//! An inbox campaign's items hold no text: its title and body are rendered for the user
//! when their inbox is read, from the campaign's templates and the user's data as it is
//! then (docs/templates.md). Text with no template syntax is served as it is stored.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use herald_store::{
    PgConnection, StoreError,
    inbox::{self, InboxItem, ReadFilter, UserData},
};
use herald_templates::{Profile, Templates, is_template};
use herald_wire::{CampaignKey, Channel, Content};

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
        let after = after.map(Cursor::id);
        let found = self
            .for_app(async |conn| inbox::page(conn, user, filter, after, limit.get() + 1).await)
            .await?;
        let Some(data) = found.user else {
            return Err(StoreError::UnknownUser(user).into());
        };
        // Rendered once the page is cut: the row fetched to see a next page is not shown.
        let mut page = Page::of(found.items, limit, |i| i.campaign_id);
        let key = self.unsubscribe_key().await?;
        // One link a category: a page's items mostly share theirs, and each is an HMAC.
        let mut links: Vec<(String, Option<String>)> = Vec::new();
        for item in &mut page.items {
            if let Some((_, url)) = links.iter().find(|(c, _)| *c == item.category) {
                item.unsubscribe_url = url.clone();
                continue;
            }
            // A transactional campaign has no link; nor has a category that no longer
            // parses (launch checked it).
            let url = herald_wire::Category::parse(&item.category)
                .ok()
                .filter(|category| !category.is_transactional())
                .map(|category| {
                    let link = herald_wire::Unsubscribe {
                        user_id: user,
                        category,
                        channel: Channel::Inbox,
                    };
                    key.url(&self.config.public_url, &link)
                });
            links.push((item.category.clone(), url.clone()));
            item.unsubscribe_url = url;
        }
        self.render(&data, &mut page.items);
        Ok(Inbox {
            page,
            unread: found.unread,
        })
    }

    /// Render the items whose campaign's title or body is a template, for the user as
    /// they are now (`data`, read with the page, parsed at the first template). An item
    /// whose rendering fails keeps empty text and says why in `render_error`; the others
    /// are unaffected.
    fn render(&self, data: &UserData, items: &mut [InboxItem]) {
        let mut profile: Option<std::result::Result<Arc<Profile>, String>> = None;
        for item in items.iter_mut() {
            let Some(templates) = self.templates.get(item).filter(|t| t.is_personal()) else {
                continue;
            };
            let profile = profile
                .get_or_insert_with(|| data.profile().map(Arc::new).map_err(|e| e.to_string()));
            let profile = match profile {
                Ok(p) => p,
                Err(e) => {
                    item.render_error = Some(e.clone());
                    (item.title, item.body) = (String::new(), String::new());
                    continue;
                }
            };
            match templates.render_with(profile, item.unsubscribe_url.as_deref()) {
                Ok(r) => {
                    let (title, body) = (r.title.into_owned(), r.body.into_owned());
                    (item.title, item.body) = (title, body);
                }
                Err(e) => {
                    item.render_error = Some(e.to_string());
                    (item.title, item.body) = (String::new(), String::new());
                }
            }
        }
    }

    /// The unread badge.
    pub async fn unread_count(&self, user: i64) -> Result<i64> {
        self.for_app(async |conn| inbox::unread_count(conn, user).await)
            .await?
            .ok_or_else(|| StoreError::UnknownUser(user).into())
    }

    /// Mark a campaign's message read for a user. Returns whether this call marked it
    /// (`false`: it was already read).
    pub async fn read(&self, user: i64, key: &CampaignKey) -> Result<bool> {
        let marked = self
            .for_app(async |conn| inbox::mark_read(conn, user, key).await)
            .await;
        match marked {
            // Said more precisely when the user does not exist at all.
            Err(e @ crate::ControlError::Store(StoreError::NotARecipient { .. })) => {
                self.known_user(user).await?;
                Err(e)
            }
            marked => marked,
        }
    }

    /// Mark everything in a user's inbox read. Returns how many items this call marked.
    pub async fn read_all(&self, user: i64) -> Result<i64> {
        self.known_user(user).await?;
        self.for_app(async |conn| inbox::mark_all_read(conn, user).await)
            .await
    }

    async fn known_user(&self, user: i64) -> Result<()> {
        let exists = self
            .for_app(async |conn| herald_store::audience::user_exists(conn, user).await)
            .await?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::UnknownUser(user).into())
        }
    }

    /// Run an app's inbox statement: in a server, on one of the sessions kept for apps
    /// (`QuietPool`: no round trip to check it before or after); in a command, on the pool.
    async fn for_app<T>(
        &self,
        run: impl AsyncFnOnce(&mut PgConnection) -> herald_store::Result<T>,
    ) -> Result<T> {
        let Some(apps) = &self.apps else {
            let mut conn = self.db.acquire().await.map_err(StoreError::from)?;
            return Ok(run(&mut conn).await?);
        };
        let mut lease = apps.any().await.map_err(StoreError::from)?;
        let done = run(&mut lease).await;
        lease.finish(&done);
        Ok(done?)
    }
}

/// Compiled inbox templates by campaign, kept for the campaigns inboxes show (a campaign's
/// content never changes once launched). Bounded: cleared when it holds 1,024.
#[derive(Default)]
pub(crate) struct TemplateCache(Mutex<HashMap<i64, Option<Arc<Templates>>>>);

impl TemplateCache {
    /// The compiled content of `item`'s campaign; `None` for text that is not a template, or
    /// that no longer compiles (served as stored, since launch checked it).
    fn get(&self, item: &InboxItem) -> Option<Arc<Templates>> {
        if !is_template(&item.title) && !is_template(&item.body) {
            return None;
        }
        if let Some(t) = self
            .0
            .lock()
            .expect("never poisoned")
            .get(&item.campaign_id)
        {
            return t.clone();
        }
        let compiled = Content::new(&item.title, &item.body)
            .ok()
            .and_then(|c| Templates::compile(item.key.as_str(), &c, Channel::Inbox).ok())
            .map(Arc::new);
        let mut cache = self.0.lock().expect("never poisoned");
        if cache.len() >= 1_024 {
            cache.clear();
        }
        cache.insert(item.campaign_id, compiled.clone());
        compiled
    }
}
