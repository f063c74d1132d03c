//! Every wait continues as new when its history grows: a paused campaign flooded with
//! requests, a scheduled one flipped between pause and resume, each with the run's
//! threshold lowered to a few hundred events. Each run stays under it (plus one step's
//! events), and each campaign then completes exactly once.

use std::time::Duration;

use herald_tests::{LONG, TestApp, history_lengths, proxy::CutProxy, temporal_client, workflow_id};
use herald_wire::CampaignStatus;
use herald_workflows::CampaignWorkflow;
use temporalio_client::{Client, WorkflowHandle, WorkflowSignalOptions};
use temporalio_common::{
    data_converters::{PayloadConverter, RawValue},
    protos::temporal::api::common::v1::Payload,
};

/// The lowered threshold, and what one step may add past it before the run hands over.
const THRESHOLD: u32 = 300;
const SLACK: i64 = 60;

/// `HERALD_HISTORY_FULL=1` runs the floods at full size (10,000 identical pauses, 1,000
/// pauses with new reasons and as many rate changes, a ten-minute database outage); the
/// suite runs 2,000 and 150, and an outage of a minute.
fn full() -> bool {
    std::env::var("HERALD_HISTORY_FULL").is_ok_and(|v| v == "1")
}

fn json(value: serde_json::Value) -> RawValue {
    RawValue::from_value(&value, &PayloadConverter::default())
}

/// A bare `pause` with `reason`, as another service or the web UI sends it.
async fn bare_pause(handle: &WorkflowHandle<Client, CampaignWorkflow>, reason: &str) {
    let reason = json(serde_json::json!({ "reason": reason }));
    handle
        .signal(
            CampaignWorkflow::pause,
            reason,
            WorkflowSignalOptions::default(),
        )
        .await
        .expect("signal delivered");
}

fn assert_bounded(key: &str) -> Vec<i64> {
    let lengths = history_lengths(key);
    assert!(lengths.len() > 1, "never continued as new: {lengths:?}");
    assert!(
        lengths
            .iter()
            .all(|n| (0..i64::from(THRESHOLD) + SLACK).contains(n)),
        "a run outgrew its threshold: {lengths:?}"
    );
    lengths
}

#[tokio::test]
async fn a_paused_campaign_flooded_with_requests_keeps_every_run_bounded() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(20_000, "flood");
    let key = app
        .campaign("flood")
        .page_size(100)
        .lanes(2)
        .rate(4000)
        .history_events(THRESHOLD)
        .launch();
    app.wait_items(&key, 500, LONG).await.unwrap();
    app.herald_ok(&["pause", &key, "--reason", "typo"]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    let held = app.check_invariants(&key).await;

    let client = temporal_client().await;
    let handle = client.get_workflow_handle::<CampaignWorkflow>(workflow_id(&key));
    let send = |signal: &'static str, payload: RawValue| {
        let handle = &handle;
        async move {
            let options = WorkflowSignalOptions::default();
            match signal {
                "pause" => {
                    handle
                        .signal(CampaignWorkflow::pause, payload, options)
                        .await
                }
                "rate" => {
                    handle
                        .signal(CampaignWorkflow::set_rate, payload, options)
                        .await
                }
                _ => unreachable!(),
            }
            .expect("signal delivered")
        }
    };
    // The same pause again and again, as a reconciler would send it: nothing to record.
    for _ in 0..if full() { 10_000 } else { 2_000 } {
        send("pause", json(serde_json::json!({ "reason": "typo" }))).await;
    }
    // Pauses that each bring a new reason, and rate changes: each one is recorded.
    for i in 0..if full() { 1_000 } else { 150 } {
        send(
            "pause",
            json(serde_json::json!({ "reason": format!("typo {i}") })),
        )
        .await;
        send("rate", json(serde_json::json!({ "rate": 100 + i }))).await;
    }
    // A payload that says nothing at all, and one that claims a request number.
    send("pause", RawValue::new(vec![Payload::default()])).await;
    send(
        "pause",
        json(serde_json::json!({ "reason": "last", "seq": 1_000_000 })),
    )
    .await;

    herald_tests::wait_until(LONG, || async { app.status(&key)["reason"] == "last" })
        .await
        .expect("the last pause's reason is recorded");
    assert_eq!(
        app.check_invariants(&key).await,
        held,
        "items moved while paused"
    );
    let lengths = assert_bounded(&key);
    eprintln!(
        "[flood] runs {}, history lengths {lengths:?}",
        lengths.len()
    );

    // The forged number silenced nothing: the CLI's resume is obeyed.
    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 20_000).await;
    assert_bounded(&key);
}

#[tokio::test]
async fn pauses_and_resumes_during_the_send_at_wait_keep_every_run_bounded() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(2_000, "soon");
    let key = app
        .campaign("soon")
        .send_at(chrono::Utc::now() + chrono::Duration::seconds(90))
        .history_events(THRESHOLD)
        .launch();
    let client = temporal_client().await;
    let handle = client.get_workflow_handle::<CampaignWorkflow>(workflow_id(&key));
    for i in 0..200 {
        let options = WorkflowSignalOptions::default();
        let reason = json(serde_json::json!({ "reason": format!("cycle {i}") }));
        handle
            .signal(CampaignWorkflow::pause, reason.clone(), options.clone())
            .await
            .unwrap();
        handle
            .signal(CampaignWorkflow::resume, reason, options)
            .await
            .unwrap();
    }
    app.wait_status(&key, CampaignStatus::NotStarted, LONG)
        .await
        .unwrap();
    assert_eq!(app.item_count(&key).await, 0, "sent before its time");
    let lengths = assert_bounded(&key);
    eprintln!(
        "[send_at] runs {}, history lengths {lengths:?}",
        lengths.len()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.completes_exactly_once(&key, 2_000).await;
}

