//! Users loaded the ways real user bases are: `herald users import` of CSV and NDJSON with
//! bad rows among the good, and the API's `PUT`, `GET` and batch, each checked against the
//! rows PostgreSQL holds afterwards.

use std::{fmt::Write as _, path::PathBuf};

use herald_tests::{TestApp, api::TOKEN, unique};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("herald-import-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every user as `(id, email, name, locale, timezone, segments, attrs)`, by id.
async fn rows(
    app: &TestApp,
) -> Vec<(
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<String>,
    Value,
)> {
    sqlx::query_as(
        "SELECT id, email, name, locale, timezone, segments, attrs FROM users ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(
        |(id, email, name, locale, tz, segs, attrs): (
            _,
            _,
            _,
            _,
            _,
            _,
            sqlx::types::Json<Value>,
        )| { (id, email, name, locale, tz, segs, attrs.0) },
    )
    .collect()
}

async fn types(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT name, type FROM user_attributes ORDER BY name")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn csv_and_ndjson_import_with_bad_rows_refused_by_line() {
    let app = TestApp::without_worker().await.unwrap();
    let csv = file(
        "users.csv",
        "id,email,name,locale,timezone,segments,plan,age,last_seen\n\
         1,ada@example.com,Ada,en_GB,Europe/London,beta vip,pro,36,2026-11-30T10:00:00+01:00\n\
         2,bob@example.com,\"Bob, \"\"the builder\"\"\",de-AT,Mars/Olympus,,free,41,2026-11-01\n\
         3,,Cleo,,UTC,,team,29,\n\
         4,dan@example.com,Dan,xx-!!,UTC,,pro,50,\n\
         five,eve@example.com,Eve,,UTC,,pro,1,\n\
         6,fay@example.com\n\
         7,gus@example.com,\"Gus\tTab\\Back\",fr,America/New_York,beta,free,,2026-10-01\n",
    );
    let out = app.herald(&[
        "users",
        "import",
        csv.to_str().unwrap(),
        "--types",
        "age=int",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("7 rows, 3 inserted, 0 updated, 0 unchanged, 4 refused"),
        "{stdout}"
    );
    for expected in [
        "line 3: timezone: \"Mars/Olympus\" is not an IANA time zone",
        "line 5: locale:",
        "line 6: id: \"five\" is not a user id",
        "line 7: row: has 2 fields",
        "attribute age: int (given)",
        "attribute last_seen: time (inferred",
        "attribute plan: text (inferred",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    assert_eq!(
        types(&app).await,
        [
            ("age".into(), "int".into()),
            ("last_seen".into(), "time".into()),
            ("plan".into(), "text".into())
        ]
    );
    let users = rows(&app).await;
    assert_eq!(users.len(), 3);
    assert_eq!(
        users[0],
        (
            1,
            Some("ada@example.com".into()),
            Some("Ada".into()),
            Some("en-GB".into()),
            Some("Europe/London".into()),
            vec!["beta".into(), "vip".into()],
            json!({"plan": "pro", "age": 36, "last_seen": "2026-11-30T09:00:00.000000Z"}),
        )
    );
    assert_eq!(users[1].1, None, "an empty e-mail cell is no address");
    assert_eq!(users[1].6, json!({"plan": "team", "age": 29}));
    assert_eq!(users[2].2.as_deref(), Some("Gus\tTab\\Back"));
    assert_eq!(
        users[2].6,
        json!({"plan": "free", "last_seen": "2026-10-01T00:00:00.000000Z"})
    );

    // NDJSON: fields a line gives replace, null clears, the rest stays; new ids are added.
    let ndjson = file(
        "more.ndjson",
        "{\"id\": 1, \"name\": \"Ada L.\", \"attrs\": {\"age\": 37, \"last_seen\": null, \"vip\": true}}\n\
         \n\
         {\"id\": 8, \"email\": \"hal@example.com\", \"segments\": [\"beta\"], \"attrs\": {\"plan\": \"pro\", \"score\": 2.5}}\n\
         {\"id\": 9, \"attrs\": {\"age\": \"old\"}}\n\
         [1, 2]\n\
         {\"id\": 3, \"email\": \"cleo@example.com\"}\n",
    );
    let out = app.herald(&["users", "import", ndjson.to_str().unwrap()]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("5 rows, 1 inserted, 2 updated, 0 unchanged, 2 refused"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 4: attrs.age: \"old\" is not an int"),
        "{stderr}"
    );
    assert!(stderr.contains("line 5: "), "{stderr}");
    let users = rows(&app).await;
    assert_eq!(users[0].2.as_deref(), Some("Ada L."));
    assert_eq!(
        users[0].3.as_deref(),
        Some("en-GB"),
        "a field not given stays"
    );
    assert_eq!(users[0].6, json!({"plan": "pro", "age": 37, "vip": true}));
    assert_eq!(users[1].1.as_deref(), Some("cleo@example.com"));
    assert_eq!(users[3].0, 8);
    assert_eq!(users[3].6, json!({"plan": "pro", "score": 2.5}));

    // The same file again changes nothing, and says so.
    let again = app.herald_ok(&["users", "import", ndjson.to_str().unwrap()]);
    assert!(
        again.contains("0 inserted, 0 updated, 3 unchanged, 2 refused"),
        "{again}"
    );

    // --strict: one bad row, and nothing is written (the attribute types neither).
    let before = (rows(&app).await, types(&app).await);
    let strict = file("strict.csv", "id,email,level\n10,a@b.c,3\n11,nobody,4\n");
    let out = app.herald(&["users", "import", strict.to_str().unwrap(), "--strict"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: email: \"nobody\" is not an e-mail address"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!((rows(&app).await, types(&app).await), before);

    // Whole-file mistakes are refused before any row.
    for (name, text, args, says) in [
        ("noid.csv", "email\na@b.c\n", vec![], "no id column"),
        (
            "twice.csv",
            "id,plan,plan\n1,a,b\n",
            vec![],
            "names \"plan\" twice",
        ),
        (
            "badname.csv",
            "id,Plan Type\n1,a\n",
            vec![],
            "attribute name",
        ),
        (
            "types.csv",
            "id,age\n1,2\n",
            vec!["--types", "age=text"],
            "is an int already",
        ),
        ("users.txt", "id\n1\n", vec![], "--format"),
    ] {
        let path = file(name, text);
        let mut all = vec!["users", "import", path.to_str().unwrap()];
        all.extend(args);
        let out = app.herald(&all);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
    }
    assert_eq!((rows(&app).await, types(&app).await), before);
}

/// Chunks are written two at a time: ids out of order and repeated across chunks still end
/// as the last line for each id says, counted once each.
#[tokio::test]
async fn a_large_shuffled_import_with_repeats_ends_as_its_last_lines() {
    let app = TestApp::without_worker().await.unwrap();
    const USERS: u64 = 120_000;
    let mut text = String::from("id,email,plan,n\n");
    let mut last = vec![0u64; USERS as usize + 1];
    // A permutation of 1..=USERS (a multiplicative step coprime with USERS), then 30,000
    // repeats of ids chosen the same way.
    for line in 0..USERS + 30_000 {
        let id = (line * 7_919) % USERS + 1;
        let _ = writeln!(text, "{id},u{id}@example.com,p{},{line}", line % 3);
        last[id as usize] = line;
    }
    let path = file("big.csv", &text);
    let out = app.herald_ok(&["users", "import", path.to_str().unwrap()]);
    assert!(
        out.contains(&format!(
            "{} rows, {USERS} inserted, 30000 updated",
            USERS + 30_000
        )),
        "{out}"
    );
    let stored: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, (attrs->>'n')::bigint FROM users ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len() as u64, USERS);
    for (id, n) in stored {
        assert_eq!(n as u64, last[id as usize], "user {id}");
    }
    // New users made afterwards take ids above the imported ones.
    app.herald_ok(&["users", "seed", "--count", "10"]);
    let top: i64 = sqlx::query_scalar("SELECT max(id) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(top as u64, USERS + 10);
}

#[tokio::test]
async fn the_api_puts_gets_and_batches_users_with_errors_at_their_field() {
    let app = TestApp::without_worker().await.unwrap();
    let api = app.api().await.unwrap();
    let put = |id: &str, body: Value| {
        let api = &api;
        let path = format!("/v1/users/{id}");
        async move { api.service(Method::PUT, &path, Some(body)).await }
    };

    let created = put("5", json!({"email": "ada@example.com", "timezone": "Europe/Berlin",
        "segments": ["beta"], "attrs": {"plan": "pro", "age": 30, "seen": "2026-01-01T12:00:00+01:00"}})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.headers["location"], "/v1/users/5");
    assert_eq!(
        created.body["attrs"],
        json!({"plan": "pro", "age": 30, "seen": "2026-01-01T11:00:00.000000Z"})
    );
    assert_eq!(types(&app).await.len(), 3);

    let got = api.get("/v1/users/5").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["email"], "ada@example.com");
    assert_eq!(got.body["segments"], json!(["beta"]));

    // A PUT replaces: what it does not give is cleared.
    let replaced = put("5", json!({"name": "Ada", "attrs": {"age": 31}})).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.body["email"], Value::Null);
    assert_eq!(replaced.body["segments"], json!([]));
    assert_eq!(replaced.body["attrs"], json!({"age": 31}));

    // Bad fields: 400 naming the field, and nothing changes.
    let before = rows(&app).await;
    for (id, body, field) in [
        ("5", json!({"timezone": "CEST"}), "timezone"),
        ("5", json!({"attrs": {"age": "x"}}), "attrs.age"),
        ("5", json!({"attrs": {"age": 1.5}}), "attrs.age"),
        ("5", json!({"id": 6}), "id"),
        ("5", json!({"email": "nobody"}), "email"),
        ("5", json!({"plan": "pro"}), "plan"),
        ("5", json!({"attrs": {"Bad Name": 1}}), "attrs.Bad Name"),
        ("5", json!([1]), ""),
    ] {
        let answer = put(id, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "invalid_input");
        if !field.is_empty() {
            assert_eq!(
                answer.body["error"]["field"], field,
                "{body}: {}",
                answer.text
            );
        }
    }
    for id in ["0", "-1", "x", "9007199254740992", "9223372036854775806"] {
        assert_eq!(
            put(id, json!({})).await.status,
            StatusCode::BAD_REQUEST,
            "{id}"
        );
    }
    assert_eq!(rows(&app).await, before);
    assert_eq!(api.get("/v1/users/77").await.status, StatusCode::NOT_FOUND);
    let anonymous = api.call(Method::GET, "/v1/users/5", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let user_token = herald_tests::api::user_token(5);
    let as_user = api
        .call(Method::GET, "/v1/users/5", Some(&user_token), None)
        .await;
    assert_eq!(
        as_user.status,
        StatusCode::FORBIDDEN,
        "a user's token is for its inbox only"
    );

    // A batch is one transaction: one bad user and none is written.
    let batch = |users: Value| {
        api.service(
            Method::POST,
            "/v1/users/batch",
            Some(json!({"users": users})),
        )
    };
    let bad =
        batch(json!([{"id": 20, "email": "a@b.c"}, {"id": 21}, {"id": 22, "email": "x"}])).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.body["error"]["field"], "users[2].email");
    // Past 2^53 - 1 an id would be read as another one in a browser, and the ledger could
    // not partition it: refused, and the table refuses it from anywhere else too.
    let huge = batch(json!([{"id": 9_223_372_036_854_775_806_i64}])).await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST, "{}", huge.text);
    assert_eq!(huge.body["error"]["field"], "users[0].id");
    let by_hand = sqlx::query("INSERT INTO users (id, email) VALUES (9007199254740992, 'x@y.z')")
        .execute(&app.pool)
        .await;
    assert!(by_hand.is_err(), "the table holds to the range");
    assert_eq!(rows(&app).await, before);
    // 1,000 users of a few hundred bytes each fit; 1,001 do not.
    let name = "n".repeat(300);
    let most: Vec<Value> = (1_000..2_000)
        .map(|i| json!({"id": i, "name": name}))
        .collect();
    let fits = batch(json!(most)).await;
    assert_eq!(fits.status, StatusCode::OK, "{}", fits.text);
    assert_eq!(fits.body["inserted"], 1_000);
    sqlx::query("DELETE FROM users WHERE id >= 1000")
        .execute(&app.pool)
        .await
        .unwrap();
    let too_many: Vec<Value> = (1..=1_001).map(|i| json!({"id": i})).collect();
    let big = batch(json!(too_many)).await;
    assert_eq!(big.status, StatusCode::BAD_REQUEST);
    assert_eq!(big.body["error"]["field"], "users");

    let good = batch(json!([{"id": 5, "name": "Ada", "attrs": {"age": 31}},
        {"id": 20, "attrs": {"vip": true}}, {"id": 21, "locale": "pt-BR"}]))
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    assert_eq!(
        good.body,
        json!({"inserted": 2, "updated": 0, "unchanged": 1})
    );
    let _ = TOKEN;
}

/// Imports reach PostgreSQL in its binary form: a creation time is kept to the microsecond
/// (before its epoch of 2000 too), and segments whole, on a new user and on an update.
#[tokio::test]
async fn times_and_segments_arrive_exactly() {
    let app = TestApp::without_worker().await.unwrap();
    let new = file(
        "new.ndjson",
        "{\"id\": 1, \"created_at\": \"2020-02-29T23:59:59.123456+02:00\"}\n\
         {\"id\": 2, \"segments\": []}\n",
    );
    app.herald_ok(&["users", "import", new.to_str().unwrap()]);
    let update = file(
        "update.ndjson",
        "{\"id\": 2, \"created_at\": \"1999-12-31T23:59:59.999999Z\", \"segments\": [\"a\", \"b-c\"]}\n",
    );
    app.herald_ok(&["users", "import", update.to_str().unwrap()]);
    let got: Vec<(i64, String, Vec<String>)> = sqlx::query_as(
        "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), segments
         FROM users ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        got,
        vec![
            (1, "2020-02-29 21:59:59.123456".into(), vec![]),
            (
                2,
                "1999-12-31 23:59:59.999999".into(),
                vec!["a".into(), "b-c".into()]
            ),
        ]
    );
}

/// A file of ids alone adds users with nothing but their ids, and adds each once.
#[tokio::test]
async fn a_file_of_ids_alone_imports() {
    let app = TestApp::without_worker().await.unwrap();
    let first = file("ids.csv", "id\n1\n2\n");
    let out = app.herald_ok(&["users", "import", first.to_str().unwrap()]);
    assert!(
        out.contains("2 rows, 2 inserted, 0 updated, 0 unchanged"),
        "{out}"
    );
    let again = file("ids.csv", "id\n2\n3\n");
    let out = app.herald_ok(&["users", "import", again.to_str().unwrap()]);
    assert!(
        out.contains("2 rows, 1 inserted, 0 updated, 1 unchanged"),
        "{out}"
    );
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(ids, [1, 2, 3]);
}
