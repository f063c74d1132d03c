//! `bench-reads`: concurrent readers marking messages read, through the store's own
//! `mark_read`, on one campaign against the same number spread over as many campaigns. Prints
//! figures, asserts nothing; `scripts/bench-reads` prepares the campaigns and runs it.
//!
//!   bench-reads SECONDS SESSIONS ONE_KEY SPREAD_KEY...
//!
//! Session `i` marks the users `first + i, first + i + SESSIONS, …` read: in the one-campaign
//! run all of them in `ONE_KEY`, in the spread run each in its own campaign, so both runs do
//! the same work. During the one-campaign run a pause request is recorded on it every 100 ms,
//! and its time is reported: reads must never hold up an operator.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use herald_store::{
    connect::{self, PoolSettings},
    inbox,
    status::{self, Request},
};
use herald_wire::CampaignKey;
use sqlx::PgPool;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seconds, sessions, one, spread @ ..] = args.as_slice() else {
        bail!("usage: bench-reads SECONDS SESSIONS ONE_KEY SPREAD_KEY...");
    };
    let seconds: u64 = seconds.parse().context("SECONDS")?;
    let sessions: usize = sessions.parse().context("SESSIONS")?;
    if spread.len() != sessions {
        bail!("give one spread key per session ({sessions})");
    }
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    // The API's sessions: the statements kept prepared, and planned for each reader.
    let pool = connect::connect(
        &url,
        &PoolSettings::server(sessions as u32 + 2, Duration::from_secs(30)),
    )
    .await?;
    let first: i64 = sqlx::query_scalar("SELECT min(id) FROM users")
        .fetch_one(&pool)
        .await?;
    let duration = Duration::from_secs(seconds);

    let one = CampaignKey::parse(one)?;
    let keys = vec![one.clone(); sessions];
    let (rate_one, pauses) = run(&pool, &keys, first, duration, Some(&one)).await?;
    let keys: Vec<CampaignKey> = spread
        .iter()
        .map(|k| CampaignKey::parse(k))
        .collect::<Result<_, _>>()?;
    let (rate_spread, _) = run(&pool, &keys, first, duration, None).await?;

    println!("| readers | one campaign | {sessions} campaigns | one / spread |");
    println!("|---|---|---|---|");
    println!(
        "| {sessions} sessions, {seconds} s each | {rate_one:.0} reads/s | {rate_spread:.0} reads/s | {:.2}× |",
        rate_one / rate_spread
    );
    if let Some((n, median, max)) = pauses {
        println!(
            "\n{n} pause requests on the read campaign during its run: median {:.1} ms, max {:.1} ms",
            median * 1e3,
            max * 1e3
        );
    }
    Ok(())
}

type PauseTimes = Option<(usize, f64, f64)>;

/// Reads per second over all sessions, and the pause requests' times when `pause` is given.
async fn run(
    pool: &PgPool,
    keys: &[CampaignKey],
    first: i64,
    duration: Duration,
    pause: Option<&CampaignKey>,
) -> Result<(f64, PauseTimes)> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sessions = keys.len() as i64;
    let started = Instant::now();
    let mut readers = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (pool, key, done, stop) = (pool.clone(), key.clone(), done.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut user = first + i as i64;
            while !stop.load(Ordering::Relaxed) {
                match inbox::mark_read(&pool, user, &key).await {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    // Past the audience: nothing more to read.
                    Err(herald_store::StoreError::NotARecipient { .. }) => break,
                    Err(e) => return Err(anyhow::Error::from(e)),
                }
                user += sessions;
            }
            Ok(())
        }));
    }
    let mut pauses = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(key) = pause {
            let t = Instant::now();
            // Alternate, so that every request writes.
            let request = if pauses.len() % 2 == 0 {
                Request::Pause
            } else {
                Request::Resume
            };
            match status::request(pool, key, request, None, "bench").await {
                Ok(_) | Err(herald_store::StoreError::WrongStatus { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            pauses.push(t.elapsed().as_secs_f64());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for r in readers {
        r.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / elapsed;
    pauses.sort_by(f64::total_cmp);
    let times = (!pauses.is_empty()).then(|| {
        (
            pauses.len(),
            pauses[pauses.len() / 2],
            *pauses.last().unwrap(),
        )
    });
    Ok((rate, times))
}
