//! Delivery at the recipient's local time: waves that open on durable timers while the test
//! watches, a pause across an opening, a worker killed while a wave waits, and launches that
//! cannot work refused whole.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use herald_tests::{LONG, TestApp, stderr, unique};
use herald_wire::CampaignStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Seed `zones.len()` users in `segment` and give each its zone (`None`: none). Their ids,
/// in the order given.
async fn users_in(app: &TestApp, segment: &str, zones: &[Option<&str>]) -> Vec<i64> {
    app.seed(zones.len() as u32, segment);
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE segments @> ARRAY[$1] ORDER BY id")
            .bind(segment)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for (id, zone) in ids.iter().zip(zones) {
        sqlx::query("UPDATE users SET timezone = $2 WHERE id = $1")
            .bind(id)
            .bind(zone)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    ids
}

/// The wall time in a zone `offset_minutes` east of UTC at `at`, as `--send-at-local` takes it.
fn wall(at: DateTime<Utc>, offset_minutes: i64) -> String {
    (at + chrono::Duration::minutes(offset_minutes))
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Who has an item of `key`, and when it was written.
async fn items(app: &TestApp, key: &str) -> Vec<(i64, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT i.user_id, i.sent_at FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE m.key = $1 ORDER BY i.user_id",
    )
    .bind(key)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn campaign_json(app: &TestApp, key: &str) -> Value {
    let out = app.herald_ok(&["status", key, "--json"]);
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn waves_open_at_each_zones_own_time_and_a_pause_holds_the_next_one() {
    let mut app = TestApp::spawn().await.unwrap();
    let segment = unique("local");
    // Tokyo is +09:00 and Kathmandu +05:45 (the fallback of users with no zone): the local
    // time has passed there, so they go at once, together. Kolkata (+05:30) opens in 40 s;
    // New York (-05:00 or -04:00) in about ten and a half hours.
    let zones = [
        Some("Asia/Tokyo"),
        Some("Asia/Tokyo"),
        Some("Asia/Kolkata"),
        Some("Asia/Kolkata"),
        Some("Asia/Kolkata"),
        Some("America/New_York"),
        None,
        None,
    ];
    let ids = users_in(&app, &segment, &zones).await;
    let opening = Utc::now() + chrono::Duration::seconds(40);
    let local = wall(opening, 330);
    let launch = app
        .campaign(&segment)
        .option("send-at-local", &local)
        .option("fallback-timezone", "Asia/Kathmandu")
        .option("past-zones", "send-now");

    // The dry run shows the waves and launches nothing.
    let mut dry = launch.args();
    dry.push("--dry-run".into());
    let out = app.herald_ok(&dry.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("3 waves"), "{out}");
    assert!(out.contains("+09:00,+05:45"), "{out}");
    assert!(
        out.contains("+05:30") && out.contains("Asia/Kolkata"),
        "{out}"
    );

    let key = launch.launch();
    // The first wave at once: Tokyo and the users with no zone.
    app.wait_items(&key, 4, LONG).await.unwrap();
    let first: Vec<i64> = items(&app, &key).await.iter().map(|i| i.0).collect();
    assert_eq!(first, [ids[0], ids[1], ids[6], ids[7]]);
    let c = campaign_json(&app, &key).await;
    let waves = c["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 3, "{c}");
    assert_eq!(waves[0]["offsets"], json!([540, 345]), "{c}");
    assert_eq!(waves[1]["zones"], json!(["Asia/Kolkata"]), "{c}");
    assert_eq!(
        (waves[1]["size"].clone(), waves[1]["opened"].clone()),
        (json!(3), json!(false))
    );
    let opens: DateTime<Utc> = waves[1]["opens_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (opens - opening).num_milliseconds().abs() < 1_000,
        "{opens} {opening}"
    );
    assert_eq!(c["total"], 8);
    let text = app.herald_ok(&["status", &key]);
    assert!(
        text.contains("3 waves") && text.contains("opens in"),
        "{text}"
    );

    // A worker killed while the next wave waits changes nothing but timing.
    app.kill_worker();
    app.start_worker().unwrap();

    // Paused across Kolkata's opening: the wave waits for the resume.
    app.herald_ok(&["pause", &key]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    let wait = (opens - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(3);
    tokio::time::sleep(wait).await;
    assert_eq!(
        items(&app, &key).await.len(),
        4,
        "no wave opens while paused"
    );
    app.herald_ok(&["resume", &key]);
    app.wait_items(&key, 7, LONG).await.unwrap();
    let all = items(&app, &key).await;
    for (id, at) in &all {
        if ids[2..5].contains(id) {
            assert!(
                *at >= opens,
                "user {id} sent at {at}, before the wave opened at {opens}"
            );
        }
    }
    assert!(
        !all.iter().any(|(id, _)| *id == ids[5]),
        "New York is hours away"
    );

    // A workflow lost while the last wave waits is recovered from the ledger: the waves
    // already sent are not walked again, and the last still waits.
    let out = app.temporal(&[
        "workflow",
        "terminate",
        "--workflow-id",
        &herald_tests::workflow_id(&key),
        "--reason",
        "lost in a test",
    ]);
    assert!(out.status.success(), "terminate: {}", stderr(&out));
    let out = app.herald_ok(&["resume", &key]);
    assert!(out.contains("a new run was started"), "{out}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(items(&app, &key).await.len(), 7);

    // New York's wave waits; a cancel ends the campaign without it.
    let c = campaign_json(&app, &key).await;
    assert_eq!(c["waves"][1]["sent"], 3, "{c}");
    assert_eq!(c["waves"][2]["opened"], false, "{c}");
    assert_eq!(c["status"], CampaignStatus::InProgress.code(), "{c}");
    app.herald_ok(&["cancel", &key]);
    app.ends_cancelled(&key).await;
    assert_eq!(items(&app, &key).await.len(), 7);
    app.check_invariants(&key).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_time_launch_that_cannot_work_is_refused_whole() {
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("localno");
    users_in(&app, &segment, &[Some("Europe/Berlin"), None]).await;
    let campaigns = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = campaigns().await;
    let yesterday = wall(Utc::now() - chrono::Duration::days(1), 0);
    let tomorrow = wall(Utc::now() + chrono::Duration::days(1), 0);
    let send_at = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    for (options, flag) in [
        // A user has no zone and no fallback is given.
        (
            vec![("send-at-local", tomorrow.as_str())],
            "--fallback-timezone",
        ),
        // Passed everywhere, and not to be sent now.
        (
            vec![
                ("send-at-local", yesterday.as_str()),
                ("fallback-timezone", "Europe/Lisbon"),
            ],
            "--send-at-local",
        ),
        (vec![("send-at-local", "09:00")], "--send-at-local"),
        (
            vec![
                ("send-at-local", tomorrow.as_str()),
                ("fallback-timezone", "Mars/Olympus"),
            ],
            "--fallback-timezone",
        ),
        (
            vec![
                ("send-at-local", tomorrow.as_str()),
                ("past-zones", "sometimes"),
            ],
            "--past-zones",
        ),
        (
            vec![
                ("send-at-local", tomorrow.as_str()),
                ("send-at", send_at.as_str()),
            ],
            "--send-at-local",
        ),
        (vec![("past-zones", "skip")], "--past-zones"),
    ] {
        let mut launch = app.campaign(&segment);
        for (name, value) in &options {
            launch = launch.option(name, value);
        }
        let out = launch.run();
        assert_eq!(out.status.code(), Some(2), "{options:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(flag),
            "{options:?} names {flag}: {}",
            stderr(&out)
        );
    }
    assert_eq!(campaigns().await, before, "nothing was launched");

    // The API names the field; its dry run shows the waves.
    let body = |extra: Value| {
        let mut b = json!({"title": "t", "body": "b", "segment": segment});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let refused = api
        .post(
            "/v1/campaigns",
            body(json!({"send_at_local": yesterday, "fallback_timezone": "Europe/Lisbon"})),
        )
        .await;
    assert!(refused.status.is_client_error(), "{refused:?}");
    assert_eq!(
        refused.body["error"]["field"], "send_at_local",
        "{refused:?}"
    );
    let dry = api
        .post(
            "/v1/dry-run",
            body(json!({"send_at_local": tomorrow, "fallback_timezone": "Asia/Kolkata"})),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{dry:?}");
    let waves = dry.body["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 2, "{dry:?}");
    assert_eq!(waves[0]["offsets"], json!(["+05:30"]), "{dry:?}");
    assert_eq!(waves[1]["zones"], json!(["Europe/Berlin"]), "{dry:?}");
    assert_eq!(campaigns().await, before, "nothing was launched");
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_hold_recipients_until_their_window_ends() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("quiet");
    // Abidjan is UTC all year; its quiet hours end at the next minute but one. Kolkata is
    // five and a half hours ahead, outside them.
    let zones = [
        Some("Africa/Abidjan"),
        Some("Africa/Abidjan"),
        Some("Asia/Kolkata"),
        Some("Asia/Kolkata"),
        Some("Asia/Kolkata"),
    ];
    let ids = users_in(&app, &segment, &zones).await;
    let soon = Utc::now() + chrono::Duration::seconds(30);
    let end = soon
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .unwrap()
        + chrono::Duration::minutes(1);
    let start = end - chrono::Duration::hours(2);
    let window = format!("{}-{}", start.format("%H:%M"), end.format("%H:%M"));
    let key = app
        .campaign(&segment)
        .option("quiet-hours", &window)
        .launch();

    // Kolkata at once; Abidjan held, seen as held with its release.
    app.wait_items(&key, 3, LONG).await.unwrap();
    let c = campaign_json(&app, &key).await;
    assert_eq!(c["total"], 5, "{c}");
    assert_eq!(c["held"], 2, "{c}");
    let until: DateTime<Utc> = c["held_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until, end, "{c}");
    let text = app.herald_ok(&["status", &key]);
    assert!(text.contains("held      2 recipients"), "{text}");
    assert!(
        items(&app, &key)
            .await
            .iter()
            .all(|(id, _)| ids[2..].contains(id)),
        "nobody in Abidjan before their quiet hours end"
    );

    // Released when the window ends, each exactly once.
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let all = items(&app, &key).await;
    assert_eq!(all.len(), 5);
    for (id, at) in &all {
        if ids[..2].contains(id) {
            assert!(
                *at >= end,
                "user {id} sent at {at}, inside their quiet hours"
            );
        }
    }
    let c = campaign_json(&app, &key).await;
    assert_eq!(c["held"], json!(null), "{c}");
    app.check_invariants(&key).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_launches_in_waves_and_shows_them_live() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("localdash");
    // Kolkata's 10:00 tomorrow comes before Berlin's (the user with no zone).
    users_in(
        &app,
        &segment,
        &[Some("Asia/Kolkata"), Some("Asia/Kolkata"), None],
    )
    .await;
    let api = app.api().await.unwrap();
    let browser = crate::dashboard::signed_in(&api, 1280, 900).await;
    let when = (Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT10:00")
        .to_string();

    browser.open("/launch").await.unwrap();
    browser.fill("#title", "Good morning").await.unwrap();
    browser
        .fill("#body", "At ten, where you are.")
        .await
        .unwrap();
    browser.fill("#segment", &segment).await.unwrap();
    browser.fill("#send_at_local", &when).await.unwrap();
    browser.click("button[value=review]").await.unwrap();
    // Without a fallback, the user with no zone is named at the field.
    let error = browser
        .wait_text("#fallback_timezone-error", WAIT, |t| {
            t.contains("no time zone")
        })
        .await;
    assert!(error.is_ok(), "{:?}", browser.text("body").await);
    browser
        .fill("#fallback_timezone", "Europe/Berlin")
        .await
        .unwrap();
    browser.click("button[value=review]").await.unwrap();
    browser.wait_for("#wave-plan", WAIT).await.unwrap();
    assert_eq!(browser.count("#wave-plan tbody tr").await.unwrap(), 2);
    let plan = browser.text("#wave-plan").await.unwrap();
    assert!(
        plan.contains("+05:30") && plan.contains("Europe/Berlin"),
        "{plan}"
    );
    browser.click("button[value=launch]").await.unwrap();
    browser
        .wait_for("[data-live-campaign]", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.count("ol.waves li").await.unwrap(), 2);
    let state = browser
        .script(
            "return document.querySelector('ol.waves li').dataset.state",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(state, "waiting");
    let eta = browser
        .wait_text("[data-f=eta]", WAIT, |t| t.contains("the last wave opens"))
        .await;
    assert!(eta.is_ok(), "{:?}", browser.text("[data-f=eta]").await);
    browser.screenshot("waves").await.unwrap();
    let key = browser.campaign_key().await.unwrap();
    app.herald_ok(&["cancel", &key]);
    app.ends_cancelled(&key).await;
    assert!(items(&app, &key).await.is_empty());
}

const WAIT: Duration = Duration::from_secs(30);
