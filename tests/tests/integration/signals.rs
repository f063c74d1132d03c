//! Signals from outside the CLI: the `temporal` CLI (as another service or the web UI would
//! send them), including payloads Herald cannot read.

use std::time::Duration;

use herald_tests::{LONG, TestApp, workflow_id};
use herald_wire::CampaignStatus;

#[tokio::test]
async fn temporal_cli_signals_work_and_malformed_payloads_do_no_harm() {
    let app = TestApp::spawn().await.unwrap();
    let key = app.sending("t", 30_000, 2).await;
    let wid = workflow_id(&key);

    // A bare pause with no payload at all, as from the web UI's signal box left empty.
    app.signal(&key, "pause", &[]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    let held = app.item_count(&key).await;

    // Payloads of every wrong shape: a number, a list, bytes in another encoding, bad UTF-8.
    app.signal(&key, "pause", &["--input", "123"]);
    app.signal(&key, "resume", &["--input", "[1, 2]"]);
    app.signal(&key, "pause", &["--input", "{\"reason\": 5}"]);
    app.signal(
        &key,
        "pause",
        &[
            "--input-meta",
            "encoding=binary/plain",
            "--input-base64",
            "--input",
            "/w==",
        ],
    );
    app.signal(&key, "pause", &["--input", "{\"reason\": \"checked\"}"]);

    // The workflow is healthy: it answers queries, and it is paused (the malformed resume
    // still meant "resume", and the pauses after it re-paused).
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    let out = app.temporal(&[
        "workflow",
        "query",
        "--workflow-id",
        &wid,
        "--name",
        "progress",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "query failed: {}",
        herald_tests::stderr(&out)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("query JSON");
    let progress = &answer["queryResult"][0];
    assert_eq!(progress["key"], key.as_str(), "{answer}");
    assert_eq!(
        progress["status"],
        CampaignStatus::Paused.code(),
        "the workflow knows it is paused: {answer}"
    );
    let describe = app.temporal(&["workflow", "describe", "--workflow-id", &wid, "-o", "json"]);
    let describe = String::from_utf8_lossy(&describe.stdout);
    assert!(
        describe.contains("WORKFLOW_EXECUTION_STATUS_RUNNING"),
        "{describe}"
    );
    // The malformed resume let pages run until the next pause; once paused, nothing moves.
    let settled = app.item_count(&key).await;
    assert!(settled >= held, "{held} -> {settled}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        app.item_count(&key).await,
        settled,
        "items moved while paused"
    );
    herald_tests::wait_until(LONG, || async { app.status(&key)["reason"] == "checked" })
        .await
        .expect("the last pause's reason is recorded");

    app.signal(&key, "resume", &["--input", "{\"reason\": \"fixed\"}"]);
    app.completes_exactly_once(&key, 30_000).await;
}

#[tokio::test]
async fn a_cancel_signal_from_temporal_ends_the_campaign() {
    let app = TestApp::spawn().await.unwrap();
    let key = app.sending("x", 20_000, 1).await;
    app.signal(&key, "cancel", &[]);
    ends_cancelled_part_way(&app, &key, 20_000).await;
}

#[tokio::test]
async fn temporals_own_cancellation_request_ends_the_campaign_as_cancelled() {
    let app = TestApp::spawn().await.unwrap();
    let key = app.sending("tc", 20_000, 2).await;
    let out = app.temporal(&["workflow", "cancel", "--workflow-id", &workflow_id(&key)]);
    assert!(out.status.success(), "{}", herald_tests::stderr(&out));
    ends_cancelled_part_way(&app, &key, 20_000).await;
}

/// The campaign ends cancelled before reaching all of `audience`, with its counters equal to
/// the ledger.
async fn ends_cancelled_part_way(app: &TestApp, key: &str, audience: i64) {
    app.ends_cancelled(key).await;
    let s = app.status(key);
    assert_eq!(s["sent"], app.item_count(key).await, "{s}");
    assert!(s["sent"].as_i64().unwrap() < audience, "{s}");
}
