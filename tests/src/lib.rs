//! The integration tests' one helper (zero2prod's `spawn_app`, for Herald).
//!
//! [`TestApp::spawn`] gives each test its own PostgreSQL database and Temporal task queue on
//! the real local services, and runs a real `herald-worker` process for it in the background.
//! Tests drive Herald through the real `herald` binary, the `temporal` CLI and SQL, and wait
//! for conditions with deadlines instead of sleeping "long enough".
//!
//! The services come from `scripts/services up` (which `scripts/test` runs first); the
//! binaries from `target/release` (built by `scripts/test`), or `HERALD_BIN_DIR`.
//!
//! - [`TestApp`]: one test's database, task queue and worker, and typed helpers to drive
//!   and inspect it.
//! - [`Launch`]: `herald launch` options as a builder.
//! - [`wait_until`]: poll a condition with a deadline.
//! - [`api`]: a real `herald-api` process for a test, and a client for it.
//! - [`browser`]: a real headless Chromium over chromedriver, for the dashboard.
//! - [`sinks`]: a webhook endpoint and an SMTP relay for the external channels.

pub mod api;
pub mod browser;
pub mod proxy;

/// Run `server` for ever on a thread and runtime of its own. A test's runtime runs one thread,
/// which a blocking call (running `herald pause`, which waits for the pages in flight to
/// return) would hold: a receiver or proxy on it could not answer the very calls the command
/// waits for.
pub(crate) fn on_own_runtime<F, Fut>(name: &str, server: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime of its own")
                .block_on(server());
        })
        .expect("a thread of its own");
}
pub mod sinks;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use herald_store::connect::{self, MigrationCheck};
use herald_wire::{CampaignKey, CampaignStatus, ItemStatus, names};
use serde_json::Value;
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// How long any one step of a test may take before it fails: generous, because the machines
/// are shared and noisy; tests poll for conditions and rarely come near it.
pub const LONG: Duration = Duration::from_secs(180);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HERALD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // Cargo's own override of the target directory, as scripts/test's build used it.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let target = if target.is_relative() {
        repo_root().join(target)
    } else {
        target
    };
    target.join("release")
}

pub(crate) fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// The service addresses, read as the worker and the CLI read them (environment, or the
/// local defaults of `scripts/services`).
pub fn services() -> herald_control::Config {
    herald_control::Config::from_env().expect("the services' configuration")
}

fn base_database_url() -> String {
    services().database_url
}

/// The Temporal frontend the tests use (host:port).
pub fn temporal_address() -> String {
    services().temporal_address
}

