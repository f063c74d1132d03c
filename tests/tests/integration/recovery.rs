//! A campaign whose workflow is gone can always be recovered: terminated by hand with the
//! `temporal` CLI mid-send, while paused, and with a webhook page's sends cut short, `herald
//! status` says no workflow runs it, and `herald resume` starts a new run that goes on from
//! the ledger's cursors, reaching everyone exactly once.

use std::time::Duration;

use herald_tests::{
    LONG, TestApp, history_lengths,
    sinks::{WEBHOOK_SECRET, WebhookSink, webhook::Faults},
    stderr, unique, workflow_id,
};
use herald_wire::CampaignStatus;

/// Terminate the campaign's workflow as an operator would, and wait until Temporal says so.
async fn terminate(app: &TestApp, key: &str) {
    let wid = workflow_id(key);
    let out = app.temporal(&[
        "workflow",
        "terminate",
        "--workflow-id",
        &wid,
        "--reason",
        "lost in a test",
    ]);
    assert!(out.status.success(), "terminate: {}", stderr(&out));
}

/// `herald status` names the missing workflow, and what to do.
fn says_no_workflow(app: &TestApp, key: &str) {
    let text = app.herald_ok(&["status", key]);
    assert!(
        text.contains("no workflow is running this campaign")
            && text.contains(&format!("herald resume {key}")),
        "{text}"
    );
}

fn resume_recovers(app: &TestApp, key: &str) {
    let out = app.herald_ok(&["resume", key]);
    assert!(out.contains("a new run was started"), "{out}");
}

#[tokio::test]
async fn a_campaign_terminated_mid_send_is_resumed_from_its_cursors() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("lost");
    app.seed(20_000, &segment);
    let key = app
        .campaign(&segment)
        .page_size(100)
        .lanes(3)
        .rate(2_000)
        .pages_per_run(25)
        .launch();
    app.wait_items(&key, 10_000, LONG).await.unwrap();
    terminate(&app, &key).await;
    says_no_workflow(&app, &key);
    // Pages in flight finish; then nothing moves while no workflow runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = app.item_count(&key).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.item_count(&key).await, settled, "sent with no workflow");
    let runs_before = history_lengths(&key).len();

    resume_recovers(&app, &key);
    app.completes_exactly_once(&key, 20_000).await;
    // The new run went on from the cursors: a run continues as new every 25 pages, and the
    // recovery took only as many runs as the pages left (walking every page again would take
    // nine).
    let left = (20_000 - settled) / 100 + 3;
    let runs = history_lengths(&key).len() - runs_before;
    assert!(
        runs as i64 <= (left + 24) / 25 + 1,
        "{runs} runs for {left} pages left"
    );
    // It counts every page row once, the earlier ones from the ledger.
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_pages p JOIN messages m ON m.id = p.message_id WHERE m.key = $1",
    )
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let p = app.progress(&key);
    assert_eq!(p["pages_done"].as_i64(), Some(rows), "{p}");
}

#[tokio::test]
async fn a_paused_campaign_whose_workflow_is_gone_resumes_and_completes() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("lostp");
    app.seed(6_000, &segment);
    let key = app
        .campaign(&segment)
        .page_size(100)
        .lanes(2)
        .rate(1_000)
        .launch();
    app.wait_items(&key, 1_000, LONG).await.unwrap();
    app.herald_ok(&["pause", &key, "--reason", "checking the copy"]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    terminate(&app, &key).await;
    says_no_workflow(&app, &key);
    // A pause asked of it now starts a run that holds it paused, and nothing is sent.
    let held = app.item_count(&key).await;
    let out = app.herald_ok(&["pause", &key, "--reason", "still checking"]);
    assert!(out.contains("a new run was started"), "{out}");
    herald_tests::wait_until(LONG, || async {
        app.status(&key)["reason"] == "still checking"
    })
    .await
    .unwrap();
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Paused));
    assert_eq!(app.item_count(&key).await, held, "sent while paused");

    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 6_000).await;
}

