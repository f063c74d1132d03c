//! One function per subcommand. Every command checks its input and reaches the services it
//! needs *before* it writes anything, so a refused or failed command changes nothing.

use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use herald_activities::{
    LedgerError, db,
    ledger::{self, CampaignView, Request},
};
use herald_wire::{
    CampaignInput, CampaignKey, CampaignSpec, Channel, Content, InvalidInput, SignalRequest,
    Tuning, names, parse_send_at,
};
use herald_worker::{Config, connect_database, connect_temporal};
use herald_workflows::CampaignWorkflow;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::data_converters::{PayloadConverter, RawValue};

use crate::{Command, LaunchArgs, SignalArgs, UsersCommand, watch};

/// A request refused as it stands (the caller's fault): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(msg: impl Into<String>) -> anyhow::Error {
    Refused(msg.into()).into()
}

pub fn is_refusal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<Refused>()
            || c.is::<InvalidInput>()
            || c.downcast_ref::<LedgerError>()
                .is_some_and(|l| !l.is_retryable())
    })
}

pub async fn run(command: Command) -> Result<()> {
    let config = Config::from_env();
    match command {
        Command::Users {
            command: UsersCommand::Seed { count, segment },
        } => seed(&config, count, segment).await,
        Command::Launch(args) => launch(&config, args).await,
        Command::Pause(args) => signal(&config, Request::Pause, args).await,
        Command::Resume(args) => signal(&config, Request::Resume, args).await,
        Command::Cancel(args) => signal(&config, Request::Cancel, args).await,
        Command::Status { key, json } => status(&config, &key, json).await,
        Command::Watch { key } => {
            // One session for the looks, one listening for status changes.
            let settings = db::PoolSettings {
                max_connections: 2,
                ..db::PoolSettings::cli()
            };
            watch::watch(&connect_database(&config, &settings).await?, &key).await
        }
        Command::List { limit, json } => list(&config, limit, json).await,
        Command::Inbox { user, limit, json } => inbox(&config, user, limit, json).await,
        Command::Read { user, key } => read(&config, user, &key).await,
        Command::Migrate => {
            database(&config).await?;
            println!("database is up to date");
            Ok(())
        }
    }
}

/// Connect to PostgreSQL and apply pending migrations.
async fn database(config: &Config) -> Result<PgPool> {
    connect_database(config, &db::PoolSettings::cli()).await
}

async fn seed(config: &Config, count: i64, segment: Option<herald_wire::Segment>) -> Result<()> {
    if !(1..=100_000_000).contains(&count) {
        return Err(refused(format!(
            "--count must be between 1 and 100000000, got {count}"
        )));
    }
    let pool = database(config).await?;
    const CHUNK: i64 = 250_000;
    let bar = progress_bar(count as u64, "users");
    let started = Instant::now();
    let (mut first, mut last, mut done) = (0, 0, 0);
    while done < count {
        let n = CHUNK.min(count - done);
        let (a, b) = ledger::seed_users(&pool, n, segment.as_ref())
            .await
            .context("adding users")?;
        if first == 0 {
            first = a;
        }
        last = b;
        done += n;
        bar.set_position(done as u64);
    }
    ledger::settle_users(&pool, last)
        .await
        .context("making ledger partitions for the new users and analyzing them")?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "added {count} users (ids {first}..={last}{}) in {seconds:.1}s ({:.0}/s)",
        segment
            .map(|s| format!(", segment {s}"))
            .unwrap_or_default(),
        count as f64 / seconds
    );
    Ok(())
}

fn generate_key() -> CampaignKey {
    let now = Utc::now();
    let key = format!(
        "c-{}-{:04x}",
        now.format("%Y%m%d-%H%M%S"),
        now.timestamp_subsec_micros() % 0xffff
    );
    CampaignKey::parse(&key).expect("generated keys are valid")
}

