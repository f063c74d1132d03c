//! Operator requests from every side at once: rapid CLI sequences, bare signals mixed in,
//! status writes delayed on purpose, requests during the `send_at` wait. Whatever the order,
//! the campaign ends as the newest request asked, and a pause once recorded is never undone
//! by a stale write.

use std::time::Duration;

use herald_tests::{LONG, TestApp, workflow_id};
use herald_wire::{CampaignStatus, Intent};

/// Paused and still: the row says paused (intent and status), the workflow agrees, and no
/// item is written for a while.
async fn paused_and_still(app: &TestApp, key: &str) {
    app.wait_status(key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    let held = app.check_invariants(key).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(app.item_count(key).await, held, "items moved while paused");
    assert_eq!(app.db_status(key).await, Some(CampaignStatus::Paused));
    assert_eq!(app.request_row(key).await.0, Intent::Pause.code());
    let p = app.progress(key);
    assert_eq!(p["status"], CampaignStatus::Paused.code(), "{p}");
    assert!(held > 0, "the campaign never sent");
}

#[tokio::test]
async fn fifty_alternations_of_resume_and_pause_end_paused_and_still() {
    let app = TestApp::spawn().await.unwrap();
    // Each request returns once taken (a resume lets pages run until the next pause is):
    // slow enough that fifty resumes leave recipients to send.
    let key = slow(&app, "alt", 40_000).await;
    app.herald_ok(&["pause", &key]);
    for i in 0..50 {
        app.herald_ok(&["resume", &key, "--reason", &format!("resume {i}")]);
        app.herald_ok(&["pause", &key, "--reason", &format!("pause {i}")]);
    }
    paused_and_still(&app, &key).await;
    assert_eq!(app.request_row(&key).await, (Intent::Pause.code(), 101));
    herald_tests::wait_until(LONG, || async { app.status(&key)["reason"] == "pause 49" })
        .await
        .expect("the last request's reason is recorded");
    app.herald_ok(&["rate", &key, "none"]);
    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 40_000).await;
}

/// A campaign sending at 1,000/s in four lanes of 100-recipient pages.
async fn slow(app: &TestApp, segment: &str, audience: u32) -> String {
    app.seed(audience, segment);
    let key = app
        .campaign(segment)
        .page_size(100)
        .lanes(4)
        .rate(1000)
        .launch();
    app.wait_items(&key, 500, LONG).await.unwrap();
    key
}

