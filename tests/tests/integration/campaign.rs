//! The campaign engine end to end, against the real Temporal dev server and PostgreSQL.

use std::time::Duration;

use herald_store::campaigns;
use herald_tests::{LONG, TestApp, stderr};
use herald_wire::{CampaignKey, CampaignSpec, CampaignStatus, Content, Segment, audience::Filter};

#[tokio::test]
async fn a_campaign_delivers_exactly_one_item_per_recipient() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(3_001, "everyone");
    app.seed(400, "others"); // not in the audience
    let key = app.campaign("everyone").page_size(100).lanes(3).launch();
    app.completes_exactly_once(&key, 3_001).await;
    let other: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_items i JOIN users u ON u.id = i.user_id WHERE 'others' = ANY(u.segments)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(other, 0, "users outside the segment got the message");
}

#[tokio::test]
async fn users_added_after_launch_are_not_in_the_audience() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(2_000, "s");
    let key = app.campaign("s").page_size(50).lanes(1).launch();
    app.seed(500, "s");
    app.completes_exactly_once(&key, 2_000).await;
}

#[tokio::test]
async fn pause_holds_still_and_resume_completes_exactly() {
    let app = TestApp::spawn().await.unwrap();
    let (lanes, page) = (2_i64, 100_i64);
    let key = app.sending("p", 30_000, 2).await;

    app.herald_ok(&["pause", &key, "--reason", "wrong link"]);
    let at_return = app.item_count(&key).await;
    // Several page durations: nothing may move beyond the pages already in flight.
    let mut seen = Vec::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        seen.push(app.item_count(&key).await);
    }
    let held = *seen.last().unwrap();
    assert!(
        held - at_return <= lanes * page,
        "at most one page per lane after pause returns: {at_return} -> {held}"
    );
    assert!(
        seen.windows(2).skip(1).all(|w| w[0] == w[1]),
        "items moved while paused: {seen:?}"
    );
    assert!(
        held < 30_000,
        "the campaign finished before the pause could be tested"
    );
    let s = app.status(&key);
    assert_eq!(s["status"], CampaignStatus::Paused.code(), "{s}");
    assert_eq!(s["reason"], "wrong link", "{s}");
    assert_eq!(
        s["sent"], held,
        "counters equal the ledger while paused: {s}"
    );
    assert_eq!(s["pending"], 30_000 - held, "sum rule while paused: {s}");

    // A second pause repeats the first (a lost signal is delivered this way) and changes
    // nothing.
    assert_eq!(app.request_row(&key).await, (1, 1));
    let again = app.herald_ok(&["pause", &key]);
    assert!(again.contains("again"), "{again}");
    assert_eq!(app.request_row(&key).await, (1, 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.item_count(&key).await, held);

    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 30_000).await;
}

#[tokio::test]
async fn cancel_stops_the_campaign_and_no_page_runs_after_it() {
    let app = TestApp::spawn().await.unwrap();
    let key = app.sending("c", 30_000, 2).await;
    app.herald_ok(&["cancel", &key, "--reason", "changed our mind"]);
    let at_return = app.item_count(&key).await;
    app.ends_cancelled(&key).await;
    let after = app.item_count(&key).await;
    assert!(after - at_return <= 2 * 100, "{at_return} -> {after}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.item_count(&key).await, after, "pages ran after cancel");
    let s = app.status(&key);
    assert_eq!(s["status"], CampaignStatus::Cancelled.code(), "{s}");
    assert_eq!(s["sent"], after, "{s}");
    // Cancelling or resuming a cancelled campaign is refused.
    for verb in ["cancel", "resume", "pause"] {
        let out = app.herald(&[verb, &key]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{verb}: {}",
            herald_tests::stderr(&out)
        );
    }
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Cancelled));
}

