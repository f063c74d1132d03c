//! The page statement on its own, against a real PostgreSQL: what it writes, what it reports,
//! and how it behaves when it runs again or meets rows that are already there.

use herald_activities::channels;
use herald_store::{
    Fault, StoreError,
    connect::{self, PoolSettings},
    filter,
    pages::AUDIENCE_PARAMS,
    quiet_pool::QuietPool,
    status,
};
use herald_tests::TestApp;
use herald_wire::{
    CampaignStatus, Intent, ItemStatus, PageInput, PageOutcome, Requested, Segment,
    audience::Filter,
};
use herald_workflows::options::PAGE_STATEMENT_TIMEOUT;
use sqlx::PgPool;

/// A fresh database with a campaign row in progress to 1,200 users with ids 1..=1200
/// (segment `p`), and a pool and page connections set up as the worker's. Keep the app: it
/// owns the database.
async fn campaign() -> (TestApp, PgPool, QuietPool, i64) {
    let app = TestApp::without_worker().await.unwrap();
    let pool = connect::connect(
        &app.database_url,
        &PoolSettings::worker(2, PAGE_STATEMENT_TIMEOUT, false),
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO users (email, segments)
         SELECT 'u' || g || '@example.com', ARRAY['p'] FROM generate_series(1, 1200) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    let id = sqlx::query_scalar(
        "INSERT INTO messages (key, title, body, segment, status, total, min_user_id, max_user_id,
                               spec)
         VALUES ('pages', 'T', 'B', 'p', $1, 1200, 1, 1200, '{}') RETURNING id",
    )
    .bind(CampaignStatus::InProgress.code())
    .fetch_one(&pool)
    .await
    .unwrap();
    let pages = QuietPool::new(&pool, 2);
    (app, pool, pages, id)
}

fn page(campaign_id: i64, after: i64) -> PageInput {
    PageInput {
        campaign_id,
        lane: 0,
        after,
        until: 1200,
        scan: None,
        limit: 500,
        channel: Default::default(),
        delay_millis: 0,
    }
}

async fn items(pool: &PgPool, campaign_id: i64) -> (i64, i64) {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id) FROM message_items WHERE message_id = $1",
    )
    .bind(campaign_id)
    .fetch_one(pool)
    .await
    .unwrap();
    row
}

fn written(last: i64, recipients: u32, sent: u32) -> PageOutcome {
    PageOutcome::Written {
        last: Some(last),
        recipients,
        limit: Some(500),
        sent,
        failed: 0,
        suppressed: 0,
        scanned_to: Some(last),
        took_ms: None,
        deliveries: Default::default(),
    }
}

/// Segment `p` compiled as a page's audience.
fn segment_p() -> filter::Compiled {
    filter::compile(
        &Filter::Segment(Segment::parse("p").unwrap()),
        &Default::default(),
        AUDIENCE_PARAMS,
        chrono::Utc::now(),
    )
    .unwrap()
}

/// Deliver a page to segment `p` as the worker does; its outcome without the time its scan
/// took, which varies.
async fn deliver(pages: &QuietPool, page: &PageInput) -> herald_store::Result<PageOutcome> {
    let mut outcome = channels::deliver_page(pages, page, &segment_p(), None).await?;
    if let PageOutcome::Written { took_ms, .. } = &mut outcome {
        *took_ms = None;
    }
    Ok(outcome)
}

#[tokio::test]
async fn a_page_writes_once_and_reports_the_same_outcome_when_run_again() {
    let (_app, pool, pages, id) = campaign().await;

    let first = deliver(&pages, &page(id, 0)).await.unwrap();
    assert_eq!(first, written(500, 500, 500));
    assert_eq!(items(&pool, id).await, (500, 500));

    // A retry, or a local activity re-run after a crash: the page row answers, nothing is
    // written twice.
    let again = deliver(&pages, &page(id, 0)).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(items(&pool, id).await, (500, 500));

    // The lane's last page is short, which ends the lane.
    deliver(&pages, &page(id, 500)).await.unwrap();
    let last = deliver(&pages, &page(id, 1000)).await.unwrap();
    assert_eq!(last, written(1200, 200, 200));
    assert_eq!(items(&pool, id).await, (1200, 1200));
}

