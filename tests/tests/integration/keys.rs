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
