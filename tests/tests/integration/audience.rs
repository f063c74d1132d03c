//! Audience filters compiled to SQL, against a real PostgreSQL: every operator, nested, with
//! exclusions, each counted against an independent SQL count of the same users.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use herald_store::filter::{self, Compiled};
use herald_tests::TestApp;
use herald_wire::CampaignStatus;
use herald_wire::audience::{AttrType, Filter};
use serde_json::json;
use sqlx::PgPool;

/// 1,000 users: every third is on plan `pro` (the rest `free`, and every tenth has none),
/// countries cycle through DE, AT, FR, US, ages 10–89, scores in steps of 0.25, every fifth
/// is a beta tester, one joins an hour after another from 2026-01-01, `last_seen` steps back
/// a day per user from 2026-12-01, every seventh has a phone, every fourth has no name.
/// Segment `vip` on every eleventh.
async fn users(pool: &PgPool) -> HashMap<String, AttrType> {
    sqlx::raw_sql(
        "INSERT INTO users (id, email, segments, name, locale, created_at, attrs)
         SELECT g,
                'u' || g || '@example.com',
                CASE WHEN g % 11 = 0 THEN ARRAY['vip'] ELSE '{}' END,
                CASE WHEN g % 4 = 0 THEN NULL ELSE 'User ' || g END,
                CASE WHEN g % 2 = 0 THEN 'de' ELSE 'en' END,
                timestamptz '2026-01-01 00:00:00+00' + (g || ' hours')::interval,
                jsonb_strip_nulls(jsonb_build_object(
                    'plan', CASE WHEN g % 10 = 0 THEN NULL WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END,
                    'country', (ARRAY['DE', 'AT', 'FR', 'US'])[g % 4 + 1],
                    'age', 10 + g % 80,
                    'score', (g % 16) * 0.25,
                    'beta', g % 5 = 0,
                    'last_seen', to_char((timestamptz '2026-12-01 00:00:00+00' - (g || ' days')::interval)
                                         AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                    'phone', CASE WHEN g % 7 = 0 THEN '+49 30 ' || g END))
         FROM generate_series(1, 1000) g;
         INSERT INTO user_attributes (name, type) VALUES
             ('plan', 'text'), ('country', 'text'), ('age', 'int'), ('score', 'number'),
             ('beta', 'bool'), ('last_seen', 'time'), ('phone', 'text');",
    )
    .execute(pool)
    .await
    .unwrap();
    filter::attribute_types(pool).await.unwrap()
}

/// `count` users in a segment of their own, which it returns, each with an `age` (id % 90)
/// and the `plan` pro where `pro` holds, free elsewhere.
async fn planned_users(app: &TestApp, count: u32, pro: &str) -> String {
    let segment = herald_tests::unique("planned");
    app.seed(count, &segment);
    sqlx::raw_sql(&format!(
        "INSERT INTO user_attributes (name, type) VALUES ('plan', 'text'), ('age', 'int')
             ON CONFLICT DO NOTHING;
         UPDATE users SET attrs = jsonb_build_object(
             'plan', CASE WHEN {pro} THEN 'pro' ELSE 'free' END, 'age', id % 90)"
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    segment
}

async fn count(pool: &PgPool, c: &Compiled) -> i64 {
    let sql = format!("SELECT count(*) FROM users u WHERE {}", c.sql);
    let (n,): (i64,) = c.bind(sqlx::query_as(&sql)).fetch_one(pool).await.unwrap();
    n
}

async fn independent(pool: &PgPool, condition: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {condition}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_operator_counts_what_plain_sql_counts() {
    let app = TestApp::without_worker().await.unwrap();
    let pool = &app.pool;
    let types = users(pool).await;
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let cases = [
        (
            json!({"attr": "plan", "eq": "pro"}),
            "attrs->>'plan' = 'pro'",
        ),
        // `ne` is `not eq`: users without a plan match.
        (
            json!({"attr": "plan", "ne": "pro"}),
            "attrs->>'plan' IS DISTINCT FROM 'pro'",
        ),
        (
            json!({"attr": "country", "in": ["DE", "AT"]}),
            "attrs->>'country' IN ('DE', 'AT')",
        ),
        (
            json!({"attr": "age", "gte": 18}),
            "(attrs->>'age')::int >= 18",
        ),
        (
            json!({"attr": "age", "lt": 18}),
            "(attrs->>'age')::int < 18",
        ),
        (
            json!({"attr": "age", "in": [10, 11, 89]}),
            "(attrs->>'age')::int IN (10, 11, 89)",
        ),
        (
            json!({"attr": "score", "gt": 2.5}),
            "(attrs->>'score')::numeric > 2.5",
        ),
        (
            json!({"attr": "score", "lte": 1}),
            "(attrs->>'score')::numeric <= 1",
        ),
        (
            json!({"attr": "beta", "eq": true}),
            "(attrs->>'beta')::boolean",
        ),
        (
            json!({"attr": "last_seen", "after": "-30d"}),
            "(attrs->>'last_seen')::timestamptz > timestamptz '2026-11-01 00:00:00+00'",
        ),
        (
            json!({"attr": "last_seen", "before": "2026-10-01T02:00:00+02:00"}),
            "(attrs->>'last_seen')::timestamptz < timestamptz '2026-10-01 00:00:00+00'",
        ),
        (
            json!({"attr": "score", "in": [0.25, 0.5]}),
            "(attrs->>'score')::numeric IN (0.25, 0.5)",
        ),
        (
            json!({"attr": "beta", "in": [true]}),
            "(attrs->>'beta')::boolean",
        ),
        (json!({"attr": "phone", "exists": true}), "attrs ? 'phone'"),
        (
            json!({"attr": "phone", "exists": false}),
            "NOT attrs ? 'phone'",
        ),
        (json!({"name": {"exists": true}}), "name IS NOT NULL"),
        (json!({"attr": "locale", "eq": "de"}), "locale = 'de'"),
        (json!({"attr": "id", "lte": 100}), "id <= 100"),
        (
            json!({"attr": "created_at", "before": "2026-01-20T00:00:00Z"}),
            "created_at < timestamptz '2026-01-20 00:00:00+00'",
        ),
        (json!({"segment": "vip"}), "'vip' = ANY (segments)"),
        (
            json!({"not": {"segment": "vip"}}),
            "NOT 'vip' = ANY (segments)",
        ),
        (
            json!({"all": [
                {"attr": "plan", "eq": "pro"},
                {"attr": "country", "in": ["DE", "AT"]},
                {"attr": "last_seen", "after": "-300d"},
                {"not": {"attr": "beta", "eq": true}},
            ]}),
            "attrs->>'plan' = 'pro' AND attrs->>'country' IN ('DE', 'AT')
             AND (attrs->>'last_seen')::timestamptz > timestamptz '2026-12-01' - interval '300 days'
             AND NOT (attrs->>'beta')::boolean",
        ),
        (
            json!({"any": [
                {"all": [{"segment": "vip"}, {"attr": "age", "gt": 50}]},
                {"not": {"any": [{"attr": "plan", "exists": true}, {"name": {"exists": true}}]}},
            ]}),
            "('vip' = ANY (segments) AND (attrs->>'age')::int > 50)
             OR NOT (attrs ? 'plan' OR name IS NOT NULL)",
        ),
    ];
    for (filter, condition) in cases {
        let parsed = Filter::parse(&filter).unwrap();
        let compiled = filter::compile(&parsed, &types, 1, now).unwrap();
        let expected = independent(pool, condition).await;
        assert!(
            expected > 0 && expected < 1_000,
            "a test that can fail: {condition}"
        );
        assert_eq!(
            count(pool, &compiled).await,
            expected,
            "{filter}\n{}",
            compiled.sql
        );
    }
}

/// Nothing in a filter reaches the statement's text: names and values are parameters.
#[tokio::test]
async fn a_filter_cannot_change_the_statement() {
    let app = TestApp::without_worker().await.unwrap();
    let types = users(&app.pool).await;
    // Neither SQL nor the JSON path an attribute's test becomes can be escaped from.
    for hostile in [
        json!({"attr": "plan", "eq": "pro' OR true; DROP TABLE users; --"}),
        json!({"attr": "plan", "in": ["x\" || @ != \"x", "y\\"]}),
        json!({"attr": "plan", "ne": "pro\" || true || \"'"}),
    ] {
        let f = Filter::parse(&hostile).unwrap();
        let compiled = filter::compile(&f, &types, 3, Utc::now()).unwrap();
        assert!(!compiled.sql.contains("DROP"), "{}", compiled.sql);
        assert!(compiled.sql.contains("$3::"), "{}", compiled.sql);
        let shifted = format!(
            "SELECT count(*) FROM users u WHERE $1::int = $2::int AND {}",
            compiled.sql
        );
        let (n,): (i64,) = compiled
            .bind(sqlx::query_as(&shifted).bind(1).bind(1))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        // `ne` a value nobody has: everyone.
        let expected = if hostile.get("ne").is_some() { 1000 } else { 0 };
        assert_eq!(n, expected, "{hostile}");
    }
    // An attribute no user has is refused with its path, before any SQL.
    let f = Filter::parse(&json!({"not": {"attr": "plna", "eq": "pro"}})).unwrap();
    let e = filter::compile(&f, &types, 1, Utc::now()).unwrap_err();
    assert_eq!(e.path, "not");
}

/// A campaign launched with a filter reaches exactly the users plain SQL selects, once each;
/// a filter that cannot be valid is refused at launch with the path of its offending node,
/// and nothing is written.
#[tokio::test]
async fn a_campaign_to_a_filter_reaches_exactly_the_users_it_holds() {
    let app = TestApp::spawn().await.unwrap();
    let segment = planned_users(&app, 6_000, "id % 3 = 0").await;
    let filter = json!({"all": [
        {"segment": segment},
        {"attr": "plan", "eq": "pro"},
        {"not": {"attr": "age", "lt": 30}},
    ]});
    let selected = format!(
        "SELECT id FROM users WHERE '{segment}' = ANY (segments)
           AND attrs->>'plan' = 'pro' AND (attrs->>'age')::int >= 30"
    );

    // Refused at launch: an attribute no user has, with its path; nothing is written.
    let bad = json!({"all": [{"segment": segment}, {"not": {"attr": "tier", "eq": "gold"}}]});
    let out = app.campaign_to(&bad.to_string()).run();
    assert!(!out.status.success());
    let err = herald_tests::stderr(&out);
    assert!(
        err.contains("all[1].not") && err.contains("\"tier\""),
        "{err}"
    );
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a refused launch writes nothing");

    let key = app
        .campaign_to(&filter.to_string())
        .page_size(100)
        .lanes(3)
        .launch();
    app.wait_status(
        &key,
        herald_wire::CampaignStatus::Completed,
        herald_tests::LONG,
    )
    .await
    .unwrap();
    let expected = independent(&app.pool, &format!("id IN ({selected})")).await;
    assert!(expected > 1_000 && expected < 6_000, "{expected}");
    let (items, outsiders, missing): (i64, i64, i64) = sqlx::query_as(&format!(
        "WITH m AS (SELECT id FROM messages WHERE key = $1),
              items AS (SELECT i.user_id FROM message_items i, m WHERE i.message_id = m.id)
         SELECT (SELECT count(*) FROM items),
                (SELECT count(*) FROM items WHERE user_id NOT IN ({selected})),
                (SELECT count(*) FROM ({selected}) s WHERE s.id NOT IN (SELECT user_id FROM items))"
    ))
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((items, outsiders, missing), (expected, 0, 0));
    let s = app.status(&key);
    assert_eq!(
        (&s["total"], &s["sent"]),
        (&expected.into(), &expected.into()),
        "{s}"
    );
}

/// A value that is not of its attribute's type (written by hand) is no value: it neither
/// exists nor passes a test, and it never makes a statement fail.
#[tokio::test]
async fn a_value_not_of_its_type_is_no_value() {
    let app = TestApp::without_worker().await.unwrap();
    sqlx::raw_sql(
        r#"INSERT INTO user_attributes (name, type) VALUES ('phone', 'text'), ('age', 'int'),
               ('last_seen', 'time');
           INSERT INTO users (id, email, attrs) VALUES
             (1, 'a@example.com', '{"phone": null, "age": "old", "last_seen": "2026-11-30T00:00:00+00:00"}'),
             (2, 'b@example.com', '{"phone": 5, "age": 40.5, "last_seen": "yesterday"}'),
             (3, 'c@example.com', '{"phone": "+49 30 1", "age": 40, "last_seen": "2026-11-30T00:00:00.000000Z"}');"#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let types = filter::attribute_types(&app.pool).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    for (f, n) in [
        (json!({"attr": "phone", "exists": true}), 1),
        (json!({"attr": "phone", "exists": false}), 2),
        (json!({"attr": "age", "gte": 18}), 2), // 40.5 is a number, if not a whole one
        (json!({"attr": "age", "exists": true}), 2),
        (json!({"attr": "last_seen", "after": "-7d"}), 1),
        (json!({"attr": "last_seen", "exists": true}), 1),
        (json!({"attr": "phone", "ne": "+49 30 1"}), 2),
    ] {
        let compiled = filter::compile(&Filter::parse(&f).unwrap(), &types, 1, now).unwrap();
        assert_eq!(count(&app.pool, &compiled).await, n, "{f}");
    }
}

/// Long `in` lists are as exact as short ones (a path would nest once per value), and
/// negative numbers compare as numbers.
#[tokio::test]
async fn long_lists_and_negative_numbers_count_what_plain_sql_counts() {
    let app = TestApp::without_worker().await.unwrap();
    let types = users(&app.pool).await;
    let now = Utc::now();
    let ages: Vec<i64> = (-4_000..4_000).collect();
    let mut countries: Vec<String> = (0..5_000).map(|i| format!("X{i}")).collect();
    countries.push("DE".into());
    for (filter, condition) in [
        (json!({"attr": "age", "in": ages}), "attrs ? 'age'"),
        (
            json!({"attr": "country", "in": countries}),
            "attrs->>'country' = 'DE'",
        ),
        (
            json!({"attr": "score", "gt": -0.5}),
            "(attrs->>'score')::numeric > -0.5",
        ),
        (json!({"attr": "age", "lt": -1}), "false"),
    ] {
        let parsed = Filter::parse(&filter).unwrap();
        let compiled = filter::compile(&parsed, &types, 1, now).unwrap();
        assert_eq!(
            count(&app.pool, &compiled).await,
            independent(&app.pool, condition).await,
            "{condition}"
        );
    }
}

/// Attributes that change while a campaign runs, back and forth, ahead of its pages and
/// behind them: each user is sent to at most once, the campaign ends with nothing pending,
/// and the difference from the launch's count is reported, never past 100%.
#[tokio::test]
async fn attributes_changed_during_the_run_reach_each_user_at_most_once() {
    let app = TestApp::spawn().await.unwrap();
    let segment = planned_users(&app, 3_000, "id % 2 = 0").await;
    let filter = json!({"all": [{"segment": segment}, {"attr": "plan", "eq": "pro"}]});
    let counted: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM users WHERE '{segment}' = ANY (segments) AND attrs->>'plan' = 'pro'"
    ))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let key = app
        .campaign_to(&filter.to_string())
        .lanes(1)
        .page_size(100)
        .rate(500)
        .send_at(Utc::now() + chrono::Duration::seconds(1))
        .launch();
    // Every user's plan flips, again and again, until the pages have been through them all
    // (at a period that no page interval divides).
    let mut round = 0_i64;
    while app.db_status(&key).await != Some(CampaignStatus::Completed) {
        round += 1;
        assert!(round < 2_000, "the campaign did not complete");
        sqlx::query(
            "UPDATE users SET attrs = jsonb_set(attrs, '{plan}',
                 to_jsonb(CASE WHEN (id + $1) % 2 = 0 THEN 'pro' ELSE 'free' END))",
        )
        .bind(round)
        .execute(&app.pool)
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(130)).await;
    }
    let (items, people, even, odd): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id),
                count(*) FILTER (WHERE user_id % 2 = 0), count(*) FILTER (WHERE user_id % 2 = 1)
         FROM message_items WHERE message_id = (SELECT id FROM messages WHERE key = $1)",
    )
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(items, people, "no user twice");
    // Users who matched only after the launch were reached, and some who matched at launch
    // had left before their page: the changes took effect.
    assert!(odd > 0 && even < counted, "{even} {odd} of {counted}");
    let s = app.status(&key);
    let sent = s["sent"].as_i64().unwrap();
    assert_eq!(sent, items, "{s}");
    assert!(sent > 0 && sent <= 3_000, "{s}");
    assert_eq!(s["total"], counted, "{s}");
    assert_eq!(s["pending"], 0, "{s}");
    assert_eq!(s["audience_change"], sent - counted, "{s}");
    let text = app.herald_ok(&["status", &key]);
    let shown: f64 = text
        .split_once("sent (")
        .and_then(|(_, rest)| rest.split_once("%)"))
        .map(|(pct, _)| pct.parse().unwrap())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(shown <= 100.0, "{text}");
}