/// The worker loses its database while the campaign is paused, and bare pauses with new
/// reasons keep coming (each must be appended to the row, which the worker cannot reach):
/// the look is retried, and every run hands over under the threshold in the middle of its
/// retries. Once the database is back, the last reason is recorded, and the campaign
/// completes exactly once.
#[tokio::test]
async fn a_database_outage_while_paused_keeps_every_run_bounded() {
    let mut app = TestApp::without_worker().await.unwrap();
    // The worker reaches PostgreSQL through a proxy the test cuts; the CLI goes direct.
    let url = app.database_url.clone();
    let at = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap();
    let proxy = CutProxy::start(at);
    let through = url.replacen(at, &format!("127.0.0.1:{}", proxy.port()), 1);
    app.start_worker_with_env(&[("DATABASE_URL", &through)])
        .unwrap();
    app.seed(20_000, "outage");
    let key = app
        .campaign("outage")
        .page_size(100)
        .lanes(2)
        .rate(4000)
        .history_events(THRESHOLD)
        .launch();
    app.wait_items(&key, 500, LONG).await.unwrap();
    app.herald_ok(&["pause", &key, "--reason", "before"]);
    let held = app.check_invariants(&key).await;

    proxy.cut();
    let (outage, signals) = if full() {
        (Duration::from_secs(600), 1_500)
    } else {
        (Duration::from_secs(60), 150)
    };
    let client = temporal_client().await;
    let handle = client.get_workflow_handle::<CampaignWorkflow>(workflow_id(&key));
    for i in 0..signals {
        bare_pause(&handle, &format!("outage {i}")).await;
        tokio::time::sleep(outage / signals).await;
    }
    let during = history_lengths(&key);
    proxy.restore();

    let last = format!("outage {}", signals - 1);
    herald_tests::wait_until(LONG + Duration::from_secs(60), || async {
        app.status(&key)["reason"] == last.as_str()
    })
    .await
    .expect("the last reason is recorded once the database is back");
    assert_eq!(
        app.check_invariants(&key).await,
        held,
        "items moved while paused"
    );
    let lengths = assert_bounded(&key);
    eprintln!(
        "[outage] runs {} during the outage, {} in all; history lengths {lengths:?}",
        during.len(),
        lengths.len()
    );
    assert!(during.len() > 1, "no run handed over during the outage");

    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 20_000).await;
    assert_bounded(&key);
}

/// A status write that fails for good while the same bare pause floods in: each run hands over in
/// the middle of its retries, and the grace runs on across runs, so the campaign still fails
/// after it (were it counted afresh in each run, the flood would keep the campaign in limbo
/// for as long as it lasts).
#[tokio::test]
async fn a_permanent_error_fails_the_campaign_within_its_grace_across_runs() {
    const GRACE_SECS: u64 = 15;
    let app = TestApp::spawn().await.unwrap();
    app.seed(20_000, "limbo");
    let key = app
        .campaign("limbo")
        .page_size(100)
        .lanes(2)
        .rate(4000)
        .history_events(THRESHOLD)
        .failure_grace(GRACE_SECS as u32)
        .launch();
    app.wait_items(&key, 500, LONG).await.unwrap();
    sqlx::raw_sql(crate::recovery::BREAK_PAUSED)
        .execute(&app.pool)
        .await
        .unwrap();

    // The same bare pause, twenty a second, for up to four graces: after the first, each
    // repeats it and changes nothing, so only the status write the first one asked for is
    // owed, and the run that hands over must pass it on.
    let client = temporal_client().await;
    let handle = client.get_workflow_handle::<CampaignWorkflow>(workflow_id(&key));
    let flood = std::time::Instant::now();
    let mut failed_after = None;
    for i in 0.. {
        bare_pause(&handle, "limbo").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if i % 20 == 19 && app.db_status(&key).await == Some(CampaignStatus::Failed) {
            failed_after = Some(flood.elapsed());
            break;
        }
        if flood.elapsed() > Duration::from_secs(4 * GRACE_SECS) {
            break;
        }
    }
    let during = history_lengths(&key);
    eprintln!("[limbo] failed after {failed_after:?} of flooding; history lengths {during:?}");
    assert!(
        failed_after.is_some(),
        "the campaign never failed while the flood lasted: {during:?}"
    );
    assert!(
        during.len() > 2,
        "runs did not hand over during the grace: {during:?}"
    );
    let s = app.status(&key);
    assert!(
        s["reason"].as_str().unwrap_or_default().contains("42501"),
        "{s}"
    );

    sqlx::raw_sql(crate::recovery::FIX_PAUSED)
        .execute(&app.pool)
        .await
        .unwrap();
    app.herald_ok(&["resume", &key, "--reason", "grant restored"]);
    app.completes_exactly_once(&key, 20_000).await;
    assert_bounded(&key);
}
