//! The frequency cap end to end (docs/local-time.md, "Frequency cap"): two capped campaigns
//! at once over the same users, on two channels, never together exceed the cap for anyone,
//! even on a database whose default isolation is stricter; the cap's count agrees with
//! counting by hand for pages of every shape; a worker killed in a capped campaign's sends
//! counts nobody twice; only capped campaigns count, a transactional one is never capped;
//! the default cap through the CLI and the API, with bad input refused and nothing changed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use herald_tests::{
    LONG, TestApp,
    sinks::{WEBHOOK_SECRET, WebhookSink},
    stderr, unique, wait_until,
};
use herald_wire::CampaignStatus;
use reqwest::StatusCode;
use serde_json::json;

/// How many campaigns sent to each user of `segment` (users with none included), by id.
async fn reached(app: &TestApp, segment: &str) -> HashMap<i64, i64> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT u.id, count(i.user_id) FROM users u
         LEFT JOIN message_items i ON i.user_id = u.id AND i.status = 1
         WHERE u.segments @> ARRAY[$1] GROUP BY u.id",
    )
    .bind(segment)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// The counters of `herald status --json`: sent, capped, and that everything adds up.
fn sent_capped(app: &TestApp, key: &str) -> (i64, i64) {
    let s = app.status(key);
    let n = |f: &str| s[f].as_i64().unwrap();
    assert_eq!(
        n("sent") + n("failed") + n("suppressed") + n("capped") + n("pending"),
        n("total"),
        "sent + failed + suppressed + capped + pending = total: {s}"
    );
    (n("sent"), n("capped"))
}

/// How many users hold each number of counted capped deliveries: (deliveries, users).
const COUNTED: &str = "SELECT n, count(*) FROM (
         SELECT x, count(*) AS n FROM capped_pages p, herald_capped_ids(p.runs, p.users) x
         GROUP BY x) c
     GROUP BY 1 ORDER BY 1";