/// Rows already in the ledger without their page row (never expected: it would take two
/// pages overlapping) make the plain insert fail; the page then runs in its tolerant form,
/// which skips them and counts only what it wrote.
#[tokio::test]
async fn a_page_meeting_existing_rows_skips_them_and_counts_only_its_own() {
    let (_app, pool, pages, id) = campaign().await;
    sqlx::query(
        "INSERT INTO message_items (message_id, user_id, status)
         SELECT $1, g, $2 FROM generate_series(101, 130) g",
    )
    .bind(id)
    .bind(ItemStatus::Sent.code())
    .execute(&pool)
    .await
    .unwrap();

    let outcome = deliver(&pages, &page(id, 0)).await.unwrap();
    assert_eq!(outcome, written(500, 500, 470));
    assert_eq!(items(&pool, id).await, (500, 500));
}

/// A sparse audience: a page scans at most its range of ids, and one that finds fewer than
/// its limit there leaves the lane at the range's end (recorded in its page row, which a run
/// of it again reports, and which a recovery goes on from); the page that reaches the lane's
/// bound ends the lane.
#[tokio::test]
async fn a_page_scans_at_most_its_range_and_the_lane_goes_on_from_its_end() {
    let (_app, pool, pages, id) = campaign().await;
    sqlx::query("UPDATE users SET segments = '{}' WHERE id NOT IN (7, 650, 1199)")
        .execute(&pool)
        .await
        .unwrap();
    let scanning = |after| PageInput {
        scan: Some(300),
        ..page(id, after)
    };
    let short = |last: Option<i64>, recipients, scanned_to| PageOutcome::Written {
        last,
        recipients,
        limit: Some(500),
        sent: recipients,
        failed: 0,
        suppressed: 0,
        scanned_to: Some(scanned_to),
        took_ms: None,
        deliveries: Default::default(),
    };

    let first = deliver(&pages, &scanning(0)).await.unwrap();
    assert_eq!(first, short(Some(7), 1, 300));
    let empty = deliver(&pages, &scanning(300)).await.unwrap();
    assert_eq!(empty, short(None, 0, 600));
    assert_eq!(deliver(&pages, &scanning(300)).await.unwrap(), empty);

    let mut conn = pool.acquire().await.unwrap();
    let lanes = herald_store::pages::lane_progress(&mut conn, id)
        .await
        .unwrap();
    assert_eq!(
        (lanes[0].after, lanes[0].done, lanes[0].sent),
        (600, false, 1)
    );

    assert_eq!(
        deliver(&pages, &scanning(600)).await.unwrap(),
        short(Some(650), 1, 900)
    );
    // The last range is cut at the lane's bound.
    assert_eq!(
        deliver(&pages, &scanning(900)).await.unwrap(),
        short(Some(1199), 1, 1200)
    );
    let lanes = herald_store::pages::lane_progress(&mut conn, id)
        .await
        .unwrap();
    assert_eq!(
        (lanes[0].after, lanes[0].done, lanes[0].sent),
        (1200, true, 3)
    );
    let ends: Vec<bool> = sqlx::query_scalar(
        "SELECT ends_lane FROM message_pages WHERE message_id = $1 ORDER BY after_user_id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ends, [false, false, false, true]);
    assert_eq!(items(&pool, id).await, (3, 3));
}

/// The gate: once an operator's pause is recorded, a new page writes nothing and reports
/// the request, while a page committed earlier still reports its outcome; a status that is
/// not "in progress" stops pages too.
#[tokio::test]
async fn a_paused_campaign_writes_no_new_page() {
    let (_app, pool, pages, id) = campaign().await;
    let first = deliver(&pages, &page(id, 0)).await.unwrap();
    let key = herald_wire::CampaignKey::parse("pages").unwrap();
    let recorded = status::request(&pool, &key, status::Request::Pause, None, "test")
        .await
        .unwrap();
    assert_eq!(
        recorded.requested,
        Requested {
            intent: Intent::Pause,
            seq: 1,
            reason: None,
        }
    );

    assert_eq!(
        deliver(&pages, &page(id, 500)).await.unwrap(),
        PageOutcome::Halted {
            status: CampaignStatus::InProgress,
            requested: recorded.requested.clone(),
        }
    );
    // Resumed in the row, but the status says paused (as the workflow left it).
    status::request(&pool, &key, status::Request::Resume, None, "test")
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(CampaignStatus::Paused.code())
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        deliver(&pages, &page(id, 500)).await.unwrap(),
        PageOutcome::Halted {
            status: CampaignStatus::Paused,
            requested: Requested {
                intent: Intent::Run,
                seq: 2,
                ..
            },
        }
    ));
    assert_eq!(deliver(&pages, &page(id, 0)).await.unwrap(), first);
    assert_eq!(items(&pool, id).await, (500, 500));
}

