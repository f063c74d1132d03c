//! Plans that must not depend on the planner's choice: the page statement's on the
//! statistics of `users`, the inbox's on which user it was first prepared for.

use herald_store::{
    connect::{self, PoolSettings},
    filter, pages,
};
use herald_tests::TestApp;
use herald_wire::{PageInput, Segment, audience::Filter};
use herald_workflows::options::PAGE_STATEMENT_TIMEOUT;

/// A `users` table loaded in bulk and never analyzed (what a fresh import looks like until
/// autovacuum gets to it): with bitmap scans allowed, PostgreSQL plans each page as a bitmap
/// over the lane's whole remaining id range plus a sort (docs/performance.md has what that
/// costs). The worker's connections walk the primary key.
#[tokio::test]
async fn pages_walk_the_primary_key_even_without_statistics() {
    let app = TestApp::without_worker().await.unwrap();
    // Keep autovacuum from analyzing the table while the test looks at its plans.
    sqlx::query("ALTER TABLE users SET (autovacuum_enabled = false)")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (email, segments)
         SELECT 'u' || g || '@example.com', ARRAY['p'] FROM generate_series(1, 200000) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let page = PageInput {
        campaign_id: 1,
        lane: 0,
        after: 0,
        until: 200_000,
        scan: None,
        limit: 500,
        channel: Default::default(),
        delay_millis: 0,
    };

    let cli = connect::connect(&app.database_url, &PoolSettings::cli(1))
        .await
        .unwrap();
    let worker = connect::connect(
        &app.database_url,
        &PoolSettings::worker(2, PAGE_STATEMENT_TIMEOUT, false),
    )
    .await
    .unwrap();
    let segment = Filter::Segment(Segment::parse("p").unwrap());
    let audience = filter::compile(
        &segment,
        &Default::default(),
        pages::AUDIENCE_PARAMS,
        chrono::Utc::now(),
    )
    .unwrap();
    let unguarded = pages::explain(&cli, &page, &audience).await.unwrap();
    let guarded = pages::explain(&worker, &page, &audience).await.unwrap();

    // Without the guard the planner does pick the bitmap plan here, so this test can fail.
    assert!(
        unguarded.contains("Bitmap"),
        "expected the bitmap plan:\n{unguarded}"
    );
    assert!(
        guarded.contains("Index Scan using users_pkey on users") && !guarded.contains("Bitmap"),
        "the page does not walk users_pkey:\n{guarded}"
    );
}

/// The inbox's statements are prepared once per session and kept, and still planned for the
/// user they are run with: a plan kept for any user would open and lock every partition of
/// `message_items` at each use. Read from PostgreSQL's own count of the session's plans.
/// (PostgreSQL 15's own choice keeps custom plans here too, because a generic plan's cost
/// counts every partition; the sessions' `plan_cache_mode` makes it a rule, not an estimate.)
#[tokio::test]
async fn the_inbox_is_planned_for_each_user_though_its_statement_is_kept() {
    use herald_store::{inbox, partitions};
    let app = TestApp::without_worker().await.unwrap();
    sqlx::query(
        "INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 100) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // Partitions far beyond the users, as a ledger that has grown has them.
    partitions::cover(&app.pool, Some(40_000_000))
        .await
        .unwrap();
    let server = connect::connect(
        &app.database_url,
        &PoolSettings::server(1, std::time::Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&server)
        .await
        .unwrap();
    assert_eq!(mode, "force_custom_plan");
    // Apps' inbox requests run on sessions of their own, opened with the same settings.
    let apps = herald_store::quiet_pool::QuietPool::new(&server, 1);
    let mut lease = apps.any().await.unwrap();
    let theirs: Result<String, sqlx::Error> = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&mut *lease)
        .await;
    lease.finish(&theirs);
    assert_eq!(
        theirs.unwrap(),
        "force_custom_plan",
        "the API's sessions for apps"
    );
    // In one transaction, so that every relation a use opened stays locked until the count.
    let mut tx = server.begin().await.unwrap();
    for user in 1..=12 {
        inbox::page(&mut *tx, user, Default::default(), None, 21)
            .await
            .unwrap();
    }
    let (custom, generic): (i64, i64) = sqlx::query_as(
        "SELECT custom_plans, generic_plans FROM pg_prepared_statements
         WHERE statement LIKE 'WITH me AS%'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        (custom, generic),
        (12, 0),
        "the inbox statement's plans (custom, generic)"
    );
    let (partitions, locked): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'message_items'::regclass),
                (SELECT count(DISTINCT l.relation) FROM pg_locks l
                 JOIN pg_inherits i ON i.inhrelid = l.relation
                 WHERE l.pid = pg_backend_pid() AND i.inhparent = 'message_items'::regclass)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert!(partitions > 50, "{partitions} partitions");
    assert_eq!(
        locked, 1,
        "partitions locked by 12 users' inboxes, all in the first"
    );
}
