//! Campaigns that run for hours: slow rates, workers that come and go, errors that retrying
//! cannot fix, and long outages. Each test here failed before pacing moved into the
//! workflow, before a stopping worker handed its campaigns over, and before errors were
//! classified.
//!
//! The database outage test stops the shared PostgreSQL server, so it is `#[ignore]`d and
//! run serially by scripts/test with the other service restarts.

use std::time::{Duration, Instant};

use herald_tests::{LONG, TestApp, stderr, wait_until};
use herald_wire::CampaignStatus;

#[tokio::test]
async fn a_slow_rate_completes_at_its_pace() {
    // At the defaults (500 per page, 8 lanes) a page every lane would wait 13 s for at
    // 300/s; pages now shrink to keep about one a second per lane, and the wait is a timer.
    let app = TestApp::spawn().await.unwrap();
    app.seed(1_500, "slow");
    let started = Instant::now();
    let key = app.campaign("slow").rate(150).launch();
    app.completes_exactly_once(&key, 1_500).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs_f64(1_500.0 / 150.0 * 0.9),
        "1,500 recipients at 150/s took only {took:?}"
    );
}

#[tokio::test]
async fn a_rate_of_one_per_second_sends_one_at_a_time() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(6, "one");
    let started = Instant::now();
    let key = app.campaign("one").rate(1).lanes(2).launch();
    // Pages of one recipient, each lane one every two seconds: never more than the rate.
    app.wait_items(&key, 2, LONG).await.unwrap();
    let early = started.elapsed();
    assert!(
        app.item_count(&key).await <= 3,
        "more than the rate allows after {early:?}"
    );
    app.completes_exactly_once(&key, 6).await;
    assert!(started.elapsed() >= Duration::from_secs(4));
    // A paced campaign pauses at once too: between pages its workflow waits on timers.
    let key = app.campaign("one").rate(1).lanes(1).launch();
    app.wait_items(&key, 1, LONG).await.unwrap();
    app.signal(&key, "pause", &[]);
    app.wait_status(&key, CampaignStatus::Paused, Duration::from_secs(10))
        .await
        .unwrap();
    let held = app.item_count(&key).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.item_count(&key).await, held, "pages ran while paused");
    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 6).await;
}

#[tokio::test]
async fn a_worker_stopped_with_sigterm_hands_a_paced_campaign_over_at_once() {
    let mut app = TestApp::spawn().await.unwrap();
    app.seed(40_000, "term");
    // 20 s of sending: far longer than any shutdown may take.
    let key = app
        .campaign("term")
        .page_size(100)
        .lanes(4)
        .rate(2_000)
        .launch();
    app.wait_items(&key, 4_000, LONG).await.unwrap();
    app.start_worker().unwrap(); // the one that takes over
    let took = app
        .stop_worker_timed()
        .expect("the stopped worker did not exit within 20 s");
    let at_exit = app.check_invariants(&key).await;
    assert!(
        took < Duration::from_secs(8),
        "the stopped worker took {took:?} to exit"
    );
    assert!(
        at_exit < 30_000,
        "the stopped worker kept the campaign: {at_exit} of 40,000 sent when it exited"
    );
    // The other worker carries on.
    app.wait_items(&key, at_exit + 2_000, Duration::from_secs(20))
        .await
        .unwrap();
    app.completes_exactly_once(&key, 40_000).await;
    assert!(
        !app.worker_log().contains("untracked local activity"),
        "{}",
        app.worker_log()
    );
}

#[tokio::test]
async fn rolling_restarts_of_a_paced_campaign_lose_and_double_nobody() {
    let mut app = TestApp::spawn().await.unwrap();
    app.seed(30_000, "roll");
    let key = app
        .campaign("roll")
        .page_size(100)
        .lanes(4)
        .rate(2_500)
        .pages_per_run(40)
        .launch();
    // A rolling deploy, three times: start the new worker, SIGTERM the old one.
    for round in 1..=3 {
        app.wait_items(&key, round * 6_000, LONG).await.unwrap();
        app.start_worker().unwrap();
        let took = app.stop_worker_timed().expect("a stopped worker hung");
        assert!(took < Duration::from_secs(8), "round {round}: {took:?}");
        app.check_invariants(&key).await;
    }
    app.completes_exactly_once(&key, 30_000).await;
}

#[tokio::test]
async fn several_campaigns_on_several_workers_survive_a_kill_and_a_sigterm() {
    let mut app = TestApp::spawn().await.unwrap();
    app.start_worker().unwrap();
    app.seed(20_000, "many");
    let keys: Vec<String> = (0..3)
        .map(|_| {
            app.campaign("many")
                .page_size(100)
                .lanes(3)
                .rate(2_000)
                .launch()
        })
        .collect();
    app.wait_items(&keys[0], 4_000, LONG).await.unwrap();
    app.kill_worker();
    app.start_worker().unwrap();
    app.wait_items(&keys[1], 10_000, LONG).await.unwrap();
    assert!(app.stop_worker(), "a stopped worker hung");
    app.start_worker().unwrap();
    for key in &keys {
        app.completes_exactly_once(key, 20_000).await;
    }
}

