//! The gates of the campaigns a worker is sending for, read on a connection of their own.
//!
//! A page of an external channel may start a send only while its campaign's row says in
//! progress and run. One task per worker reads the rows of every campaign with a page
//! sending, in one statement every [`GATE_EVERY`], on a connection nothing else uses: a busy
//! pool or a slow page statement never delays a pause. A gate is open only on the word of a
//! read sent less than [`GATE_STALE`] ago; a read that fails closes every gate at once, and
//! one that does not come back lets them close by age. So once a pause commits, no send
//! starts anywhere after `GATE_STALE` has passed, whatever the database or the network do:
//! every read sent after the commit says closed, and every read sent before it is too old
//! by then. `herald pause` relies on that when no workflow confirms the pause.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use herald_wire::{CampaignStatus, Intent};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::sync::{Notify, watch};

/// How often the gates are read while pages send.
pub const GATE_EVERY: Duration = Duration::from_millis(100);

/// How long the word of one read is trusted. Twenty reads' time: a database tens of
/// milliseconds away, or a read that waits behind a checkpoint, keeps the gates open; one
/// that cannot be read for this long stops the sends.
pub const GATE_STALE: Duration = Duration::from_secs(2);

/// What a read found: the campaign may send, as of the moment the read was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    pub open: bool,
    /// When the read that found it was sent; `None`: never read.
    pub read_at: Option<Instant>,
}

impl Gate {
    const UNREAD: Self = Self {
        open: false,
        read_at: None,
    };

    /// Open, on the word of a read recent enough to trust.
    pub fn may_send(&self) -> bool {
        self.open && self.read_at.is_some_and(|at| at.elapsed() < GATE_STALE)
    }

    /// The later of two readings.
    fn latest(self, other: Self) -> Self {
        if other.read_at > self.read_at {
            other
        } else {
            self
        }
    }
}

/// The worker's gate reader. Cheap to clone.
#[derive(Clone)]
pub struct Gates {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    watched: Mutex<HashMap<i64, Watched>>,
    /// Wakes the reader when the first page of a campaign starts watching.
    wake: Notify,
    started: std::sync::Once,
}

struct Watched {
    pages: usize,
    gate: watch::Sender<Gate>,
}

impl Gates {
    /// A reader that connects with the settings of `pool` (its own connection, not one of
    /// the pool's). It starts with the first [`Gates::watch`].
    pub fn new(pool: &PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                options: (*pool.connect_options()).clone(),
                watched: Mutex::default(),
                wake: Notify::new(),
                started: std::sync::Once::new(),
            }),
        }
    }

    /// Follow a campaign's gate while the returned watch lives. `claimed_at`: when the
    /// statement that claimed the page under the same gate was sent, which counts as the
    /// first read.
    pub fn watch(&self, campaign_id: i64, claimed_at: Instant) -> GateWatch {
        self.inner.started.call_once(|| {
            tokio::spawn(read(self.inner.clone()));
        });
        let gate = {
            let mut watched = self.inner.watched.lock().expect("never poisoned");
            let w = watched.entry(campaign_id).or_insert_with(|| Watched {
                pages: 0,
                gate: watch::Sender::new(Gate::UNREAD),
            });
            w.pages += 1;
            w.gate.subscribe()
        };
        self.inner.wake.notify_one();
        GateWatch {
            inner: self.inner.clone(),
            campaign_id,
            claimed: Gate {
                open: true,
                read_at: Some(claimed_at),
            },
            gate,
        }
    }
}

/// One page's view of its campaign's gate.
pub struct GateWatch {
    inner: Arc<Inner>,
    campaign_id: i64,
    claimed: Gate,
    gate: watch::Receiver<Gate>,
}

impl GateWatch {
    /// Whether a send may start now.
    pub fn may_send(&self) -> bool {
        self.claimed.latest(*self.gate.borrow()).may_send()
    }
}

impl Drop for GateWatch {
    fn drop(&mut self) {
        let mut watched = self.inner.watched.lock().expect("never poisoned");
        if let Some(w) = watched.get_mut(&self.campaign_id) {
            w.pages -= 1;
            if w.pages == 0 {
                watched.remove(&self.campaign_id);
            }
        }
    }
}

/// The reader: every `GATE_EVERY`, one statement for every watched campaign.
async fn read(inner: Arc<Inner>) {
    let mut conn: Option<PgConnection> = None;
    // Said once when reads start failing and once when they come back, not every 100 ms.
    let mut failing = false;
    loop {
        let ids: Vec<i64> = inner
            .watched
            .lock()
            .expect("never poisoned")
            .keys()
            .copied()
            .collect();
        if ids.is_empty() {
            inner.wake.notified().await;
            continue;
        }
        let sent = Instant::now();
        let found = tokio::time::timeout(GATE_STALE, read_once(&inner.options, &mut conn, &ids))
            .await
            .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
        let found = match found {
            Ok(found) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the campaigns' gates are read again");
                }
                Some(found)
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "cannot read the campaigns' gates; their sends wait");
                }
                // Its state is unknown: the next read opens a new one.
                conn = None;
                None
            }
        };
        {
            let watched = inner.watched.lock().expect("never poisoned");
            for id in &ids {
                if let Some(w) = watched.get(id) {
                    let open = found.as_ref().is_some_and(|f| f.get(id) == Some(&true));
                    w.gate.send_replace(Gate {
                        open,
                        read_at: Some(sent),
                    });
                }
            }
        }
        tokio::time::sleep_until((sent + GATE_EVERY).into()).await;
    }
}

async fn read_once(
    options: &PgConnectOptions,
    conn: &mut Option<PgConnection>,
    ids: &[i64],
) -> Result<HashMap<i64, bool>, sqlx::Error> {
    if conn.is_none() {
        *conn = Some(PgConnection::connect_with(options).await?);
    }
    let c = conn.as_mut().expect("connected above");
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT id, status = $2 AND intent = $3 FROM messages WHERE id = ANY($1)")
            .bind(ids)
            .bind(CampaignStatus::InProgress.code())
            .bind(Intent::Run.code())
            .fetch_all(c)
            .await?;
    Ok(rows.into_iter().collect())
}
