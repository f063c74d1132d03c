//! Webhooks where production differs from the benchmark's loopback: destinations the policy
//! refuses (at launch, and at connect time whatever DNS says), receivers that answer without
//! end, signatures checked by the Standard Webhooks library itself, and a pause that holds at
//! the receiver with the database far away.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use herald_tests::{
    LONG, TestApp,
    proxy::CutProxy,
    sinks::{
        SmtpSink, WebhookSink,
        webhook::{Faults, LongBody},
    },
    stderr, unique, wait_until,
};
use herald_wire::CampaignStatus;
use serde_json::json;

async fn sink_with(secret: &str) -> WebhookSink {
    WebhookSink::start("127.0.0.1:0", secret).await.unwrap()
}

async fn messages(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn launch_args<'a>(segment: &'a str, url: &'a str) -> Vec<&'a str> {
    vec![
        "launch",
        "--title",
        "T",
        "--body",
        "B",
        "--segment",
        segment,
        "--channel",
        "webhook",
        "--webhook-url",
        url,
    ]
}

#[tokio::test]
async fn malformed_and_internal_destinations_are_refused_at_launch() {
    let app = TestApp::without_worker().await.unwrap();
    let segment = unique("dst");
    app.seed(5, &segment);
    let db_port = url::Url::parse(&app.database_url)
        .unwrap()
        .port()
        .unwrap_or(5432);
    let own_db = format!("http://127.0.0.1:{db_port}/");
    let cases: [(&str, &str, &str); 9] = [
        ("loopback", "http://example.com:abc/", "is not a URL"),
        ("loopback", "http://[::1", "is not a URL"),
        ("loopback", "http:///hook", "has no host"),
        ("public", "http://127.0.0.1:9/hook", "a loopback address"),
        ("public", "http://[::1]:9/hook", "a loopback address"),
        ("public", "http://localhost:9/hook", "a loopback address"),
        ("public", "http://169.254.169.254/latest", "link-local"),
        ("public", "http://10.1.2.3/hook", "a private address"),
        ("loopback", &own_db, "Herald's own services"),
    ];
    for (allow, url, expected) in cases {
        let out = app.herald_with_env(
            &launch_args(&segment, url),
            &[("HERALD_WEBHOOK_ALLOW", allow)],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{url} under {allow}: {err}");
        assert!(err.contains(expected), "{url} under {allow}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(messages(&app).await, 0, "nothing was launched");

    // The API refuses the same with a 400 naming the field.
    let api = app
        .api_with_env(&[("HERALD_WEBHOOK_ALLOW", "public")])
        .await
        .unwrap();
    for url in ["http://127.0.0.1:9/hook", "http://example.com:abc/"] {
        let answer = api
            .post(
                "/v1/campaigns",
                json!({"title": "T", "body": "B", "segment": segment,
                       "channel": "webhook", "webhook_url": url}),
            )
            .await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["field"], "webhook_url",
            "{}",
            answer.text
        );
    }
    assert_eq!(messages(&app).await, 0, "nothing was launched");
}

/// Launched where loopback was allowed, sent by a worker that allows only public addresses:
/// every send fails for good with the class `forbidden`, by address and by a name resolved at
/// connect time, and the receiver hears nothing.
#[tokio::test]
async fn a_worker_refuses_at_connect_time_what_its_policy_forbids() {
    let mut app = TestApp::without_worker().await.unwrap();
    app.start_worker_with_env(&[("HERALD_WEBHOOK_ALLOW", "public")])
        .unwrap();
    let sink = sink_with(herald_tests::sinks::WEBHOOK_SECRET).await;
    let port = sink.addr.port();
    let segment = unique("fb");
    app.seed(6, &segment);
    let mut keys = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        keys.push(app.campaign(&segment).webhook(&url).launch());
    }
    for key in &keys {
        wait_until(LONG, || async {
            let s = app.status(key);
            s["pending"] == 0 && s["failed"] == 6
        })
        .await
        .unwrap_or_else(|_| panic!("{key}: {}", app.status(key)));
        let classes: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT DISTINCT i.error_class, i.error FROM message_items i
             JOIN messages m ON m.id = i.message_id WHERE m.key = $1",
        )
        .bind(key)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert_eq!(classes.len(), 1, "{classes:?}");
        assert_eq!(classes[0].0.as_deref(), Some("forbidden"), "{classes:?}");
        let error = classes[0].1.clone().unwrap_or_default();
        assert!(error.contains("HERALD_WEBHOOK_ALLOW"), "{error}");
        let attempts: i16 = sqlx::query_scalar(
            "SELECT max(attempts) FROM message_items i JOIN messages m ON m.id = i.message_id
             WHERE m.key = $1",
        )
        .bind(key)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(attempts, 1, "a forbidden destination is not tried again");
    }
    assert_eq!(sink.requests(), 0, "the receiver heard nothing");
}

/// A receiver that answers with a 200 MB body, or one without end: the answer is read a
/// few KiB and dropped, every delivery is recorded sent, and the worker stays small.
#[tokio::test]
async fn answers_without_end_are_cut_off_and_the_worker_stays_small() {
    let app = TestApp::spawn().await.unwrap();
    let sink = sink_with(herald_tests::sinks::WEBHOOK_SECRET).await;
    for (n, long) in [LongBody::Endless, LongBody::Huge].into_iter().enumerate() {
        sink.set_faults(Faults {
            long_body: Some(long),
            ..Faults::default()
        });
        let segment = unique(&format!("lb{n}"));
        app.seed(400, &segment);
        let key = app
            .campaign(&segment)
            .webhook(&sink.url())
            .lanes(2)
            .launch();
        app.wait_status(&key, CampaignStatus::Completed, LONG)
            .await
            .unwrap();
        app.assert_exactly_once(&key, 400).await;
        assert_eq!(app.status(&key)["sent"], 400, "{long:?}");
    }
    let peak = app.worker_peak_rss_kib().expect("the worker's peak memory");
    eprintln!(
        "worker peak RSS after 800 endless answers: {} MiB",
        peak / 1024
    );
    assert!(
        peak < 128 * 1024,
        "the worker reached {} MiB reading answers",
        peak / 1024
    );
}

/// Signatures as the Standard Webhooks library from PyPI checks them, for secrets of the
/// shortest and the longest length Herald takes.
#[tokio::test]
async fn the_standard_webhooks_library_verifies_every_signature() {
    let python = herald_tests::tool("standardwebhooks");
    for bytes in [24usize, 64] {
        let key: Vec<u8> = (0..bytes).map(|i| (i * 7 + 3) as u8).collect();
        let secret = format!("whsec_{}", STANDARD.encode(&key));
        let app = TestApp::spawn_with_env(&[("HERALD_WEBHOOK_SECRET", &secret)])
            .await
            .unwrap();
        let sink = sink_with(&secret).await;
        let segment = unique("sw");
        app.seed(20, &segment);
        let key = app.campaign(&segment).webhook(&sink.url()).launch();
        app.wait_status(&key, CampaignStatus::Completed, LONG)
            .await
            .unwrap();
        let signed = sink.signed();
        assert_eq!(signed.len(), 20);
        let requests: Vec<_> = signed
            .iter()
            .map(|s| {
                json!({"id": s.id, "timestamp": s.timestamp, "signature": s.signature,
                       "body": String::from_utf8_lossy(&s.body)})
            })
            .collect();
        let file = std::env::temp_dir().join(format!("{}.signed.json", app.db_name));
        std::fs::write(&file, serde_json::to_vec(&requests).unwrap()).unwrap();
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(VERIFY)
            .arg(&secret)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{bytes}-byte secret: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20 verified");
    }
}

/// The check, with the library's own `Webhook.verify` (which raises on any mismatch).
const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
hook = Webhook(sys.argv[1])
requests = json.load(open(sys.argv[2]))
for r in requests:
    hook.verify(r["body"], {"webhook-id": r["id"], "webhook-timestamp": r["timestamp"],
                            "webhook-signature": r["signature"]})
print(f"{len(requests)} verified")
"#;

/// A worker that reaches PostgreSQL through a proxy, each byte held `delay` each way; the
/// returned proxy (kept alive by the test) can also cut it off.
fn worker_through_proxy(app: &mut TestApp, delay: Duration) -> CutProxy {
    let db = url::Url::parse(&app.database_url).unwrap();
    let target = format!("{}:{}", db.host_str().unwrap(), db.port().unwrap_or(5432));
    let proxy = CutProxy::with_delay(&target, delay);
    let mut through = db.clone();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.port())).unwrap();
    app.start_worker_with_env(&[("DATABASE_URL", through.as_str())])
        .unwrap();
    proxy
}