async fn launch(config: &Config, args: LaunchArgs) -> Result<()> {
    let content = Content::new(&args.title, &args.body)?;
    let send_at = args
        .send_at
        .as_deref()
        .map(|s| parse_send_at(s, Utc::now()))
        .transpose()?;
    let key = args.key.unwrap_or_else(generate_key);
    let pool = database(config).await?;
    let client = connect_temporal(config).await?;

    let spec = CampaignSpec {
        content,
        channel: Channel::Inbox,
        segment: args.segment,
        send_at,
        page_size: args.page_size,
        lanes: args.lanes,
        execution: args.execution,
        rate: args.rate,
    };
    // Creating the row fixes the audience (one count); an empty one is refused and removed.
    let registered = ledger::create_campaign(&pool, &key, &spec).await?;
    if registered.total == 0 {
        ledger::delete_unstarted(&pool, &key).await?;
        return Err(refused(match &spec.segment {
            Some(s) => format!("the audience is empty: no user carries segment {s:?}"),
            None => "the audience is empty: there are no users; add some with `herald users seed --count N`"
                .into(),
        }));
    }
    let mut tuning = Tuning::default();
    if let Some(n) = args.pages_per_run {
        tuning.pages_per_run = n.max(1);
    }
    if let Some(n) = args.pages_per_yield {
        tuning.local_pages_per_yield = n;
    }
    if let Err(e) = start_workflow(config, &client, &key, &spec, tuning).await {
        // Leave nothing behind: the campaign row without its workflow would never run.
        ledger::delete_unstarted(&pool, &key).await.ok();
        return Err(e);
    }
    println!("{key}");
    eprintln!(
        "launched {key}: {} recipients, {} per page, up to {} lanes{}; follow it with `herald watch {key}`",
        registered.total,
        spec.page_size,
        spec.lanes,
        send_at
            .map(|t| format!(", starting at {}", t.to_rfc3339()))
            .unwrap_or_default(),
    );
    Ok(())
}

async fn start_workflow(
    config: &Config,
    client: &Client,
    key: &CampaignKey,
    spec: &CampaignSpec,
    tuning: Tuning,
) -> Result<()> {
    let input = CampaignInput {
        key: key.clone(),
        spec: spec.clone(),
        carried: None,
        tuning,
    };
    let options = WorkflowStartOptions::new(config.task_queue.clone(), names::workflow_id(key))
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        // See `herald_workflows::options::TASK_TIMEOUT`: signal latency and crash recovery.
        .task_timeout(herald_workflows::options::TASK_TIMEOUT)
        .static_summary(format!("Herald campaign {key}: {}", spec.content.title()))
        .build();
    client
        .start_workflow(CampaignWorkflow::run, input, options)
        .await
        .map_err(|e| match e {
            temporalio_client::errors::WorkflowStartError::AlreadyStarted { .. } => refused(
                format!("campaign {key} already has a workflow; pick another --key"),
            ),
            other => anyhow!("starting the campaign workflow: {other}"),
        })?;
    Ok(())
}

async fn signal(config: &Config, req: Request, args: SignalArgs) -> Result<()> {
    let pool = database(config).await?;
    let client = connect_temporal(config).await?;
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    // The database first: once this commits, no new page starts writing. The signal then
    // tells the workflow, which stops scheduling pages and mirrors the status itself.
    let before = ledger::request(&pool, &args.key, req, reason).await?;
    let handle = client.get_workflow_handle::<CampaignWorkflow>(names::workflow_id(&args.key));
    let payload = RawValue::from_value(
        &SignalRequest::with_reason(reason.map(str::to_owned)),
        &PayloadConverter::default(),
    );
    let options = WorkflowSignalOptions::default();
    let sent = match req {
        Request::Pause => {
            handle
                .signal(CampaignWorkflow::pause, payload, options)
                .await
        }
        Request::Resume => {
            handle
                .signal(CampaignWorkflow::resume, payload, options)
                .await
        }
        Request::Cancel => {
            handle
                .signal(CampaignWorkflow::cancel, payload, options)
                .await
        }
    };
    if let Err(e) = sent {
        ledger::restore_status(&pool, &args.key, before).await.ok();
        return Err(anyhow!(
            "signalling campaign {}: {e}; nothing was changed",
            args.key
        ));
    }
    let done = match req {
        Request::Pause => "paused: no new page starts; a page already in flight finishes",
        Request::Resume => "resumed: continuing from the next unprocessed recipient",
        Request::Cancel => "cancelled: no new page starts",
    };
    println!("{} {done}", args.key);
    Ok(())
}