/// Every row inserted into the ledger fails with `insufficient_privilege`, as after a
/// deploy that lost a grant.
const BREAK_LEDGER: &str = "
CREATE FUNCTION herald_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'permission denied for table message_items' USING ERRCODE = '42501'; END $$;
CREATE TRIGGER herald_test_refuse BEFORE INSERT ON message_items
    FOR EACH ROW EXECUTE FUNCTION herald_test_refuse();";

const FIX_LEDGER: &str = "
DROP TRIGGER herald_test_refuse ON message_items;
DROP FUNCTION herald_test_refuse();";

#[tokio::test]
async fn a_permanent_error_fails_the_campaign_and_resume_continues_after_the_fix() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(20_000, "perm");
    let key = app
        .campaign("perm")
        .page_size(100)
        .lanes(4)
        .rate(4_000)
        .failure_grace(3)
        .launch();
    app.wait_items(&key, 4_000, LONG).await.unwrap();
    sqlx::raw_sql(BREAK_LEDGER)
        .execute(&app.pool)
        .await
        .unwrap();
    let broke = Instant::now();
    app.wait_status(&key, CampaignStatus::Failed, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        broke.elapsed() >= Duration::from_secs(3),
        "failed before its grace period"
    );
    let s = app.status(&key);
    let reason = s["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("42501") && reason.contains("permission denied"),
        "reason: {s}"
    );
    let human = app.herald_ok(&["status", &key]);
    assert!(
        human.contains("failed") && human.contains("42501"),
        "{human}"
    );
    // `herald watch` says what happened and how to go on, and exits non-zero.
    let watch = app.herald(&["watch", &key]);
    assert!(!watch.status.success());
    assert!(
        stderr(&watch).contains("herald resume"),
        "{}",
        stderr(&watch)
    );

    // Failed is not finished: nothing moves, and the workflow waits for an operator.
    let held = app.check_invariants(&key).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.check_invariants(&key).await, held);
    let out = app.herald(&["pause", &key]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    sqlx::raw_sql(FIX_LEDGER).execute(&app.pool).await.unwrap();
    app.herald_ok(&["resume", &key, "--reason", "grant restored"]);
    app.completes_exactly_once(&key, 20_000).await;
}

#[tokio::test]
async fn a_permanent_error_that_heals_within_the_grace_period_is_only_retried() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(10_000, "blip");
    let key = app
        .campaign("blip")
        .page_size(100)
        .lanes(2)
        .rate(4_000)
        .failure_grace(30)
        .launch();
    app.wait_items(&key, 2_000, LONG).await.unwrap();
    sqlx::raw_sql(BREAK_LEDGER)
        .execute(&app.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sqlx::raw_sql(FIX_LEDGER).execute(&app.pool).await.unwrap();
    app.completes_exactly_once(&key, 10_000).await;
    assert!(app.status(&key)["reason"].is_null());
}

/// How long the outage lasts: `HERALD_OUTAGE_SECS`, 600 (ten minutes) unless set.
fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("HERALD_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    )
}

fn services(command: &str) {
    let status = std::process::Command::new(herald_tests::repo_root().join("scripts/services"))
        .arg(command)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/services {command}");
}

#[tokio::test]
#[ignore = "stops the shared PostgreSQL server; scripts/test runs it serially"]
async fn a_long_database_outage_is_waited_out_with_a_bounded_history() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(40_000, "out");
    let key = app
        .campaign("out")
        .page_size(100)
        .lanes(4)
        .rate(4_000)
        .launch();
    app.wait_items(&key, 8_000, LONG).await.unwrap();
    services("stop-postgres");
    let down = Instant::now();
    let outage = outage();
    eprintln!("[outage] PostgreSQL stopped for {outage:?}");
    while down.elapsed() < outage {
        tokio::time::sleep(Duration::from_secs(30).min(outage)).await;
        eprintln!(
            "[outage] {:>4}s down; history lengths {:?}",
            down.elapsed().as_secs(),
            herald_tests::history_lengths(&key)
        );
    }
    services("up");
    let lengths = herald_tests::history_lengths(&key);
    eprintln!("[outage] PostgreSQL back; history lengths {lengths:?}");
    wait_until(LONG, || async {
        sqlx::query("SELECT 1").execute(&app.pool).await.is_ok()
    })
    .await
    .unwrap();
    app.completes_exactly_once(&key, 40_000).await;
    let lengths = herald_tests::history_lengths(&key);
    eprintln!("[outage] completed; history lengths {lengths:?}");
    assert!(!lengths.is_empty());
    assert!(
        lengths.iter().all(|n| (0..10_240).contains(n)),
        "a run's history passed Temporal's warning: {lengths:?}"
    );
}