/// A test tool's path, from `scripts/services tool NAME` (which installs it when missing).
pub fn tool(name: &str) -> PathBuf {
    let out = Command::new(repo_root().join("scripts/services"))
        .args(["tool", name])
        .output()
        .expect("running scripts/services");
    assert!(
        out.status.success(),
        "scripts/services tool {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A campaign's workflow id, from its key.
pub fn workflow_id(key: &str) -> String {
    names::workflow_id(&CampaignKey::parse(key).expect("a valid key"))
}

pub fn temporal_cli() -> PathBuf {
    std::env::var("TEMPORAL_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".tools/venv/bin/temporal"))
}

/// A name unique to this test process and call, for databases, task queues and keys.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}x{:x}x{}",
        std::process::id(),
        nanos & 0xffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One test's world: a fresh database, a task queue, and the worker processes serving both
/// (one, unless a test starts more).
pub struct TestApp {
    pub database_url: String,
    pub task_queue: String,
    pub db_name: String,
    pub pool: PgPool,
    /// Oldest first: `kill_worker` and `stop_worker` take the oldest.
    workers: Vec<Child>,
    /// Settings every process of this app gets beside the defaults (an SMTP relay's URL).
    env: Vec<(String, String)>,
}

impl TestApp {
    /// Create a database, migrate it, and start a worker.
    pub async fn spawn() -> Result<Self> {
        let mut app = Self::without_worker().await?;
        app.start_worker()?;
        Ok(app)
    }

    /// Like [`TestApp::spawn`] but with no worker running (for signals sent while none is).
    /// Like [`TestApp::spawn`], with settings for every process of the app (worker, CLI,
    /// API), e.g. `HERALD_SMTP_URL`.
    pub async fn spawn_with_env(env: &[(&str, &str)]) -> Result<Self> {
        let mut app = Self::without_worker().await?;
        app.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        app.start_worker()?;
        Ok(app)
    }

    pub async fn without_worker() -> Result<Self> {
        let base = base_database_url();
        let db_name = unique("herald_t");
        let mut admin = PgConnection::connect(&base)
            .await
            .with_context(|| format!("connecting to {base}: run `scripts/services up` first"))?;
        sqlx::query(&format!("CREATE DATABASE {db_name}"))
            .execute(&mut admin)
            .await?;
        // How `scripts/test` tells the databases it may drop.
        sqlx::query(&format!(
            "COMMENT ON DATABASE {db_name} IS 'herald test database'"
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        let database_url = replace_db(&base, &db_name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            // As Herald's own pools do (store::connect): the cap's function asks for it.
            .connect_with(
                database_url
                    .parse::<PgConnectOptions>()?
                    .options([("default_transaction_isolation", r"read\ committed")]),
            )
            .await?;
        connect::migrate(&pool, MigrationCheck::Apply).await?;
        Ok(Self {
            database_url,
            task_queue: unique("herald-test-"),
            db_name,
            pool,
            workers: Vec::new(),
            env: Vec::new(),
        })
    }

    /// Settings for every process of the app started from now on.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }

    pub(crate) fn envs(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", self.database_url.clone()),
            ("TEMPORAL_ADDRESS", temporal_address()),
            ("HERALD_TASK_QUEUE", self.task_queue.clone()),
            ("RUST_LOG", "warn".to_owned()),
            ("HERALD_WEBHOOK_SECRET", sinks::WEBHOOK_SECRET.to_owned()),
            // The tests' receivers listen on loopback.
            ("HERALD_WEBHOOK_ALLOW", "loopback".to_owned()),
            ("HERALD_EMAIL_FROM", sinks::EMAIL_FROM.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.env.iter().cloned());
        env
    }

    pub fn start_worker(&mut self) -> Result<()> {
        self.start_worker_with_env(&[])
    }

    /// Where this app's worker writes its log (appended across restarts).
    pub fn worker_log_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}.worker.log", self.db_name))
    }

    pub fn worker_log(&self) -> String {
        std::fs::read_to_string(self.worker_log_path()).unwrap_or_default()
    }

    /// Start one more worker (the logs of all of them go to one file).
    pub fn start_worker_with_env(&mut self, extra: &[(&str, &str)]) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.worker_log_path())?;
        let child = Command::new(bin("herald-worker"))
            .envs(self.envs())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting herald-worker")?;
        self.workers.push(child);
        Ok(())
    }

    /// The highest resident memory of the oldest running worker so far (`VmHWM`), in KiB.
    pub fn worker_peak_rss_kib(&self) -> Option<u64> {
        let pid = self.workers.first()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// SIGKILL the oldest worker: no chance to finish or report anything.
    pub fn kill_worker(&mut self) {
        if !self.workers.is_empty() {
            let mut child = self.workers.remove(0);
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// SIGTERM the oldest worker and wait for it to hand over and exit. Returns whether it
    /// exited by itself within 20 s (otherwise it is killed).
    pub fn stop_worker(&mut self) -> bool {
        self.stop_worker_timed().is_some()
    }

    /// Like [`TestApp::stop_worker`], returning how long the worker took to exit after the
    /// SIGTERM, or `None` if it had to be killed after 20 s.
    pub fn stop_worker_timed(&mut self) -> Option<Duration> {
        if self.workers.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut child = self.workers.remove(0);
        let sent = Instant::now();
        sigterm(child.id());
        while sent.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().ok();
        child.wait().ok();
        None
    }

    /// Run the `herald` CLI with this app's environment.
    pub fn herald(&self, args: &[&str]) -> Output {
        self.herald_with_env(args, &[])
    }

    pub fn herald_with_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin("herald"));
        cmd.args(args).envs(self.envs()).env("RUST_LOG", "error");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).output().expect("running herald")
    }

    /// Start `herald` without waiting for it (its output is piped).
    pub fn herald_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(bin("herald"))
            .args(args)
            .envs(self.envs())
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running herald")
    }

    /// Run `herald`, requiring success; returns stdout.
    pub fn herald_ok(&self, args: &[&str]) -> String {
        let out = self.herald(args);
        assert!(
            out.status.success(),
            "herald {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run the `temporal` CLI against the test server.
    pub fn temporal(&self, args: &[&str]) -> Output {
        Command::new(temporal_cli())
            .args(args)
            .args(["--address", &temporal_address()])
            .stdin(Stdio::null())
            .output()
            .expect("running the temporal CLI (scripts/services up installs it)")
    }

    /// Send a signal to a campaign straight through Temporal (as another service or the web
    /// UI would, with no database fence), requiring the CLI to accept it.
    pub fn signal(&self, key: &str, name: &str, extra: &[&str]) {
        let wid = workflow_id(key);
        let mut args = vec![
            "workflow",
            "signal",
            "--workflow-id",
            wid.as_str(),
            "--name",
            name,
        ];
        args.extend_from_slice(extra);
        let out = self.temporal(&args);
        assert!(out.status.success(), "temporal {args:?}: {}", stderr(&out));
    }

    pub fn seed(&self, count: u32, segment: &str) {
        self.herald_ok(&[
            "users",
            "seed",
            "--count",
            &count.to_string(),
            "--segment",
            segment,
        ]);
    }

    /// A campaign that is sending: `audience` new users in `segment`, paced (100 per page,
    /// 4,000 recipients/s over `lanes` lanes) so that it is still sending when the test acts,
    /// and already past its first 500 recipients. Returns its key.
    pub async fn sending(&self, segment: &str, audience: u32, lanes: u32) -> String {
        self.seed(audience, segment);
        let key = self
            .campaign(segment)
            .page_size(100)
            .lanes(lanes)
            .rate(4000)
            .launch();
        self.wait_items(&key, 500, LONG).await.unwrap();
        key
    }

    /// A campaign to `segment` with a unique key, to be launched with [`Launch::launch`].
    pub fn campaign(&self, segment: &str) -> Launch<'_> {
        self.launch_to("--segment", segment)
    }

    /// A campaign to the users an audience filter (JSON) holds, with a unique key.
    pub fn campaign_to(&self, audience: &str) -> Launch<'_> {
        self.launch_to("--audience", audience)
    }

    fn launch_to(&self, flag: &str, value: &str) -> Launch<'_> {
        Launch {
            app: self,
            key: unique("k"),
            args: vec![
                "--title".into(),
                "Hello".into(),
                "--body".into(),
                "A message".into(),
                flag.into(),
                value.into(),
            ],
        }
    }

    /// `herald status --json`.
    pub fn status(&self, key: &str) -> Value {
        serde_json::from_str(&self.herald_ok(&["status", key, "--json"])).expect("status JSON")
    }

    /// Items committed for a campaign; -1 while the database is unreachable (restarts).
    pub async fn item_count(&self, key: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM message_items i JOIN messages m ON m.id = i.message_id WHERE m.key = $1",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .unwrap_or(-1)
    }

    /// The campaign's newest operator request as its row holds it: (intent code, number).
    pub async fn request_row(&self, key: &str) -> (i16, i64) {
        sqlx::query_as("SELECT intent, intent_seq FROM messages WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Run a worker in the foreground with this app's environment and `extra`, for one that
    /// is expected to exit by itself (refusing to start); killed after 20 s.
    pub fn worker_once(&self, extra: &[(&str, &str)]) -> Output {
        let mut child = Command::new(bin("herald-worker"))
            .envs(self.envs())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting herald-worker");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().ok();
        child.wait_with_output().expect("herald-worker's output")
    }

    /// The stored status; `None` while the database is unreachable (restarts).
    pub async fn db_status(&self, key: &str) -> Option<CampaignStatus> {
        sqlx::query_scalar::<_, i16>("SELECT status FROM messages WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .ok()
            .map(|code| CampaignStatus::try_from(code).expect("a known status code"))
    }

    /// Check, in one snapshot (one statement), what must hold at every moment of a run: the
    /// page rows' counts equal the items they wrote (so no counter runs ahead of or behind
    /// committed items), the lanes' totals equal the page rows, the failure counts by class
    /// equal the failed items, and no item went to anyone outside the audience. Returns the number
    /// of items.
    pub async fn check_invariants(&self, key: &str) -> i64 {
        let l = self.ledger(key).await;
        assert_eq!(
            l.page_sent, l.items_sent,
            "page rows and sent items disagree: {l:?}"
        );
        assert_eq!(
            l.page_failed, l.items_failed,
            "page rows and failed items disagree: {l:?}"
        );
        assert_eq!(
            (l.lane_sent, l.lane_failed),
            (l.page_sent, l.page_failed),
            "lane totals and page rows disagree: {l:?}"
        );
        assert_eq!(
            l.classes_off, 0,
            "failure counts by class and failed items disagree: {l:?}"
        );
        assert_eq!(
            l.lane_suppressed, l.page_suppressed,
            "lane totals and page rows disagree on the suppressed: {l:?}"
        );
        // An inbox page writes no item for whom it leaves out; an external one does.
        assert!(
            l.items_suppressed == 0 || l.items_suppressed == l.page_suppressed,
            "page rows and suppressed items disagree: {l:?}"
        );
        assert_eq!(
            l.outsiders, 0,
            "items for users outside the audience: {l:?}"
        );
        assert!(l.items <= l.total, "more items than the audience: {l:?}");
        l.items
    }

    /// The campaign's ledger, counted in one snapshot against its audience (the users whose
    /// ids lie in the bounds fixed at launch and who carry its segment).
    pub async fn ledger(&self, key: &str) -> Ledger {
        #[allow(clippy::type_complexity)]
        let row: (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "WITH m AS (SELECT * FROM messages WHERE key = $1),
             audience AS (
                SELECT u.id FROM users u, m
                WHERE u.id BETWEEN m.min_user_id AND m.max_user_id
                  AND (m.segment IS NULL OR u.segments @> ARRAY[m.segment])
             ),
             items AS (SELECT i.* FROM message_items i, m WHERE i.message_id = m.id)
             SELECT (SELECT coalesce(total, 0) FROM m),
                    (SELECT count(*) FROM items),
                    (SELECT count(*) FROM items WHERE status = $2),
                    (SELECT count(*) FROM items WHERE status = $3),
                    (SELECT coalesce(sum(p.sent), 0)::bigint FROM message_pages p, m WHERE p.message_id = m.id),
                    (SELECT coalesce(sum(p.failed), 0)::bigint FROM message_pages p, m WHERE p.message_id = m.id),
                    (SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT 1 FROM audience a WHERE a.id = i.user_id)),
                    (SELECT count(*) FROM audience a WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.user_id = a.id)),
                    (SELECT coalesce(sum(l.sent), 0)::bigint FROM message_lanes l, m WHERE l.message_id = m.id)
                      + (SELECT coalesce(sum(p.sent), 0)::bigint FROM message_pages p, m
                         WHERE p.message_id = m.id AND p.recipients > p.sent + p.failed),
                    (SELECT coalesce(sum(l.failed), 0)::bigint FROM message_lanes l, m WHERE l.message_id = m.id)
                      + (SELECT coalesce(sum(p.failed), 0)::bigint FROM message_pages p, m
                         WHERE p.message_id = m.id AND p.recipients > p.sent + p.failed),
                    (SELECT count(*) FROM
                        (SELECT coalesce(error_class, 'unknown') AS c, count(*) AS n FROM items
                         WHERE status = $3 GROUP BY 1) a
                        FULL JOIN
                        (SELECT f.error_class AS c, sum(f.items) AS n FROM message_failures f, m
                         WHERE f.message_id = m.id GROUP BY 1 HAVING sum(f.items) > 0) b
                        USING (c)
                     WHERE a.n IS DISTINCT FROM b.n),
                    (SELECT count(*) FROM items WHERE status = $4),
                    (SELECT coalesce(sum(p.suppressed), 0)::bigint FROM message_pages p, m WHERE p.message_id = m.id),
                    (SELECT coalesce(sum(l.suppressed), 0)::bigint FROM message_lanes l, m WHERE l.message_id = m.id)
                      + (SELECT coalesce(sum(p.suppressed), 0)::bigint FROM message_pages p, m
                         WHERE p.message_id = m.id AND p.recipients > p.sent + p.failed)",
        )
        .bind(key)
        .bind(ItemStatus::Sent.code())
        .bind(ItemStatus::Failed.code())
        .bind(ItemStatus::Suppressed.code())
        .fetch_one(&self.pool)
        .await
        .unwrap();
        Ledger {
            total: row.0,
            items: row.1,
            items_sent: row.2,
            items_failed: row.3,
            page_sent: row.4,
            page_failed: row.5,
            outsiders: row.6,
            missing: row.7,
            lane_sent: row.8,
            lane_failed: row.9,
            classes_off: row.10,
            items_suppressed: row.11,
            page_suppressed: row.12,
            lane_suppressed: row.13,
        }
    }

    /// Wait for the campaign's stored status, failing after `timeout`.
    pub async fn wait_status(
        &self,
        key: &str,
        status: CampaignStatus,
        timeout: Duration,
    ) -> Result<()> {
        wait_until(timeout, || async {
            self.db_status(key).await == Some(status)
        })
        .await
        .with_context(|| format!("campaign {key} did not reach status {status}"))
    }

    /// Wait until the campaign's workflow has closed (completed) in Temporal.
    pub async fn wait_workflow_completed(&self, key: &str, timeout: Duration) -> Result<()> {
        let wid = workflow_id(key);
        wait_until(timeout, || async {
            let out = self.temporal(&["workflow", "describe", "--workflow-id", &wid, "-o", "json"]);
            String::from_utf8_lossy(&out.stdout).contains("WORKFLOW_EXECUTION_STATUS_COMPLETED")
        })
        .await
        .with_context(|| format!("the workflow of {key} did not complete"))
    }

    /// Wait for the campaign to end cancelled: its stored status, then its workflow closed in
    /// Temporal (a cancel that left the workflow running would let pages run later).
    ///
    /// Then no page may run, and the workflow's result equals the ledger.
    pub async fn ends_cancelled(&self, key: &str) {
        self.wait_status(key, CampaignStatus::Cancelled, LONG)
            .await
            .unwrap();
        self.wait_workflow_completed(key, LONG)
            .await
            .expect("the workflow closes after a cancel");
        let closed = self.check_invariants(key).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            self.item_count(key).await,
            closed,
            "pages ran after the cancel"
        );
        let p = self.progress(key);
        assert_eq!(
            p["sent"], closed,
            "the workflow's result equals the ledger: {p}"
        );
        assert_eq!(p["status"], CampaignStatus::Cancelled.code(), "{p}");
        assert_eq!(self.status(key)["sent"], closed);
    }

    /// Wait until at least `n` items are committed.
    pub async fn wait_items(&self, key: &str, n: i64, timeout: Duration) -> Result<()> {
        wait_until(timeout, || async { self.item_count(key).await >= n })
            .await
            .with_context(|| format!("campaign {key} did not reach {n} items"))
    }

    /// Wait for the campaign to complete, then check [`TestApp::assert_exactly_once`].
    pub async fn completes_exactly_once(&self, key: &str, audience: i64) {
        self.wait_status(key, CampaignStatus::Completed, LONG)
            .await
            .unwrap();
        self.assert_exactly_once(key, audience).await;
    }

    /// What every completed campaign must satisfy: every audience member has exactly one
    /// item (the primary key forbids a second, so: none is missing and none went to anyone
    /// outside the audience), every item is sent, the page rows add up to the items, and what
    /// `herald status` and the workflow's own `progress` query report equals the ledger.
    pub async fn assert_exactly_once(&self, key: &str, audience: i64) {
        // Page rows against items, nobody outside the audience.
        self.check_invariants(key).await;
        let l = self.ledger(key).await;
        assert_eq!(l.missing, 0, "audience members without an item: {l:?}");
        assert_eq!(l.items, audience, "one item per recipient: {l:?}");
        assert_eq!(l.items_sent, audience, "every item sent: {l:?}");
        let s = self.status(key);
        assert_eq!(s["total"], audience, "{s}");
        assert_eq!(
            s["sent"], l.items_sent,
            "herald status equals the ledger: {s}"
        );
        assert_eq!(s["failed"], 0, "{s}");
        assert_eq!(s["pending"], 0, "{s}");
        assert_eq!(s["audience_change"], 0, "{s}");
        assert_eq!(s["status"], CampaignStatus::Completed.code(), "{s}");
        // The workflow learns that its status write committed a moment after the row shows
        // it: a query in between still says in progress.
        let completed = CampaignStatus::Completed.code();
        wait_until(Duration::from_secs(20), || async {
            self.progress(key)["status"] == completed
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the workflow never reported completed: {}",
                self.progress(key)
            )
        });
        let p = self.progress(key);
        assert_eq!(
            p["sent"], l.items_sent,
            "the workflow's progress equals the ledger: {p}"
        );
        assert_eq!(p["status"], CampaignStatus::Completed.code(), "{p}");
        assert_eq!(p["pending"], 0, "{p}");
    }

    /// The workflow's `progress` query (it answers after the workflow has closed too).
    /// Temporal answers "Workflow is busy" while a flood of signals keeps its tasks coming;
    /// that is asked again, a few times.
    pub fn progress(&self, key: &str) -> Value {
        let query = || {
            self.temporal(&[
                "workflow",
                "query",
                "--workflow-id",
                &workflow_id(key),
                "--name",
                "progress",
                "-o",
                "json",
            ])
        };
        let mut out = query();
        for _ in 0..20 {
            if out.status.success() || !stderr(&out).contains("Workflow is busy") {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            out = query();
        }
        assert!(out.status.success(), "progress query: {}", stderr(&out));
        let answer: Value = serde_json::from_slice(&out.stdout).expect("query JSON");
        answer["queryResult"][0].clone()
    }
}

