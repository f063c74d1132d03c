//! The operator's dashboard in a real headless Chromium, against a real `herald-api`, worker
//! and services, with the ledger checked underneath; and its security over plain HTTP.
//!
//! The browser tests take the screenshots in docs/screenshots/ (`HERALD_UPDATE_SCREENSHOTS=1`
//! copies them there; otherwise they go to target/screenshots/).

use std::time::Duration;

use herald_tests::{
    LONG, TestApp,
    api::{ApiServer, Events, FormBody, TOKEN, csrf_of, plain},
    browser::Browser,
    sinks::{WEBHOOK_SECRET, WebhookSink, webhook::Faults},
    unique,
};
use herald_wire::CampaignStatus;
use reqwest::{StatusCode, header};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn signed_in(api: &ApiServer, width: u32, height: u32) -> Browser {
    let browser = Browser::start(&api.base, width, height).await.unwrap();
    sign_in_from(&browser, "/campaigns").await;
    browser.wait_for("h1", WAIT).await.unwrap();
    browser
}

/// Open `path`, sign in on the page it leads to, and see the browser land on the campaigns.
async fn sign_in_from(browser: &Browser, path: &str) {
    browser.open(path).await.unwrap();
    browser.wait_for("#token", WAIT).await.unwrap();
    browser.fill("#token", TOKEN).await.unwrap();
    browser
        .click("form.card button[type=submit]")
        .await
        .unwrap();
    // The sign-in page has an `h1` too: wait for the redirect itself.
    let arrived = herald_tests::wait_until(WAIT, || async {
        browser.path().await.is_ok_and(|p| p == "/campaigns")
    })
    .await;
    assert!(
        arrived.is_ok(),
        "from {path}: at {:?}",
        browser.path().await
    );
}

/// Items sent and failed in the ledger.
async fn processed(app: &TestApp, key: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE m.key = $1 AND i.status <> 0",
    )
    .bind(key)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The speed limit in the campaign's row.
