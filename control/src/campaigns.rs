//! Reading campaigns: one, the list, one watched live ([`Watch`]) and the list watched live
//! ([`ListWatch`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use herald_store::{
    PgPool,
    campaigns::{self, CampaignView, RequestMade, StatusChange},
    status::StatusChanges,
};
use herald_wire::{CampaignKey, CampaignStatus};
use tokio::sync::{broadcast, watch};

use crate::{
    Control, Result,
    page::{Cursor, Limit, Page},
};

/// A campaign's timeline: the campaign as it stands, every status it has had and every
/// request made of it, oldest first, each with its actor.
#[derive(Clone, Debug)]
pub struct History {
    pub campaign: CampaignView,
    pub changes: Vec<StatusChange>,
    pub requests: Vec<RequestMade>,
}

impl Control {
    pub async fn campaign(&self, key: &CampaignKey) -> Result<CampaignView> {
        Ok(campaigns::find(&self.db, key).await?)
    }

    /// The campaign, every status it has had and every request made of it, oldest first,
    /// with reasons and actors. (The view comes along because finding the campaign is how an
    /// unknown key becomes a 404 rather than an empty history.)
    pub async fn history(&self, key: &CampaignKey) -> Result<History> {
        let campaign = self.campaign(key).await?;
        let (changes, requests) = campaigns::history(&self.db, key).await?;
        Ok(History {
            campaign,
            changes,
            requests,
        })
    }

    /// The newest pause, resume, cancel or retry-failed the campaign had, if any.
    pub async fn last_request(&self, key: &CampaignKey) -> Result<Option<RequestMade>> {
        Ok(campaigns::last_request(&self.db, key).await?)
    }

    /// A page of campaigns, newest first, only those with `status` when it is given.
    pub async fn campaigns(
        &self,
        status: Option<CampaignStatus>,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<CampaignView>> {
        list_page(&self.db, status, limit, after).await
    }

    /// Follow a campaign: [`Watch::next`] returns its view now, then at every change of its
    /// status and every [`Watch::EVERY`] between them. However many follow one campaign
    /// through one `Control`, it is read once per look: the first watch starts a task that
    /// reads it and hands each view to every watch, and the task ends with the last watch.
    /// Every watch shares one listening session.
    pub async fn watch(&self, key: &CampaignKey) -> Result<Watch> {
        let first = self.campaign(key).await?;
        let changes = self.status_changes().await;
        let mut senders = self
            .watched
            .senders
            .lock()
            .expect("the watched campaigns' lock");
        let views = match senders.get(key.as_str()) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(Look::View(first.clone()));
                senders.insert(key.to_string(), sender.clone());
                tokio::spawn(looks(
                    self.db.clone(),
                    key.clone(),
                    sender,
                    changes,
                    self.watched.clone(),
                ));
                receiver
            }
        };
        Ok(Watch {
            db: self.db.clone(),
            key: key.clone(),
            views,
            first: Some(first),
        })
    }

    /// How many times watched campaigns have been read since this `Control` was made.
    pub fn campaign_looks(&self) -> u64 {
        self.watched.looks.load(Ordering::Relaxed)
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

/// What a watcher has been shown of a campaign, to tell whether a new view has anything new:
/// its status, request, counters, and how far its pages have scanned (in thousandths, so that
/// the pages of a sparse audience that find nobody still move it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    status: i16,
    intent: i16,
    counters: [i64; 5],
    scanned: i64,
}

impl Shown {
    pub fn of(view: &CampaignView) -> Self {
        Self {
            status: view.status.code(),
            intent: view.intent.code(),
            counters: [
                view.sent,
                view.failed,
                view.suppressed,
                view.capped,
                view.read,
            ],
            scanned: (view.scanned * 1_000.0) as i64,
        }
    }
}

impl Control {
    /// Follow one page of the campaign list (`status` and `after` as [`Control::campaigns`]
    /// takes them, [`Limit::MAX`] to the page). The first look is taken now, so that a
    /// ledger that cannot be read is an error here rather than an empty feed.
    pub async fn watch_list(
        &self,
        status: Option<CampaignStatus>,
        after: Option<Cursor>,
    ) -> Result<ListWatch> {
        let first = list_page(&self.db, status, Limit::LARGEST, after)
            .await?
            .items;
        Ok(ListWatch {
            db: self.db.clone(),
            status,
            after,
            first: Some(first),
            shown: HashMap::new(),
        })
    }
}

/// A page of the campaign list: see [`Control::campaigns`].
async fn list_page(
    db: &PgPool,
    status: Option<CampaignStatus>,
    limit: Limit,
    after: Option<Cursor>,
) -> Result<Page<CampaignView>> {
    let rows = campaigns::list(db, status, after.map(Cursor::id), limit.get() + 1).await?;
    Ok(Page::of(rows, limit, |c| c.id))
}

