//! Bad input is refused with one clear line, a non-zero exit, and no change.

use herald_store::{connect::MIGRATOR, status::STATUS_NOTIFICATIONS};
use herald_tests::{LONG, TestApp, stderr, workflow_id};
use herald_wire::CampaignStatus;
use sqlx::postgres::PgListener;

fn assert_refused(out: &std::process::Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

async fn campaigns(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(100, "b");

    for verb in ["status", "pause", "resume", "cancel", "watch"] {
        assert_refused(&app.herald(&[verb, "no-such-campaign"]), 2, "no campaign");
    }
    let launch = |extra: &[&str]| {
        let mut args = vec!["launch", "--title", "T", "--body", "B", "--segment", "b"];
        args.extend_from_slice(extra);
        app.herald(&args)
    };
    assert_refused(&launch(&["--send-at", "next tuesday"]), 2, "RFC 3339");
    assert_refused(
        &launch(&["--send-at", "2026-13-01T00:00:00Z"]),
        2,
        "RFC 3339",
    );
    assert_refused(&launch(&["--page-size", "0"]), 2, "page size");
    assert_refused(&launch(&["--key", "has space"]), 2, "campaign key");
    assert_refused(
        &app.herald(&[
            "launch",
            "--title",
            "T",
            "--body",
            "B",
            "--segment",
            "nobody",
        ]),
        2,
        "audience is empty",
    );
    let big = "x".repeat(32 * 1024 + 1);
    assert_refused(
        &app.herald(&["launch", "--title", "T", "--body", &big, "--segment", "b"]),
        2,
        "limit",
    );
    assert_refused(
        &app.herald(&["users", "seed", "--count", "0"]),
        2,
        "--count",
    );
    assert_refused(&app.herald(&["inbox", "424242"]), 2, "no user");
    assert_refused(
        &app.herald_with_env(&["list"], &[("RUST_LOG", "a=b=c")]),
        2,
        "is not a log filter",
    );
    assert_eq!(
        campaigns(&app).await,
        0,
        "a refused launch wrote a campaign"
    );

    // A finished campaign cannot be paused, resumed or cancelled; its status stays 3.
    let key = app.campaign("b").launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    for verb in ["pause", "resume", "cancel"] {
        assert_refused(&app.herald(&[verb, &key]), 2, "completed");
    }
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Completed));
    assert_eq!(app.status(&key)["sent"], 100);
}

#[tokio::test]
async fn unreachable_services_are_named() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(50, "u");
    let no_db = app.herald_with_env(
        &["status", "anything"],
        &[("DATABASE_URL", "postgres://herald@127.0.0.1:1/herald")],
    );
    assert_refused(&no_db, 1, "cannot reach PostgreSQL");
    let launch = ["launch", "--title", "T", "--body", "B", "--segment", "u"];
    let no_temporal = app.herald_with_env(&launch, &[("TEMPORAL_ADDRESS", "127.0.0.1:1")]);
    assert_refused(&no_temporal, 1, "cannot reach Temporal");
    assert_eq!(
        campaigns(&app).await,
        0,
        "a failed launch left a campaign behind"
    );

    // A pause that cannot reach Temporal leaves the campaign as it was.
    let key = app
        .campaign("u")
        .send_at(chrono::Utc::now() + chrono::Duration::hours(1))
        .launch();
    let out = app.herald_with_env(&["pause", &key], &[("TEMPORAL_ADDRESS", "127.0.0.1:1")]);
    assert_refused(&out, 1, "cannot reach Temporal");
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::NotStarted));
    app.herald_ok(&["cancel", &key]);
}

