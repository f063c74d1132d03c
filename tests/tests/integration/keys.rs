//! API keys with scopes (`herald keys`), and dashboard sessions kept by the server: signing
//! out ends a session wherever its cookie was copied, and revoking a key ends its sessions.

use herald_tests::{
    TestApp,
    api::{ApiServer, FormBody, TOKEN, csrf_of, plain},
    stderr, unique,
};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

/// Make a key with the CLI; the key as printed.
fn key(app: &TestApp, name: &str, scopes: &str) -> String {
    let out = app.herald(&["keys", "create", name, "--scopes", scopes]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(key.starts_with("hk_") && key.len() == 67, "{key}");
    key
}

/// Post a dashboard form, with the session's cookie when there is one.
async fn post_form(
    api: &ApiServer,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = plain().post(api.url(path)).form_body(fields);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

/// Sign in to the dashboard with `key`; the session's cookie (`name=value`).
async fn sign_in(api: &ApiServer, key: &str) -> String {
    let signed = post_form(api, "/sign-in", None, &[("token", key)]).await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let set = signed.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// A dashboard page, as the session sees it.
async fn page(api: &ApiServer, cookie: &str, path: &str) -> reqwest::Response {
    plain()
        .get(api.url(path))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn with_cookie(api: &ApiServer, cookie: &str, path: &str) -> StatusCode {
    page(api, cookie, path).await.status()
}

/// The CSRF token on a page of the dashboard.
async fn csrf(api: &ApiServer, cookie: &str) -> String {
    csrf_of(&page(api, cookie, "/campaigns").await.text().await.unwrap())
}

/// A timeline's status changes as (status, actor) and its requests as (request, actor,
/// detail), oldest first, from `GET /v1/campaigns/{key}/timeline`.
#[allow(clippy::type_complexity)]
fn actors(timeline: &serde_json::Value) -> (Vec<(i64, String)>, Vec<(String, String, String)>) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let changes = timeline["changes"].as_array().expect("changes");
    let requests = timeline["requests"].as_array().expect("requests");
    (
        changes
            .iter()
            .map(|c| (c["status"].as_i64().expect("a status"), text(&c["actor"])))
            .collect(),
        requests
            .iter()
            .map(|r| (text(&r["request"]), text(&r["actor"]), text(&r["detail"])))
            .collect(),
    )
}

#[tokio::test]
async fn each_scope_allows_its_routes_and_a_revoked_key_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("keys");
    app.seed(20, &segment);
    let api = app.api().await.unwrap();
    let reader = key(&app, "grafana", "read");
    let operator = key(&app, "oncall", "operate,read");
    let launcher = key(&app, "crm", "launch");
    let admin = key(&app, "root", "admin");

    // Refused by the CLI with one line, changing nothing.
    for (args, says) in [
        (vec!["keys", "create", "grafana"], "exists already"),
        (vec!["keys", "create", "Bad Name"], "not a key name"),
        (
            vec!["keys", "create", "x", "--scopes", "write"],
            "not a scope",
        ),
        (vec!["keys", "create", "api-token"], "acts under itself"),
        (vec!["keys", "revoke", "nobody"], "no key named"),
    ] {
        let out = app.herald(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    }

    // Scheduled a day away: launched, and nothing sent while the test runs.
    let send_at = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let launch = |key: &str| {
        let body = json!({"key": unique("k"), "title": "t", "body": "b", "segment": segment,
                          "send_at": send_at});
        let key = key.to_owned();
        let api = &api;
        async move {
            api.call(Method::POST, "/v1/campaigns", Some(&key), Some(body))
                .await
        }
    };
    // launch: yes for launch and admin; read and operate are refused with 403.
    for k in [&reader, &operator] {
        let a = launch(k).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
        assert!(a.text.contains("needs the scope launch"), "{}", a.text);
    }
    let launched = launch(&launcher).await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    let campaign = launched.body["key"].as_str().unwrap().to_owned();
    let mut keys = vec![campaign.clone()];
    for k in [&admin, TOKEN] {
        let a = launch(k).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        keys.push(a.body["key"].as_str().unwrap().to_owned());
    }

    // read: everyone but the launch-only key.
    let path = format!("/v1/campaigns/{campaign}");
    for (k, want) in [
        (&reader, StatusCode::OK),
        (&operator, StatusCode::OK),
        (&launcher, StatusCode::FORBIDDEN),
        (&admin, StatusCode::OK),
    ] {
        let a = api.call(Method::GET, &path, Some(k), None).await;
        assert_eq!(a.status, want, "{}", a.text);
    }
    let metrics = api.call(Method::GET, "/metrics", Some(&reader), None).await;
    assert_eq!(metrics.status, StatusCode::OK);

    // operate: pause with the operate key; the reader may not.
    let pause = format!("/v1/campaigns/{campaign}/pause");
    let refused = api
        .call(Method::POST, &pause, Some(&reader), Some(json!({})))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let paused = api
        .call(Method::POST, &pause, Some(&operator), Some(json!({})))
        .await;
    assert!(paused.status.is_success(), "{}", paused.text);

    // Revoked: 401 from the next request on; the list says so; a second revoke is refused.
    let out = app.herald(&["keys", "revoke", "grafana"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a = api.call(Method::GET, &path, Some(&reader), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    let out = app.herald(&["keys", "revoke", "grafana"]);
    assert_eq!(out.status.code(), Some(2));
    let list: serde_json::Value =
        serde_json::from_str(&app.herald_ok(&["keys", "list", "--json"])).unwrap();
    let grafana = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "grafana")
        .unwrap();
    assert!(grafana["revoked_at"].is_string(), "{list}");
    assert_eq!(grafana["scopes"], json!(["read"]));
    assert!(grafana["created_by"].as_str().unwrap().starts_with("cli:"));
    // No key is stored as given.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE position(convert_to($1, 'UTF8') IN hash) > 0
            OR encode(hash, 'escape') LIKE '%hk_%'",
    )
    .bind(&admin)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);
    for key in keys {
        app.herald(&["cancel", &key]);
    }
}

#[tokio::test]
async fn signing_out_or_revoking_the_key_ends_a_session_everywhere() {
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let viewer = key(&app, "viewer", "read");

    // Signed out: a copy of the cookie made before opens nothing.
    let cookie = sign_in(&api, TOKEN).await;
    let copy = cookie.clone();
    assert_eq!(
        with_cookie(&api, &copy, "/v1/campaigns").await,
        StatusCode::OK
    );
    let token = csrf(&api, &cookie).await;
    let out = post_form(&api, "/sign-out", Some(&cookie), &[("csrf", &token)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        with_cookie(&api, &copy, "/v1/campaigns").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_cookie(&api, &copy, "/campaigns").await,
        StatusCode::SEE_OTHER,
        "the dashboard sends it to the sign-in"
    );

    // A read-only key signs in, reads, and may not act; revoking it ends the session.
    let cookie = sign_in(&api, &viewer).await;
    assert_eq!(
        with_cookie(&api, &cookie, "/campaigns").await,
        StatusCode::OK
    );
    let html = page(&api, &cookie, "/campaigns")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("viewer"), "the page names who is signed in");
    let token = csrf(&api, &cookie).await;
    let fields = [("csrf", token.as_str()), ("step", "launch"), ("title", "t")];
    let launch = post_form(&api, "/launch", Some(&cookie), &fields).await;
    assert_eq!(launch.status(), StatusCode::FORBIDDEN);
    assert!(
        launch
            .text()
            .await
            .unwrap()
            .contains("needs the scope launch")
    );
    let listed = app.herald_ok(&["keys", "list"]);
    assert!(listed.contains("viewer  read"), "{listed}");
    assert!(listed.contains("1 open sessions"), "{listed}");
    let out = app.herald(&["keys", "revoke", "viewer"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 dashboard sessions ended"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        with_cookie(&api, &cookie, "/v1/campaigns").await,
        StatusCode::UNAUTHORIZED
    );

    // A revoked key cannot sign in again.
    let again = post_form(&api, "/sign-in", None, &[("token", &viewer)]).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.headers().get(header::SET_COOKIE).is_none());

    // A forged or guessed cookie is no session.
    for forged in [
        "herald_session=".to_owned() + &"0".repeat(64),
        "herald_session=v1.9.x".into(),
    ] {
        assert_eq!(
            with_cookie(&api, &forged, "/v1/campaigns").await,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// Every launch, request and status change names who made it: an API key by its name, the
/// command line with its OS user, a bare signal through Temporal as `temporal`. The API's
/// timeline, `herald status` and the dashboard's timeline all say so.
#[tokio::test]
async fn every_launch_request_and_status_change_names_its_actor() {
    use herald_wire::CampaignStatus::{self, *};
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("actors");
    app.seed(3_000, &segment);
    let api = app.api().await.unwrap();
    let ops = key(&app, "ops", "launch,operate,read");
    let as_tester = |args: &[&str]| {
        let out = app.herald_with_env(args, &[("USER", "tester")]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let reached = |key: &str, status: CampaignStatus| {
        let (app, key) = (&app, key.to_owned());
        async move {
            app.wait_status(&key, status, std::time::Duration::from_secs(60))
                .await
                .unwrap()
        }
    };

    // Paced (20 recipients a second on one lane) so that it is still sending at the end.
    let body = json!({"title": "t", "body": "b", "segment": segment, "lanes": 1,
                      "page_size": 10, "rate": 20});
    let launched = api
        .call(Method::POST, "/v1/campaigns", Some(&ops), Some(body))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    assert_eq!(launched.body["created_by"], "ops");
    let campaign = launched.body["key"].as_str().unwrap().to_owned();
    reached(&campaign, InProgress).await;

    as_tester(&["pause", &campaign, "--reason", "lunch"]);
    reached(&campaign, Paused).await;
    let path = |what: &str| format!("/v1/campaigns/{campaign}/{what}");
    let resumed = api
        .call(Method::POST, &path("resume"), Some(&ops), Some(json!({})))
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    assert_eq!(resumed.body["campaign"]["requested_by"], "ops");
    reached(&campaign, InProgress).await;
    let rate = api
        .call(
            Method::POST,
            &path("rate"),
            Some(&ops),
            Some(json!({"rate": 30})),
        )
        .await;
    assert_eq!(rate.status, StatusCode::OK, "{}", rate.text);
    app.signal(&campaign, "pause", &[]);
    reached(&campaign, Paused).await;
    as_tester(&["cancel", &campaign]);
    reached(&campaign, Cancelled).await;

    let timeline = api
        .call(Method::GET, &path("timeline"), Some(&ops), None)
        .await;
    assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.text);
    let (changes, requests) = actors(&timeline.body);
    assert_eq!(
        requests,
        [
            ("launch", "ops", ""),
            ("pause", "cli:tester", "lunch"),
            ("resume", "ops", ""),
            ("rate", "ops", "30/s"),
            ("pause", "temporal", ""),
            ("cancel", "cli:tester", ""),
        ]
        .map(|(r, a, d)| (r.to_owned(), a.to_owned(), d.to_owned())),
        "{}",
        timeline.text
    );
    assert_eq!(
        changes,
        [
            (0, "ops"),
            (1, "ops"),
            (2, "cli:tester"),
            (1, "ops"),
            (2, "temporal"),
            (4, "cli:tester"),
        ]
        .map(|(s, a)| (s, a.to_owned())),
        "{}",
        timeline.text
    );

    // `herald status` says who launched it and who asked last.
    let status = as_tester(&["status", &campaign]);
    assert!(status.contains("  by ops\n"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("asked     cancel ") && l.ends_with("by cli:tester")),
        "{status}"
    );

    // The dashboard's timeline, as the operator signed in with the key sees it.
    let cookie = sign_in(&api, &ops).await;
    let html = page(&api, &cookie, &format!("/campaigns/{campaign}"))
        .await
        .text()
        .await
        .unwrap();
    for line in [
        "by ops",
        "by cli:tester",
        "by temporal",
        "Rate set to 30/s",
        "lunch",
    ] {
        assert!(html.contains(line), "{line:?} is not on the page");
    }
}

/// One key holds at most HERALD_API_MAX_STREAMS_PER_KEY event streams (its dashboard
/// sessions' included): one more is a 429 while other keys still open theirs. A stream ends
/// within seconds of its key being revoked or its session signed out.
#[tokio::test]
async fn a_keys_streams_are_bounded_and_end_with_the_key() {
    use std::time::Duration;
    let app = TestApp::spawn().await.unwrap();
    let api = app
        .api_with_env(&[("HERALD_API_MAX_STREAMS_PER_KEY", "2")])
        .await
        .unwrap();
    let watcher = key(&app, "watcher", "read");
    let other = key(&app, "other", "read");
    let bearer = |k: &str| {
        let k = k.to_owned();
        move |r: reqwest::RequestBuilder| r.bearer_auth(k)
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        // No campaign: the stream holds its place and stays quiet.
        held.push(api.events_with("/v1/events", bearer(&watcher)).await);
    }
    let refused = api
        .call(Method::GET, "/v1/events", Some(&watcher), None)
        .await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text
    );
    assert_eq!(refused.code(), "too_many_streams", "{}", refused.text);
    assert!(refused.text.contains("watcher"), "{}", refused.text);

    // Another key, signed in to the dashboard: its session's streams are its key's.
    let cookie = sign_in(&api, &other).await;
    let with_cookie = |r: reqwest::RequestBuilder| r.header(header::COOKIE, cookie.clone());
    let mut session_stream = api.events_with("/v1/events", with_cookie).await;

    // Revoked: the key's streams end, the session's stays.
    let out = app.herald(&["keys", "revoke", "watcher"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for mut events in held {
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            while events.next().await.is_some() {}
        })
        .await;
        assert!(ended.is_ok(), "a stream outlived its key's revocation");
    }
    let still = tokio::time::timeout(Duration::from_secs(1), session_stream.next()).await;
    assert!(
        !matches!(still, Ok(None)),
        "the other key's session stream ended"
    );

    // Signed out: the session's stream ends too.
    let token = csrf(&api, &cookie).await;
    let out = post_form(&api, "/sign-out", Some(&cookie), &[("csrf", &token)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while session_stream.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "a stream outlived its session");
}

/// A scheduled campaign's start is its launch's doing, whoever paused and resumed it while it
/// waited; a repeated request leaves the first one's actor.
#[tokio::test]
async fn a_scheduled_start_is_the_launchers_and_a_repeat_keeps_the_first_actor() {
    use herald_wire::CampaignStatus::*;
    use std::time::Duration;
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("sched");
    app.seed(50, &segment);
    let api = app.api().await.unwrap();
    let ops = key(&app, "ops", "operate,read");
    let send_at = (chrono::Utc::now() + chrono::Duration::seconds(8)).to_rfc3339();
    let body = json!({"title": "t", "body": "b", "segment": segment, "send_at": send_at});
    let launched = api
        .call(Method::POST, "/v1/campaigns", Some(TOKEN), Some(body))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    let campaign = launched.body["key"].as_str().unwrap().to_owned();
    let path = |what: &str| format!("/v1/campaigns/{campaign}/{what}");
    let ask = |what: &'static str| {
        let (api, ops, path) = (&api, &ops, path(what));
        async move {
            let a = api
                .call(Method::POST, &path, Some(ops), Some(json!({})))
                .await;
            assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.text);
            a
        }
    };
    ask("pause").await;
    app.wait_status(&campaign, Paused, Duration::from_secs(5))
        .await
        .unwrap();
    // The same pause again, by another caller: still the first one's.
    let out = app.herald_with_env(&["pause", &campaign], &[("USER", "late")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = api
        .call(
            Method::GET,
            &format!("/v1/campaigns/{campaign}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(again.body["requested_by"], "ops", "{}", again.text);
    ask("resume").await;
    app.wait_status(&campaign, Completed, std::time::Duration::from_secs(60))
        .await
        .unwrap();

    let timeline = api
        .call(Method::GET, &path("timeline"), Some(&ops), None)
        .await;
    let (changes, requests) = actors(&timeline.body);
    assert_eq!(
        changes,
        [
            (0, "api-token"),
            (2, "ops"),
            (0, "ops"),
            (1, "api-token"),
            (3, "herald"),
        ]
        .map(|(s, a)| (s, a.to_owned())),
        "{}",
        timeline.text
    );
    assert_eq!(
        requests,
        [
            ("launch", "api-token", ""),
            ("pause", "ops", ""),
            ("resume", "ops", "")
        ]
        .map(|(r, a, d)| (r.to_owned(), a.to_owned(), d.to_owned())),
        "{}",
        timeline.text
    );
}