/// The workflow's own status writes take 300 ms each, so that a resume's write is still on
/// its way when the next pause is recorded: it must not erase the pause.
#[tokio::test]
async fn a_delayed_resume_write_never_erases_the_pause_after_it() {
    let mut app = TestApp::without_worker().await.unwrap();
    app.start_worker_with_env(&[("HERALD_FAULT_STATUS_DELAY", "300ms")])
        .unwrap();
    let key = slow(&app, "slow", 30_000).await;
    for _ in 0..5 {
        app.herald_ok(&["pause", &key]);
        app.wait_status(&key, CampaignStatus::Paused, LONG)
            .await
            .unwrap();
        // The resume's status write is delayed: pause before it lands (the resume's command
        // is still waiting for it).
        let resume = app.herald_spawn(&["resume", &key]);
        herald_tests::wait_until(LONG, || async {
            app.request_row(&key).await.0 == Intent::Run.code()
        })
        .await
        .expect("the resume is recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.herald_ok(&["pause", &key]);
        let resume = resume.wait_with_output().unwrap();
        assert!(resume.status.success(), "{}", herald_tests::stderr(&resume));
        let at_pause = app.item_count(&key).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let later = app.item_count(&key).await;
        assert_eq!(later, at_pause, "pages ran after the pause returned");
        paused_and_still(&app, &key).await;
        app.herald_ok(&["resume", &key]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.herald_ok(&["rate", &key, "none"]);
    app.completes_exactly_once(&key, 30_000).await;
}

/// Bare signals (no request number) and the CLI's numbered requests, interleaved quickly:
/// the last one wins, and the row records it.
#[tokio::test]
async fn bare_signals_and_cli_requests_interleave_and_the_last_wins() {
    let app = TestApp::spawn().await.unwrap();
    let key = app.sending("mix", 40_000, 3).await;
    for _ in 0..5 {
        app.signal(&key, "pause", &[]);
        app.herald_ok(&["resume", &key]);
        app.herald_ok(&["pause", &key]);
        app.signal(&key, "resume", &[]);
    }
    app.signal(&key, "pause", &["--input", "{\"reason\": \"bare last\"}"]);
    paused_and_still(&app, &key).await;
    herald_tests::wait_until(LONG, || async { app.status(&key)["reason"] == "bare last" })
        .await
        .unwrap();
    // The bare pause is in the row, so the CLI can resume it.
    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 40_000).await;
}

/// A bare pause while the campaign waits for its send time shows (status 2), `herald resume`
/// takes it back to "not started", and Temporal's own cancellation ends it during the wait.
#[tokio::test]
async fn requests_during_the_send_at_wait_are_visible() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(40, "later");
    let key = app
        .campaign("later")
        .send_at(chrono::Utc::now() + chrono::Duration::hours(1))
        .launch();
    app.signal(&key, "pause", &[]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    assert_eq!(app.request_row(&key).await.0, Intent::Pause.code());
    app.herald_ok(&["resume", &key]);
    app.wait_status(&key, CampaignStatus::NotStarted, LONG)
        .await
        .unwrap();
    assert_eq!(app.item_count(&key).await, 0, "sent before its time");

    let out = app.temporal(&["workflow", "cancel", "--workflow-id", &workflow_id(&key)]);
    assert!(out.status.success(), "{}", herald_tests::stderr(&out));
    app.ends_cancelled(&key).await;
    assert_eq!(app.item_count(&key).await, 0);
    assert_eq!(app.request_row(&key).await.0, Intent::Cancel.code());
}

/// A pause that arrives while the last page is in flight has nothing left to hold: the
/// campaign completes instead of waiting for a resume. Rate 2/s on one lane sends a page of
/// two, then waits about a second inside the next page, the lane's last: the pause comes
/// during that wait, as a bare signal, which the page does not see.
#[tokio::test]
async fn a_pause_during_the_last_page_lets_the_campaign_complete() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(3, "three");
    let key = app.campaign("three").lanes(1).rate(2).launch();
    app.wait_items(&key, 2, LONG).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.item_count(&key).await, 2, "the last page came early");
    app.signal(&key, "pause", &[]);
    app.wait_status(&key, CampaignStatus::Completed, Duration::from_secs(30))
        .await
        .expect("a paused campaign with every lane done completes");
    app.assert_exactly_once(&key, 3).await;
}

/// `herald pause` returns once the workflow has taken the pause: the row says paused and
/// nothing moves from that moment. An update through Temporal claiming a number the row
/// never gave, or a payload of the wrong shape, is refused and changes nothing; one copying
/// a real number only makes the workflow read the row.
#[tokio::test]
async fn a_request_returns_once_taken_and_forged_updates_are_refused() {
    let app = TestApp::spawn().await.unwrap();
    let key = app.sending("ack", 40_000, 4).await;
    let wid = workflow_id(&key);
    let out = app.herald_ok(&["pause", &key, "--reason", "checking"]);
    assert!(!out.contains("has not confirmed"), "{out}");
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Paused));
    let held = app.item_count(&key).await;

    let update = |input: &str| {
        app.temporal(&[
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            &wid,
            "--name",
            "herald.apply",
            "--input",
            input,
        ])
    };
    let forged = update("{\"seq\": 1000000}");
    assert!(!forged.status.success(), "a forged number was accepted");
    let said = herald_tests::stderr(&forged);
    assert!(said.contains("holds no request number 1000000"), "{said}");
    for malformed in ["123", "[1, 2]", "{\"seq\": -1}", "{\"seq\": \"x\"}"] {
        let out = update(malformed);
        assert!(!out.status.success(), "{malformed} was accepted");
        assert!(
            herald_tests::stderr(&out).contains("herald.apply takes"),
            "{malformed}"
        );
    }
    let (_, seq) = app.request_row(&key).await;
    let copied = update(&format!("{{\"seq\": {seq}}}"));
    assert!(copied.status.success(), "{}", herald_tests::stderr(&copied));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.item_count(&key).await, held, "items moved while paused");
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Paused));
    assert_eq!(app.status(&key)["reason"], "checking");

    // Nothing was silenced: the CLI's resume is taken, and said so, before it returns.
    let out = app.herald_ok(&["resume", &key]);
    assert!(!out.contains("has not confirmed"), "{out}");
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::InProgress));
    app.completes_exactly_once(&key, 40_000).await;
}