#[tokio::test]
async fn a_webhook_campaign_cut_off_mid_page_reaches_everyone_once_recorded() {
    let app = TestApp::spawn().await.unwrap();
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    // Some receivers answer slowly: pages are in flight, with recipients pending, when the
    // workflow goes.
    sink.set_faults(Faults {
        hang: 0.02,
        hang_for: Duration::from_millis(1_500),
        ..Faults::default()
    });
    let segment = unique("lostw");
    app.seed(3_000, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .page_size(100)
        .lanes(3)
        .launch();
    herald_tests::wait_until(LONG, || async { sink.delivered() >= 600 })
        .await
        .unwrap();
    terminate(&app, &key).await;
    says_no_workflow(&app, &key);
    sink.set_faults(Faults::default());
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_pages p JOIN messages m ON m.id = p.message_id
         WHERE m.key = $1 AND p.recipients > p.sent + p.failed",
    )
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    eprintln!("[recovery] pages with pending recipients at the resume: {open}");

    resume_recovers(&app, &key);
    app.completes_exactly_once(&key, 3_000).await;
    assert_eq!(sink.delivered(), 3_000, "everyone reached");
    // A page cut short is sent again to its pending recipients only, with the same ids:
    // at most the pages in flight (one per lane) repeat.
    assert!(
        sink.duplicates() <= 300,
        "repeats beyond the pages in flight: {}",
        sink.duplicates()
    );
    assert_eq!(sink.bad_signatures(), 0);
}

#[tokio::test]
async fn retry_failed_the_moment_a_campaign_completes_runs_at_its_current_rate() {
    let app = TestApp::spawn().await.unwrap();
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    sink.set_faults(Faults {
        always: Some(410),
        ..Faults::default()
    });
    let segment = unique("race");
    app.seed(2_000, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .option("auto-pause", "0")
        .page_size(100)
        .lanes(2)
        .rate(1_000)
        .launch();
    app.herald_ok(&["rate", &key, "400"]);
    // The receiver is fixed; the retry is asked the moment the row says completed, while
    // the last run may still be closing.
    herald_tests::wait_until(LONG, || async {
        app.db_status(&key).await == Some(CampaignStatus::Completed)
    })
    .await
    .unwrap();
    sink.set_faults(Faults::default());
    let asked = std::time::Instant::now();
    let out = app.herald_ok(&["retry-failed", &key]);
    assert!(out.contains("retrying 2000 failed deliveries"), "{out}");
    app.completes_exactly_once(&key, 2_000).await;
    assert_eq!(sink.delivered(), 2_000);
    // At 400 a second (not the launch's 1,000), 2,000 recipients take about five seconds.
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(3_500), "retried in {took:?}");
    // The closing run never moved the reopened row back: its history shows one completion
    // before the retry and one after.
    let completions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_status_log l JOIN messages m ON m.id = l.message_id
         WHERE m.key = $1 AND l.status = $2",
    )
    .bind(&key)
    .bind(CampaignStatus::Completed.code())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(completions, 2);
}

/// Every write of status 2 (paused) fails with `insufficient_privilege`, as after a deploy
/// that lost a grant on one path.
pub(crate) const BREAK_PAUSED: &str = "
CREATE FUNCTION herald_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'permission denied for table messages' USING ERRCODE = '42501'; END $$;
CREATE TRIGGER herald_test_refuse BEFORE UPDATE OF status ON messages
    FOR EACH ROW WHEN (NEW.status = 2) EXECUTE FUNCTION herald_test_refuse();";

pub(crate) const FIX_PAUSED: &str = "
DROP TRIGGER herald_test_refuse ON messages;
DROP FUNCTION herald_test_refuse();";

#[tokio::test]
async fn a_status_write_that_fails_for_good_fails_the_campaign_not_its_workflow() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("book");
    app.seed(8_000, &segment);
    let key = app
        .campaign(&segment)
        .page_size(100)
        .lanes(2)
        .rate(1_000)
        .failure_grace(3)
        .launch();
    app.wait_items(&key, 1_000, LONG).await.unwrap();
    sqlx::raw_sql(BREAK_PAUSED)
        .execute(&app.pool)
        .await
        .unwrap();
    app.herald_ok(&["pause", &key]);
    app.wait_status(&key, CampaignStatus::Failed, Duration::from_secs(90))
        .await
        .unwrap();
    let s = app.status(&key);
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("recording status paused failed") && reason.contains("42501"),
        "{s}"
    );
    let wid = workflow_id(&key);
    let described = app.temporal(&["workflow", "describe", "-w", &wid, "--output", "json"]);
    let described: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    assert_eq!(
        described["workflowExecutionInfo"]["status"], "WORKFLOW_EXECUTION_STATUS_RUNNING",
        "the workflow still runs: {described}"
    );

    sqlx::raw_sql(FIX_PAUSED).execute(&app.pool).await.unwrap();
    app.herald_ok(&["resume", &key, "--reason", "grant restored"]);
    app.completes_exactly_once(&key, 8_000).await;
}
