use herald_templates::{Profile, Templates};
use herald_wire::{Channel, Content};
fn main() {
    let c = Content::new(
        "Benchmark for {{ user.id }}",
        "Your {{ user.attrs.plan }} plan, at {{ user.attrs.age | default(\"any age\") }}",
    )
    .unwrap();
    let t = Templates::compile("k", &c, Channel::Webhook).unwrap();
    let p = std::sync::Arc::new(Profile { id: 5, email: "u5@example.com".into(), segments: vec!["bench-mail".into()],
        attrs: serde_json::from_str(r#"{"age": 23, "plan": "team", "bucket": 5, "country": "GB", "last_seen": "2026-12-01T16:15:15.407167Z"}"#).unwrap(), ..Default::default() });
    let n = 200_000;
    let t0 = std::time::Instant::now();
    let mut len = 0;
    for _ in 0..n {
        let r = t.render(&p).unwrap();
        len += r.body.len();
    }
    println!(
        "{:.2} µs a render ({len})",
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let json = r#"{"name": null, "attrs": {"age": 23, "plan": "team", "bucket": 5, "country": "GB", "last_seen": "2026-12-01T16:15:15.407167Z"}, "locale": "en", "segments": ["bench-mail"], "timezone": "Europe/Berlin"}"#;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        len += v.as_object().unwrap().len();
    }
    println!(
        "{:.2} µs a JSON parse ({len})",
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