#[tokio::test]
async fn a_future_send_at_waits_and_cancel_works_during_the_wait() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(500, "f");
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let key = app.campaign("f").send_at(at).launch();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.db_status(&key).await,
        Some(CampaignStatus::NotStarted),
        "still waiting for send_at"
    );
    assert_eq!(app.item_count(&key).await, 0);
    app.herald_ok(&["cancel", &key]);
    app.ends_cancelled(&key).await;
    assert_eq!(app.item_count(&key).await, 0);
}

#[tokio::test]
async fn a_near_send_at_starts_on_time() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(300, "n");
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let key = app.campaign("n").send_at(at).launch();
    app.completes_exactly_once(&key, 300).await;
    let started: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT started_at FROM messages WHERE key = $1")
            .bind(&key)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(started >= at, "started {started} before send_at {at}");
}

/// Launching is idempotent by key: the same launch again reports the campaign (exit 0),
/// before and after it ends; a different campaign under the same key is refused (exit 2),
/// naming what differs; either way one campaign is sent, once.
#[tokio::test]
async fn launching_a_key_again_reports_it_and_a_different_spec_is_refused() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(200, "d");
    let launch = app.campaign("d").lanes(2);
    let key = launch.clone().launch();
    let again = launch.run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), key);
    assert!(
        stderr(&again).contains("already launched"),
        "{}",
        stderr(&again)
    );

    let other = app.campaign("d").key(&key).lanes(3).rate(1000).run();
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    let err = stderr(&other);
    assert!(
        err.contains("already exists with a different lanes, rate"),
        "{err}"
    );

    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let after = launch.run();
    assert!(after.status.success(), "{}", stderr(&after));
    assert!(stderr(&after).contains("completed"), "{}", stderr(&after));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    app.assert_exactly_once(&key, 200).await;
}

/// A launch interrupted after the campaign's row was written and before its workflow
/// started (the CLI killed, the reply lost) is finished by the same launch again.
#[tokio::test]
async fn an_interrupted_launch_is_finished_by_launching_again() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(300, "cut");
    let launch = app.campaign("cut");
    let key = launch.args()[2].clone();
    // What `herald launch` writes before it starts the workflow.
    let spec = CampaignSpec {
        content: Content::new("Hello", "A message").unwrap(),
        channel: Default::default(),
        category: Default::default(),
        audience: Some(Filter::Segment(Segment::parse("cut").unwrap())),
        send_at: None,
        send_at_local: None,
        fallback_timezone: None,
        past_zones: None,
        quiet_hours: None,
        frequency_cap: None,
        page_size: Default::default(),
        lanes: Default::default(),
        execution: Default::default(),
        rate: None,
        webhook_url: None,
        attempts: None,
    };
    let created = campaigns::create(
        &app.pool,
        &CampaignKey::parse(&key).unwrap(),
        &spec,
        &Default::default(),
        None,
        "test",
    )
    .await
    .unwrap();
    assert!(matches!(created, campaigns::Created::New(_)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.item_count(&key).await,
        0,
        "nothing runs without a workflow"
    );

    let again = launch.run();
    assert!(again.status.success(), "{}", stderr(&again));
    app.completes_exactly_once(&key, 300).await;
}

#[tokio::test]
async fn reading_twice_counts_once() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(100, "r");
    let key = app.campaign("r").launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let user: i64 = sqlx::query_scalar("SELECT min(id) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let user = user.to_string();
    assert!(app.herald_ok(&["read", &user, &key]).contains("read"));
    assert!(app.herald_ok(&["read", &user, &key]).contains("already"));
    let s = app.status(&key);
    assert_eq!(s["read"], 1, "{s}");
    assert!(
        (s["read_rate"].as_f64().unwrap() - 0.01).abs() < 1e-9,
        "{s}"
    );
    let inbox: serde_json::Value =
        serde_json::from_str(&app.herald_ok(&["inbox", &user, "--json"])).unwrap();
    assert_eq!(inbox[0]["key"], key.as_str());
    assert!(inbox[0]["read_at"].is_string(), "{inbox}");
    // A user who exists but did not receive it, and one who does not exist: both refused,
    // and neither counts.
    app.seed(1, "not-r");
    let outsider: i64 = sqlx::query_scalar("SELECT max(id) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let out = app.herald(&["read", &outsider.to_string(), &key]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did not receive"), "{}", stderr(&out));
    let out = app.herald(&["read", "999999", &key]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no user"), "{}", stderr(&out));
    assert_eq!(app.status(&key)["read"], 1);
}

