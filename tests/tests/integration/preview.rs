//! Before a campaign goes: an e-mail's own subject and HTML part (multipart/alternative at
//! the relay), a preview for chosen or random users with the variables they lack, and test
//! sends through the real channel, marked as tests and kept out of the ledger.

use herald_tests::{
    LONG, TestApp,
    sinks::{SmtpSink, WEBHOOK_SECRET, WebhookSink},
    stderr, unique,
};
use herald_wire::CampaignStatus;
use reqwest::StatusCode;
use serde_json::json;

/// Users 1–3 of `segment`: two with a name and a plan, one with neither.
fn import(app: &TestApp, segment: &str) -> Vec<i64> {
    let dir = std::env::temp_dir().join(unique("herald-pv-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.ndjson");
    let ids = vec![101, 102, 103];
    let lines = [
        json!({"id": ids[0], "email": format!("a{}@example.com", ids[0]), "name": "Ada", "segments": [segment], "attrs": {"plan": "pro"}}),
        json!({"id": ids[1], "email": format!("b{}@example.com", ids[1]), "name": "Bo", "segments": [segment], "attrs": {"plan": "free"}}),
        json!({"id": ids[2], "email": format!("c{}@example.com", ids[2]), "segments": [segment]}),
    ];
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    app.herald_ok(&["users", "import", path.to_str().unwrap()]);
    ids
}

#[tokio::test]
async fn an_email_has_its_own_subject_and_html_and_a_preview_shows_them() {
    let relay = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_with_env(&[("HERALD_SMTP_URL", &relay.url())])
        .await
        .unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("pv");
    let ids = import(&app, &segment);
    let subject = "Your {{ user.attrs.plan | default(\"new\") }} plan";
    let html =
        "<p>Hi {{ user.name | default(\"you\") }}</p><a href=\"{{ unsubscribe_url }}\">stop</a>";

    // A preview of launch flags: for a named user, and for random recipients.
    let out = app.herald_ok(&[
        "preview",
        "--title",
        "T",
        "--body",
        "Hello {{ user.name }}",
        "--subject",
        subject,
        "--html",
        html,
        "--channel",
        "email",
        "--segment",
        &segment,
        "--user",
        &ids[2].to_string(),
    ]);
    assert!(out.contains("subject   Your new plan"), "{out}");
    assert!(out.contains("<p>Hi you</p>"), "{out}");
    assert!(
        out.contains("missing   user.attrs.plan, user.name"),
        "{out}"
    );
    let random = api
        .post(
            "/v1/preview",
            json!({"launch": {"title": "T", "body": "B {{ user.id }}", "segment": segment}}),
        )
        .await;
    assert_eq!(random.status, StatusCode::OK, "{random:?}");
    assert_eq!(random.body["items"].as_array().unwrap().len(), 3);
    // A subject on a channel that has none is refused at its field.
    let wrong = api
        .post(
            "/v1/preview",
            json!({"launch": {"title": "T", "body": "B", "subject": "S"}}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{wrong:?}");
    assert_eq!(wrong.body["error"]["field"], "launch.subject", "{wrong:?}");
    // Nothing was written by any of it.
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(campaigns, 0);

    let key = app
        .campaign(&segment)
        .content("Title", "Hello {{ user.name | default(\"you\") }}")
        .option("channel", "email")
        .option("subject", subject)
        .option("html", html)
        .launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let mail = relay
        .mails()
        .into_iter()
        .find(|m| m.to[0] == format!("a{}@example.com", ids[0]))
        .unwrap();
    assert_eq!(mail.header("Subject"), Some("Your pro plan"));
    assert!(
        mail.header("Content-Type")
            .is_some_and(|c| c.starts_with("multipart/alternative")),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("Hello Ada"), "{}", mail.data);
    assert!(mail.data.contains("<p>Hi Ada</p>"), "{}", mail.data);
    assert!(
        mail.data.contains("/u/"),
        "the HTML carries the link: {}",
        mail.data
    );

    // A preview of the launched campaign by its key.
    let by_key = api
        .post(
            "/v1/preview",
            json!({"campaign": key, "user_ids": [ids[1]]}),
        )
        .await;
    assert_eq!(
        by_key.body["items"][0]["subject"], "Your free plan",
        "{by_key:?}"
    );

    // A test send of it: "[Test]", an id of its own, the campaign's counts untouched.
    let before = app.status(&key);
    let out = app.herald_ok(&["test-send", &key, "--to", &ids[0].to_string()]);
    assert!(out.contains(&format!("test_{key}_{}_", ids[0])), "{out}");
    let tests: Vec<_> = relay
        .mails()
        .into_iter()
        .filter(|m| m.header("Subject") == Some("[Test] Your pro plan"))
        .collect();
    assert_eq!(tests.len(), 1);
    assert!(
        tests[0]
            .header("Message-ID")
            .is_some_and(|id| id.starts_with(&format!("<test_{key}_"))),
    );
    let after = app.status(&key);
    assert_eq!(
        (&before["sent"], &before["failed"], &before["suppressed"]),
        (&after["sent"], &after["failed"], &after["suppressed"])
    );
    let log: Vec<(Option<String>, i64, String, Option<String>)> =
        sqlx::query_as("SELECT campaign, user_id, outcome, actor FROM test_sends ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0.as_deref(), Some(key.as_str()));
    assert_eq!(log[0].2, "sent");
    assert!(log[0].3.as_deref().unwrap().starts_with("cli:"));
}

#[tokio::test]
async fn a_test_send_goes_through_the_webhook_marked_and_out_of_the_ledger() {
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("tw");
    let ids = import(&app, &segment);
    let launch = json!({"title": "Hi {{ user.name }}", "body": "B", "channel": "webhook",
                        "webhook_url": sink.url(), "segment": segment, "key": "never-launched"});
    let sent = api
        .post(
            "/v1/test-sends",
            json!({"launch": launch, "user_ids": [ids[0], ids[1]]}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    assert_eq!(sent.body["items"][0]["outcome"], "sent", "{sent:?}");
    let id = sent.body["items"][0]["delivery_id"].as_str().unwrap();
    assert!(
        id.starts_with(&format!("test_never-launched_{}_", ids[0])),
        "{id}"
    );
    let got = sink.received(id).expect("the sink got the test");
    assert_eq!(got.body["type"], "herald.message.test");
    assert_eq!(got.body["title"], "Hi Ada");
    assert_eq!(sink.delivered(), 2);
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(campaigns, 0, "a test send launches nothing");
    let logged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM test_sends WHERE actor = 'api-token'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(logged, 2);

    // At most 20 users, each of them known.
    let many: Vec<i64> = (1..=21).collect();
    let refused = api
        .post(
            "/v1/test-sends",
            json!({"launch": launch, "user_ids": many}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
    assert_eq!(refused.body["error"]["field"], "user_ids");
    let unknown = api
        .post(
            "/v1/test-sends",
            json!({"launch": launch, "user_ids": [999_999_999]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");
    let none = app.herald(&["test-send", "no-such-campaign", "--to", "1"]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert_eq!(sink.delivered(), 2, "refused test sends send nothing");
}
