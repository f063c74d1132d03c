//! Consent end to end: one-click unsubscribe made the way Gmail makes it, honoured by the
//! next campaign of the category (counted suppressed) and not by a transactional one; an
//! opt-out made while a campaign runs, honoured by its later pages; a hard bounce that
//! suppresses its address; preferences and the suppression list through the API and the
//! CLI, with bad input refused and nothing changed.

use herald_tests::{
    LONG, TestApp,
    api::user_token,
    sinks::{SmtpSink, WEBHOOK_SECRET, WebhookSink},
    stderr, unique, wait_until,
};
use herald_wire::CampaignStatus;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The users of `segment`, by id: (id, e-mail address).
async fn users(app: &TestApp, segment: &str) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, email FROM users WHERE segments @> ARRAY[$1] ORDER BY id")
        .bind(segment)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// The mails of one campaign (told apart by their `Message-ID`).
fn mails_of(relay: &SmtpSink, key: &str) -> Vec<herald_tests::sinks::smtp::Mail> {
    let prefix = format!("<msg_{key}_");
    relay
        .mails()
        .into_iter()
        .filter(|m| {
            m.header("Message-ID")
                .is_some_and(|id| id.starts_with(&prefix))
        })
        .collect()
}

/// The token at the end of an unsubscribe link.
fn token_of(url: &str) -> &str {
    url.rsplit_once("/u/").expect("an unsubscribe link").1
}

/// The counters `herald status` shows, and that they add up to the audience.
fn counters(app: &TestApp, key: &str) -> (i64, i64, i64) {
    let s = app.status(key);
    let n = |f: &str| s[f].as_i64().unwrap();
    assert_eq!(
        n("sent") + n("failed") + n("suppressed") + n("pending"),
        n("total"),
        "sent + failed + suppressed + pending = total: {s}"
    );
    (n("sent"), n("failed"), n("suppressed"))
}