#[tokio::test]
async fn regular_activities_deliver_exactly_once_too() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(2_500, "reg");
    let key = app
        .campaign("reg")
        .execution("regular")
        .page_size(100)
        .lanes(3)
        .launch();
    app.completes_exactly_once(&key, 2_500).await;
}

/// Users added by another system, with ids far past the ledger partitions made so far: the
/// launch makes their partitions before any page runs, and pages that cross from one
/// partition into the next write every recipient exactly once.
#[tokio::test]
async fn a_launch_makes_ledger_partitions_for_users_beyond_them() {
    let app = TestApp::spawn().await.unwrap();
    // 20,001 users around id 5,000,000: two partitions' worth, none of which exists yet.
    sqlx::query(
        "INSERT INTO users (id, email, segments)
         SELECT g, 'u' || g || '@example.com', ARRAY['far'] FROM generate_series(4990000, 5010000) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let partition_of = |user: i64| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT 'message_items_' || lower FROM herald_ledger_partition_of($1)",
            )
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let exists = |table: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(!exists(partition_of(5_000_000).await).await);

    let key = app.campaign("far").page_size(500).lanes(3).launch();
    app.completes_exactly_once(&key, 20_001).await;
    for user in [4_990_000, 5_000_000, 5_010_000] {
        let holder: String = sqlx::query_scalar(
            "SELECT tableoid::regclass::text FROM message_items WHERE user_id = $1",
        )
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(holder, partition_of(user).await, "user {user}'s ledger row");
    }
}

/// A user base with ids up to 100,000,000 (explicit ids, as an import gives them): the
/// launch makes the partitions in batches (a bounded number of them), the campaign
/// completes, and per-campaign questions (its counts, its failures) open only the
/// partitions they need, so a few of them at once cannot exhaust the lock table.
#[tokio::test]
async fn a_ledger_of_a_hundred_million_ids_launches_completes_and_prunes() {
    let app = TestApp::spawn().await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, email, segments)
         SELECT g, 'u' || g || '@example.com', ARRAY['big']
         FROM (SELECT generate_series(1, 1000) UNION ALL SELECT generate_series(50000001, 50000500)
               UNION ALL SELECT generate_series(99999501, 100000000)) s(g)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let key = app.campaign("big").lanes(4).launch();
    app.completes_exactly_once(&key, 2_000).await;
    let partitions = herald_store::partitions::count(&app.pool).await.unwrap();
    assert!(
        (100..=160).contains(&partitions),
        "{partitions} partitions for ids up to 100,000,000"
    );

    // A failure, written as a channel writes one: the item and its page row.
    let victim = 50_000_100_i64;
    sqlx::query(
        "WITH m AS (SELECT id FROM messages WHERE key = $1),
         item AS (
            UPDATE message_items SET status = 2, error = 'bounced'
            WHERE message_id = (SELECT id FROM m) AND user_id = $2 RETURNING 1
         )
         UPDATE message_pages SET sent = sent - 1, failed = failed + 1
         WHERE message_id = (SELECT id FROM m) AND after_user_id < $2 AND last_user_id >= $2
           AND EXISTS (SELECT 1 FROM item)",
    )
    .bind(&key)
    .bind(victim)
    .execute(&app.pool)
    .await
    .unwrap();
    let parsed = CampaignKey::parse(&key).unwrap();
    let failures = herald_store::items::failures(&app.pool, &parsed, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        failures.iter().map(|f| f.user_id).collect::<Vec<_>>(),
        vec![victim]
    );
    assert_eq!(failures[0].error.as_deref(), Some("bounced"));
    let s = app.status(&key);
    assert_eq!(
        (s["sent"].as_i64(), s["failed"].as_i64()),
        (Some(1_999), Some(1))
    );

    // What per-campaign questions lock: the campaign's view and a failure range, each in a
    // transaction that then counts its own relation locks.
    let mut tx = app.pool.begin().await.unwrap();
    let id: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE key = $1")
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "SELECT coalesce(sum(sent), 0), coalesce(sum(failed), 0),
                (SELECT coalesce(sum(reads), 0) FROM message_reads WHERE message_id = $1)
         FROM message_lanes WHERE message_id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "SELECT user_id FROM message_items
         WHERE message_id = $1 AND user_id > $2 AND user_id <= $3 AND status = 2",
    )
    .bind(id)
    .bind(victim - 50)
    .bind(victim + 50)
    .persistent(false)
    .execute(&mut *tx)
    .await
    .unwrap();
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation IS NOT NULL",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        locks < 20,
        "per-campaign questions took {locks} relation locks"
    );
}