/// The session a connection runs in, as PostgreSQL numbers it.
async fn session(conn: &mut sqlx::PgConnection) -> Result<i32, StoreError> {
    Ok(sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await?)
}

/// The session that lane 0 of campaign 0 gets, returned at once.
async fn backend(pages: &QuietPool) -> i32 {
    let mut conn = pages.get((0, 0)).await.unwrap();
    let pid = session(&mut conn).await;
    conn.finish(&pid);
    pid.unwrap()
}

/// A lane gets back the session that served it last, even when another lane's was returned
/// after it.
#[tokio::test]
async fn a_lane_keeps_its_session() {
    let (_app, _pool, pages, _id) = campaign().await;
    let mut one = pages.get((7, 1)).await.unwrap();
    let mut two = pages.get((7, 2)).await.unwrap();
    let (s1, s2) = (session(&mut one).await, session(&mut two).await);
    one.finish(&s1);
    two.finish(&s2);
    let (s1, s2) = (s1.unwrap(), s2.unwrap());
    assert_ne!(s1, s2);

    let mut again = pages.get((7, 1)).await.unwrap();
    let s = session(&mut again).await;
    again.finish(&s);
    assert_eq!(s.unwrap(), s1);
    // A lane that no session served yet takes the one returned last.
    assert_eq!(backend(&pages).await, s1);
}

/// A page connection is kept after a page; one that broke under a page fails that page
/// (which Temporal retries) and is replaced.
#[tokio::test]
async fn a_page_connection_is_reused_until_it_breaks() {
    let (_app, pool, pages, id) = campaign().await;
    let first = backend(&pages).await;
    assert_eq!(backend(&pages).await, first);

    // The server ends the session (a restart does this to all of them).
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(first)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ended);
    let broken = deliver(&pages, &page(id, 0)).await.unwrap_err();
    assert_eq!(broken.fault(), Fault::Transient, "{broken}");
    assert_eq!(items(&pool, id).await, (0, 0));

    // The retry gets a new session and writes the page.
    let retried = deliver(&pages, &page(id, 0)).await.unwrap();
    assert_eq!(retried, written(500, 500, 500));
    assert_ne!(backend(&pages).await, first);
}

/// A pool told how long callers may wait gives up after that wait while every session is
/// in use (the API's inbox requests then answer 503), and serves again once one returns.
#[tokio::test]
async fn a_bounded_wait_for_a_session_ends_in_a_timeout() {
    let (_app, pool, _pages, _id) = campaign().await;
    let apps = QuietPool::new(&pool, 1).waiting_at_most(std::time::Duration::from_millis(200));
    let mut held = apps.any().await.unwrap();
    let first = session(&mut held).await;
    let waited = std::time::Instant::now();
    let waiting = tokio::time::timeout(std::time::Duration::from_secs(5), apps.any()).await;
    assert!(matches!(waiting, Ok(Err(sqlx::Error::PoolTimedOut))));
    assert!(waited.elapsed() >= std::time::Duration::from_millis(200));
    held.finish(&first);
    let mut again = apps.any().await.unwrap();
    let s = session(&mut again).await;
    again.finish(&s);
    assert_eq!(s.unwrap(), first.unwrap(), "the session returned last");
}

