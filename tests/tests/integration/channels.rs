//! The webhook and e-mail channels against real receivers the tests start: every recipient
//! reached once, signed; transient failures retried, permanent ones recorded with their
//! reason; a failing endpoint pauses the campaign; pause and cancel stop new sends.

use std::time::Duration;

use herald_tests::{
    LONG, TestApp,
    sinks::{SmtpSink, WEBHOOK_SECRET, WebhookSink, smtp, webhook::Faults},
    stderr, unique, wait_until,
};
use herald_wire::CampaignStatus;

async fn webhook_sink() -> WebhookSink {
    WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap()
}

/// Items by status and error class: `(status code, class, count)`.
async fn outcomes(app: &TestApp, key: &str) -> Vec<(i16, Option<String>, i64)> {
    sqlx::query_as(
        "SELECT i.status, i.error_class, count(*) FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE m.key = $1 GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(key)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_webhook_campaign_reaches_every_recipient_once_signed() {
    let mut app = TestApp::without_worker().await.unwrap();
    let metrics = format!("127.0.0.1:{}", herald_tests::api::free_port().unwrap());
    app.start_worker_with_env(&[("HERALD_METRICS_ADDR", &metrics)])
        .unwrap();
    let sink = webhook_sink().await;
    let segment = unique("wh");
    app.seed(1_200, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .page_size(200)
        .lanes(3)
        .launch();
    app.completes_exactly_once(&key, 1_200).await;
    assert_eq!(sink.delivered(), 1_200);
    assert_eq!(sink.duplicates(), 0);
    assert_eq!(sink.bad_signatures(), 0);

    // One row write per delivery: each item inserted once, with its outcome, never updated.
    // (PostgreSQL's counters of the test's own database; its sessions report them within
    // seconds of going idle.)
    let writes = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT coalesce(sum(n_tup_ins), 0)::bigint, coalesce(sum(n_tup_upd), 0)::bigint
             FROM pg_stat_user_tables WHERE relname LIKE 'message\\_items\\_%'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let reported = wait_until(Duration::from_secs(30), || async {
        writes().await.0 >= 1_200
    })
    .await;
    let (inserts, updates) = writes().await;
    assert!(
        reported.is_ok(),
        "item writes never reported: {inserts} inserts"
    );
    assert_eq!(
        (inserts, updates),
        (1_200, 0),
        "(inserts, updates) of items"
    );

    // What a receiver gets: the delivery id is the webhook-id, stable per recipient.
    let id = &sink.ids()[0];
    let got = sink.received(id).unwrap();
    assert_eq!(got.body["delivery_id"], id.as_str());
    assert_eq!(got.body["campaign"], key.as_str());
    assert_eq!(got.body["type"], "herald.message");
    let user = got.body["recipient"]["id"].as_i64().unwrap();
    assert_eq!(id, &format!("msg_{key}_{user}"));
    assert!(
        got.body["recipient"]["email"]
            .as_str()
            .unwrap()
            .contains('@')
    );
    assert_eq!(got.body["title"], "Hello");

    let s = app.status(&key);
    assert_eq!(s["channel"], "webhook", "{s}");

    // The worker's metrics say the same.
    herald_activities::channels::install_crypto();
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"herald_deliveries_total{channel="webhook",outcome="sent"} 1200"#,
        r#"herald_deliveries_total{channel="webhook",outcome="failed"} 0"#,
        r#"herald_delivery_seconds_count{channel="webhook"} 1200"#,
        r#"herald_campaigns{status="completed"} 1"#,
        "herald_pages_in_flight 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_recorded_with_their_reason() {
    let app = TestApp::spawn().await.unwrap();
    let sink = webhook_sink().await;
    sink.set_faults(Faults {
        status_500: 0.15,
        status_429: 0.05,
        retry_after_secs: 1,
        drop: 0.02,
        ..Faults::default()
    });
    let segment = unique("tr");
    app.seed(600, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .option("attempts", "10")
        .page_size(200)
        .lanes(2)
        .launch();
    app.completes_exactly_once(&key, 600).await;
    assert_eq!(sink.delivered(), 600, "every recipient reached in the end");
    assert!(
        sink.failed() > 50,
        "failures were injected: {}",
        sink.failed()
    );
    let retried: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE m.key = $1 AND i.attempts > 1",
    )
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        retried > 50,
        "retried recipients recorded their tries: {retried}"
    );

    // An endpoint that refuses for good: each recipient tried once, recorded failed, with
    // the status as its reason.
    let gone = webhook_sink().await;
    gone.set_faults(Faults {
        always: Some(410),
        ..Faults::default()
    });
    let segment = unique("gone");
    app.seed(60, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&gone.url())
        .option("auto-pause", "0")
        .launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(&key).await;
    assert_eq!(gone.requests(), 60, "a permanent failure is not retried");
    assert_eq!(
        outcomes(&app, &key).await,
        vec![(2, Some("http_410".to_owned()), 60)]
    );
    let s = app.status(&key);
    assert_eq!(
        (s["sent"].as_i64(), s["failed"].as_i64()),
        (Some(0), Some(60)),
        "{s}"
    );
    let error: String = sqlx::query_scalar(
        "SELECT i.error FROM message_items i JOIN messages m ON m.id = i.message_id WHERE m.key = $1 LIMIT 1",
    )
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(error, "410 Gone");
}

#[tokio::test]
async fn a_failing_endpoint_pauses_the_campaign_and_a_resume_finishes_it() {
    let app = TestApp::spawn().await.unwrap();
    let sink = webhook_sink().await;
    sink.set_faults(Faults {
        status_500: 1.0,
        ..Faults::default()
    });
    let segment = unique("ap");
    app.seed(600, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .option("attempts", "2")
        .option("auto-pause-window", "100")
        .page_size(100)
        .lanes(1)
        .launch();
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    let s = app.status(&key);
    assert_eq!(
        s["reason"],
        "auto-paused: 100% of the last 200 deliveries failed; most common: 500 Internal Server Error",
        "{s}"
    );
    assert_eq!(
        s["failed"], 100,
        "the first page's recipients used their tries: {s}"
    );
    // Paused means still: nothing more is sent.
    let requests = sink.requests();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.requests(), requests, "a paused campaign sends nothing");

    // The endpoint is fixed; the operator resumes.
    sink.set_faults(Faults::default());
    app.herald_ok(&["resume", &key]);
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(&key).await;
    let s = app.status(&key);
    assert_eq!(
        (s["sent"].as_i64(), s["failed"].as_i64()),
        (Some(500), Some(100)),
        "{s}"
    );
    assert_eq!(sink.delivered(), 500);

    // The pause was the campaign's own; the launch and the resume the command line's.
    let changes: Vec<(i16, Option<String>)> = sqlx::query_as(
        "SELECT l.status, l.actor FROM message_status_log l JOIN messages m ON m.id = l.message_id
         WHERE m.key = $1 ORDER BY l.id",
    )
    .bind(&key)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let requests: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT r.request, r.actor FROM message_requests r JOIN messages m ON m.id = r.message_id
         WHERE m.key = $1 ORDER BY r.id",
    )
    .bind(&key)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let cli = |a: &Option<String>| a.as_deref().is_some_and(|a| a.starts_with("cli:"));
    let herald = |a: &Option<String>| a.as_deref() == Some("herald");
    let shape: Vec<(i16, bool)> = changes
        .iter()
        .map(|(s, a)| {
            (
                *s,
                if cli(a) {
                    true
                } else {
                    assert!(herald(a), "{changes:?}");
                    false
                },
            )
        })
        .collect();
    assert_eq!(
        shape,
        [(0, true), (1, true), (2, false), (1, true), (3, false)],
        "{changes:?}"
    );
    let asked: Vec<(&str, bool)> = requests.iter().map(|(r, a)| (r.as_str(), cli(a))).collect();
    assert_eq!(
        asked,
        [("launch", true), ("pause", false), ("resume", true)],
        "{requests:?}"
    );
    assert!(herald(&requests[1].1), "{requests:?}");
}