async fn status(config: &Config, key: &CampaignKey, json: bool) -> Result<()> {
    let pool = database(config).await?;
    let view = ledger::campaign(&pool, key).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print_view(&view);
    }
    Ok(())
}

fn print_view(v: &CampaignView) {
    let pct = |n: i64| {
        if v.total > 0 {
            100.0 * n as f64 / v.total as f64
        } else {
            0.0
        }
    };
    println!("campaign  {}  [{} = {}]", v.key, v.status, v.status_name);
    println!("title     {}", v.title);
    println!(
        "audience  {} ({}), {} per page, {} lanes{}",
        v.total,
        v.segment
            .as_deref()
            .map(|s| format!("segment {s}"))
            .unwrap_or_else(|| "all users".into()),
        v.page_size,
        v.lanes,
        v.rate
            .map(|r| format!(", at most {r}/s"))
            .unwrap_or_default()
    );
    println!(
        "progress  {} sent ({:.1}%), {} failed, {} pending",
        v.sent,
        pct(v.sent),
        v.failed,
        v.pending
    );
    println!("read      {} ({:.1}% of sent)", v.read, 100.0 * v.read_rate);
    if let Some(r) = &v.reason {
        println!("reason    {r}");
    }
    for (label, t) in [
        ("send at", v.send_at),
        ("started", v.started_at),
        ("paused", v.paused_at),
        ("finished", v.finished_at),
    ] {
        if let Some(t) = t {
            println!("{label:<9} {}", t.to_rfc3339());
        }
    }
}

async fn list(config: &Config, limit: i64, json: bool) -> Result<()> {
    let pool = database(config).await?;
    let views = ledger::campaigns(&pool, limit.clamp(1, 1000)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    if views.is_empty() {
        println!("no campaigns yet; launch one with `herald launch --title T --body B`");
        return Ok(());
    }
    println!(
        "{:<32} {:<12} {:>10} {:>10} {:>8} {:>8}",
        "KEY", "STATUS", "TOTAL", "SENT", "FAILED", "READ"
    );
    for v in views {
        println!(
            "{:<32} {:<12} {:>10} {:>10} {:>8} {:>8}",
            v.key, v.status_name, v.total, v.sent, v.failed, v.read
        );
    }
    Ok(())
}

async fn inbox(config: &Config, user: i64, limit: i64, json: bool) -> Result<()> {
    let pool = database(config).await?;
    if !ledger::user_exists(&pool, user).await? {
        return Err(refused(format!("no user with id {user}")));
    }
    let items = ledger::inbox(&pool, user, limit.clamp(1, 1000)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if items.is_empty() {
        println!("user {user} has no messages");
    }
    for i in items {
        println!(
            "{} {:<24} {}",
            if i.read_at.is_some() { " " } else { "*" },
            i.key,
            i.title
        );
    }
    Ok(())
}

async fn read(config: &Config, user: i64, key: &CampaignKey) -> Result<()> {
    let pool = database(config).await?;
    if !ledger::user_exists(&pool, user).await? {
        return Err(refused(format!("no user with id {user}")));
    }
    if ledger::mark_read(&pool, user, key).await? {
        println!("user {user} read {key}");
    } else {
        println!("user {user} had already read {key}");
    }
    Ok(())
}

pub fn progress_bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40.cyan/blue}} {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}} {{msg}}"
        ))
        .expect("valid template"),
    );
    bar
}
