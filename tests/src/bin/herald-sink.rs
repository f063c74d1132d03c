//! `herald-sink`: the test receivers as a program, for trying the webhook and e-mail channels
//! by hand and for the benchmarks. It prints what it received every second and a summary
//! when stopped (Ctrl-C or SIGTERM).
//!
//!   herald-sink webhook [--addr 127.0.0.1:9000] [--fail-500 0.1] [--fail-429 0.02]
//!                       [--retry-after 1] [--hang 0.01] [--hang-for 15] [--drop 0.01]
//!                       [--always 410] [--long-body huge|endless]
//!       (verifies signatures with HERALD_WEBHOOK_SECRET)
//!   herald-sink smtp [--addr 127.0.0.1:2525] [--fail-451 0.1] [--fail-550 0.05]

use std::time::Duration;

use herald_tests::sinks::{SmtpSink, WebhookSink, smtp, webhook};

fn usage() -> ! {
    eprintln!(
        "usage: herald-sink webhook [--addr HOST:PORT] [--fail-500 SHARE] [--fail-429 SHARE] \
         [--retry-after SECS] [--hang SHARE] [--hang-for SECS] [--drop SHARE] [--always STATUS] \
         [--long-body huge|endless]\n\
         \x20      herald-sink smtp [--addr HOST:PORT] [--fail-451 SHARE] [--fail-550 SHARE]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(kind) = args.first().cloned() else {
        usage()
    };
    let mut options = std::collections::HashMap::new();
    let mut rest = args[1..].iter();
    while let Some(name) = rest.next() {
        let Some(name) = name.strip_prefix("--") else {
            usage()
        };
        let Some(value) = rest.next() else { usage() };
        options.insert(name.to_owned(), value.clone());
    }
    let share = |name: &str| -> f64 {
        match options.get(name).map(|v| v.parse::<f64>()) {
            None => 0.0,
            Some(Ok(v)) if (0.0..=1.0).contains(&v) => v,
            Some(_) => {
                eprintln!("herald-sink: --{name} is a share from 0 to 1");
                std::process::exit(2)
            }
        }
    };
    let number = |name: &str, default: u64| -> u64 {
        options.get(name).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("herald-sink: --{name} is a whole number");
                std::process::exit(2)
            })
        })
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        match kind.as_str() {
            "webhook" => {
                let secret = std::env::var("HERALD_WEBHOOK_SECRET").unwrap_or_else(|_| {
                    eprintln!("herald-sink: set HERALD_WEBHOOK_SECRET to the workers' secret, to check signatures");
                    std::process::exit(2)
                });
                let addr = options.get("addr").map_or("127.0.0.1:9000", String::as_str);
                let sink = WebhookSink::start(addr, &secret).await.unwrap_or_else(|e| {
                    eprintln!("herald-sink: cannot listen on {addr}: {e}");
                    std::process::exit(1)
                });
                sink.set_faults(webhook::Faults {
                    status_500: share("fail-500"),
                    status_429: share("fail-429"),
                    retry_after_secs: number("retry-after", 1) as u32,
                    hang: share("hang"),
                    hang_for: Duration::from_secs(number("hang-for", 15)),
                    drop: share("drop"),
                    always: options.get("always").map(|_| number("always", 0) as u16),
                    long_body: match options.get("long-body").map(String::as_str) {
                        None => None,
                        Some("huge") => Some(webhook::LongBody::Huge),
                        Some("endless") => Some(webhook::LongBody::Endless),
                        Some(_) => usage(),
                    },
                });
                eprintln!("herald-sink: webhooks at {}", sink.url());
                report(|| {
                    format!(
                        "{} requests, {} delivered, {} duplicates, {} failed on purpose, {} bad signatures",
                        sink.requests(),
                        sink.delivered(),
                        sink.duplicates(),
                        sink.failed(),
                        sink.bad_signatures()
                    )
                })
                .await;
            }
            "smtp" => {
                let addr = options.get("addr").map_or("127.0.0.1:2525", String::as_str);
                let sink = SmtpSink::start(addr).await.unwrap_or_else(|e| {
                    eprintln!("herald-sink: cannot listen on {addr}: {e}");
                    std::process::exit(1)
                });
                sink.set_faults(smtp::Faults {
                    reply_451: share("fail-451"),
                    reply_550: share("fail-550"),
                });
                eprintln!("herald-sink: SMTP at {} (HERALD_SMTP_URL={})", sink.addr, sink.url());
                report(|| {
                    format!(
                        "{} messages, {} duplicates, {} refused on purpose",
                        sink.delivered(),
                        sink.duplicates(),
                        sink.refused()
                    )
                })
                .await;
            }
            _ => usage(),
        }
    });
}

/// Print `line()` every second while it changes, and once more when stopped.
async fn report(line: impl Fn() -> String) {
    let mut last = String::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let now = line();
                if now != last {
                    eprintln!("herald-sink: {now}");
                    last = now;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    println!("{}", line());
}