/// A campaign's ledger as [`TestApp::ledger`] counts it.
#[derive(Clone, Copy, Debug)]
pub struct Ledger {
    pub total: i64,
    pub items: i64,
    pub items_sent: i64,
    pub items_failed: i64,
    pub page_sent: i64,
    pub page_failed: i64,
    /// Items for users outside the audience.
    pub outsiders: i64,
    /// Audience members without an item.
    pub missing: i64,
    /// The lanes' totals: their closed pages' (`message_lanes`) and their open pages'.
    pub lane_sent: i64,
    pub lane_failed: i64,
    /// Error classes whose count in the lanes' failure counts differs from the failed items'.
    pub classes_off: i64,
    /// Recipients left out (docs/consent.md): items recorded suppressed (external channels
    /// only), and the page rows' and lanes' counts.
    pub items_suppressed: i64,
    pub page_suppressed: i64,
    pub lane_suppressed: i64,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        while !self.workers.is_empty() {
            self.kill_worker();
        }
    }
}

/// `herald launch` options; [`Launch::launch`] runs it.
#[derive(Clone)]
pub struct Launch<'a> {
    app: &'a TestApp,
    key: String,
    args: Vec<String>,
}

impl Launch<'_> {
    fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_string());
        self
    }

    /// This title and body instead of the defaults.
    pub fn content(mut self, title: &str, body: &str) -> Self {
        self.args[1] = title.to_owned();
        self.args[3] = body.to_owned();
        self
    }

    /// Launch under this key instead of a new one.
    pub fn key(mut self, key: &str) -> Self {
        self.key = key.to_owned();
        self
    }

    pub fn page_size(self, n: u32) -> Self {
        self.arg("page-size", n)
    }

    pub fn lanes(self, n: u32) -> Self {
        self.arg("lanes", n)
    }

    /// Recipients per second.
    pub fn rate(self, n: u32) -> Self {
        self.arg("rate", n)
    }

    /// `"local"` or `"regular"`.
    pub fn execution(self, kind: &str) -> Self {
        self.arg("execution", kind)
    }

    pub fn send_at(self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.arg("send-at", at.to_rfc3339())
    }

    pub fn pages_per_run(self, n: u32) -> Self {
        self.arg("pages-per-run", n)
    }

    /// Continue-as-new once a run's history holds `n` events.
    pub fn history_events(self, n: u32) -> Self {
        self.arg("history-events", n)
    }

    /// Seconds a permanent error is retried before the campaign is marked failed.
    pub fn failure_grace(self, secs: u32) -> Self {
        self.arg("failure-grace", secs)
    }

    /// The webhook channel, to `url`.
    pub fn webhook(self, url: &str) -> Self {
        self.arg("channel", "webhook").arg("webhook-url", url)
    }

    /// Any other option, as text (for options under test).
    pub fn option(self, name: &str, value: &str) -> Self {
        self.arg(name, value)
    }

    /// The launch command's arguments, key included.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["launch".to_owned(), "--key".to_owned(), self.key.clone()];
        args.extend(self.args.iter().cloned());
        args
    }

    /// Run `herald launch`, as it stands, without requiring success.
    pub fn run(&self) -> Output {
        let args = self.args();
        self.app
            .herald(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Launch it, requiring success; returns the key.
    pub fn launch(self) -> String {
        let args = self.args();
        let printed = self
            .app
            .herald_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(printed.trim(), self.key);
        self.key
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = base.rsplit_once('/').map(|(p, _)| p).unwrap_or(base);
    format!("{prefix}/{db}{query}")
}

pub(crate) fn sigterm(pid: u32) {
    // std has no SIGTERM; the `kill` command is everywhere this runs.
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .ok();
}

/// Poll `condition` every 50 ms until it holds or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// stderr as text, for asserting on error messages.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The history length of every run of a campaign's workflow, newest first (-1 for a run
/// that cannot be described right now).
pub fn history_lengths(key: &str) -> Vec<i64> {
    let temporal = |args: &[&str]| -> Value {
        let out = Command::new(temporal_cli())
            .args(args)
            .args(["--address", &temporal_address(), "--output", "json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let id = workflow_id(key);
    let runs = temporal(&[
        "workflow",
        "list",
        "--query",
        &format!("WorkflowId = '{id}'"),
    ]);
    runs.as_array()
        .into_iter()
        .flatten()
        .map(|run| {
            let run_id = run["execution"]["runId"].as_str().unwrap_or_default();
            let described = temporal(&["workflow", "describe", "-w", &id, "-r", run_id]);
            let length = &described["workflowExecutionInfo"]["historyLength"];
            length
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| length.as_i64())
                .unwrap_or(-1)
        })
        .collect()
}

/// A Temporal client for the test server, to send signals by the thousand.
pub async fn temporal_client() -> temporalio_client::Client {
    use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
    let url = Url::parse(&format!("http://{}", temporal_address())).unwrap();
    let connection = Connection::connect(ConnectionOptions::new(url).build())
        .await
        .expect("connecting to the Temporal test server");
    Client::new(connection, ClientOptions::new("default".to_owned()).build()).unwrap()
}