/// The campaign list, watched: see [`Control::watch_list`].
pub struct ListWatch {
    db: PgPool,
    status: Option<CampaignStatus>,
    after: Option<Cursor>,
    first: Option<Vec<CampaignView>>,
    /// What was last shown of each campaign on the page.
    shown: HashMap<CampaignKey, Shown>,
}

impl ListWatch {
    pub const EVERY: Duration = Duration::from_secs(1);

    /// The campaigns that changed since the last call (all of them, the first time), oldest
    /// first, so that a client adding rows at the top ends newest first; and, as they are
    /// now, those shown before that left the page (a campaign filtered as running that has
    /// completed), so that a client never keeps a stale row. Waits, looking every
    /// [`Self::EVERY`], until there is one; a look that fails is taken again (the client
    /// keeps what it last showed).
    pub async fn next(&mut self) -> Vec<CampaignView> {
        loop {
            let views = match self.first.take() {
                Some(views) => views,
                None => {
                    tokio::time::sleep(Self::EVERY).await;
                    match list_page(&self.db, self.status, Limit::LARGEST, self.after).await {
                        Ok(page) => page.items,
                        Err(_) => continue,
                    }
                }
            };
            let mut changed = self.departed(&views).await;
            for view in views.into_iter().rev() {
                let shown = Shown::of(&view);
                if self.shown.insert(view.key.clone(), shown) != Some(shown) {
                    changed.push(view);
                }
            }
            if !changed.is_empty() {
                return changed;
            }
        }
    }

    /// The campaigns shown before that are not among `views`, as they are now.
    async fn departed(&mut self, views: &[CampaignView]) -> Vec<CampaignView> {
        let here: HashSet<&CampaignKey> = views.iter().map(|v| &v.key).collect();
        let gone: Vec<CampaignKey> = self
            .shown
            .keys()
            .filter(|k| !here.contains(k))
            .cloned()
            .collect();
        let mut departed = Vec::new();
        for key in gone {
            self.shown.remove(&key);
            // Not found: it cannot be; unreachable: the client keeps what it showed.
            if let Ok(view) = campaigns::find(&self.db, &key).await {
                departed.push(view);
            }
        }
        departed
    }
}

pub struct Watch {
    db: PgPool,
    key: CampaignKey,
    views: watch::Receiver<Look>,
    first: Option<CampaignView>,
}

/// What the shared look at a watched campaign found.
#[derive(Clone)]
pub(crate) enum Look {
    View(CampaignView),
    /// The read failed; each watch reads again itself, to have the error to show.
    Failed,
}

/// The campaigns being watched, each with the sender of its looks, and how many looks
/// have been taken.
#[derive(Default)]
pub(crate) struct Watched {
    senders: std::sync::Mutex<HashMap<String, watch::Sender<Look>>>,
    looks: AtomicU64,
}

/// Look at a watched campaign after each change of its status and every [`Watch::EVERY`]
/// between them, for as long as anyone watches it.
async fn looks(
    db: PgPool,
    key: CampaignKey,
    sender: watch::Sender<Look>,
    mut changes: Option<broadcast::Receiver<Arc<str>>>,
    watched: Arc<Watched>,
) {
    loop {
        let tick = tokio::time::sleep(Watch::EVERY);
        tokio::pin!(tick);
        loop {
            let Some(feed) = &mut changes else {
                tick.await;
                break;
            };
            tokio::select! {
                change = feed.recv() => match change {
                    Ok(changed) if *changed == *key.as_str() => break,
                    Ok(_) => continue,
                    // Missed some: one of them may have been ours.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => changes = None,
                },
                _ = &mut tick => break,
            }
        }
        {
            // Under the lock, so that a new watch either finds this task still looking or
            // starts another.
            let mut senders = watched.senders.lock().expect("the watched campaigns' lock");
            if sender.receiver_count() == 0 {
                senders.remove(key.as_str());
                return;
            }
        }
        watched.looks.fetch_add(1, Ordering::Relaxed);
        let look = match campaigns::find(&db, &key).await {
            Ok(view) => Look::View(view),
            Err(_) => Look::Failed,
        };
        sender.send_replace(look);
    }
}

impl Watch {
    pub const EVERY: Duration = Duration::from_millis(500);

    /// The campaign's next view: after its status changes, or [`Self::EVERY`] after the last.
    pub async fn next(&mut self) -> Result<CampaignView> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        // The task that looks ends only when no watch is left, so it is there while this
        // one is; were it gone, look here.
        if self.views.changed().await.is_ok()
            && let Look::View(view) = self.views.borrow_and_update().clone()
        {
            return Ok(view);
        }
        Ok(campaigns::find(&self.db, &self.key).await?)
    }
}