#[tokio::test]
async fn one_click_unsubscribes_from_the_category_and_the_next_campaign_skips_the_user() {
    let relay = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_with_env(&[
        ("HERALD_SMTP_URL", &relay.url()),
        ("HERALD_UNSUBSCRIBE_MAILTO", "unsubscribe@example.test"),
    ])
    .await
    .unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("oc");
    app.seed(20, &segment);
    let people = users(&app, &segment).await;

    let first = app.campaign(&segment).option("channel", "email").launch();
    app.wait_status(&first, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let mails = mails_of(&relay, &first);
    assert_eq!(mails.len(), 20);
    let (leaver, leaver_email) = people[3].clone();
    let mail = mails
        .iter()
        .find(|m| m.to[0] == leaver_email)
        .expect("the leaver got the first campaign");
    // RFC 8058: the one-click link, then the mailto:, and the POST header.
    let list = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let (link, mailto) = list.split_once(", ").expect("a link and a mailto");
    assert!(
        mailto == "<mailto:unsubscribe@example.test?subject=unsubscribe>",
        "{list}"
    );
    let link = link.trim_start_matches('<').trim_end_matches('>');
    assert!(link.starts_with("http://127.0.0.1:8080/u/"), "{link}");
    let token = token_of(link);

    // A link scanner's GET shows the page and changes nothing.
    let page = api
        .call(Method::GET, &format!("/u/{token}"), None, None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("marketing") && page.text.contains("<form method=\"post\""));
    let prefs = format!("/v1/users/{leaver}/preferences");
    assert_eq!(api.get(&prefs).await.body["opt_outs"], json!([]));

    // Gmail's one-click POST: form-encoded, no session, no key. Twice: the same answer.
    for _ in 0..2 {
        let posted = api
            .raw(
                api.client
                    .post(api.url(&format!("/u/{token}")))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("List-Unsubscribe=One-Click"),
            )
            .await;
        assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    }
    let got = api.get(&prefs).await;
    assert_eq!(got.body["opt_outs"].as_array().unwrap().len(), 1, "{got:?}");
    assert_eq!(got.body["opt_outs"][0]["category"], "marketing");
    assert_eq!(got.body["opt_outs"][0]["channel"], "email");
    assert_eq!(got.body["opt_outs"][0]["source"], "one-click");
    // A forged or cut token is not found, and changes nothing.
    let forged = format!("/u/{}x", &token[..token.len() - 1]);
    assert_eq!(
        api.call(Method::POST, &forged, None, None).await.status,
        StatusCode::NOT_FOUND
    );

    // The next marketing campaign leaves the leaver out, and says so.
    let second = app.campaign(&segment).option("channel", "email").launch();
    app.wait_status(&second, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(&second).await;
    assert_eq!(counters(&app, &second), (19, 0, 1));
    let new = mails_of(&relay, &second);
    assert_eq!(new.len(), 19);
    assert!(new.iter().all(|m| m.to[0] != leaver_email));
    let report: serde_json::Value =
        serde_json::from_str(&app.herald_ok(&["report", &second, "--json"])).unwrap();
    assert!(
        report["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["outcome"] == "suppressed" && o["items"] == 1),
        "{report}"
    );
    let campaign = api.get(&format!("/v1/campaigns/{second}")).await;
    assert_eq!(campaign.body["suppressed"], 1, "{campaign:?}");

    // The inbox is another channel: the e-mail opt-out does not reach it.
    let inbox = app.campaign(&segment).launch();
    app.wait_status(&inbox, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(counters(&app, &inbox), (20, 0, 0));

    // A transactional campaign reaches them, asked for by name.
    let receipt = app
        .campaign(&segment)
        .option("channel", "email")
        .option("category", "transactional")
        .launch();
    app.wait_status(&receipt, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(counters(&app, &receipt), (20, 0, 0));
    let receipt_mail = mails_of(&relay, &receipt)
        .into_iter()
        .find(|m| m.to[0] == leaver_email)
        .expect("the transactional mail reached the leaver");
    assert_eq!(
        receipt_mail.header("List-Unsubscribe"),
        None,
        "nobody unsubscribes from transactional mail"
    );

    // A category nobody declared is refused at its field; declared, it launches.
    let out = app.herald(&[
        "launch",
        "--title",
        "T",
        "--body",
        "B",
        "--segment",
        &segment,
        "--category",
        "product-news",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("category"), "{}", stderr(&out));
    app.herald_ok(&["categories", "add", "product-news"]);
    let news = app
        .campaign(&segment)
        .option("category", "product-news")
        .launch();
    app.wait_status(&news, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_opt_out_made_while_a_campaign_runs_is_honoured_by_its_later_pages() {
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("mid");
    app.seed(600, &segment);
    let people = users(&app, &segment).await;
    // One lane of 20 a page at 100/s: six seconds of sending, pages in id order.
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .page_size(20)
        .lanes(1)
        .rate(100)
        .launch();
    wait_until(LONG, || async { sink.delivered() >= 40 })
        .await
        .unwrap();
    // The last user opts out with their own token, by the preferences API.
    let (last, _) = people[599];
    let put = api
        .call(
            Method::PUT,
            &format!("/v1/users/{last}/preferences"),
            Some(&user_token(last)),
            Some(json!({"opt_outs": [{"category": "marketing", "channel": "all"}]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    // Another's token opens nothing.
    let other = api
        .call(
            Method::PUT,
            &format!("/v1/users/{last}/preferences"),
            Some(&user_token(people[0].0)),
            Some(json!({"opt_outs": []})),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(&key).await;
    assert_eq!(counters(&app, &key), (599, 0, 1));
    assert!(sink.received(&format!("msg_{key}_{last}")).is_none());
    assert_eq!(sink.duplicates(), 0);
    let p = app.progress(&key);
    assert_eq!(
        (
            p["sent"].as_i64(),
            p["suppressed"].as_i64(),
            p["pending"].as_i64()
        ),
        (Some(599), Some(1), Some(0)),
        "{p}"
    );
    // Each payload carries its recipient's link.
    let first = sink
        .received(&format!("msg_{key}_{}", people[0].0))
        .unwrap();
    let link = first.body["unsubscribe_url"].as_str().unwrap();
    let posted = api
        .call(Method::POST, &format!("/u/{}", token_of(link)), None, None)
        .await;
    assert_eq!(posted.status, StatusCode::OK);
    let prefs = api
        .get(&format!("/v1/users/{}/preferences", people[0].0))
        .await;
    assert_eq!(prefs.body["opt_outs"][0]["channel"], "webhook", "{prefs:?}");
}

#[tokio::test]
async fn preferences_and_suppressions_refuse_bad_input_and_change_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("pref");
    app.seed(3, &segment);
    let people = users(&app, &segment).await;
    let user = people[0].0;
    let prefs = format!("/v1/users/{user}/preferences");
    for (body, status, field) in [
        (
            json!({"opt_outs": [{"category": "nope", "channel": "email"}]}),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            json!({"opt_outs": [{"category": "marketing", "channel": "sms"}]}),
            StatusCode::BAD_REQUEST,
            Some("opt_outs[0].channel"),
        ),
        (
            json!({"opt_outs": [{"category": "transactional", "channel": "all"}]}),
            StatusCode::BAD_REQUEST,
            Some("opt_outs[0].category"),
        ),
        (json!({"opt_outs": "all"}), StatusCode::BAD_REQUEST, None),
    ] {
        let answer = api.service(Method::PUT, &prefs, Some(body.clone())).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
        if let Some(field) = field {
            assert_eq!(answer.body["error"]["field"], field, "{answer:?}");
        }
    }
    assert_eq!(api.get(&prefs).await.body["opt_outs"], json!([]));
    assert_eq!(
        api.get("/v1/users/999999999/preferences").await.status,
        StatusCode::NOT_FOUND
    );

    // The suppression list: one bad address refuses the request.
    let bad = api
        .post(
            "/v1/suppressions",
            json!({"addresses": ["ok@example.com", "not an address"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{bad:?}");
    assert_eq!(bad.body["error"]["field"], "addresses[1]");
    assert_eq!(api.get("/v1/suppressions").await.body["total"], 0);
    let good = api
        .post(
            "/v1/suppressions",
            json!({"addresses": ["Gone@Example.com", "gone@example.com"], "note": "left"}),
        )
        .await;
    assert_eq!(good.status, StatusCode::OK, "{good:?}");
    assert_eq!(good.body["added"], 1);
    let list = api.get("/v1/suppressions?channel=email").await;
    assert_eq!(list.body["items"][0]["address"], "gone@example.com");
    assert_eq!(list.body["items"][0]["reason"], "operator");

    // The CLI's import: a bad line is named, and nothing is imported.
    let dir = std::env::temp_dir().join(unique("herald-supp-"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("list.csv");
    std::fs::write(&file, "email,note\na@example.com,x\nbroken\n").unwrap();
    let out = app.herald(&["suppressions", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    assert_eq!(api.get("/v1/suppressions").await.body["total"], 1);
    std::fs::write(&file, "email\na@example.com\nb@example.com\n").unwrap();
    let out = app.herald_ok(&["suppressions", "import", file.to_str().unwrap()]);
    assert!(out.contains("2 newly suppressed"), "{out}");
    let removed = api
        .service(
            Method::DELETE,
            "/v1/suppressions/email/a%40example.com",
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{removed:?}");
    assert_eq!(
        api.service(
            Method::DELETE,
            "/v1/suppressions/email/a%40example.com",
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // A suppressed inbox address (a user id) gets no inbox item; its link in another item
    // opts out of the inbox only.
    app.herald_ok(&[
        "suppressions",
        "add",
        &people[1].0.to_string(),
        "--channel",
        "inbox",
    ]);
    let key = app.campaign(&segment).launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(counters(&app, &key), (2, 0, 1));
    let inbox = api
        .call(
            Method::GET,
            &format!("/v1/users/{user}/inbox"),
            Some(&user_token(user)),
            None,
        )
        .await;
    let link = inbox.body["items"][0]["unsubscribe_url"].as_str().unwrap();
    let suppressed_inbox = api
        .call(
            Method::GET,
            &format!("/v1/users/{}/inbox", people[1].0),
            Some(&user_token(people[1].0)),
            None,
        )
        .await;
    assert_eq!(suppressed_inbox.body["items"], json!([]));
    api.call(Method::POST, &format!("/u/{}", token_of(link)), None, None)
        .await;
    let out = app.herald_ok(&["preferences", &user.to_string()]);
    assert!(out.contains("marketing") && out.contains("inbox"), "{out}");
}

#[tokio::test]
async fn an_opt_out_list_is_imported_whole_or_not_at_all_and_later_pages_honour_it() {
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("optin");
    app.seed(5, &segment);
    let ids: Vec<i64> = users(&app, &segment)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let opted_out = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM opt_outs")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };

    // The CLI's import: an unknown user on line 3 refuses the whole file.
    let dir = std::env::temp_dir().join(unique("herald-optouts-"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("optouts.csv");
    std::fs::write(&file, format!("user_id,category\n{}\n999999999\n", ids[0])).unwrap();
    let out = app.herald(&["opt-out", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 3") && stderr(&out).contains("no user 999999999"),
        "{}",
        stderr(&out)
    );
    assert_eq!(opted_out().await, 0);
    // A header, a default line, a line that says its own channel, a repeat.
    std::fs::write(
        &file,
        format!(
            "user_id,category,channel\n{a}\n{b},marketing,email\n{a}\n",
            a = ids[0],
            b = ids[1]
        ),
    )
    .unwrap();
    let out = app.herald_ok(&["opt-out", "--file", file.to_str().unwrap()]);
    assert!(out.contains("3 opt-outs read, 2 new"), "{out}");
    let out = app.herald_ok(&["preferences", &ids[1].to_string(), "--json"]);
    let prefs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(prefs["opt_outs"][0]["channel"], "email", "{prefs}");
    assert_eq!(prefs["opt_outs"][0]["source"], "import", "{prefs}");

    // The API: a wrong entry is named by its place and adds nothing.
    for (body, field) in [
        (
            json!({"opt_outs": [{"user_id": ids[2]}, {"user_id": ids[3], "category": "transactional"}]}),
            "opt_outs[1].category",
        ),
        (
            json!({"opt_outs": [{"user_id": 999999999}]}),
            "opt_outs[0].user_id",
        ),
        (
            json!({"opt_outs": [{"user_id": ids[2], "channel": "sms"}]}),
            "opt_outs[0].channel",
        ),
        (json!({"opt_outs": []}), "opt_outs"),
    ] {
        let answer = api.post("/v1/opt-outs", body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {answer:?}");
        assert_eq!(answer.body["error"]["field"], field, "{answer:?}");
    }
    assert_eq!(opted_out().await, 2);
    let added = api
        .post(
            "/v1/opt-outs",
            json!({"opt_outs": [{"user_id": ids[2], "channel": "inbox"}, {"user_id": ids[0]}]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{added:?}");
    assert_eq!(
        (added.body["read"].clone(), added.body["added"].clone()),
        (json!(2), json!(1))
    );

    // A list far over the ordinary body limit (128 KiB) is taken whole.
    let many: Vec<_> = (0..20_000)
        .map(|_| json!({"user_id": ids[4], "channel": "webhook"}))
        .collect();
    let big = api.post("/v1/opt-outs", json!({ "opt_outs": many })).await;
    assert_eq!(big.status, StatusCode::OK, "{:?}", big.body);
    assert_eq!(
        (big.body["read"].clone(), big.body["added"].clone()),
        (json!(20_000), json!(1))
    );

    // An inbox campaign: the users out of all channels or of the inbox are suppressed, the
    // ones out of e-mail or webhooks only are not.
    let key = app.campaign(&segment).launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(counters(&app, &key), (3, 0, 2));
}