#[tokio::test]
async fn pause_stops_new_sends_resume_continues_and_cancel_ends() {
    let app = TestApp::spawn().await.unwrap();
    let sink = webhook_sink().await;
    let segment = unique("pr");
    app.seed(3_000, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .page_size(100)
        .lanes(2)
        .rate(600)
        .launch();
    wait_until(LONG, || async { sink.delivered() >= 300 })
        .await
        .unwrap();
    let out = app.herald_ok(&["pause", &key]);
    assert!(!out.contains("has not confirmed"), "{out}");
    // The workflow answered once every page in flight had returned: the receiver has had
    // its last request, and the row says paused.
    let at_pause = sink.requests();
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Paused));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.requests(),
        at_pause,
        "a send reached the receiver after `herald pause` returned"
    );
    app.check_invariants(&key).await;

    app.herald_ok(&["resume", &key]);
    app.completes_exactly_once(&key, 3_000).await;
    assert_eq!(sink.delivered(), 3_000);
    assert_eq!(sink.duplicates(), 0);

    // Cancel: ends with what was sent, and sends nothing more.
    let segment = unique("pc");
    app.seed(3_000, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .page_size(100)
        .rate(600)
        .launch();
    let before = sink.delivered();
    wait_until(LONG, || async { sink.delivered() >= before + 200 })
        .await
        .unwrap();
    app.herald_ok(&["cancel", &key]);
    app.wait_status(&key, CampaignStatus::Cancelled, LONG)
        .await
        .unwrap();
    app.check_invariants(&key).await;
    let s = app.status(&key);
    let sent = s["sent"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sink.delivered() - before,
        sent as usize,
        "the ledger says what the receiver got: {s}"
    );
    assert!(sent < 3_000, "{s}");
}

