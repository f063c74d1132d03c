//! Audiences of any density: a page scans a bounded range of user ids, so a sparse audience
//! completes in pages of bounded work, and a page whose statement runs past its time limit
//! is split, then fails the campaign with the cause named instead of being retried for ever.

use std::time::Duration;

use herald_tests::{LONG, TestApp, unique};
use herald_wire::CampaignStatus;
use herald_workflows::scan;

/// Users `first..=last` of a fresh seed of `count`, of which only the first, the middle and
/// the last also carry `sparse`.
async fn sparse_audience(app: &TestApp, count: u32, sparse: &str) -> [i64; 3] {
    let dense = unique("dense");
    app.seed(count, &dense);
    let (first, last): (i64, i64) =
        sqlx::query_as("SELECT min(id), max(id) FROM users WHERE $1 = ANY (segments)")
            .bind(&dense)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let members = [first, first + (last - first) / 2, last];
    sqlx::query("UPDATE users SET segments = segments || $1::text WHERE id = ANY ($2)")
        .bind(sparse)
        .bind(members.as_slice())
        .execute(&app.pool)
        .await
        .unwrap();
    members
}

#[tokio::test]
async fn three_members_among_many_users_complete_in_bounded_pages() {
    let app = TestApp::spawn().await.unwrap();
    let sparse = unique("sparse");
    let members = sparse_audience(&app, 400_000, &sparse).await;
    let key = app.campaign(&sparse).page_size(100).lanes(2).launch();
    app.completes_exactly_once(&key, 3).await;

    // The pages stepped through the users in ranges of at most `scan::MAX` ids, growing from
    // sixteen pages' worth while they found nobody quickly.
    let ranges: Vec<(i64, i64, i32)> = sqlx::query_as(
        "SELECT p.after_user_id, p.scanned_to, p.recipients FROM message_pages p
         JOIN messages m ON m.id = p.message_id WHERE m.key = $1
         ORDER BY p.lane, p.after_user_id",
    )
    .bind(&key)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(ranges.len() > 4, "bounded pages: {ranges:?}");
    assert_eq!(ranges[0].1 - ranges[0].0, 1_600, "{ranges:?}");
    for (after, scanned_to, _) in &ranges {
        assert!(scanned_to - after <= scan::MAX as i64, "{ranges:?}");
    }
    let found: i32 = ranges.iter().map(|r| r.2).sum();
    assert_eq!(found, 3);
    let last_range = ranges.last().unwrap();
    assert_eq!(
        last_range.1, members[2],
        "the last page ends at the audience's last id"
    );
}

/// A paced sparse audience: while its pages find nobody, `herald status` still shows it
/// moving, by how much of the audience's user ids its pages have scanned.
#[tokio::test]
async fn progress_moves_while_pages_find_nobody() {
    let app = TestApp::spawn().await.unwrap();
    let sparse = unique("paced");
    sparse_audience(&app, 400_000, &sparse).await;
    let key = app.campaign(&sparse).lanes(1).rate(2).launch();
    app.wait_items(&key, 1, LONG).await.unwrap();
    let before = app.status(&key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = app.status(&key);
    // One page a second from 32 ids, doubling: the middle member is ~12 s away.
    assert_eq!((&before["sent"], &after["sent"]), (&1.into(), &1.into()));
    let (a, b) = (before["scanned"].as_f64(), after["scanned"].as_f64());
    assert!(
        a.unwrap() < b.unwrap() && b.unwrap() < 1.0,
        "{before}\n{after}"
    );
    assert!(
        app.herald_ok(&["status", &key])
            .contains("of the audience's user ids"),
        "herald status says how much it has scanned"
    );
    app.completes_exactly_once(&key, 3).await;
    assert_eq!(app.status(&key)["scanned"], 1.0);
}

/// While something holds a lock that page statements wait on (here the lock that a
/// `CREATE INDEX` without `CONCURRENTLY` takes on the ledger), every page runs into its limit:
/// the page is split (its range quartered, down to the page size), and then the campaign
/// fails with a reason that names the cause, after its grace. Once the lock is gone, a resume
/// goes on from the cursor, exactly once.
#[tokio::test]
async fn a_page_that_keeps_timing_out_is_split_then_fails_the_campaign_with_its_cause() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("slow");
    app.seed(3_000, &segment);
    let key = app
        .campaign(&segment)
        .page_size(100)
        .lanes(1)
        .rate(200)
        .failure_grace(3)
        .launch();
    app.wait_items(&key, 200, LONG).await.unwrap();

    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE message_items IN SHARE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    app.wait_status(&key, CampaignStatus::Failed, Duration::from_secs(120))
        .await
        .unwrap();
    lock.rollback().await.unwrap();
    let s = app.status(&key);
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("57014") && reason.contains("ran past its time limit"),
        "{s}"
    );
    assert!(reason.contains("scanning only 100 user ids"), "{s}");

    app.herald_ok(&["resume", &key, "--reason", "lock released"]);
    app.completes_exactly_once(&key, 3_000).await;
}
