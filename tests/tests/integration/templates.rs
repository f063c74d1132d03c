//! Templates over imported users, checked at the receivers of every channel: each recipient
//! gets their own rendering; one whose data does not fit fails alone (class `render`) and is
//! sent by retry-failed once their data is fixed; errors in a template are refused at launch
//! at their field, line and column, by the CLI and the API, and change nothing.

use herald_tests::{
    LONG, TestApp,
    api::user_token,
    sinks::{SmtpSink, WEBHOOK_SECRET, WebhookSink},
    stderr, unique,
};
use herald_wire::CampaignStatus;
use reqwest::{Method, StatusCode};
use serde_json::json;

const TITLE: &str = "Hi {{ user.name | default(\"there\") }}";
/// Age + 1 fails for a user without an age: that user's rendering, not the campaign's.
const BODY: &str = "{% if user.attrs.plan == \"pro\" %}\nThanks for going pro.\n{% endif %}\nNext year you are {{ user.attrs.age + 1 }}. ({{ campaign.key }}, #{{ user.id }})";

/// Users 1–4 in `segment`: Ada (pro, 36), a nameless free user of 20, a name with markup
/// and no age, and Zed (free, 50).
fn import_users(app: &TestApp, segment: &str) {
    let dir = std::env::temp_dir().join(unique("herald-tpl-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.ndjson");
    let line = |id: i64, name: Option<&str>, attrs: serde_json::Value| {
        let mut user = json!({"id": id, "email": format!("u{id}@example.com"),
                              "segments": [segment], "attrs": attrs});
        if let Some(name) = name {
            user["name"] = json!(name);
        }
        user.to_string()
    };
    let text = [
        line(1, Some("Ada"), json!({"plan": "pro", "age": 36})),
        line(2, None, json!({"plan": "free", "age": 20})),
        line(3, Some("<Tom & Jerry>"), json!({"plan": "pro"})),
        line(4, Some("Zed"), json!({"plan": "free", "age": 50})),
    ]
    .join("\n");
    std::fs::write(&path, text).unwrap();
    app.herald_ok(&["users", "import", path.to_str().unwrap()]);
}

fn expected_body(key: &str, id: i64, pro: bool, age: i64) -> String {
    let thanks = if pro { "Thanks for going pro.\n" } else { "" };
    format!("{thanks}Next year you are {}. ({key}, #{id})", age + 1)
}

#[tokio::test]
async fn each_recipient_gets_their_rendering_and_a_misfit_fails_alone() {
    let relay = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_with_env(&[("HERALD_SMTP_URL", &relay.url())])
        .await
        .unwrap();
    let segment = unique("tpl");
    import_users(&app, &segment);
    let sink = WebhookSink::start("127.0.0.1:0", WEBHOOK_SECRET)
        .await
        .unwrap();

    // Webhooks: each payload rendered for its recipient, escaped for apps.
    let hook = app
        .campaign(&segment)
        .content(TITLE, BODY)
        .webhook(&sink.url())
        .option("auto-pause", "0")
        .launch();
    app.wait_status(&hook, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    app.check_invariants(&hook).await;
    let got = |user: i64| sink.received(&format!("msg_{hook}_{user}")).unwrap().body;
    assert_eq!(got(1)["title"], "Hi Ada");
    assert_eq!(got(1)["body"], expected_body(&hook, 1, true, 36));
    assert_eq!(got(2)["title"], "Hi there");
    assert_eq!(got(2)["body"], expected_body(&hook, 2, false, 20));
    assert_eq!(got(4)["title"], "Hi Zed");
    assert!(
        sink.received(&format!("msg_{hook}_3")).is_none(),
        "a recipient whose rendering failed is not sent"
    );
    let s = app.status(&hook);
    assert_eq!(
        (s["sent"].as_i64(), s["failed"].as_i64()),
        (Some(3), Some(1)),
        "{s}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&app.herald_ok(&["report", &hook, "--json", "--failed", "5"]))
            .unwrap();
    assert_eq!(report["outcomes"][1]["class"], "render", "{report}");
    let error = report["failed"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("body: invalid operation") && error.contains("undefined"),
        "{report}"
    );

    // The data is fixed: retry-failed renders it anew, with the id the delivery had.
    let dir = std::env::temp_dir().join(unique("herald-tpl-fix-"));
    std::fs::create_dir_all(&dir).unwrap();
    let fix = dir.join("fix.ndjson");
    std::fs::write(
        &fix,
        "{\"id\": 3, \"attrs\": {\"plan\": \"pro\", \"age\": 9}}\n",
    )
    .unwrap();
    app.herald_ok(&["users", "import", fix.to_str().unwrap()]);
    app.herald_ok(&["retry-failed", &hook]);
    app.wait_status(&hook, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    assert_eq!(got(3)["title"], "Hi &lt;Tom &amp; Jerry&gt;");
    assert_eq!(got(3)["body"], expected_body(&hook, 3, true, 9));
    assert_eq!(sink.duplicates(), 0);

    // E-mail: the subject and text are plain text, not escaped.
    let mail = app
        .campaign(&segment)
        .content(TITLE, BODY)
        .option("channel", "email")
        .launch();
    app.wait_status(&mail, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    let mails = relay.mails();
    let to = |user: i64| {
        mails
            .iter()
            .find(|m| m.to[0].contains(&format!("u{user}@")))
            .unwrap_or_else(|| panic!("no mail to user {user}"))
    };
    assert_eq!(to(3).header("Subject"), Some("Hi <Tom & Jerry>"));
    assert!(
        to(3).data.contains("Next year you are 10."),
        "{}",
        to(3).data
    );
    assert_eq!(to(2).header("Subject"), Some("Hi there"));
    assert_eq!(mails.len(), 4);

    // The inbox renders at read time, for the user as they are now.
    let inbox = app
        .campaign(&segment)
        .content(
            TITLE,
            "{{ user.attrs.plan | upper }} since {{ user.attrs.age }}",
        )
        .launch();
    app.completes_exactly_once(&inbox, 4).await;
    let api = app.api().await.unwrap();
    let read = |user: i64| {
        let api = &api;
        async move {
            let token = user_token(user);
            let a = api
                .call(
                    Method::GET,
                    &format!("/v1/users/{user}/inbox"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.body["items"][0].clone()
        }
    };
    let item = read(1).await;
    assert_eq!(
        (item["title"].as_str(), item["body"].as_str()),
        (Some("Hi Ada"), Some("PRO since 36"))
    );
    assert!(item.get("render_error").is_none(), "{item}");
    std::fs::write(
        &fix,
        "{\"id\": 1, \"name\": \"Ada L.\", \"attrs\": {\"plan\": \"team\"}}\n",
    )
    .unwrap();
    app.herald_ok(&["users", "import", fix.to_str().unwrap()]);
    let item = read(1).await;
    assert_eq!(
        (item["title"].as_str(), item["body"].as_str()),
        (Some("Hi Ada L."), Some("TEAM since 36"))
    );
}

#[tokio::test]
async fn template_errors_are_refused_at_their_field_and_launch_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let segment = unique("tple");
    import_users(&app, &segment);
    let refused = |title: &str, body: &str| {
        let out = app.campaign(&segment).content(title, body).run();
        assert!(!out.status.success(), "launched {title:?} / {body:?}");
        stderr(&out)
    };
    let e = refused("Hi", "Line one\nHi {{ user.name ");
    assert!(e.contains("--body: line 2, column"), "{e}");
    assert!(e.contains("syntax error"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    let e = refused("Hi {{ user.attrs.plann }}", "b");
    assert!(
        e.contains("--title: line 1, column 7: no user has an attribute \"plann\""),
        "{e}"
    );
    let e = refused("Hi", "{{ user.name | shout }}");
    assert!(
        e.contains("body: line 1, column") && e.contains("no filter is called \"shout\""),
        "{e}"
    );
    let e = refused("Hi {{ account.name }}", "b");
    assert!(e.contains("\"account\" is not a variable here"), "{e}");
    // The dry run refuses it alike.
    let out = app.herald(&[
        "launch",
        "--dry-run",
        "--title",
        "{{ user.nope }}",
        "--body",
        "b",
        "--segment",
        &segment,
    ]);
    assert!(
        stderr(&out).contains("a user has no field \"nope\""),
        "{}",
        stderr(&out)
    );

    // Over HTTP: a 400 naming the field.
    let api = app.api().await.unwrap();
    let a = api
        .post(
            "/v1/campaigns",
            json!({"title": "Hi", "body": "{% for x in %}", "segment": segment}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["error"]["field"], "body", "{}", a.text);
    assert!(a.text.contains("line 1, column"), "{}", a.text);
    let a = api
        .post(
            "/v1/campaigns",
            json!({"title": "{{ user.attrs.ghost }}", "body": "b", "segment": segment}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["error"]["field"], "title", "{}", a.text);

    let launched: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(launched, 0, "nothing was launched");
}

/// A page reads of its users only what the campaign's templates read; each part read is
/// what the whole user holds, whatever the fields and attributes asked for.
#[tokio::test]
async fn a_page_reads_what_the_templates_read_and_nothing_else() {
    use herald_templates::{AttrsRead, UserFields};
    let app = TestApp::without_worker().await.unwrap();
    import_users(&app, &unique("tpl"));
    let ids = [1, 2, 3, 4, 99];
    let mut conn = app.pool.acquire().await.unwrap();
    let all = herald_store::users::profiles(&mut conn, &ids, &UserFields::all())
        .await
        .unwrap();
    assert_eq!(all.iter().map(|p| p.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(all[0].attrs["age"], 36);
    let named = |names: &[&str]| AttrsRead::Named(names.iter().map(|n| n.to_string()).collect());
    for fields in [
        UserFields::default(),
        UserFields {
            name: true,
            attrs: named(&["age", "plan"]),
            ..Default::default()
        },
        UserFields {
            locale: true,
            timezone: true,
            segments: true,
            // One no user has, and one no attribute could be called.
            attrs: named(&["ghost", "it's"]),
            ..Default::default()
        },
        UserFields {
            attrs: AttrsRead::All,
            ..Default::default()
        },
    ] {
        let got = herald_store::users::profiles(&mut conn, &ids, &fields)
            .await
            .unwrap();
        assert_eq!(got.len(), all.len());
        for (got, whole) in got.iter().zip(&all) {
            assert_eq!((got.id, &got.email), (whole.id, &whole.email));
            let part = |on: bool, v: &Option<String>| v.clone().filter(|_| on);
            assert_eq!(got.name, part(fields.name, &whole.name), "{fields:?}");
            assert_eq!(got.locale, part(fields.locale, &whole.locale));
            assert_eq!(got.timezone, part(fields.timezone, &whole.timezone));
            let segments = if fields.segments {
                whole.segments.clone()
            } else {
                vec![]
            };
            assert_eq!(got.segments, segments);
            let attrs: serde_json::Map<_, _> = whole
                .attrs
                .iter()
                .filter(|(k, _)| match &fields.attrs {
                    AttrsRead::All => true,
                    AttrsRead::None => false,
                    AttrsRead::Named(names) => names.contains(k),
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(got.attrs, attrs, "{fields:?}");
        }
    }
}
