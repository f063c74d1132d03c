//! The page statement's plan must not depend on the planner's statistics of `users`.

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