/// The extremes of page size and lanes, end to end: pages of one, the largest pages, more
/// lanes than recipients, and the most lanes over a sparse audience.
#[tokio::test]
async fn extreme_page_sizes_and_lane_counts_deliver_exactly_once() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(120, "tiny");
    app.seed(12_000, "wide");
    app.seed(10, "few");
    let keys = [
        (app.campaign("tiny").page_size(1).lanes(1).launch(), 120),
        (app.campaign("tiny").page_size(1).lanes(64).launch(), 120),
        (
            app.campaign("wide").page_size(10_000).lanes(1).launch(),
            12_000,
        ),
        (
            app.campaign("wide").page_size(10_000).lanes(64).launch(),
            12_000,
        ),
        (app.campaign("few").page_size(500).lanes(64).launch(), 10),
    ];
    for (key, audience) in &keys {
        app.completes_exactly_once(key, *audience).await;
    }
}

/// A key already used on the Temporal namespace by another ledger's campaign is refused,
/// and the launch leaves nothing behind (it must not wait forever on the other workflow).
#[tokio::test]
async fn a_key_used_by_another_ledger_is_refused() {
    let one = TestApp::spawn().await.unwrap();
    let two = TestApp::spawn().await.unwrap();
    one.seed(20, "k");
    two.seed(20, "k");
    let key = one.campaign("k").launch();
    let out = two.campaign("k").key(&key).run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already used"), "{}", stderr(&out));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&two.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    one.completes_exactly_once(&key, 20).await;
}

/// Users who join the segment during the run are sent to (segment membership is read as each
/// page runs), and the numbers say so instead of going negative: `pending` stays at 0 or
/// above, and `audience_change` counts the newcomers.
#[tokio::test]
async fn an_audience_that_grows_during_the_run_is_reported_not_negative() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(4_000, "grow");
    app.seed(1_000, "later");
    // Interleave the two groups' ids: every user of "later" lies inside the audience's range.
    sqlx::query(
        "UPDATE users SET segments = ARRAY['later'] WHERE id % 5 = 0 AND 'grow' = ANY(segments)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let counted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE 'grow' = ANY(segments)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let key = app
        .campaign("grow")
        .lanes(1)
        .page_size(100)
        .rate(1_000)
        .send_at(chrono::Utc::now() + chrono::Duration::seconds(2))
        .launch();
    // Counted at launch; now every user with an id in range joins the segment before the
    // pages reach them.
    sqlx::query(
        "UPDATE users SET segments = ARRAY['grow'] WHERE 'later' = ANY(segments) AND id < 4000",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let s = app.status(&key);
    let sent = s["sent"].as_i64().unwrap();
    assert_eq!(s["total"], counted, "{s}");
    assert!(sent > counted, "the newcomers were sent to: {s}");
    assert_eq!(s["pending"], 0, "{s}");
    assert_eq!(s["audience_change"], sent - counted, "{s}");
    let text = app.herald_ok(&["status", &key]);
    assert!(text.contains("audience  changed during the run"), "{text}");
    assert!(text.contains("(100.0%)"), "{text}");
}
