//! One launch request for every front end: the same bad launch refused by the CLI, the API
//! and the dashboard's form, each at its own name for the field, with nothing written;
//! saved audiences; and the dry run's counts, each checked against SQL of its own.

use std::time::Duration;

use herald_tests::{LONG, TestApp, stderr, unique};
use herald_wire::CampaignStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn campaigns(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn independent(app: &TestApp, condition: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {condition}"))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_same_bad_launch_is_refused_at_its_field_by_cli_api_and_form() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("fields");
    app.seed(50, &segment);
    let api = app.api().await.unwrap();
    let unknown = json!({"all": [{"segment": segment}, {"attr": "tier", "eq": "gold"}]});
    // (what is wrong, CLI flags, API body fields, form inputs, then where each front end
    // must show it: the CLI's flag, the API's field and status, the form's input).
    struct Case {
        cli: Vec<String>,
        api: Value,
        form: Vec<(&'static str, String)>,
        flag: &'static str,
        field: &'static str,
        status: StatusCode,
        input: &'static str,
        says: &'static str,
    }
    let cases = [
        Case {
            cli: vec!["--send-at".into(), "next tuesday".into()],
            api: json!({"send_at": "next tuesday"}),
            form: vec![("#send_at", "next tuesday".into())],
            flag: "--send-at: ",
            field: "send_at",
            status: StatusCode::BAD_REQUEST,
            input: "send_at",
            says: "RFC 3339",
        },
        Case {
            cli: vec!["--audience".into(), unknown.to_string()],
            api: json!({"audience": unknown}),
            form: vec![("#audience", unknown.to_string())],
            flag: "--audience at all[1]: ",
            field: "audience.all[1]",
            status: StatusCode::BAD_REQUEST,
            input: "audience",
            says: "\"tier\"",
        },
        Case {
            cli: vec![
                "--segment".into(),
                segment.clone(),
                "--audience".into(),
                unknown.to_string(),
            ],
            api: json!({"segment": segment, "audience": unknown}),
            form: vec![
                ("#segment", segment.clone()),
                ("#audience", unknown.to_string()),
            ],
            flag: "--audience: ",
            field: "audience",
            status: StatusCode::BAD_REQUEST,
            input: "audience",
            says: "give one of",
        },
        Case {
            cli: vec!["--audience-name".into(), "nobody-saved-this".into()],
            api: json!({"audience_name": "nobody-saved-this"}),
            form: vec![("#audience_name", "nobody-saved-this".into())],
            flag: "--audience-name: ",
            field: "audience_name",
            status: StatusCode::UNPROCESSABLE_ENTITY,
            input: "audience_name",
            says: "no audience is saved",
        },
        Case {
            cli: vec!["--segment".into(), "nobody-carries-this".into()],
            api: json!({"segment": "nobody-carries-this"}),
            form: vec![("#segment", "nobody-carries-this".into())],
            flag: "--segment: ",
            field: "segment",
            status: StatusCode::UNPROCESSABLE_ENTITY,
            input: "segment",
            says: "audience is empty",
        },
        // Templates (docs/templates.md): their syntax, and a name no user has.
        Case {
            cli: vec!["--body".into(), "Hi\n{{ user.name ".into()],
            api: json!({"body": "Hi\n{{ user.name "}),
            form: vec![("#body", "Hi\n{{ user.name ".into())],
            flag: "--body: line 2, column ",
            field: "body",
            status: StatusCode::BAD_REQUEST,
            input: "body",
            says: "syntax error",
        },
        Case {
            cli: vec!["--title".into(), "Hi {{ user.attrs.tier }}".into()],
            api: json!({"title": "Hi {{ user.attrs.tier }}"}),
            form: vec![("#title", "Hi {{ user.attrs.tier }}".into())],
            flag: "--title: line 1, column 7: ",
            field: "title",
            status: StatusCode::BAD_REQUEST,
            input: "title",
            says: "no user has an attribute \"tier\"",
        },
    ];

    let browser = crate::dashboard::signed_in(&api, 1280, 900).await;

    for case in &cases {
        let mut args = vec!["launch"];
        for (flag, default) in [("--title", "Hello"), ("--body", "World")] {
            if !case.cli.iter().any(|a| a == flag) {
                args.extend([flag, default]);
            }
        }
        args.extend(case.cli.iter().map(String::as_str));
        let out = app.herald(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("herald: {}", case.flag)) && err.contains(case.says),
            "{args:?}: {err}"
        );

        let mut body = json!({"title": "Hello", "body": "World"});
        for (k, v) in case.api.as_object().unwrap() {
            body[k] = v.clone();
        }
        for path in ["/v1/campaigns", "/v1/dry-run"] {
            let answer = api.post(path, body.clone()).await;
            assert_eq!(answer.status, case.status, "{path} {body}: {}", answer.text);
            assert_eq!(answer.body["error"]["field"], case.field, "{}", answer.text);
            assert!(
                answer.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(case.says),
                "{}",
                answer.text
            );
        }

        browser.open("/launch").await.unwrap();
        browser.wait_for("#title", WAIT).await.unwrap();
        browser.fill("#title", "Hello").await.unwrap();
        browser.fill("#body", "World").await.unwrap();
        for (input, value) in &case.form {
            browser.fill(input, value).await.unwrap();
        }
        browser.click("button[value=review]").await.unwrap();
        let error = format!("#{}-error", case.input);
        let shown = browser
            .wait_text(&error, WAIT, |t| !t.is_empty())
            .await
            .unwrap();
        assert!(shown.contains(case.says), "{error}: {shown}");
        assert_eq!(
            browser
                .property(&format!("#{}", case.input), "ariaInvalid")
                .await
                .unwrap(),
            "true"
        );
    }
    assert_eq!(campaigns(&app).await, 0, "a refused launch writes nothing");
}

#[tokio::test]
async fn saved_audiences_and_the_dry_run_count_what_sql_counts() {
    let app = TestApp::spawn().await.unwrap();
    app.herald_ok(&["users", "seed", "--count", "3000", "--attrs"]);
    let api = app.api().await.unwrap();
    let name = unique("pros");
    // plan is "pro" when id % 3 = 1, age is 18 + id % 60 (herald users seed --attrs).
    let filter = json!({"any": [
        {"attr": "plan", "eq": "pro"},
        {"attr": "age", "gte": 70},
        {"attr": "country", "in": ["AT", "CH"]},
    ]});
    let sql = "(attrs->>'plan' = 'pro' OR (attrs->>'age')::int >= 70
                OR attrs->>'country' IN ('AT', 'CH'))";
    let members = independent(&app, sql).await;
    let clause_counts = [
        independent(&app, "attrs->>'plan' = 'pro'").await,
        independent(&app, "(attrs->>'age')::int >= 70").await,
        independent(&app, "attrs->>'country' IN ('AT', 'CH')").await,
    ];
    assert!(members > 1_000 && members < 3_000, "{members}");
    let first: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM users WHERE {sql} ORDER BY id LIMIT 10"
    ))
    .fetch_all(&app.pool)
    .await
    .unwrap();

    let saved = app.herald_ok(&["audience", "save", &name, &filter.to_string()]);
    assert!(
        saved.contains(&format!("saved {name}: {members} users")),
        "{saved}"
    );
    for (args, says) in [
        (vec!["audience", "save", "bad name", "{}"], "NAME: "),
        (
            vec!["audience", "save", "x", r#"{"attr": "tier", "eq": 1}"#],
            "FILTER: ",
        ),
        (vec!["audience", "delete", "never-saved"], "NAME: "),
    ] {
        let out = app.herald(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with(&format!("herald: {says}")),
            "{}",
            stderr(&out)
        );
    }

    // The dry run: the count, each clause's, and the first members, from the CLI and the API.
    let dry = app.herald_ok(&[
        "launch",
        "--dry-run",
        "--title",
        "t",
        "--body",
        "b",
        "--audience-name",
        &name,
    ]);
    assert!(dry.starts_with(&format!("{members} recipients")), "{dry}");
    for n in clause_counts {
        assert!(dry.contains(&format!(" {n}  ")), "{dry}");
    }
    let ids: Vec<String> = first.iter().map(i64::to_string).collect();
    assert!(dry.contains(&ids.join(", ")), "{dry}");
    let answer = api
        .post(
            "/v1/dry-run",
            json!({"title": "t", "body": "b", "audience_name": name}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["recipients"], members);
    assert_eq!(answer.body["sample"], json!(first));
    let clauses = answer.body["clauses"].as_array().unwrap();
    assert_eq!(clauses.len(), 3);
    for (i, clause) in clauses.iter().enumerate() {
        assert_eq!(clause["clause"], filter["any"][i]);
        assert_eq!(clause["recipients"], clause_counts[i]);
    }
    assert_eq!(campaigns(&app).await, 0, "a dry run writes nothing");

    // Launched by name: the campaign keeps the filter; saving another changes nothing of it.
    let launched = api
        .post(
            "/v1/campaigns",
            json!({"title": "t", "body": "b", "audience_name": name}),
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text);
    assert_eq!(launched.body["total"], members);
    let key = launched.body["key"].as_str().unwrap().to_owned();
    app.herald_ok(&[
        "audience",
        "save",
        &name,
        r#"{"attr": "plan", "eq": "team"}"#,
    ]);
    let listed: Value =
        serde_json::from_str(&app.herald_ok(&["audience", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["name"], name.as_str());
    assert_eq!(listed[0]["filter"], json!({"attr": "plan", "eq": "team"}));
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let (items, outside): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(*) FILTER (WHERE NOT {sql})
         FROM message_items i JOIN messages m ON m.id = i.message_id
         JOIN users ON users.id = i.user_id WHERE m.key = $1"
    ))
    .bind(&key)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((items, outside), (members, 0));
    app.herald_ok(&["audience", "delete", &name]);
    assert_eq!(app.herald_ok(&["audience", "list", "--json"]).trim(), "[]");
    // The same launch by name again (an API retry with its key) is the same campaign, though
    // the name now holds nothing: it compares with the filter copied at launch.
    let again = api
        .post(
            "/v1/campaigns",
            json!({"key": key, "title": "t", "body": "b", "audience_name": name}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["total"], members);
}

/// Two launches of one key at once (a double click on Launch, a client retrying on a short
/// timeout) are one campaign. One API reaches Temporal 150 ms away and the other next to
/// it, so the second often finds the first's new row and starts the workflow while the
/// first's start is still on its way; the first must then find its own campaign running,
/// not delete the row of a campaign that runs. Half the keys are scheduled: their row is
/// what the workflow sends from when the time comes.
#[tokio::test]
async fn racing_launches_of_one_key_are_one_campaign() {
    use herald_tests::{proxy::CutProxy, temporal_address};
    const PAIRS: usize = 200;
    const AT_ONCE: usize = 20;
    let app = TestApp::spawn().await.unwrap();
    app.seed(3, "race");
    let proxy = CutProxy::with_delay(&temporal_address(), Duration::from_millis(75));
    let through = format!("127.0.0.1:{}", proxy.port());
    let far = app
        .api_with_env(&[("TEMPORAL_ADDRESS", &through)])
        .await
        .unwrap();
    let near = app.api().await.unwrap();
    let send_at = (chrono::Utc::now() + chrono::Duration::seconds(40)).to_rfc3339();
    let prefix = unique("race");
    let keys: Vec<String> = (0..PAIRS).map(|i| format!("{prefix}-{i}")).collect();
    for chunk in keys.chunks(AT_ONCE) {
        let pairs = chunk.iter().enumerate().map(|(i, key)| {
            let mut body = json!({"key": key, "title": "t", "body": "b", "segment": "race"});
            if i % 2 == 1 {
                body["send_at"] = json!(send_at);
            }
            let (far, near) = (&far, &near);
            async move {
                let (a, b) = tokio::join!(
                    far.post("/v1/campaigns", body.clone()),
                    near.post("/v1/campaigns", body)
                );
                (key, a, b)
            }
        });
        for (key, a, b) in futures::future::join_all(pairs).await {
            for answer in [&a, &b] {
                assert!(answer.status.is_success(), "{key}: {answer:?}");
                assert_eq!(answer.body["key"], key.as_str(), "{key}: {answer:?}");
            }
        }
    }
    assert_eq!(campaigns(&app).await, PAIRS as i64, "a row per key");
    // Every campaign runs, the scheduled ones too: each reaches its 3 recipients once.
    for key in &keys {
        app.wait_status(key, CampaignStatus::Completed, Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM message_items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(items, 3 * PAIRS as i64);
}
