//! The HTTP API end to end: a real `herald-api` process over the real services, driven with
//! HTTP as a service or an app would.

use std::time::Duration;

use herald_tests::{
    LONG, TestApp,
    api::{ApiServer, INBOX_SECRET, TOKEN, user_token},
    unique,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Everything a request could change, in one string: campaign rows (status, requests,
/// spec), items, reads and read marks.
async fn fingerprint(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT concat_ws('|',
            (SELECT count(*) FROM messages),
            (SELECT md5(coalesce(string_agg(concat_ws(',', key, status, intent, intent_seq,
                                                     intent_reason, spec::text), ';' ORDER BY id), ''))
             FROM messages),
            (SELECT count(*) FROM message_items),
            (SELECT count(*) FROM message_items WHERE read_at IS NOT NULL),
            (SELECT coalesce(sum(reads), 0) FROM message_reads),
            (SELECT count(*) FROM users))",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn first_user(app: &TestApp, segment: &str) -> i64 {
    sqlx::query_scalar("SELECT min(id) FROM users WHERE $1 = ANY(segments)")
        .bind(segment)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_campaign_launched_paused_resumed_and_watched_over_http() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(20_000, "h");
    let api = app.api().await.unwrap();
    let key = unique("http");
    let spec = json!({"key": key, "title": "Hello", "body": "Over HTTP", "segment": "h",
                      "page_size": 100, "lanes": 2, "rate": 4000});

    let launched = api.post("/v1/campaigns", spec.clone()).await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    assert_eq!(
        launched.headers["location"],
        format!("/v1/campaigns/{key}").as_str()
    );
    assert!(launched.headers.contains_key("x-request-id"));
    assert_eq!(launched.body["total"], 20_000);
    let mut events = api.events(&format!("/v1/campaigns/{key}/events")).await;

    // The same launch again, by body or by header: the same campaign, nothing new.
    let again = api.post("/v1/campaigns", spec.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let mut by_header = spec.clone();
    by_header.as_object_mut().unwrap().remove("key");
    let again = api
        .raw(
            api.client
                .post(api.url("/v1/campaigns"))
                .bearer_auth(TOKEN)
                .header("Idempotency-Key", &key)
                .json(&by_header),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let mut different = spec.clone();
    different["rate"] = json!(5000);
    let conflict = api.post("/v1/campaigns", different).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
    assert!(
        conflict.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate")
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE key = $1")
        .bind(&key)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one key, one campaign");

    // Watched: progress events while it moves.
    let seen = events
        .until(LONG, |e| {
            e.name == "progress" && e.data["sent"].as_i64() >= Some(500)
        })
        .await
        .unwrap();
    assert_eq!(seen[0].data["key"], key.as_str());

    // Paused over HTTP and confirmed: the answer comes once the pages in flight have
    // returned, and the campaign it shows is paused. Nothing moves after it.
    let paused = api
        .post(
            &format!("/v1/campaigns/{key}/pause"),
            json!({"reason": "typo"}),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);
    assert_eq!(paused.body["request"], "pause");
    assert_eq!(paused.body["repeated"], false);
    assert_eq!(paused.body["confirmed"], true, "{}", paused.text);
    assert_eq!(paused.body["campaign"]["status_name"], "paused");
    let at_return = app.item_count(&key).await;
    let mut counts = Vec::new();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        counts.push(app.item_count(&key).await);
    }
    assert!(
        counts.iter().all(|&n| n == at_return),
        "moved after the pause answered: {at_return} -> {counts:?}"
    );
    assert!(
        *counts.last().unwrap() < 20_000,
        "finished before the pause"
    );
    events
        .until(LONG, |e| e.data["status"] == 2)
        .await
        .expect("the stream shows the pause");
    let shown = api.get(&format!("/v1/campaigns/{key}")).await;
    assert_eq!(shown.body["status_name"], "paused");
    assert_eq!(shown.body["reason"], "typo");
    assert_eq!(shown.body["sent"].as_i64(), counts.last().copied());
    let repeat = api
        .post(&format!("/v1/campaigns/{key}/pause"), json!({}))
        .await;
    assert_eq!(repeat.body["repeated"], true, "{}", repeat.text);

    // Resumed, with no body at all; followed to the end.
    let resumed = api
        .service(Method::POST, &format!("/v1/campaigns/{key}/resume"), None)
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    let rest = events.until(LONG, |e| e.name == "end").await.unwrap();
    let last = rest
        .iter()
        .rev()
        .find(|e| e.name == "progress")
        .expect("a last progress event");
    assert_eq!(last.data["status"], 3);
    assert_eq!(last.data["sent"], 20_000);
    assert!(
        events.next().await.is_none(),
        "the stream closes after `end`"
    );
    app.assert_exactly_once(&key, 20_000).await;

    // A finished campaign refuses a pause; an unknown one is not found.
    let late = api
        .post(&format!("/v1/campaigns/{key}/pause"), json!({}))
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
    let unknown = api.post("/v1/campaigns/no-such/pause", json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "not_found");

    // Listed, filtered by status.
    let listed = api.get("/v1/campaigns?status=completed&limit=5").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["key"], key.as_str());
    let none = api.get("/v1/campaigns?status=paused").await;
    assert_eq!(none.body["items"], json!([]));
    assert_eq!(none.body["next"], Value::Null);
}

#[tokio::test]
async fn a_users_inbox_page_by_page_read_once_with_a_badge_that_agrees() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(40, "i");
    app.seed(5, "elsewhere");
    let mut keys = Vec::new();
    for _ in 0..5 {
        let key = app.campaign("i").page_size(20).launch();
        app.completes_exactly_once(&key, 40).await;
        keys.push(key);
    }
    let api = app.api().await.unwrap();
    let user = first_user(&app, "i").await;
    let token = user_token(user);
    let inbox = |query: &str| format!("/v1/users/{user}/inbox{query}");

    // Page by page with the user's own token, newest campaign first.
    let first = api
        .call(Method::GET, &inbox("?limit=2"), Some(&token), None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["unread_count"], 5);
    // A campaign arrives mid-walk: it must not shift the pages that follow.
    let newer = app.campaign("i").page_size(20).launch();
    app.completes_exactly_once(&newer, 40).await;
    let mut walked: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        walked.extend(items.iter().map(|i| i["key"].as_str().unwrap().to_owned()));
        let Some(next) = page.body["next"].as_str().map(str::to_owned) else {
            break;
        };
        page = api
            .call(
                Method::GET,
                &inbox(&format!("?limit=2&after={next}")),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    }
    let expected: Vec<String> = keys.iter().rev().cloned().collect();
    assert_eq!(
        walked, expected,
        "every item once, newest first, none shifted"
    );
    let fresh = api
        .call(Method::GET, &inbox("?limit=1"), Some(&token), None)
        .await;
    assert_eq!(
        fresh.body["items"][0]["key"],
        newer.as_str(),
        "the new one comes first"
    );
    let item = &fresh.body["items"][0];
    assert_eq!(item["title"], "Hello");
    assert!(item["delivered_at"].is_string() && item["read_at"].is_null());

    // Read twice: one change, one read counted.
    let read = |k: &str| format!("/v1/users/{user}/inbox/{k}/read");
    let once = api
        .call(Method::POST, &read(&keys[0]), Some(&token), None)
        .await;
    assert_eq!(once.status, StatusCode::OK, "{}", once.text);
    assert_eq!(once.body["changed"], 1);
    let twice = api
        .call(Method::POST, &read(&keys[0]), Some(&token), None)
        .await;
    assert_eq!(twice.body["changed"], 0);
    assert_eq!(twice.body["unread_count"], 5);
    let campaign = api.get(&format!("/v1/campaigns/{}", keys[0])).await;
    assert_eq!(campaign.body["read"], 1, "the read counts once");

    // The badge is the list's count, whichever way it is asked.
    let badge = api
        .call(Method::GET, &inbox("/unread-count"), Some(&token), None)
        .await;
    let all = api
        .call(Method::GET, &inbox("?limit=100"), Some(&token), None)
        .await;
    let unread_in_list = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["read_at"].is_null())
        .count();
    assert_eq!(badge.body["unread_count"], unread_in_list);
    assert_eq!(all.body["unread_count"], unread_in_list);
    let unread = api
        .call(
            Method::GET,
            &inbox("?status=unread&limit=100"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        unread.body["items"].as_array().unwrap().len(),
        unread_in_list
    );
    let read_only = api
        .call(Method::GET, &inbox("?status=read"), Some(&token), None)
        .await;
    assert_eq!(read_only.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(read_only.body["items"][0]["key"], keys[0].as_str());

    // Read all: the rest change once.
    let all_read = api
        .call(Method::POST, &inbox("/read-all"), Some(&token), None)
        .await;
    assert_eq!(all_read.status, StatusCode::OK, "{}", all_read.text);
    assert_eq!(all_read.body["changed"], 5);
    assert_eq!(all_read.body["unread_count"], 0);
    let again = api
        .call(Method::POST, &inbox("/read-all"), Some(&token), None)
        .await;
    assert_eq!(again.body["changed"], 0);
    let reads: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(reads), 0)::bigint FROM message_reads")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(reads, 6, "six campaigns, each read once by this user");

    // Not a recipient, or no such campaign: 404.
    let outsider = first_user(&app, "elsewhere").await;
    let no = api
        .post(
            &format!("/v1/users/{outsider}/inbox/{}/read", keys[0]),
            json!({}),
        )
        .await;
    assert_eq!(no.status, StatusCode::NOT_FOUND, "{}", no.text);
    let empty = api.get(&format!("/v1/users/{outsider}/inbox")).await;
    assert_eq!(
        empty.body,
        json!({"items": [], "unread_count": 0, "next": null})
    );
}

/// Apps' inbox requests run on sessions of their own that nobody checks before use. Requests
/// one after another reuse one session, whatever they answered (a 404 is an answer, not a
/// broken session); one the database ended (a restart, a failover) fails one request with a
/// 503, which an app retries, and is replaced; the next answers as before, on every route.
#[tokio::test]
async fn an_inbox_whose_sessions_the_database_ended_answers_503_once_then_as_before() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(10, "i");
    let key = app.campaign("i").page_size(20).launch();
    app.completes_exactly_once(&key, 10).await;
    let api = app.api().await.unwrap();
    let user = first_user(&app, "i").await;
    let token = user_token(user);
    let inbox = format!("/v1/users/{user}/inbox");
    let call = |method: Method, path: String| {
        let (api, token) = (&api, &token);
        async move { api.call(method, &path, Some(token), None).await }
    };
    // The API's sessions for apps, as PostgreSQL lists them.
    let apps_sessions = format!(
        "FROM pg_stat_activity WHERE datname = current_database() AND application_name = '{}'",
        herald_control::APPS_SESSION_NAME
    );
    let sessions = || async {
        sqlx::query_scalar::<_, i32>(&format!("SELECT pid {apps_sessions} ORDER BY pid"))
            .fetch_all(&app.pool)
            .await
            .unwrap()
    };
    let before = call(Method::GET, inbox.clone()).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let one = sessions().await;
    assert_eq!(one.len(), 1, "the inbox ran on a session for apps");
    let unknown = call(Method::POST, format!("{inbox}/no-such-campaign/read")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    let badge = call(Method::GET, format!("{inbox}/unread-count")).await;
    assert_eq!(badge.status, StatusCode::OK, "{}", badge.text);
    assert_eq!(sessions().await, one, "the same session, kept after a 404");

    let ended: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) {apps_sessions}"
    ))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(ended, 1);

    let failed = call(Method::GET, inbox.clone()).await;
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.text
    );
    assert_eq!(failed.body["error"]["code"], "unavailable");
    let after = call(Method::GET, inbox.clone()).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    assert_eq!(after.body, before.body);
    let replaced = sessions().await;
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced, one, "a new session");
    let badge = call(Method::GET, format!("{inbox}/unread-count")).await;
    assert_eq!(badge.body["unread_count"], 1);
    let read = call(Method::POST, format!("{inbox}/{key}/read")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["unread_count"], 0);
}