/// 100 ms each way: a 200 ms round trip to the database.
const FAR: Duration = Duration::from_millis(100);

/// Pause a campaign once `reached` says enough arrived, and check at the receiver's clock
/// that nothing new arrives after `herald pause` returned (`after` counts what did).
async fn pause_holds(
    app: &TestApp,
    key: &str,
    audience: usize,
    reached: impl Fn() -> usize,
    after: impl Fn(Instant) -> usize,
) {
    wait_until(LONG, || async { reached() >= 300 })
        .await
        .unwrap();
    let out = app.herald(&["pause", key]);
    let returned = Instant::now();
    assert!(out.status.success(), "{}", stderr(&out));
    let reached_then = reached();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        after(returned),
        0,
        "sends reached the receiver after `herald pause` returned ({reached_then} by then)"
    );
    assert!(reached_then < audience, "the pause came too late to test");
    app.herald_ok(&["resume", key]);
    app.wait_status(key, CampaignStatus::Completed, Duration::from_secs(300))
        .await
        .unwrap();
    app.assert_exactly_once(key, audience as i64).await;
}

/// With the database far from the worker, once `herald pause` returns the receiver sees no
/// new request; resumed, the campaign ends with everyone reached once.
#[tokio::test]
async fn a_webhook_pause_holds_at_the_receiver_with_the_database_far_away() {
    let mut app = TestApp::without_worker().await.unwrap();
    let _proxy = worker_through_proxy(&mut app, FAR);
    let sink = sink_with(herald_tests::sinks::WEBHOOK_SECRET).await;
    const AUDIENCE: usize = 6_000;
    let segment = unique("farw");
    app.seed(AUDIENCE as u32, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .lanes(4)
        .launch();
    pause_holds(
        &app,
        &key,
        AUDIENCE,
        || sink.delivered(),
        |at| sink.requests_after(at),
    )
    .await;
    assert_eq!(sink.delivered(), AUDIENCE);
    assert_eq!(sink.duplicates(), 0, "no fault, no duplicate");
}

#[tokio::test]
async fn an_email_pause_holds_at_the_relay_with_the_database_far_away() {
    let smtp = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let mut app = TestApp::without_worker().await.unwrap();
    app.set_env(&[("HERALD_SMTP_URL", &smtp.url())]);
    let _proxy = worker_through_proxy(&mut app, FAR);
    const AUDIENCE: usize = 4_000;
    let segment = unique("farm");
    app.seed(AUDIENCE as u32, &segment);
    let key = app
        .campaign(&segment)
        .option("channel", "email")
        .lanes(4)
        .launch();
    pause_holds(
        &app,
        &key,
        AUDIENCE,
        || smtp.delivered(),
        |at| smtp.messages_after(at),
    )
    .await;
    assert_eq!(smtp.delivered(), AUDIENCE);
    assert_eq!(smtp.duplicates(), 0, "no fault, no duplicate");
}

/// A gate that cannot be read is closed: with the worker cut off from PostgreSQL mid-send,
/// sends stop within the gate's trust (2 s), instead of going on unrecorded for the page's
/// whole budget; restored, the campaign ends with everyone reached once.
#[tokio::test]
async fn sends_stop_when_the_database_cannot_be_read() {
    let mut app = TestApp::without_worker().await.unwrap();
    let proxy = worker_through_proxy(&mut app, Duration::ZERO);
    let sink = sink_with(herald_tests::sinks::WEBHOOK_SECRET).await;
    const AUDIENCE: usize = 20_000;
    let segment = unique("cut");
    app.seed(AUDIENCE as u32, &segment);
    let key = app
        .campaign(&segment)
        .webhook(&sink.url())
        .lanes(4)
        .launch();
    wait_until(LONG, || async { sink.delivered() >= 300 })
        .await
        .unwrap();
    proxy.cut();
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let late = sink.requests_after(cut + Duration::from_millis(2_500));
    assert_eq!(
        late, 0,
        "{late} requests more than 2.5 s after the database went away"
    );
    proxy.restore();
    app.wait_status(&key, CampaignStatus::Completed, Duration::from_secs(300))
        .await
        .unwrap();
    app.assert_exactly_once(&key, AUDIENCE as i64).await;
    assert_eq!(sink.delivered(), AUDIENCE);
}