#[tokio::test]
async fn an_email_campaign_goes_through_the_relay_once_per_recipient() {
    let relay = SmtpSink::start("127.0.0.1:0").await.unwrap();
    relay.set_faults(smtp::Faults {
        reply_451: 0.1,
        reply_550: 0.05,
    });
    let app = TestApp::spawn_with_env(&[("HERALD_SMTP_URL", &relay.url())])
        .await
        .unwrap();
    let segment = unique("em");
    app.seed(300, &segment);
    let key = app
        .campaign(&segment)
        .option("channel", "email")
        .option("attempts", "8")
        .option("auto-pause", "0")
        .page_size(100)
        .launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(&key).await;
    let s = app.status(&key);
    let (sent, failed) = (s["sent"].as_i64().unwrap(), s["failed"].as_i64().unwrap());
    assert_eq!(sent + failed, 300, "{s}");
    assert!(failed > 0, "550s are permanent: {s}");
    assert_eq!(
        relay.delivered() as i64,
        sent,
        "sent means the relay accepted it"
    );
    assert_eq!(relay.duplicates(), 0);
    for (status, class, _) in outcomes(&app, &key).await {
        if status == 2 {
            assert_eq!(class.as_deref(), Some("smtp_550"));
        }
    }
    // Each 550 is a hard bounce: its address is suppressed for the campaigns after.
    let bounced: Vec<(String, String)> = sqlx::query_as(
        "SELECT address, reason FROM suppressions WHERE channel = 'email' ORDER BY address",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(bounced.len() as i64, failed, "{bounced:?}");
    assert!(bounced.iter().all(|(_, reason)| reason == "bounce"));
    relay.set_faults(smtp::Faults::default());
    let again = app
        .campaign(&segment)
        .option("channel", "email")
        .page_size(100)
        .launch();
    app.wait_status(&again, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let s = app.status(&again);
    assert_eq!(
        (s["sent"].as_i64(), s["suppressed"].as_i64()),
        (Some(300 - failed), Some(failed)),
        "{s}"
    );
    let mail = relay
        .mails()
        .into_iter()
        .find(|m| {
            m.header("Message-ID")
                .is_some_and(|id| id.starts_with(&format!("<msg_{again}_")))
        })
        .expect("a mail of the second campaign");
    assert!(
        mail.header("List-Unsubscribe")
            .is_some_and(|l| l.starts_with("<http://127.0.0.1:8080/u/")),
        "{:?}",
        mail.header("List-Unsubscribe")
    );
    let id = mail.header("Message-ID").unwrap();
    assert!(
        id.starts_with(&format!("<msg_{again}_")) && id.ends_with("@example.test>"),
        "{id}"
    );
    assert_eq!(mail.header("Subject"), Some("Hello"));
    assert_eq!(mail.from, "herald@example.test");
    assert!(mail.to[0].contains('@'));
}

#[tokio::test]
async fn a_launch_without_what_its_channel_needs_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("bad");
    app.seed(10, &segment);
    for (options, expected) in [
        (vec!["--channel", "webhook"], "needs its endpoint"),
        (
            vec![
                "--channel",
                "webhook",
                "--webhook-url",
                "ftp://example.com/x",
            ],
            "must start with http:// or https://",
        ),
        (
            vec![
                "--channel",
                "webhook",
                "--webhook-url",
                "http://user:pw@example.com/",
            ],
            "must not hold credentials",
        ),
        (
            vec!["--webhook-url", "http://example.com/"],
            "for the webhook channel only",
        ),
        (vec!["--channel", "email"], "HERALD_SMTP_URL is not set"),
        (vec!["--channel", "pigeon"], "unknown channel"),
        (
            vec![
                "--channel",
                "webhook",
                "--webhook-url",
                "http://x/",
                "--execution",
                "local",
            ],
            "regular activities",
        ),
        (
            vec!["--attempts", "3"],
            "--attempts: is for the webhook and e-mail",
        ),
        (
            vec![
                "--channel",
                "webhook",
                "--webhook-url",
                "http://x/",
                "--attempts",
                "0",
            ],
            "attempts",
        ),
    ] {
        let mut args = vec![
            "launch",
            "--title",
            "T",
            "--body",
            "B",
            "--segment",
            &segment,
        ];
        args.extend(options.iter());
        let out = app.herald(&args);
        assert!(!out.status.success(), "{options:?} was accepted");
        let err = stderr(&out);
        assert!(err.contains(expected), "{options:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{options:?}: one line: {err}"
        );
    }
    let out = app.herald_with_env(
        &[
            "launch",
            "--title",
            "T",
            "--body",
            "B",
            "--channel",
            "webhook",
            "--webhook-url",
            "http://x/",
        ],
        &[("HERALD_WEBHOOK_SECRET", "short")],
    );
    let err = stderr(&out);
    assert!(
        err.contains("HERALD_WEBHOOK_SECRET does not start with whsec_")
            && err.contains("openssl rand -base64 32")
            && !err.contains("short"),
        "one line, with the command that makes a secret, and no secret: {err}"
    );
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(campaigns, 0, "nothing was launched");
}

#[tokio::test]
async fn a_worker_without_the_channels_settings_fails_the_campaign_visibly() {
    let mut app = TestApp::without_worker().await.unwrap();
    app.start_worker_with_env(&[("HERALD_WEBHOOK_SECRET", "")])
        .unwrap();
    let sink = webhook_sink().await;
    let segment = unique("nw");
    app.seed(10, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .failure_grace(1)
        .launch();
    app.wait_status(&key, CampaignStatus::Failed, LONG)
        .await
        .unwrap();
    let s = app.status(&key);
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("HERALD_WEBHOOK_SECRET"),
        "the reason names the missing setting: {s}"
    );
    assert_eq!(sink.requests(), 0);
}

#[tokio::test]
async fn a_rate_change_takes_effect_while_the_campaign_runs() {
    let app = TestApp::spawn().await.unwrap();
    let sink = webhook_sink().await;
    let segment = unique("rc");
    app.seed(3_000, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .page_size(100)
        .lanes(2)
        .rate(50)
        .launch();
    wait_until(LONG, || async { sink.delivered() >= 100 })
        .await
        .unwrap();
    // At 50/s the rest would take a minute; at 5,000/s about a second.
    let changed = std::time::Instant::now();
    let out = app.herald_ok(&["rate", &key, "5000"]);
    assert!(
        out.contains("at most 5000 recipients/s from now (was 50/s)"),
        "{out}"
    );
    assert_eq!(app.status(&key)["rate"], 5000);
    app.completes_exactly_once(&key, 3_000).await;
    let took = changed.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the new rate applied: {took:?}"
    );
    assert_eq!(sink.delivered(), 3_000);
    assert_eq!(sink.duplicates(), 0);

    // A finished campaign's rate cannot change; a bad rate is refused by name.
    let out = app.herald(&["rate", &key, "10"]);
    assert!(stderr(&out).contains("is completed"), "{}", stderr(&out));
    let out = app.herald(&["rate", &key, "fast"]);
    assert!(stderr(&out).contains("or \"none\""), "{}", stderr(&out));
}

#[tokio::test]
async fn the_report_names_the_failures_and_retry_failed_sends_to_them_again() {
    let app = TestApp::spawn().await.unwrap();
    let sink = webhook_sink().await;
    sink.set_faults(Faults {
        always: Some(410),
        ..Faults::default()
    });
    let segment = unique("rf");
    app.seed(40, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .option("auto-pause", "0")
        .launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();

    let report: serde_json::Value =
        serde_json::from_str(&app.herald_ok(&["report", &key, "--json", "--failed", "5"])).unwrap();
    assert_eq!(report["campaign"]["failed"], 40, "{report}");
    assert_eq!(report["outcomes"][0]["outcome"], "failed", "{report}");
    assert_eq!(report["outcomes"][0]["class"], "http_410", "{report}");
    assert_eq!(report["outcomes"][0]["items"], 40, "{report}");
    assert_eq!(report["top_errors"][0]["error"], "410 Gone", "{report}");
    assert_eq!(report["failed"].as_array().unwrap().len(), 5, "{report}");
    assert!(report["failed"][0]["email"].as_str().unwrap().contains('@'));
    let text = app.herald_ok(&["report", &key]);
    assert!(
        text.contains("410 Gone") && text.contains("http_410"),
        "{text}"
    );
    let csv = app.herald_ok(&["report", &key, "--csv"]);
    assert_eq!(
        csv.lines().count(),
        41,
        "a header and every failed recipient:\n{csv}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains(",1,http_410,410 Gone,"),
        "{csv}"
    );

    // The receiver is fixed: the failed are sent again, with the ids they had.
    sink.set_faults(Faults::default());
    let out = app.herald_ok(&["retry-failed", &key]);
    assert!(out.contains("retrying 40 failed deliveries"), "{out}");
    app.completes_exactly_once(&key, 40).await;
    assert_eq!(sink.delivered(), 40);
    for id in sink.ids() {
        assert!(id.starts_with(&format!("msg_{key}_")), "{id}");
    }
    let out = app.herald(&["retry-failed", &key]);
    assert!(
        stderr(&out).contains("has no failed deliveries"),
        "{}",
        stderr(&out)
    );

    // The inbox has nothing to retry; a running campaign is not retried under its feet.
    let inbox = app.campaign(&segment).launch();
    app.wait_status(&inbox, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let out = app.herald(&["retry-failed", &inbox]);
    assert!(
        stderr(&out).contains("nothing to retry"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn rate_report_and_retry_failed_over_http_with_their_errors() {
    use reqwest::StatusCode;
    use serde_json::json;

    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let sink = webhook_sink().await;
    let segment = unique("hr");
    app.seed(2_000, &segment);
    let slow = unique("http-rate");
    let launched = api
        .post(
            "/v1/campaigns",
            json!({"key": slow, "title": "T", "body": "B", "segment": segment, "page_size": 100,
                   "lanes": 2, "rate": 50, "channel": "webhook", "webhook_url": sink.url()}),
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    wait_until(LONG, || async { sink.delivered() >= 100 })
        .await
        .unwrap();

    // Refused, by name, and nothing changes.
    let rate = format!("/v1/campaigns/{slow}/rate");
    for (body, status, says) in [
        (json!({"rate": 0}), StatusCode::BAD_REQUEST, "rate"),
        (json!({"rate": "fast"}), StatusCode::BAD_REQUEST, "rate"),
        (
            json!({"rate": 10, "speed": 1}),
            StatusCode::BAD_REQUEST,
            "speed",
        ),
    ] {
        let a = api.post(&rate, body.clone()).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {}", a.text);
    }
    let a = api
        .post("/v1/campaigns/no-such-campaign/rate", json!({"rate": 10}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(
        api.get(&format!("/v1/campaigns/{slow}")).await.body["rate"],
        50
    );

    let a = api.post(&rate, json!({"rate": 5000})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["before"], 50, "{}", a.text);
    assert_eq!(a.body["campaign"]["rate"], 5000, "{}", a.text);
    app.completes_exactly_once(&slow, 2_000).await;
    let a = api.post(&rate, json!({"rate": 10})).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(sink.duplicates(), 0);

    // A receiver that refuses everyone: the report says so, retry-failed sends again.
    sink.set_faults(Faults {
        always: Some(422),
        ..Faults::default()
    });
    let broken = unique("http-retry");
    let a = api
        .post(
            "/v1/campaigns",
            // Pages of 100 in one lane: a run tuned with the default auto-pause would stop
            // after its tenth page, long before its last.
            json!({"key": broken, "title": "T", "body": "B", "segment": segment, "page_size": 100,
                   "lanes": 1, "channel": "webhook", "webhook_url": sink.url(), "auto_pause": 0}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let retry = format!("/v1/campaigns/{broken}/retry-failed");
    app.wait_status(&broken, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let report = api
        .get(&format!("/v1/campaigns/{broken}/report?failed=3"))
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    assert_eq!(report.body["campaign"]["failed"], 2_000, "{}", report.text);
    assert_eq!(
        report.body["outcomes"][0]["class"], "http_422",
        "{}",
        report.text
    );
    assert_eq!(
        report.body["top_errors"][0]["error"],
        "422 Unprocessable Entity"
    );
    assert_eq!(report.body["failed"].as_array().unwrap().len(), 3);
    for bad in ["?failed=5000", "?failed=-1", "?failed=many", "?fails=3"] {
        let a = api
            .get(&format!("/v1/campaigns/{broken}/report{bad}"))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert!(a.body["error"]["message"].is_string(), "{bad}: {}", a.text);
    }
    let a = api.get("/v1/campaigns/no-such-campaign/report").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);

    // As an auto-pause that came while the last pages finished leaves it: completed, with a
    // pause requested. Retrying is a request to send, and overrides it.
    sqlx::query("UPDATE messages SET intent = $2, intent_seq = intent_seq + 1 WHERE key = $1")
        .bind(&broken)
        .bind(herald_wire::Intent::Pause.code())
        .execute(&app.pool)
        .await
        .unwrap();
    // Retried while the receiver still refuses: launched with auto-pause off, the retry run
    // does not pause itself either (the launch's tuning is kept), and fails them again.
    let a = api.post(&retry, json!({})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    app.wait_status(&broken, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let status = api.get(&format!("/v1/campaigns/{broken}")).await;
    assert_eq!(status.body["failed"], 2_000, "{}", status.text);

    sink.set_faults(Faults::default());
    let before = sink.requests();
    let a = api.post(&retry, json!({})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["retrying"], 2_000, "{}", a.text);
    app.completes_exactly_once(&broken, 2_000).await;
    assert_eq!(
        sink.requests() - before,
        2_000,
        "each failed recipient once more"
    );
    let a = api.post(&retry, json!({})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let a = api
        .post(&format!("/v1/campaigns/{slow}/retry-failed"), json!({}))
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing failed: {}",
        a.text
    );
    let report = api.get(&format!("/v1/campaigns/{broken}/report")).await;
    assert_eq!(report.body["campaign"]["sent"], 2_000, "{}", report.text);
    assert_eq!(report.body["failed"].as_array().unwrap().len(), 0);
}