/// Wait for `key` to complete, check its ledger, and give its sent and capped.
async fn done(app: &TestApp, key: &str) -> (i64, i64) {
    app.wait_status(key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(key).await;
    sent_capped(app, key)
}

#[tokio::test]
async fn two_capped_campaigns_at_once_on_two_channels_never_together_exceed_the_cap() {
    const USERS: i64 = 1_500;
    let mut app = TestApp::without_worker().await.unwrap();
    // A database whose default isolation is stricter than READ COMMITTED, under which a page
    // that waited for another's lock would not see its row: Herald asks for READ COMMITTED.
    sqlx::query(&format!(
        "ALTER DATABASE {} SET default_transaction_isolation TO 'repeatable read'",
        app.db_name
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    app.start_worker().unwrap();
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    let segment = unique("cap");
    app.seed(USERS as u32, &segment);
    // Both campaigns walk the users in the same order, and a page waits its turn whatever it
    // leaves out: launched together at one pace, the later one would follow the first and
    // find everyone taken. So the inbox campaign goes ahead at a pace, and once it has
    // reached some users the webhook campaign, unpaced, overtakes it: their pages meet on
    // the same users while both run, and each reaches some first.
    let a = app
        .campaign(&segment)
        .option("frequency-cap", "1/24h")
        .page_size(25)
        .lanes(4)
        .rate(100)
        .launch();
    wait_until(LONG, || async {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM message_items i JOIN messages m ON m.id = i.message_id
             WHERE m.key = $1 AND i.status = 1",
        )
        .bind(&a)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        sent > 0
    })
    .await
    .unwrap();
    let b = app
        .campaign(&segment)
        .webhook(&sink.url())
        .option("frequency-cap", "1/24h")
        .page_size(25)
        .lanes(4)
        .launch();
    for key in [&a, &b] {
        app.wait_status(key, CampaignStatus::Completed, LONG)
            .await
            .unwrap();
        app.check_invariants(key).await;
    }
    let ((a_sent, a_capped), (b_sent, b_capped)) = (sent_capped(&app, &a), sent_capped(&app, &b));
    assert!(
        a_sent > 0 && b_sent > 0,
        "both ran at once and each reached some users first: {a_sent} and {b_sent}"
    );
    assert_eq!(a_sent + b_sent, USERS, "everyone reached once");
    assert_eq!((a_capped, b_capped), (USERS - a_sent, USERS - b_sent));
    // Per user: exactly one of the two, whichever took them first.
    let per_user = reached(&app, &segment).await;
    assert_eq!(per_user.len(), USERS as usize);
    let wrong: Vec<_> = per_user.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        wrong.is_empty(),
        "users not reached exactly once: {wrong:?}"
    );
    // The receiver got exactly the webhook campaign's sent users, none of the inbox's.
    let got: HashSet<String> = sink.ids().into_iter().collect();
    assert_eq!(got.len() as i64, b_sent);
    assert_eq!(sink.duplicates(), 0);
    let inbox_users: Vec<i64> = sqlx::query_scalar(
        "SELECT i.user_id FROM message_items i JOIN messages m ON m.id = i.message_id
         WHERE m.key = $1 AND i.status = 1",
    )
    .bind(&a)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(inbox_users.len() as i64, a_sent);
    assert!(
        inbox_users
            .iter()
            .all(|u| !got.contains(&format!("msg_{b}_{u}"))),
        "a user got both"
    );
    // The report and the text status name them.
    let status = app.herald_ok(&["status", &b]);
    assert!(
        status.contains(&format!("{b_capped} capped (1/24h)")),
        "{status}"
    );
    let report = app.herald_ok(&["report", &b, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let outcomes = report["outcomes"].as_array().unwrap();
    assert!(
        outcomes
            .iter()
            .any(|o| o["outcome"] == "capped" && o["items"] == b_capped),
        "{report}"
    );
}

/// `herald_cap_reach` against counting by hand, over a thousand pages of every shape: whole
/// runs of ids, runs with a few holes, scattered ids (the two ways a page's ids are kept, and
/// the two ways of counting), caps of 1 to 5, and campaigns aged out of the window.
#[tokio::test]
async fn the_cap_leaves_out_exactly_whom_counting_by_hand_does() {
    const WINDOW: i32 = 86_400;
    let app = TestApp::without_worker().await.unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    // Whom each campaign reached, and the campaigns still in the window.
    let mut reached: Vec<Vec<i64>> = Vec::new();
    let mut in_window: Vec<bool> = Vec::new();
    let mut left_out = 0;
    for campaign in 0..1_000i64 {
        let first = next(15_000) as i64;
        let hole_every = [0, 0, 150, 3, 2][next(5) as usize];
        // Now and then ids far apart: a page whose span covers many blocks of ids.
        let stride = [1, 1, 1, 1, 37][next(5) as usize];
        let ids: Vec<i64> = (first..first + 1 + next(1_500) as i64 * stride)
            .step_by(stride as usize)
            .filter(|_| hole_every == 0 || next(hole_every) != 0)
            .take(500)
            .collect();
        let most = 1 + next(5) as i32;
        if campaign > 20 && next(10) == 0 {
            // An earlier campaign's pages fall out of the window.
            let aged = campaign - 1 - next(20) as i64;
            sqlx::query("UPDATE capped_pages SET at = at - interval '2 days' WHERE campaign = $1")
                .bind(aged)
                .execute(&app.pool)
                .await
                .unwrap();
            in_window[aged as usize] = false;
        }
        let mut counts: HashMap<i64, i32> = HashMap::new();
        for (users, _) in reached.iter().zip(&in_window).filter(|(_, w)| **w) {
            for id in users {
                *counts.entry(*id).or_default() += 1;
            }
        }
        let expected: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| counts.get(id).copied().unwrap_or(0) >= most)
            .collect();
        let over: Vec<i64> = sqlx::query_scalar("SELECT herald_cap_reach($1, $2, $3, $4)")
            .bind(campaign)
            .bind(&ids)
            .bind(most)
            .bind(WINDOW)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(
            over,
            expected,
            "page {campaign}: {} ids, cap {most}",
            ids.len()
        );
        left_out += over.len();
        reached.push(ids.into_iter().filter(|id| !over.contains(id)).collect());
        in_window.push(true);
    }
    // Every shape was met: pages left out some, and both ways of keeping ids were written.
    let (runs, lists): (i64, i64) =
        sqlx::query_as("SELECT count(runs), count(users) FROM capped_pages")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        left_out > 1_000 && runs > 100 && lists > 100,
        "{left_out} left out, {runs} runs, {lists} lists"
    );
    // And the rows hold exactly whom each campaign reached, id for id.
    let stored: HashMap<i64, Vec<i64>> = sqlx::query_as(
        "SELECT campaign, array_agg(x ORDER BY x)
         FROM capped_pages p, herald_capped_ids(p.runs, p.users) x GROUP BY campaign",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for (campaign, users) in reached.iter().enumerate() {
        let none = Vec::new();
        let held = stored.get(&(campaign as i64)).unwrap_or(&none);
        assert_eq!(held, users, "campaign {campaign}'s row");
    }
}

#[tokio::test]
async fn a_worker_killed_in_a_capped_campaign_counts_nobody_twice() {
    const USERS: i64 = 2_000;
    let mut app = TestApp::spawn().await.unwrap();
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();
    let segment = unique("capk");
    app.seed(USERS as u32, &segment);
    let first = app
        .campaign(&segment)
        .webhook(&sink.url())
        .option("frequency-cap", "2/24h")
        .page_size(50)
        .lanes(4)
        .rate(400)
        .launch();
    wait_until(LONG, || async { sink.delivered() >= 600 })
        .await
        .unwrap();
    app.kill_worker();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.start_worker().unwrap();
    app.wait_status(&first, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.assert_exactly_once(&first, USERS).await;
    assert_eq!(sent_capped(&app, &first), (USERS, 0));
    // Pages claimed again after the kill counted nobody a second time: each user holds
    // one delivery, so a second campaign under 2/24h reaches them all, and a third none.
    let counted: Vec<(i64, i64)> = sqlx::query_as(COUNTED).fetch_all(&app.pool).await.unwrap();
    assert_eq!(counted, vec![(1, USERS)]);
    let second = app
        .campaign(&segment)
        .option("frequency-cap", "2/24h")
        .launch();
    app.wait_status(&second, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(sent_capped(&app, &second), (USERS, 0));
    let third = app
        .campaign(&segment)
        .option("frequency-cap", "2/24h")
        .launch();
    app.wait_status(&third, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(sent_capped(&app, &third), (0, USERS));
    app.check_invariants(&third).await;
}

#[tokio::test]
async fn only_capped_campaigns_count_a_transactional_one_never_does_and_the_default_is_one_setting()
{
    const USERS: i64 = 30;
    let app = TestApp::spawn().await.unwrap();
    let api = app.api().await.unwrap();
    let segment = unique("capd");
    app.seed(USERS as u32, &segment);
    let cap_of = |key: &str| app.status(key)["frequency_cap"].clone();
    let run = |extra: &[(&str, &str)]| {
        let mut c = app.campaign(&segment);
        for (name, value) in extra {
            c = c.option(name, value);
        }
        c.launch()
    };

    // No default yet: a launch that names no cap is not capped.
    assert!(app.herald_ok(&["settings"]).contains("frequency-cap  none"));
    let plain = run(&[]);
    assert_eq!(done(&app, &plain).await, (USERS, 0));
    assert_eq!(cap_of(&plain), json!(null));

    // Bad input is refused in one line and changes nothing.
    for wrong in ["0/24h", "21/1h", "2/31d", "2/24", "two"] {
        let out = app.herald(&["settings", "frequency-cap", wrong]);
        assert!(!out.status.success(), "{wrong} was taken");
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
        let out = app.campaign(&segment).option("frequency-cap", wrong).run();
        assert!(!out.status.success(), "{wrong} launched");
        assert!(stderr(&out).contains("--frequency-cap"), "{}", stderr(&out));
    }
    let refused = api
        .service(
            reqwest::Method::PUT,
            "/v1/settings",
            Some(json!({"frequency_cap": "3/0h"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(
        refused.body["error"]["field"], "frequency_cap",
        "{}",
        refused.text
    );
    assert_eq!(
        api.get("/v1/settings").await.body,
        json!({"frequency_cap": null})
    );

    // The default, set in the CLI and seen in the API.
    app.herald_ok(&["settings", "frequency-cap", "2/24h"]);
    assert_eq!(
        api.get("/v1/settings").await.body,
        json!({"frequency_cap": "2/24h"})
    );
    let one = run(&[]);
    assert_eq!(done(&app, &one).await, (USERS, 0));
    assert_eq!(cap_of(&one), "2/24h", "the launch wrote the default it got");

    // Neither an uncapped campaign nor a transactional one counts, or is capped.
    let uncapped = run(&[("frequency-cap", "none")]);
    assert_eq!(done(&app, &uncapped).await, (USERS, 0));
    assert_eq!(cap_of(&uncapped), json!(null), "none is not capped");
    let receipt = run(&[("category", "transactional")]);
    assert_eq!(done(&app, &receipt).await, (USERS, 0));
    assert_eq!(cap_of(&receipt), json!(null));
    let out = app
        .campaign(&segment)
        .option("category", "transactional")
        .option("frequency-cap", "1/1h")
        .run();
    assert!(
        stderr(&out).contains("--frequency-cap") && stderr(&out).contains("transactional"),
        "{}",
        stderr(&out)
    );

    // The second capped campaign in 24 hours reaches everyone; the third nobody, unless it
    // allows three.
    let two = run(&[]);
    assert_eq!(done(&app, &two).await, (USERS, 0));
    let three = run(&[]);
    assert_eq!(done(&app, &three).await, (0, USERS));
    let c = api.get(&format!("/v1/campaigns/{three}")).await.body;
    assert_eq!(
        (c["capped"].clone(), c["sent"].clone()),
        (json!(USERS), json!(0))
    );
    assert_eq!(c["frequency_cap"], "2/24h");
    // A dry run says which cap a launch would get, and whom it would leave out now.
    let dry = app.herald_ok(&[
        "launch",
        "--dry-run",
        "--title",
        "t",
        "--body",
        "b",
        "--segment",
        &segment,
    ]);
    assert!(
        dry.contains(&format!(
            "frequency cap 2/24h: up to {USERS} of them would be capped now"
        )),
        "{dry}"
    );
    let dry = api
        .post(
            "/v1/dry-run",
            json!({"title": "t", "body": "b", "segment": segment, "frequency_cap": "3/24h"}),
        )
        .await;
    assert_eq!(
        (
            dry.body["frequency_cap"].clone(),
            dry.body["capped"].clone()
        ),
        (json!("3/24h"), json!(0)),
        "{}",
        dry.text
    );
    let roomier = run(&[("frequency-cap", "3/24h")]);
    assert_eq!(done(&app, &roomier).await, (USERS, 0));
    assert_eq!(
        done(&app, &run(&[("frequency-cap", "3/24h")])).await,
        (0, USERS)
    );
    // A short window counts only the latest: everyone is under five in a minute, and
    // nobody under one, a moment after that.
    assert_eq!(
        done(&app, &run(&[("frequency-cap", "5/1m")])).await,
        (USERS, 0)
    );
    assert_eq!(
        done(&app, &run(&[("frequency-cap", "1/1m")])).await,
        (0, USERS)
    );

    // Removed through the API: launches are uncapped again; campaigns keep theirs.
    let removed = api
        .service(
            reqwest::Method::PUT,
            "/v1/settings",
            Some(json!({"frequency_cap": "none"})),
        )
        .await;
    assert_eq!(
        removed.body,
        json!({"frequency_cap": null}),
        "{}",
        removed.text
    );
    assert_eq!(cap_of(&three), "2/24h");
    assert_eq!(done(&app, &run(&[])).await, (USERS, 0));
    // Each capped delivery counted once (one, two, roomier and 5/1m); the uncapped, the
    // receipt and the capped-out ones not at all.
    let counted: Vec<(i64, i64)> = sqlx::query_as(COUNTED).fetch_all(&app.pool).await.unwrap();
    assert_eq!(counted, vec![(4, USERS)]);
}

#[tokio::test]
async fn the_dashboard_launches_with_a_cap_and_shows_the_capped_live() {
    const USERS: i64 = 20;
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("capdash");
    app.seed(USERS as u32, &segment);
    // Everyone had a capped campaign today.
    let earlier = app
        .campaign(&segment)
        .option("frequency-cap", "1/24h")
        .launch();
    assert_eq!(done(&app, &earlier).await, (USERS, 0));
    let api = app.api().await.unwrap();
    let browser = crate::dashboard::signed_in(&api, 1280, 900).await;

    browser.open("/launch").await.unwrap();
    browser.fill("#title", "Again").await.unwrap();
    browser
        .fill("#body", "A second message today.")
        .await
        .unwrap();
    browser.fill("#segment", &segment).await.unwrap();
    browser.fill("#frequency_cap", "1/24").await.unwrap();
    browser.click("button[value=review]").await.unwrap();
    // A cap without its unit is named at its field.
    let error = browser
        .wait_text("#frequency_cap-error", WAIT, |t| t.contains("2/24h"))
        .await;
    assert!(error.is_ok(), "{:?}", browser.text("body").await);
    browser.fill("#frequency_cap", "1/24h").await.unwrap();
    browser.click("button[value=review]").await.unwrap();
    let cap = browser
        .wait_text("#confirm-cap", WAIT, |t| {
            t.contains("1/24h") && t.contains(&format!("up to {USERS} of the recipients"))
        })
        .await;
    assert!(cap.is_ok(), "{:?}", browser.text("body").await);
    browser.click("button[value=launch]").await.unwrap();
    browser
        .wait_for("[data-live-campaign]", WAIT)
        .await
        .unwrap();
    // Everyone is capped, and the page says so as the campaign ends.
    let capped = browser
        .wait_text("[data-f=capped]", WAIT, |t| t == USERS.to_string())
        .await;
    assert!(capped.is_ok(), "{:?}", browser.text("body").await);
    let key = browser.campaign_key().await.unwrap();
    assert_eq!(done(&app, &key).await, (0, USERS));
    browser.screenshot("capped").await.unwrap();
}

const WAIT: Duration = Duration::from_secs(30);
