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
    // What a page's claim reads of a user for these templates (`user.attrs.age`,
    // `user.attrs.plan`): an array of those values, parsed into the user's attributes.
    let json = r#"[23, "team"]"#;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        let values: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        let mut attrs = serde_json::Map::new();
        for (name, value) in ["age", "plan"].into_iter().zip(values) {
            attrs.insert(name.to_owned(), value);
        }
        len += attrs.len();
    }
    println!(
        "{:.2} µs a parse of the user's data ({len})",
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