/// A request to a campaign whose workflow was terminated by hand is not lost: it is
/// recorded, and a new run is started that takes it (here, while waiting for its send time).
#[tokio::test]
async fn a_request_to_a_campaign_whose_workflow_is_gone_starts_a_run_that_takes_it() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(50, "g");
    let key = app
        .campaign("g")
        .send_at(chrono::Utc::now() + chrono::Duration::hours(1))
        .launch();
    app.herald_ok(&["pause", &key, "--reason", "first look"]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    app.herald_ok(&["resume", &key, "--reason", "looks fine"]);
    app.wait_status(&key, CampaignStatus::NotStarted, LONG)
        .await
        .unwrap();
    let out = app.temporal(&["workflow", "terminate", "--workflow-id", &workflow_id(&key)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(app.request_row(&key).await, (0, 2));

    let out = app.herald_ok(&["pause", &key, "--reason", "second look"]);
    assert!(out.contains("a new run was started"), "{out}");
    assert_eq!(
        app.request_row(&key).await,
        (1, 3),
        "the pause is the newest request"
    );
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    assert_eq!(app.status(&key)["reason"], "second look");
    // The new run is the campaign's workflow now: a request reaches it as usual.
    let out = app.herald_ok(&["resume", &key]);
    assert!(!out.contains("a new run was started"), "{out}");
    app.wait_status(&key, CampaignStatus::NotStarted, LONG)
        .await
        .unwrap();
    assert_eq!(app.item_count(&key).await, 0, "sent before its time");
}

/// Migrating is a deliberate step: a database without Herald's schema is refused by every
/// other command and by a worker (with a hint, and nothing written), and `herald migrate`
/// creates it.
#[tokio::test]
async fn only_herald_migrate_changes_the_schema() {
    let app = TestApp::without_worker().await.unwrap();
    let empty = herald_tests::unique("herald_t");
    sqlx::query(&format!("CREATE DATABASE {empty}"))
        .execute(&app.pool)
        .await
        .unwrap();
    let (prefix, _) = app.database_url.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{empty}");
    let tables = || async {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        n
    };

    for args in [
        &["users", "seed", "--count", "10"][..],
        &["list"],
        &["status", "k"],
    ] {
        let out = app.herald_with_env(args, &[("DATABASE_URL", url.as_str())]);
        assert_refused(&out, 2, "herald migrate");
    }
    let worker = app.worker_once(&[("DATABASE_URL", url.as_str())]);
    assert!(!worker.status.success());
    assert!(
        stderr(&worker).contains("herald migrate"),
        "{}",
        stderr(&worker)
    );
    assert_eq!(
        tables().await,
        0,
        "a command other than migrate wrote the schema"
    );

    let out = app.herald_with_env(&["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tables().await > 0);
    let out = app.herald_with_env(
        &["users", "seed", "--count", "10"],
        &[("DATABASE_URL", url.as_str())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = app.herald_with_env(&["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());
    // A schema changed behind Herald's back is named, not used.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'")
        .execute(&mut conn)
        .await
        .unwrap();
    let out = app.herald_with_env(&["list"], &[("DATABASE_URL", url.as_str())]);
    assert_refused(&out, 1, "another build of Herald");
    sqlx::Connection::close(conn).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {empty}"))
        .execute(&app.pool)
        .await
        .unwrap();
}

/// Every status change is announced on `herald_status` with the campaign's key, which is how
/// `herald watch` reports the end of a campaign without waiting for its next look; and
/// `herald watch` on a finished campaign prints the outcome and exits 0.
#[tokio::test]
async fn status_changes_are_announced_and_watch_reports_the_end() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(2_000, "w");
    let mut changes = PgListener::connect_with(&app.pool).await.unwrap();
    changes.listen(STATUS_NOTIFICATIONS).await.unwrap();

    let key = app.campaign("w").page_size(100).lanes(2).launch();
    // In progress, then completed: two changes, each announced once.
    for _ in 0..2 {
        let change = tokio::time::timeout(LONG, changes.recv())
            .await
            .expect("a status change is announced")
            .unwrap();
        assert_eq!(change.payload(), key);
    }
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Completed));

    let out = app.herald(&["watch", &key]);
    assert!(out.status.success(), "watch failed: {}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("{key} completed")) && printed.contains("2000 sent"),
        "{printed}"
    );
}

/// `herald watch` exits non-zero when the campaign ends cancelled, so a script can tell.
#[tokio::test]
async fn watch_exits_non_zero_for_a_cancelled_campaign() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(50, "wc");
    let key = app
        .campaign("wc")
        .send_at(chrono::Utc::now() + chrono::Duration::hours(1))
        .launch();
    app.herald_ok(&["cancel", &key, "--reason", "wrong audience"]);
    app.ends_cancelled(&key).await;
    let out = app.herald(&["watch", &key]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{key} cancelled")),
        "{out:?}"
    );
    assert!(stderr(&out).contains("wrong audience"), "{}", stderr(&out));
}

/// Test users go only to a database on this machine unless asked: a mistyped DATABASE_URL
/// must not fill a production server with fake users.
#[tokio::test]
async fn seeding_a_database_on_another_machine_is_refused() {
    let app = TestApp::without_worker().await.unwrap();
    let out = app.herald_with_env(
        &["users", "seed", "--count", "5"],
        &[("DATABASE_URL", "postgres://herald:pw@db.example.com/herald")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--allow-remote") && !err.contains(":pw@"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