#[tokio::test]
async fn every_caller_gets_what_its_token_allows() {
    let app = TestApp::without_worker().await.unwrap();
    app.seed(3, "a");
    let api = app.api().await.unwrap();
    let user = first_user(&app, "a").await;
    let other = user + 1;
    let mine = user_token(user);
    let theirs = user_token(other);
    let wrong_secret = herald_api::auth::user_token("not-the-inbox-secret", user);
    let shouted = mine.to_uppercase();
    let before = fingerprint(&app).await;

    let inbox = format!("/v1/users/{user}/inbox");
    let cases: Vec<(&str, String, Option<&str>, StatusCode)> = vec![
        (
            "GET",
            "/v1/campaigns".into(),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/v1/campaigns".into(),
            Some("wrong"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/v1/campaigns".into(),
            Some(&mine),
            StatusCode::FORBIDDEN,
        ),
        ("GET", "/v1/campaigns".into(), Some(TOKEN), StatusCode::OK),
        (
            "POST",
            "/v1/campaigns/x/pause".into(),
            Some(&mine),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            "/v1/campaigns/x/events".into(),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        ("GET", inbox.clone(), None, StatusCode::UNAUTHORIZED),
        (
            "GET",
            inbox.clone(),
            Some("wrong"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            inbox.clone(),
            Some(&shouted),
            StatusCode::UNAUTHORIZED,
        ),
        ("GET", inbox.clone(), Some(&theirs), StatusCode::FORBIDDEN),
        (
            "GET",
            inbox.clone(),
            Some(&wrong_secret),
            StatusCode::FORBIDDEN,
        ),
        ("GET", inbox.clone(), Some(&mine), StatusCode::OK),
        ("GET", inbox.clone(), Some(TOKEN), StatusCode::OK),
        (
            "GET",
            format!("{inbox}/unread-count"),
            Some(&theirs),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            format!("{inbox}/unread-count"),
            Some(&mine),
            StatusCode::OK,
        ),
        (
            "POST",
            format!("{inbox}/read-all"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "POST",
            format!("{inbox}/read-all"),
            Some(&theirs),
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            format!("{inbox}/x/read"),
            Some(&theirs),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            format!("/v1/users/{other}/inbox"),
            Some(&mine),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            format!("/v1/users/{other}/inbox"),
            Some(&theirs),
            StatusCode::OK,
        ),
    ];
    for (method, path, token, expected) in &cases {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let a = api.call(method.clone(), path, *token, None).await;
        assert_eq!(
            a.status, *expected,
            "{method} {path} with {token:?}: {}",
            a.text
        );
        if !a.status.is_success() {
            assert!(!a.code().is_empty(), "a JSON error: {}", a.text);
        }
        if a.status == StatusCode::UNAUTHORIZED {
            assert!(a.headers.contains_key("www-authenticate"));
        }
    }
    // Not Bearer at all.
    let basic = api
        .raw(
            api.client
                .get(api.url("/v1/campaigns"))
                .header("Authorization", format!("Basic {TOKEN}")),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        fingerprint(&app).await,
        before,
        "refused calls changed something"
    );

    // Tokens never reach the log, even at the most detailed level.
    drop(api);
    let api = app.api_with_env(&[("RUST_LOG", "trace")]).await.unwrap();
    api.call(Method::GET, &inbox, Some(&mine), None).await;
    api.call(Method::GET, "/v1/campaigns", Some(TOKEN), None)
        .await;
    drop(api);
    let log =
        std::fs::read_to_string(std::env::temp_dir().join(format!("{}.api.log", app.db_name)))
            .unwrap();
    assert!(log.contains("/v1/campaigns"), "the log has the requests");
    for secret in [TOKEN, mine.as_str(), INBOX_SECRET] {
        assert!(!log.contains(secret), "a token is in the log");
    }
}

#[tokio::test]
async fn malformed_requests_are_refused_with_a_json_4xx_and_change_nothing() {
    let app = TestApp::spawn().await.unwrap();
    app.seed(30, "m");
    let done = app.campaign("m").page_size(10).launch();
    app.completes_exactly_once(&done, 30).await;
    let api = app.api().await.unwrap();
    let user = first_user(&app, "m").await;
    let before = fingerprint(&app).await;

    let ok = json!({"title": "T", "body": "B", "segment": "m"});
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        b[field] = value;
        b
    };
    let post = |path: &str| api.client.post(api.url(path)).bearer_auth(TOKEN);
    let get = |path: &str| api.client.get(api.url(path)).bearer_auth(TOKEN);
    let json_body = |path: &str, text: String| {
        post(path)
            .header("content-type", "application/json")
            .body(text)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "broken JSON",
            json_body("/v1/campaigns", "{\"title\":".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no content type",
            post("/v1/campaigns").body(ok.to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "text content type",
            post("/v1/campaigns")
                .header("content-type", "text/plain")
                .body(ok.to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "a JSON array",
            post("/v1/campaigns").json(&json!([ok.clone()])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown field",
            post("/v1/campaigns").json(&with("colour", json!("red"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no title",
            post("/v1/campaigns").json(&json!({"body": "B"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "blank title",
            post("/v1/campaigns").json(&with("title", json!("  "))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "title too long",
            post("/v1/campaigns").json(&with("title", json!("t".repeat(201)))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "title a number",
            post("/v1/campaigns").json(&with("title", json!(5))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "body over 32 KiB",
            post("/v1/campaigns").json(&with("body", json!("b".repeat(32 * 1024 + 1)))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "page size 0",
            post("/v1/campaigns").json(&with("page_size", json!(0))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "page size text",
            post("/v1/campaigns").json(&with("page_size", json!("500"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "page size negative",
            post("/v1/campaigns").json(&with("page_size", json!(-1))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "lanes 65",
            post("/v1/campaigns").json(&with("lanes", json!(65))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "rate 0",
            post("/v1/campaigns").json(&with("rate", json!(0))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "rate fractional",
            post("/v1/campaigns").json(&with("rate", json!(1.5))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "send_at not a time",
            post("/v1/campaigns").json(&with("send_at", json!("tomorrow"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "send_at without offset",
            post("/v1/campaigns").json(&with("send_at", json!("2026-12-01T09:00:00"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "send_at years away",
            post("/v1/campaigns").json(&with("send_at", json!("2030-01-01T00:00:00Z"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "key with a space",
            post("/v1/campaigns").json(&with("key", json!("a b"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "key too long",
            post("/v1/campaigns").json(&with("key", json!("k".repeat(65)))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "key and header differ",
            post("/v1/campaigns")
                .header("Idempotency-Key", "one")
                .json(&with("key", json!("two"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown channel",
            post("/v1/campaigns").json(&with("channel", json!("sms"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown execution",
            post("/v1/campaigns").json(&with("execution", json!("fast"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "segment with a space",
            post("/v1/campaigns").json(&with("segment", json!("a b"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an empty audience",
            post("/v1/campaigns").json(&with("segment", json!("nobody"))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a key in use, another spec",
            post("/v1/campaigns").json(&with("key", json!(done))),
            StatusCode::CONFLICT,
        ),
        (
            "list limit 0",
            get("/v1/campaigns?limit=0"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "list limit 101",
            get("/v1/campaigns?limit=101"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "list limit text",
            get("/v1/campaigns?limit=ten"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "list unknown status",
            get("/v1/campaigns?status=sending"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "list bad cursor",
            get("/v1/campaigns?after=-4"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "list unknown parameter",
            get("/v1/campaigns?sort=asc"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "campaign key invalid",
            get("/v1/campaigns/a%20b"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "campaign unknown",
            get("/v1/campaigns/no-such"),
            StatusCode::NOT_FOUND,
        ),
        (
            "events of an unknown campaign",
            get("/v1/campaigns/no-such/events"),
            StatusCode::NOT_FOUND,
        ),
        (
            "pause unknown",
            post("/v1/campaigns/no-such/pause"),
            StatusCode::NOT_FOUND,
        ),
        (
            "pause a finished one",
            post(&format!("/v1/campaigns/{done}/pause")),
            StatusCode::CONFLICT,
        ),
        (
            "cancel a finished one",
            post(&format!("/v1/campaigns/{done}/cancel")),
            StatusCode::CONFLICT,
        ),
        (
            "reason not text",
            post(&format!("/v1/campaigns/{done}/pause")).json(&json!({"reason": 5})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "reason too long",
            post(&format!("/v1/campaigns/{done}/resume")).json(&json!({"reason": "r".repeat(501)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "request unknown field",
            post(&format!("/v1/campaigns/{done}/pause")).json(&json!({"why": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "user id text",
            get("/v1/users/abc/inbox"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "user id 0",
            get("/v1/users/0/inbox"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "user id negative",
            get("/v1/users/-3/inbox"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "user id too big",
            get("/v1/users/99999999999999999999/inbox"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "user unknown",
            get("/v1/users/987654321/inbox"),
            StatusCode::NOT_FOUND,
        ),
        (
            "inbox unknown status",
            get(&format!("/v1/users/{user}/inbox?status=new")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "inbox limit 101",
            get(&format!("/v1/users/{user}/inbox?limit=101")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "inbox bad cursor",
            get(&format!("/v1/users/{user}/inbox?after=x")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "read an invalid key",
            post(&format!("/v1/users/{user}/inbox/a%20b/read")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "read an unknown campaign",
            post(&format!("/v1/users/{user}/inbox/no-such/read")),
            StatusCode::NOT_FOUND,
        ),
        (
            "the badge of an unknown user",
            get("/v1/users/987654321/inbox/unread-count"),
            StatusCode::NOT_FOUND,
        ),
        (
            "read-all of an unknown user",
            post("/v1/users/987654321/inbox/read-all"),
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong method",
            api.client
                .delete(api.url("/v1/campaigns"))
                .bearer_auth(TOKEN),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("no such route", get("/v1/nothing"), StatusCode::NOT_FOUND),
    ];
    assert!(cases.len() > 40);
    for (what, request, expected) in cases {
        let a = api.raw(request).await;
        assert_eq!(a.status, expected, "{what}: {}", a.text);
        assert!(!a.code().is_empty(), "{what}: not a JSON error: {}", a.text);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty() && !m.contains('\n')),
            "{what}: {}",
            a.text
        );
        assert!(a.headers.contains_key("x-request-id"), "{what}");
    }
    // Over the size limit: answered before the body is read, which some clients (hyper's)
    // report as a dropped connection; a plain socket reads the answer.
    let big = with("body", json!("b".repeat(300 * 1024))).to_string();
    let head = too_large(&api, &big).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("\"too_large\""), "{head}");
    assert_eq!(
        fingerprint(&app).await,
        before,
        "a refused request changed something"
    );
}

/// POST `body` to `/v1/campaigns` over a plain socket; the answer as text.
async fn too_large(api: &ApiServer, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = api.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/campaigns HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // The server may stop reading and close: what it answered is still there to read.
    let _ = socket.write_all(body.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_served_document_describes_exactly_the_routes_that_answer() {
    let app = TestApp::without_worker().await.unwrap();
    let api = app.api().await.unwrap();
    let served = api.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body["openapi"], "3.1.0");
    let built = serde_json::to_value(herald_api::openapi()).unwrap();
    assert_eq!(
        served.body, built,
        "the served document is the one the code builds"
    );

    let methods = ["get", "post", "put", "patch", "delete"];
    let paths = served.body["paths"].as_object().unwrap();
    assert!(paths.len() >= 13, "{:?}", paths.keys());
    for (path, item) in paths {
        let concrete = path
            .replace("{key}", "k")
            .replace("{id}", "1")
            .replace("{token}", "not-a-token");
        for method in methods {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let a = api.call(m, &concrete, None, None).await;
            if let Some(op) = item.get(method) {
                let secured = op.get("security").is_some();
                if secured {
                    assert_eq!(
                        a.status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path}: {}",
                        a.text
                    );
                } else {
                    // An unsubscribe link's token is its authority: a made-up one is not found.
                    let unsigned = path.contains("{token}") && a.status == StatusCode::NOT_FOUND;
                    assert!(
                        a.status == StatusCode::OK
                            || a.status == StatusCode::SERVICE_UNAVAILABLE
                            || unsigned,
                        "{method} {path}: {}",
                        a.status
                    );
                }
                let documented: Vec<String> = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                assert!(
                    documented.contains(&a.status.as_str().to_owned()),
                    "{method} {path} answered {}, which is not documented ({documented:?})",
                    a.status
                );
            } else {
                assert_eq!(
                    a.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not documented but answered {}",
                    a.status
                );
            }
        }
    }
    for undocumented in [
        "/v1/campaigns/k/restart",
        "/v1/users/1",
        "/v2/campaigns",
        "/v1",
    ] {
        let a = api.call(Method::GET, undocumented, Some(TOKEN), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{undocumented}");
    }
    let metrics = api.call(Method::GET, "/metrics", Some(TOKEN), None).await;
    assert!(
        metrics.text.contains("route=\"unmatched\""),
        "paths no route matched are counted under one label, never by their text: {}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("herald_api_request_duration_seconds_bucket")
    );
    assert!(
        metrics.text.contains("route=\"/v1/campaigns\""),
        "routes by pattern"
    );
}

#[tokio::test]
async fn the_api_refuses_to_start_open_and_stops_cleanly_on_sigterm() {
    let app = TestApp::spawn().await.unwrap();
    for (env, says) in [
        (vec![("HERALD_API_TOKEN", "")], "HERALD_API_TOKEN"),
        (vec![("HERALD_API_TOKEN", "short")], "at least 16"),
        (
            vec![("HERALD_API_DEV", "true"), ("HERALD_API_ADDR", "0.0.0.0:0")],
            "loopback",
        ),
    ] {
        let mut cmd =
            std::process::Command::new(herald_tests::repo_root().join("target/release/herald-api"));
        cmd.env_remove("HERALD_API_TOKEN")
            .env("DATABASE_URL", &app.database_url)
            .envs(env.iter().filter(|(_, v)| !v.is_empty()).copied());
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {err}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{env:?}: {err}"
        );
    }

    // SIGTERM with an event stream open: the stream ends and the process exits at once.
    app.seed(2_000, "t");
    let key = app.campaign("t").page_size(10).lanes(1).rate(50).launch();
    let mut api: ApiServer = app.api().await.unwrap();
    let mut events = api.events(&format!("/v1/campaigns/{key}/events")).await;
    events.until(LONG, |e| e.name == "progress").await.unwrap();
    let started = std::time::Instant::now();
    let status = api
        .terminate(Duration::from_secs(10))
        .expect("exited on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ended with the server");
}

/// A metric's value in the API's Prometheus text.
async fn metric(api: &ApiServer, name: &str) -> i64 {
    let metrics = api.call(Method::GET, "/metrics", Some(TOKEN), None).await;
    metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in {}", metrics.text)) as i64
}

/// However many streams follow one campaign, it is read once per look; the server holds only
/// as many streams as HERALD_API_MAX_STREAMS allows (a campaign's and the list's alike): one
/// more is a 503 with a JSON error, and a stream that closes frees its place.
#[tokio::test]
async fn event_streams_share_their_reads_and_are_bounded() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("streams");
    app.seed(100, &segment);
    let api = app
        .api_with_env(&[("HERALD_API_MAX_STREAMS", "4")])
        .await
        .unwrap();
    // Not started for a day: its streams stay open and are looked at every 500 ms.
    let key = app
        .campaign(&segment)
        .send_at(chrono::Utc::now() + chrono::Duration::days(1))
        .launch();
    let path = format!("/v1/campaigns/{key}/events");
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut events = api.events(&path).await;
        let first = events.next().await.expect("a first event");
        assert_eq!(first.data["key"], key.as_str());
        streams.push(events);
    }
    let mut list = api.events("/v1/events").await;
    assert!(list.next().await.is_some());
    assert_eq!(metric(&api, "herald_api_event_streams").await, 4);

    for full in [path.as_str(), "/v1/events"] {
        let a = api.get(full).await;
        assert_eq!(
            a.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{full}: {}",
            a.text
        );
        assert_eq!(a.body["error"]["code"], "too_many_streams", "{}", a.text);
    }

    // Three streams, one read per look: about 6 in 3 s, where a read per stream would be 18.
    let before = metric(&api, "herald_api_campaign_looks_total").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let looks = metric(&api, "herald_api_campaign_looks_total").await - before;
    assert!(
        (2..=10).contains(&looks),
        "{looks} reads of one campaign in 3 s for 3 streams"
    );

    // A closed stream frees its place (the server notices at its next write: a keep-alive
    // within 15 s at the latest).
    drop(streams.pop());
    herald_tests::wait_until(Duration::from_secs(30), || async {
        metric(&api, "herald_api_event_streams").await == 3
    })
    .await
    .expect("the closed stream's place is freed");
    let mut again = api.events(&path).await;
    assert!(again.next().await.is_some());

    // With no stream left, the campaign is no longer read.
    drop(streams);
    drop(again);
    drop(list);
    herald_tests::wait_until(Duration::from_secs(30), || async {
        metric(&api, "herald_api_event_streams").await == 0
    })
    .await
    .expect("every stream's place is freed");
    let idle = metric(&api, "herald_api_campaign_looks_total").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        metric(&api, "herald_api_campaign_looks_total").await - idle <= 1,
        "an unwatched campaign is still read"
    );
}

/// What anyone may call costs little however often it is called: `/readyz` asks the services
/// at most once a second, `/metrics` needs a key, or an address of its own.
#[tokio::test]
async fn probes_are_cheap_and_metrics_need_a_key() {
    let app = TestApp::spawn().await.unwrap();
    let port = herald_tests::api::free_port().unwrap();
    let scrape = format!("127.0.0.1:{port}");
    let api = app
        .api_with_env(&[("HERALD_API_METRICS_ADDR", &scrape)])
        .await
        .unwrap();

    let open = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(open.status, StatusCode::UNAUTHORIZED, "{}", open.text);
    assert_eq!(open.code(), "unauthorized");
    let user = api
        .call(Method::GET, "/metrics", Some(&user_token(1)), None)
        .await;
    assert_eq!(user.status, StatusCode::FORBIDDEN, "{}", user.text);
    let scraped = reqwest::get(format!("http://{scrape}/metrics"))
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("herald_api_ready_checks_total"),
        "the scrape address serves the metrics"
    );
    let elsewhere = reqwest::get(format!("http://{scrape}/v1/campaigns"))
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        StatusCode::NOT_FOUND,
        "only the metrics there"
    );

    // A burst of anonymous probes: a check a second at most.
    let before = metric(&api, "herald_api_ready_checks_total").await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let probes = (0..40).map(|_| api.call(Method::GET, "/readyz", None, None));
        for answer in futures::future::join_all(probes).await {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            assert_eq!(answer.body["status"], "ready");
        }
    }
    let seconds = started.elapsed().as_secs() as i64;
    let checks = metric(&api, "herald_api_ready_checks_total").await - before;
    assert!(
        checks <= seconds + 1,
        "200 probes in {seconds} s made {checks} checks"
    );
    let alive = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(alive.status, StatusCode::OK);
}