async fn stored_rate(app: &TestApp, key: &str) -> Option<i32> {
    sqlx::query_scalar("SELECT rate FROM messages WHERE key = $1")
        .bind(key)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn progress_value(browser: &Browser) -> i64 {
    browser
        .property("progress[data-f=bar]", "value")
        .await
        .unwrap()
        .as_f64()
        .unwrap_or_default() as i64
}

#[tokio::test]
async fn an_operator_signs_in_launches_watches_pauses_and_resumes_in_the_browser() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("dash");
    app.seed(30_000, &segment);
    let api = app.api().await.unwrap();
    let browser = Browser::start(&api.base, 1280, 900).await.unwrap();

    // A page without a session goes to the sign-in, and back after it.
    browser.open("/launch").await.unwrap();
    browser.wait_for("#token", WAIT).await.unwrap();
    assert_eq!(browser.path().await.unwrap(), "/sign-in?next=/launch");
    browser.screenshot("sign-in").await.unwrap();
    browser
        .fill("#token", "not-the-token-at-all")
        .await
        .unwrap();
    browser
        .click("form.card button[type=submit]")
        .await
        .unwrap();
    let error = browser.wait_for("#token-error", WAIT).await.unwrap();
    drop(error);
    assert!(
        browser
            .text("#token-error")
            .await
            .unwrap()
            .contains("not this server's API token")
    );
    assert_eq!(
        browser.property("#token", "ariaInvalid").await.unwrap(),
        "true"
    );
    browser.fill("#token", TOKEN).await.unwrap();
    browser
        .click("form.card button[type=submit]")
        .await
        .unwrap();
    browser.wait_for("#title", WAIT).await.unwrap();
    assert_eq!(browser.path().await.unwrap(), "/launch");
    let cookies = browser.cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "herald_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(
        browser
            .script("return document.cookie", json!([]))
            .await
            .unwrap(),
        "",
        "scripts cannot read the session"
    );

    // Nothing yet: the list says so.
    browser.open("/campaigns").await.unwrap();
    assert!(
        browser
            .text("#empty")
            .await
            .unwrap()
            .contains("No campaigns yet")
    );
    browser.screenshot("campaigns-empty").await.unwrap();

    // The launch form: errors at their fields, and nothing written.
    let title = "<b>Winter</b> sale & <script>alert('x')</script>";
    browser.open("/launch").await.unwrap();
    browser.fill("#title", title).await.unwrap();
    browser
        .fill("#body", "Everything is <i>20%</i> off until Sunday.")
        .await
        .unwrap();
    browser
        .fill("#segment", "nobody-carries-this")
        .await
        .unwrap();
    browser.fill("#page_size", "lots").await.unwrap();
    browser.click("button[value=review]").await.unwrap();
    let message = browser
        .wait_text("#page_size-error", WAIT, |t| !t.is_empty())
        .await
        .unwrap();
    assert!(message.contains("whole number"), "{message}");
    assert_eq!(
        browser.property("#page_size", "ariaInvalid").await.unwrap(),
        "true"
    );
    assert_eq!(
        browser.property("#title", "value").await.unwrap(),
        title,
        "what was typed is kept"
    );
    browser.fill("#page_size", "100").await.unwrap();
    browser.click("button[value=review]").await.unwrap();
    let message = browser
        .wait_text("#segment-error", WAIT, |t| !t.is_empty())
        .await
        .unwrap();
    assert!(message.contains("audience is empty"), "{message}");
    browser.screenshot("launch-error").await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a refused launch writes nothing");

    // The count first, then the launch.
    browser.fill("#segment", &segment).await.unwrap();
    browser.fill("#rate", "1500").await.unwrap();
    browser.click("button[value=review]").await.unwrap();
    browser.wait_for("[data-recipients]", WAIT).await.unwrap();
    let count = browser
        .script(
            "return document.querySelector('[data-recipients]').dataset.recipients",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(count, "30000");
    assert_eq!(
        browser.text("button[value=launch]").await.unwrap(),
        "Launch to 30,000 recipients"
    );
    assert_eq!(
        browser.text("#confirm-title").await.unwrap(),
        title,
        "markup shows as text"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "counting launches nothing");
    browser.screenshot("launch-confirm").await.unwrap();
    browser.click("button[value=launch]").await.unwrap();
    browser
        .wait_for("[data-live-campaign]", WAIT)
        .await
        .unwrap();
    let path = browser.path().await.unwrap();
    let key = path
        .strip_prefix("/campaigns/")
        .and_then(|p| p.split('?').next())
        .expect("the campaign's page")
        .to_owned();
    assert_eq!(browser.text("h1").await.unwrap(), title);
    assert_eq!(
        browser
            .script(
                "return document.querySelectorAll('h1 *, script:not([src])').length",
                json!([])
            )
            .await
            .unwrap(),
        0,
        "the title's markup is not markup"
    );
    let total: i64 = sqlx::query_scalar("SELECT total FROM messages WHERE key = $1")
        .bind(&key)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 30_000);

    // The bar moves without a reload.
    browser
        .script("window.__same_page = true; return 1", json!([]))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let first = loop {
        let v = progress_value(&browser).await;
        if v > 0 {
            break v;
        }
        assert!(started.elapsed() < WAIT, "the bar never moved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // From here the status holds while the counts move, and its live region is not written
    // (a screen reader would hear every write).
    browser
        .script(
            "window.__status_writes = 0;
             new MutationObserver(function (m) { window.__status_writes += m.length; })
               .observe(document.querySelector('.status-line'),
                        { childList: true, characterData: true, subtree: true });
             return 1",
            json!([]),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if progress_value(&browser).await > first {
            break;
        }
        assert!(started.elapsed() < WAIT, "the bar stopped at {first}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        browser
            .script("return window.__same_page === true", json!([]))
            .await
            .unwrap(),
        true
    );
    assert_eq!(
        browser
            .script("return window.__status_writes", json!([]))
            .await
            .unwrap(),
        0,
        "the running status was not rewritten as the counts moved"
    );
    browser
        .wait_text("[data-live-campaign] [data-f=speed]", WAIT, |t| {
            t.ends_with("/s")
        })
        .await
        .unwrap();
    browser
        .wait_text(".timeline", WAIT, |t| t.contains("Started"))
        .await
        .unwrap();
    browser.screenshot("campaign-running").await.unwrap();

    // Pause: the bar holds with "paused" while the ledger holds still.
    browser
        .click("form[action$='/pause'] button")
        .await
        .unwrap();
    browser
        .wait_text("[data-live-campaign] [data-f=status]", LONG, |t| {
            t.contains("paused")
        })
        .await
        .unwrap();
    assert!(
        browser
            .text(".notice")
            .await
            .unwrap()
            .contains("Paused: the pages in flight have returned")
    );
    let held = processed(&app, &key).await;
    assert!(held < 30_000, "paused before the end ({held})");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        processed(&app, &key).await,
        held,
        "nothing is sent while paused"
    );
    assert_eq!(
        progress_value(&browser).await,
        held,
        "the bar shows the ledger"
    );
    assert_eq!(app.db_status(&key).await, Some(CampaignStatus::Paused));
    assert!(
        browser
            .count("form[action$='/resume'] button")
            .await
            .unwrap()
            == 1
    );
    assert!(
        browser
            .count("form[action$='/pause'] button")
            .await
            .unwrap()
            == 0
    );
    browser.screenshot("campaign-paused").await.unwrap();

    // Resume to the end, watched live.
    browser
        .click("form[action$='/resume'] button")
        .await
        .unwrap();
    browser
        .wait_text("[data-live-campaign] [data-f=status]", LONG, |t| {
            t.contains("completed")
        })
        .await
        .unwrap();
    browser
        .script("window.__same_page = true; return 1", json!([]))
        .await
        .unwrap();
    app.assert_exactly_once(&key, 30_000).await;
    browser
        .wait_text("[data-live-campaign] [data-f=sent]", WAIT, |t| {
            t == "30,000"
        })
        .await
        .unwrap();
    assert_eq!(progress_value(&browser).await, 30_000);
    let timeline = browser
        .wait_text(".timeline", WAIT, |t| t.contains("Completed"))
        .await
        .unwrap();
    for step in ["Created", "Started", "Paused", "Resumed", "Completed"] {
        assert!(timeline.contains(step), "{step} in {timeline}");
    }
    assert_eq!(
        browser
            .count("form[action$='/pause'] button, form[action$='/resume'] button")
            .await
            .unwrap(),
        0
    );
    let link = browser
        .property("a[href*='/workflows/']", "href")
        .await
        .unwrap();
    assert!(
        link.as_str()
            .unwrap()
            .ends_with(&format!("/workflows/campaign-{key}")),
        "{link}"
    );
    browser.screenshot("campaign-completed").await.unwrap();

    // The list: the campaign, its status and numbers; a filter that leaves nothing says so.
    browser.open("/campaigns").await.unwrap();
    let row = format!("tr[data-key='{key}']");
    assert!(
        browser
            .text(&format!("{row} [data-f=status]"))
            .await
            .unwrap()
            .contains("3 · completed")
    );
    assert_eq!(browser.text(&format!("{row} a")).await.unwrap(), title);
    browser.screenshot("campaigns").await.unwrap();
    browser.select("#status", "paused").await.unwrap();
    browser
        .wait_text("#empty", WAIT, |t| t.contains("No paused campaigns"))
        .await
        .unwrap();
    assert_eq!(browser.path().await.unwrap(), "/campaigns?status=paused");

    // A campaign launched elsewhere appears in the list without a reload.
    browser.open("/campaigns").await.unwrap();
    browser
        .script("window.__same_page = true; return 1", json!([]))
        .await
        .unwrap();
    let other = unique("other");
    let launched = api
        .post("/v1/campaigns", json!({"key": other, "title": "From the API", "body": "b", "segment": segment, "rate": 200}))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    browser
        .wait_text(
            &format!("tr[data-key='{other}'] [data-f=status]"),
            WAIT,
            |t| t.contains("in progress"),
        )
        .await
        .unwrap();
    assert_eq!(
        browser
            .script("return window.__same_page === true", json!([]))
            .await
            .unwrap(),
        true
    );
    assert_eq!(
        browser
            .script(
                "return document.querySelector('tbody tr').dataset.key",
                json!([])
            )
            .await
            .unwrap(),
        other.as_str(),
        "newest first"
    );

    // Cancel asks first; "Keep it" keeps it.
    browser.open(&format!("/campaigns/{other}")).await.unwrap();
    browser.click("a[href$='/cancel']").await.unwrap();
    browser
        .wait_for("button.danger[type=submit]", WAIT)
        .await
        .unwrap();
    assert!(
        browser
            .text("h1")
            .await
            .unwrap()
            .starts_with("Cancel From the API")
    );
    browser.screenshot("cancel-confirm").await.unwrap();
    browser
        .click(&format!(".actions a.button[href='/campaigns/{other}']"))
        .await
        .unwrap();
    browser
        .wait_for("[data-live-campaign]", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.path().await.unwrap(), format!("/campaigns/{other}"));
    assert_ne!(app.db_status(&other).await, Some(CampaignStatus::Cancelled));
    browser.click("a[href$='/cancel']").await.unwrap();
    browser.wait_for("#reason", WAIT).await.unwrap();
    browser.fill("#reason", "Wrong audience").await.unwrap();
    browser.click("button.danger[type=submit]").await.unwrap();
    browser
        .wait_text("[data-live-campaign] [data-f=status]", LONG, |t| {
            t.contains("cancelled")
        })
        .await
        .unwrap();
    browser
        .wait_text(".timeline", WAIT, |t| t.contains("Wrong audience"))
        .await
        .unwrap();
    app.ends_cancelled(&other).await;

    // Signing out ends the session: pages go to the sign-in again.
    browser.click("form.signout button").await.unwrap();
    browser
        .wait_text(".notice", WAIT, |t| t.contains("signed out"))
        .await
        .unwrap();
    browser.open("/campaigns").await.unwrap();
    browser.wait_for("#token", WAIT).await.unwrap();

    // With the API gone, an open page says so.
    let browser = signed_in(&api, 390, 844).await;
    browser.screenshot("campaigns-narrow").await.unwrap();
    let scrolls = browser
        .script(
            "return document.documentElement.scrollWidth > window.innerWidth",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(scrolls, false, "nothing overflows at 390 px");
    assert_eq!(browser.property("#offline", "hidden").await.unwrap(), true);
    let port = api.port();
    drop(api);
    let offline = |hidden: bool| {
        let browser = &browser;
        async move {
            let started = std::time::Instant::now();
            while browser.property("#offline", "hidden").await.unwrap() != hidden {
                assert!(
                    started.elapsed() < WAIT,
                    "the banner is still hidden={}",
                    !hidden
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    offline(false).await;
    assert!(
        browser
            .text("#offline")
            .await
            .unwrap()
            .contains("unreachable")
    );

    // The API back: the page picks up again by itself.
    let api = app.api_at(port, &[]).await.unwrap();
    offline(true).await;
    // Back with another token: the session is over, and the page says so by going to the
    // sign-in rather than showing a banner that never clears.
    drop(api);
    offline(false).await;
    let _api = app
        .api_at(port, &[("HERALD_API_TOKEN", "another-token-0123456789")])
        .await
        .unwrap();
    browser.wait_for("#token", WAIT).await.unwrap();
    assert_eq!(
        browser.path().await.unwrap(),
        "/sign-in?next=/campaigns",
        "and back to this page after"
    );
}

#[tokio::test]
async fn the_failure_report_shows_top_errors_and_retries_the_failed_from_the_browser() {
    let app = TestApp::spawn().await.unwrap();
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    sink.set_faults(Faults {
        always: Some(410),
        ..Faults::default()
    });
    let segment = unique("dfail");
    app.seed(60, &segment);
    let api = app.api().await.unwrap();
    let key = unique("dfail");
    let launched = api
        .post(
            "/v1/campaigns",
            json!({"key": key, "title": "Webhooks", "body": "b", "segment": segment,
                   "channel": "webhook", "webhook_url": sink.url(), "auto_pause": 0}),
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();

    let browser = signed_in(&api, 1280, 1000).await;
    browser.open(&format!("/campaigns/{key}")).await.unwrap();
    let errors = browser.text("table.errors").await.unwrap();
    assert!(
        errors.contains("410 Gone") && errors.contains("http_410") && errors.contains("60"),
        "{errors}"
    );
    assert_eq!(browser.count("table.failed tbody tr").await.unwrap(), 20);
    assert!(browser.text("table.failed").await.unwrap().contains('@'));
    browser
        .script(
            "document.getElementById('failures').scrollIntoView(); return 1",
            json!([]),
        )
        .await
        .unwrap();
    browser.screenshot("campaign-failures").await.unwrap();

    // The receiver is fixed; retry from the page and watch it complete again.
    sink.set_faults(Faults::default());
    browser
        .click("form[action$='/retry-failed'] button")
        .await
        .unwrap();
    browser
        .wait_text(".notice", WAIT, |t| t.contains("Retrying"))
        .await
        .unwrap();
    browser
        .wait_text("[data-live-campaign] [data-f=failed]", LONG, |t| t == "0")
        .await
        .unwrap();
    browser
        .wait_text("[data-live-campaign] [data-f=status]", LONG, |t| {
            t.contains("completed")
        })
        .await
        .unwrap();
    browser
        .wait_text("#failures", WAIT, |t| t.contains("No failed deliveries"))
        .await
        .unwrap();
    assert_eq!(sink.delivered(), 60);
    app.assert_exactly_once(&key, 60).await;

    // The rate form is there while a webhook campaign runs, and refuses a bad rate at its field.
    let slow = unique("dslow");
    let launched = api
        .post(
            "/v1/campaigns",
            json!({"key": slow, "title": "Slow", "body": "b", "segment": segment,
                   "channel": "webhook", "webhook_url": sink.url(), "rate": 1, "page_size": 1}),
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    browser.open(&format!("/campaigns/{slow}")).await.unwrap();
    browser.fill("#rate", "0").await.unwrap();
    browser.click("form.rate button:not([name])").await.unwrap();
    let message = browser
        .wait_text("#rate-error", WAIT, |t| !t.is_empty())
        .await
        .unwrap();
    assert!(message.contains("rate"), "{message}");
    assert_eq!(
        stored_rate(&app, &slow).await,
        Some(1),
        "a refused rate changes nothing"
    );
    browser.fill("#rate", "25").await.unwrap();
    browser.click("form.rate button:not([name])").await.unwrap();
    browser
        .wait_text(".notice", WAIT, |t| t.contains("Rate changed"))
        .await
        .unwrap();
    assert_eq!(stored_rate(&app, &slow).await, Some(25));
    let out = app.herald(&["cancel", &slow]);
    assert!(out.status.success());
}

#[tokio::test]
async fn the_dashboard_refuses_forged_forms_and_strangers_and_escapes_what_it_shows() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("dsec");
    app.seed(500, &segment);
    let api = app.api().await.unwrap();
    let http = plain();
    let key = unique("dsec");
    let launched = api
        .post(
            "/v1/campaigns",
            json!({"key": key, "title": "<img src=x onerror=alert(1)>", "body": "b",
                   "segment": segment, "rate": 1, "page_size": 1}),
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);

    // Strangers: pages redirect to the sign-in, the API's routes answer 401, a forged
    // session is no session.
    let page = http
        .get(api.url("/campaigns?status=paused"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()[header::LOCATION],
        "/sign-in?next=/campaigns%3Fstatus%3Dpaused"
    );
    let forged = "herald_session=v1.99999999999.0000000000000000000000000000000000000000000000000000000000000000";
    let page = http
        .get(api.url("/campaigns"))
        .header(header::COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let events = http
        .get(api.url("/v1/events"))
        .header(header::COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::UNAUTHORIZED);
    let wrong = http
        .post(api.url("/sign-in"))
        .form_body(&[("token", "guess-guess-guess-guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    let foreign = http
        .post(api.url("/sign-in"))
        .header("origin", "https://evil.example")
        .form_body(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        foreign.status(),
        StatusCode::FORBIDDEN,
        "a sign-in posted from another site"
    );
    assert!(foreign.headers().get(header::SET_COOKIE).is_none());

    // Sign in.
    let signed = http
        .post(api.url("/sign-in"))
        .form_body(&[("token", TOKEN), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed.headers()[header::LOCATION],
        "/campaigns",
        "no redirect off this server"
    );
    let set = signed.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();

    // Pages carry the policy, and operator input is escaped.
    let page = http
        .get(api.url(&format!("/campaigns/{key}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "escaped"
    );
    assert!(!html.contains("<img"), "no markup from the title");
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "nothing inline"
    );
    let csrf = csrf_of(&html);

    // The session opens the API's reads, and its writes only with the CSRF token.
    let read = http
        .get(api.url(&format!("/v1/campaigns/{key}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let write = http
        .post(api.url(&format!("/v1/campaigns/{key}/pause")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    let before = app.request_row(&key).await;
    let forms: [(&str, Vec<(&str, &str)>, Vec<(&str, &str)>); 4] = [
        ("no token", vec![], vec![]),
        (
            "a wrong token",
            vec![("csrf", "0".repeat(64).leak())],
            vec![],
        ),
        (
            "another site",
            vec![("csrf", csrf.as_str())],
            vec![("origin", "https://evil.example")],
        ),
        (
            "a cross-site fetch",
            vec![("csrf", csrf.as_str())],
            vec![("sec-fetch-site", "cross-site")],
        ),
    ];
    for (what, form, headers) in forms {
        let mut request = http
            .post(api.url(&format!("/campaigns/{key}/pause")))
            .header(header::COOKIE, &cookie)
            .form_body(&form);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{what}");
    }
    assert_eq!(
        app.request_row(&key).await,
        before,
        "a refused form changes nothing"
    );
    let paused = http
        .post(api.url(&format!("/campaigns/{key}/pause")))
        .header(header::COOKIE, &cookie)
        .header("origin", &api.base)
        .form_body(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        paused.headers()[header::LOCATION],
        format!("/campaigns/{key}?done=pause").as_str()
    );
    assert_ne!(app.request_row(&key).await, before);
    let api_write = http
        .post(api.url(&format!("/v1/campaigns/{key}/resume")))
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(api_write.status(), StatusCode::OK, "the script's way in");

    // The dry run, as the API offers it.
    let dry = api
        .post(
            "/v1/dry-run",
            json!({"title": "t", "body": "b", "segment": segment}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert_eq!(dry.body["recipients"], 500);
    let dry = api
        .post(
            "/v1/dry-run",
            json!({"title": "t", "body": "b", "segment": "nobody-here"}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", dry.text);
    let dry = api
        .post(
            "/v1/dry-run",
            json!({"title": "t", "body": "b", "speed": 3}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::BAD_REQUEST, "{}", dry.text);

    // An unknown page is the dashboard's 404 for a browser, JSON for a client.
    let missing = http
        .get(api.url("/nowhere"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("No such page"));
    let missing = http.get(api.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("\"not_found\""));

    app.herald(&["cancel", &key]);
}

/// Sign in over plain HTTP; the session cookie, as a `Cookie` header's value.
async fn session(http: &reqwest::Client, api: &ApiServer) -> String {
    let signed = http
        .post(api.url("/sign-in"))
        .form_body(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let set = signed.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The campaign keys of a list page's rows, in order, and its link to the older page.
fn rows_and_older(html: &str) -> (Vec<String>, Option<String>) {
    let keys = html
        .split("<tr data-key=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    let older = html.find("rel=\"next\"").map(|at| {
        let start = html[..at].rfind("href=\"").unwrap() + 6;
        html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&")
    });
    (keys, older)
}

/// The next event's data within `quiet`; `None` if none comes.
async fn next_within(events: &mut Events, quiet: Duration) -> Option<serde_json::Value> {
    tokio::time::timeout(quiet, events.next())
        .await
        .ok()
        .flatten()
        .map(|e| e.data)
}

#[tokio::test]
async fn the_list_pages_through_every_campaign_and_its_stream_follows_the_page() {
    let app = TestApp::spawn().await.unwrap();
    // 205 finished campaigns, ledger rows only (no workflow is needed to list them), and
    // among them two running ones: one near the top, one on the third page.
    let prefix = unique("pg");
    sqlx::query(
        "INSERT INTO messages (key, title, body, spec, status, total)
         SELECT $1 || '-' || lpad(n::text, 3, '0'), 'Campaign ' || n, 'b', '{}'::jsonb,
                CASE WHEN n IN (3, 200) THEN 1 ELSE 3 END, 10
         FROM generate_series(1, 205) AS n ORDER BY n",
    )
    .bind(&prefix)
    .execute(&app.pool)
    .await
    .unwrap();
    let key = |n: usize| format!("{prefix}-{n:03}");
    let api = app.api().await.unwrap();
    let http = plain();
    let cookie = session(&http, &api).await;
    let page = |path: String| {
        let (http, cookie, url) = (http.clone(), cookie.clone(), api.url(&path));
        async move {
            let answer = http
                .get(url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            (status, answer.text().await.unwrap())
        }
    };

    // Newest first, a hundred to a page, each campaign once, to the last page.
    let mut seen = Vec::new();
    let mut next = Some("/campaigns".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let (status, html) = page(path.clone()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (keys, older) = rows_and_older(&html);
        assert_eq!(keys.len(), if older.is_some() { 100 } else { 5 }, "{path}");
        if pages > 0 {
            assert!(html.contains("Newest campaigns"), "{path}: a way back");
        }
        seen.extend(keys);
        next = older;
        pages += 1;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (1..=205).rev().map(key).collect();
    assert_eq!(seen, expected, "every campaign once, newest first");

    // A filter is kept from page to page.
    let (_, html) = page("/campaigns?status=completed".into()).await;
    let (keys, older) = rows_and_older(&html);
    assert_eq!(keys.len(), 100);
    let older = older.expect("an older page of completed campaigns");
    assert!(
        older.starts_with("/campaigns?status=completed&after="),
        "{older}"
    );
    let (_, html) = page(older).await;
    let (keys, older) = rows_and_older(&html);
    assert_eq!(keys.len(), 100);
    let (_, html) = page(older.expect("a third page")).await;
    let (keys, older) = rows_and_older(&html);
    assert_eq!(
        (keys.len(), older),
        (3, None),
        "203 completed: 100, then 100, then 3"
    );
    assert!(
        html.contains("status=completed\">← Newest"),
        "back to the filtered newest"
    );

    // A cursor that no page gave out is refused, plainly.
    let (status, html) = page("/campaigns?after=soon".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("No such page"), "{html}");

    // The stream of a later page follows that page's campaigns, not the newest.
    let (_, html) = page("/campaigns".into()).await;
    let after = rows_and_older(&html).1.unwrap();
    let cursor = after.rsplit('=').next().unwrap().to_owned();
    let mut events = api.events(&format!("/v1/events?after={cursor}")).await;
    let mut keys = Vec::new();
    while keys.len() < 100 {
        let Some(c) = next_within(&mut events, Duration::from_secs(10)).await else {
            break;
        };
        keys.push(c["key"].as_str().unwrap().to_owned());
    }
    keys.sort();
    let mut second: Vec<String> = (6..=105).map(key).collect();
    second.sort();
    assert_eq!(keys, second, "the second page's campaigns");

    // A running campaign that completes leaves a running filter with one last event, so a
    // page filtered to running campaigns never keeps a stale row.
    let mut running = api.events("/v1/events?status=in_progress").await;
    let mut first = Vec::new();
    for _ in 0..2 {
        let c = next_within(&mut running, WAIT)
            .await
            .expect("the running campaigns");
        first.push((c["key"].as_str().unwrap().to_owned(), c["status"].clone()));
    }
    assert_eq!(
        first,
        [(key(3), json!(1)), (key(200), json!(1))],
        "oldest first"
    );
    sqlx::query("UPDATE messages SET status = 3 WHERE key = $1")
        .bind(key(200))
        .execute(&app.pool)
        .await
        .unwrap();
    let last = next_within(&mut running, WAIT).await.expect("a last event");
    assert_eq!(
        (last["key"].as_str(), &last["status"]),
        (Some(key(200).as_str()), &json!(3))
    );
    assert!(
        next_within(&mut running, Duration::from_secs(3))
            .await
            .is_none(),
        "and nothing more of it"
    );

    // In the browser: the link to the older page, whose rows stay live.
    let browser = signed_in(&api, 1280, 900).await;
    browser.click("a[rel=next]").await.unwrap();
    browser
        .wait_for(&format!("tr[data-key=\"{}\"]", key(105)), WAIT)
        .await
        .unwrap();
    assert_eq!(browser.count("tbody tr").await.unwrap(), 100);
    sqlx::query("UPDATE messages SET status = 2 WHERE key = $1")
        .bind(key(50))
        .execute(&app.pool)
        .await
        .unwrap();
    browser
        .wait_text(
            &format!("tr[data-key=\"{}\"] [data-f=status]", key(50)),
            WAIT,
            |t| t.contains("paused"),
        )
        .await
        .unwrap();
    assert_eq!(browser.property("#offline", "hidden").await.unwrap(), true);
    assert_eq!(
        browser
            .count(&format!("tr[data-key=\"{}\"]", key(205)))
            .await
            .unwrap(),
        0,
        "the newest stay on the first page"
    );
}

/// After signing in, the dashboard sends the operator back to where they were going, and
/// only ever to a path on this server: none of the tricks by which a browser reads a path as
/// another host (tabs and newlines it drops, backslashes it reads as slashes, escapes that
/// something decodes again) gets through, and none makes the sign-in fail.
#[tokio::test]
async fn a_sign_in_sends_back_only_to_a_path_on_this_server() {
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let http = plain();
    let home = url::Url::parse(&format!("{}/", api.base)).unwrap();
    let tricks = [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\t\t/\t/evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "/\\/evil.example",
        "/%2F/evil.example",
        "/%2f%2fevil.example",
        "/%5C/evil.example",
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%0d%0a/evil.example",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        " /campaigns",
        "/campaigns\u{0}",
        "/%",
        "evil.example",
    ];
    for next in tricks {
        let mut page = url::Url::parse(&api.url("/sign-in")).unwrap();
        page.query_pairs_mut().append_pair("next", next);
        let page = http.get(page.as_str()).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "sign-in page for {next:?}");
        let signed = http
            .post(api.url("/sign-in"))
            .form_body(&[("token", TOKEN), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), StatusCode::SEE_OTHER, "{next:?}");
        let to = signed.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(to, "/campaigns", "{next:?}");
    }
    // Where an operator was going is kept, its query too; a browser reads it as this server.
    for kept in [
        "/campaigns/spring-sale",
        "/campaigns?status=paused&q=a%20b",
        "/launch",
    ] {
        let signed = http
            .post(api.url("/sign-in"))
            .form_body(&[("token", TOKEN), ("next", kept)])
            .send()
            .await
            .unwrap();
        let to = signed.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(to, kept);
        let resolved = home.join(to).unwrap();
        assert_eq!(resolved.origin(), home.origin(), "{kept}");
    }

    // The same in a browser: a link to the sign-in with a tab in `next` lands on this
    // server's campaigns after signing in.
    let browser = Browser::start(&api.base, 1000, 700).await.unwrap();
    for next in ["/%09/evil.example", "/%5C/evil.example", "/\\evil.example"] {
        sign_in_from(&browser, &format!("/sign-in?next={next}")).await;
    }
}

#[tokio::test]
async fn consent_and_previews_in_the_browser() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("cb");
    app.seed(20, &segment);
    let api = app.api().await.unwrap();
    let browser = signed_in(&api, 1280, 900).await;

    // The Consent page: the two built-in categories, an empty list; an import with a bad
    // line is refused whole, a good one lands, and Remove takes one off.
    browser.open("/consent").await.unwrap();
    browser.wait_for("#categories", WAIT).await.unwrap();
    let categories = browser.text("#categories").await.unwrap();
    assert!(categories.contains("marketing") && categories.contains("transactional"));
    browser
        .fill("#addresses", "gone@example.com\nnot an address\n")
        .await
        .unwrap();
    browser
        .click("form[action='/consent/suppressions'] button[type=submit]")
        .await
        .unwrap();
    browser.wait_for(".error", WAIT).await.unwrap();
    assert!(browser.text(".error").await.unwrap().contains("line 2"));
    assert_eq!(browser.count("#suppressions tbody tr").await.unwrap(), 0);
    browser
        .fill(
            "#addresses",
            "Gone@Example.com,moved away\nold@example.com\n",
        )
        .await
        .unwrap();
    browser
        .click("form[action='/consent/suppressions'] button[type=submit]")
        .await
        .unwrap();
    browser
        .wait_text(".notice", WAIT, |t| t.contains("2 newly suppressed"))
        .await
        .unwrap();
    assert_eq!(browser.count("#suppressions tbody tr").await.unwrap(), 2);
    assert!(
        browser
            .text("#suppressions")
            .await
            .unwrap()
            .contains("gone@example.com")
    );
    browser.screenshot("consent").await.unwrap();
    browser
        .click("#suppressions tbody tr:first-child button")
        .await
        .unwrap();
    browser
        .wait_text(".notice", WAIT, |t| t.contains("no longer suppressed"))
        .await
        .unwrap();
    assert_eq!(browser.count("#suppressions tbody tr").await.unwrap(), 1);

    // A launch form's preview: rendered for a user, nothing launched.
    browser.open("/launch").await.unwrap();
    browser.wait_for("#title", WAIT).await.unwrap();
    browser.fill("#title", "Hi #{{ user.id }}").await.unwrap();
    browser.fill("#body", "Body").await.unwrap();
    browser.fill("#segment", &segment).await.unwrap();
    let first: i64 = sqlx::query_scalar("SELECT min(id) FROM users WHERE segments @> ARRAY[$1]")
        .bind(&segment)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    browser
        .fill("#try_users", &first.to_string())
        .await
        .unwrap();
    browser
        .click("button[name=step][value=preview]")
        .await
        .unwrap();
    browser.wait_for("#preview", WAIT).await.unwrap();
    assert_eq!(
        browser.text("#preview .rendered-title").await.unwrap(),
        format!("Hi #{first}")
    );
    let launched: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(launched, 0);

    // A campaign's suppressed count shows on its page.
    app.herald_ok(&["opt-out", &first.to_string()]);
    let key = app.campaign(&segment).launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    browser.open(&format!("/campaigns/{key}")).await.unwrap();
    browser
        .wait_text("[data-f=suppressed]", WAIT, |t| t == "1")
        .await
        .unwrap();
    assert_eq!(browser.text("[data-f=sent]").await.unwrap(), "19");
}