/// A connection abandoned mid-statement (a request whose client went away, a page Temporal
/// gave up on) keeps its place until the statement is over, then serves again: the pool
/// never has more statements running than places, and nothing reconnects.
#[tokio::test]
async fn an_abandoned_connection_drains_in_its_place_and_serves_again() {
    use std::time::Duration;
    let (_app, pool, _pages, _id) = campaign().await;
    let apps = QuietPool::new(&pool, 1);
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let mut lease = apps.any().await.unwrap();
    let pid = session(&mut lease).await.unwrap();
    {
        // The statement runs, waiting for the lock, when the lease is abandoned.
        let blocked = sqlx::query("SELECT pg_advisory_lock(4242)").execute(&mut *lease);
        tokio::pin!(blocked);
        let since = std::time::Instant::now();
        loop {
            tokio::select! {
                done = &mut blocked => panic!("took a held lock: {done:?}"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            let wait: Option<String> =
                sqlx::query_scalar("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if wait.as_deref() == Some("Lock") {
                break;
            }
            assert!(since.elapsed() < Duration::from_secs(10), "never waited");
        }
    }
    drop(lease);
    let early = tokio::time::timeout(Duration::from_millis(300), apps.any()).await;
    assert!(early.is_err(), "the place is held while the statement runs");
    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let mut again = tokio::time::timeout(Duration::from_secs(10), apps.any())
        .await
        .expect("the place comes back once the statement is over")
        .unwrap();
    let s = session(&mut again).await;
    again.finish(&s);
    assert_eq!(s.unwrap(), pid, "the same session, drained");
}

/// An error the server answered (here a division by zero inside a transaction holding a row
/// lock) keeps the session, once the transaction's end has reached the server; a session the
/// server ended takes every idle one with it, each of which would fail next.
#[tokio::test]
async fn a_statement_error_keeps_its_session_and_a_lost_server_closes_them_all() {
    use herald_store::quiet_pool::{Damage, SessionResult};
    use std::time::Duration;
    let (_app, pool, _pages, _id) = campaign().await;
    sqlx::raw_sql("CREATE TABLE locked (id int PRIMARY KEY); INSERT INTO locked VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    let one = QuietPool::new(&pool, 1);
    let mut lease = one.any().await.unwrap();
    let pid = session(&mut lease).await.unwrap();
    let failed: Result<i32, sqlx::Error> = async {
        let mut tx = sqlx::Connection::begin(&mut *lease).await?;
        sqlx::query("SELECT id FROM locked WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        sqlx::query_scalar("SELECT 1 / 0").fetch_one(&mut *tx).await
    }
    .await;
    let damage = failed.database_error().map(Damage::of);
    assert_eq!(damage, Some(Damage::None), "{failed:?}");
    lease.finish(&failed);
    let mut again = tokio::time::timeout(Duration::from_secs(10), one.any())
        .await
        .unwrap()
        .unwrap();
    // Before the session is used again, which would end the transaction on its way.
    sqlx::query("SELECT id FROM locked WHERE id = 1 FOR UPDATE NOWAIT")
        .execute(&pool)
        .await
        .expect("the failed transaction's lock is gone");
    let s = session(&mut again).await;
    again.finish(&s);
    assert_eq!(s.unwrap(), pid, "kept after an error the server answered");

    let two = QuietPool::new(&pool, 2);
    let (mut a, mut b) = (two.any().await.unwrap(), two.any().await.unwrap());
    let (pa, pb) = (session(&mut a).await, session(&mut b).await);
    a.finish(&pa);
    b.finish(&pb);
    let (pa, pb) = (pa.unwrap(), pb.unwrap());
    sqlx::query("SELECT pg_terminate_backend($1, 5000)")
        .bind(pb)
        .execute(&pool)
        .await
        .unwrap();
    let mut dead = two.any().await.unwrap();
    let lost = session(&mut dead).await;
    let damage = lost.database_error().map(Damage::of);
    assert_eq!(damage, Some(Damage::Server), "{lost:?}");
    dead.finish(&lost);
    let mut fresh = two.any().await.unwrap();
    let s = session(&mut fresh).await;
    fresh.finish(&s);
    let s = s.unwrap();
    assert!(s != pa && s != pb, "a new session, not the idle one left");
}

/// Where page rows leave each lane, for a run that starts afresh: after the last page, at the
/// first page with a recipient still pending, done after a short or empty page; and a
/// campaign with a recipient still pending is not completed, unless that recipient is gone.
#[tokio::test]
async fn lanes_go_on_from_their_page_rows_and_pending_recipients_hold_completion() {
    let (_app, pool, _pages, id) = campaign().await;
    // (lane, after, last, recipients, limit, sent)
    let rows: [(i32, i64, Option<i64>, i32, i32, i32); 7] = [
        (0, 0, Some(100), 100, 100, 100),
        (0, 100, Some(200), 100, 100, 100),
        (1, 600, Some(700), 100, 100, 100),
        (1, 700, Some(800), 100, 100, 60),
        (1, 800, Some(850), 50, 100, 50),
        (2, 1000, Some(1100), 100, 100, 100),
        (2, 1100, None, 0, 100, 0),
    ];
    for (lane, after, last, recipients, limit, sent) in rows {
        sqlx::query(
            "INSERT INTO message_pages (message_id, lane, after_user_id, last_user_id, recipients,
                                        page_limit, sent)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(lane)
        .bind(after)
        .bind(last)
        .bind(recipients)
        .bind(limit)
        .bind(sent)
        .execute(&pool)
        .await
        .unwrap();
    }
    // The open page's items: 60 sent, 40 pending.
    sqlx::query(
        "INSERT INTO message_items (message_id, user_id, status, attempts)
         SELECT $1, g, CASE WHEN g <= 760 THEN $2 ELSE $3 END, 1 FROM generate_series(701, 800) g",
    )
    .bind(id)
    .bind(ItemStatus::Sent.code())
    .bind(ItemStatus::Pending.code())
    .execute(&pool)
    .await
    .unwrap();

    let mut conn = pool.acquire().await.unwrap();
    let lanes = herald_store::pages::lane_progress(&mut conn, id)
        .await
        .unwrap();
    let got: Vec<_> = lanes
        .iter()
        .map(|l| (l.lane, l.after, l.done, l.pages, l.sent))
        .collect();
    assert_eq!(
        got,
        [
            (0, 200, false, 2, 200),
            (1, 700, false, 1, 100),
            (2, 1100, true, 2, 100),
        ]
    );

    let complete = || async {
        status::record(
            &pool,
            &herald_wire::SetStatusInput {
                campaign_id: id,
                status: CampaignStatus::Completed,
                reason: None,
                from: Vec::new(),
            },
        )
        .await
        .unwrap()
        .status
    };
    assert_eq!(complete().await, CampaignStatus::InProgress, "40 pending");
    // Recipients deleted since their page: nobody is left to send to.
    sqlx::query("DELETE FROM users WHERE id > 760 AND id <= 800")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(complete().await, CampaignStatus::Completed);
}

/// The look that appends a bare request writes its token, and reads it back; a refused
/// append leaves the row's token; any request an operator records (through Herald, or by
/// hand) clears it, so that the workflow never takes it for its own.
#[tokio::test]
async fn a_bare_requests_token_is_the_workflows_and_any_other_request_clears_it() {
    use herald_wire::{BareRequest, CampaignKey, SyncRequestsInput};
    let (_app, pool, _pages, id) = campaign().await;
    let bare = |seen_seq, token, reason: &str| SyncRequestsInput {
        campaign_id: id,
        intent: Some(BareRequest {
            intent: Intent::Pause,
            reason: Some(reason.into()),
            seen_seq,
            after_look: false,
            token,
            own: false,
            replaces_from: token,
        }),
        rate: None,
    };
    let appended = status::sync_requests(&pool, &bare(0, 5, "bare"))
        .await
        .unwrap();
    assert_eq!((appended.requested.seq, appended.token), (1, Some(5)));
    // Over a request it did not know of: refused, and the row keeps what it held.
    let refused = status::sync_requests(&pool, &bare(0, 6, "late"))
        .await
        .unwrap();
    assert_eq!(refused, appended);
    let read = status::sync_requests(
        &pool,
        &SyncRequestsInput {
            campaign_id: id,
            intent: None,
            rate: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(read, appended);

    let key = CampaignKey::parse("pages").unwrap();
    status::request(
        &pool,
        &key,
        status::Request::Resume,
        Some("operator"),
        "test",
    )
    .await
    .unwrap();
    let token = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT intent_token FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(token().await, None, "a front end's request keeps the token");

    status::sync_requests(&pool, &bare(2, 7, "bare again"))
        .await
        .unwrap();
    assert_eq!(token().await, Some(7));
    // Hand-written SQL, or a front end from before the token.
    sqlx::query("UPDATE messages SET intent = 0, intent_seq = intent_seq + 1 WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        token().await,
        None,
        "a request written by hand keeps the token"
    );
}

/// An external page claimed again belongs to its last claim: the run that claimed it first
/// still records what it sent, and learns from the answer that it must start no new send.
#[tokio::test]
async fn an_external_page_claimed_again_belongs_to_the_last_claim() {
    use herald_store::sends::{self, Claim, Outcome};
    let (_app, _pool, pages, id) = campaign().await;
    let audience = segment_p();
    let input = PageInput {
        channel: herald_wire::Channel::Webhook,
        ..page(id, 0)
    };
    let mut conn = pages.get((id, 0)).await.unwrap();
    let Claim::Page(first) = sends::claim(&mut conn, &input, &audience, 1, None)
        .await
        .unwrap()
    else {
        panic!("the first claim is refused");
    };
    assert_eq!(first.pending.len(), 500);
    let Claim::Page(second) = sends::claim(&mut conn, &input, &audience, 2, None)
        .await
        .unwrap()
    else {
        panic!("the second claim is refused");
    };
    assert_eq!(
        second.pending, first.pending,
        "the same recipients, still pending"
    );
    let sent: Vec<Outcome> = first.pending[..10]
        .iter()
        .map(|p| Outcome {
            user_id: p.user_id,
            status: ItemStatus::Sent,
            attempts: 1,
            error: None,
        })
        .collect();
    let recorded = sends::record(&mut conn, &input, &sent, sends::Writes::First)
        .await
        .unwrap();
    assert_eq!((recorded.sent, recorded.owner), (10, Some(2)));
    // Recorded once, whichever run records it again, and however it expects to write:
    // a plain insert that meets the rows is written again as an upsert.
    for writes in [sends::Writes::First, sends::Writes::Any] {
        let again = sends::record(&mut conn, &input, &sent, writes)
            .await
            .unwrap();
        assert_eq!(again.sent, 10, "{writes:?}");
    }
    conn.finish(&Ok::<(), sqlx::Error>(()));
}

/// A batch written as first writes that meets rows (another run of the page recorded some of
/// its recipients) is written again as an upsert: new items are inserted, items recorded
/// pending move on, items recorded sent stay as they were, and each counts once.
#[tokio::test]
async fn first_writes_that_meet_rows_are_written_again_as_an_upsert() {
    use herald_store::sends::{self, Claim, Outcome, Writes};
    let (_app, pool, pages, id) = campaign().await;
    let input = PageInput {
        channel: herald_wire::Channel::Webhook,
        ..page(id, 0)
    };
    let mut conn = pages.get((id, 0)).await.unwrap();
    let Claim::Page(claimed) = sends::claim(&mut conn, &input, &segment_p(), 1, None)
        .await
        .unwrap()
    else {
        panic!("the claim is refused");
    };
    let user = |i: usize| claimed.pending[i].user_id;
    let outcome = |i: usize, status: ItemStatus, attempts: u32| Outcome {
        user_id: user(i),
        status,
        attempts,
        error: (status != ItemStatus::Sent).then(|| ("http_503".into(), "busy".into())),
    };
    // Another run recorded ten sent and five pending (tried once, tries left).
    let earlier: Vec<Outcome> = (0..10)
        .map(|i| outcome(i, ItemStatus::Sent, 1))
        .chain((10..15).map(|i| outcome(i, ItemStatus::Pending, 1)))
        .collect();
    let recorded = sends::record(&mut conn, &input, &earlier, Writes::First)
        .await
        .unwrap();
    assert_eq!((recorded.sent, recorded.failed), (10, 0));

    let batch: Vec<Outcome> = (0..2)
        .map(|i| outcome(i, ItemStatus::Sent, 1)) // recorded sent: left alone
        .chain((10..13).map(|i| outcome(i, ItemStatus::Sent, 2))) // pending: now sent
        .chain([outcome(13, ItemStatus::Failed, 2)]) // pending: now failed
        .chain((20..25).map(|i| outcome(i, ItemStatus::Sent, 1))) // new
        .collect();
    let recorded = sends::record(&mut conn, &input, &batch, Writes::First)
        .await
        .unwrap();
    conn.finish(&Ok::<(), sqlx::Error>(()));
    assert_eq!(
        (recorded.sent, recorded.failed),
        (18, 1),
        "each counted once"
    );

    let counts: Vec<(i16, i64, i64)> = sqlx::query_as(
        "SELECT status, count(*), sum(attempts) FROM message_items WHERE message_id = $1
         GROUP BY 1 ORDER BY 1",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![
            (ItemStatus::Pending.code(), 1, 1),
            // Ten sent on their first try, three on their second, five new.
            (ItemStatus::Sent.code(), 18, 10 + 3 * 2 + 5),
            (ItemStatus::Failed.code(), 1, 2),
        ],
        "the ledger as the counters say"
    );
    let (retried, failures): (i32, i64) = sqlx::query_as(
        "SELECT (SELECT retried FROM message_pages WHERE message_id = $1),
                (SELECT sum(items) FROM message_failures WHERE message_id = $1)::bigint",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((retried, failures), (3, 1));
}
