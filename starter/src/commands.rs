//! One function per subcommand: build the request, call the control layer, print the result.

use anyhow::Result;
use herald_control::{
    CampaignView, Config, Control, ControlError, ReadFilter, Request, RequestMade, page::Limit,
};
use herald_wire::{CampaignKey, Intent, Rate, local};

use crate::{
    Command, KeysCommand, RequestArgs,
    shared::{actor, connect},
    watch,
};

pub async fn run(config: Config, command: Command) -> Result<()> {
    match command {
        // Parsed before anything is reached, so bad input is refused even with the services
        // down, and changes nothing.
        Command::Launch(args) => crate::launch::launch(config, args).await,
        Command::Audience { command } => crate::launch::audience(config, command).await,
        Command::Preview { of, users, json } => {
            crate::launch::preview(config, of, users, json).await
        }
        Command::TestSend { of, to, json } => crate::launch::test_send(config, of, to, json).await,
        Command::Users { command } => crate::users::run(config, command).await,
        Command::Pause(args) => request(&connect(config, 1).await?, Request::Pause, args).await,
        Command::Resume(args) => request(&connect(config, 1).await?, Request::Resume, args).await,
        Command::Cancel(args) => request(&connect(config, 1).await?, Request::Cancel, args).await,
        Command::Status { key, json } => status(&connect(config, 1).await?, &key, json).await,
        // A second session listens for status changes.
        Command::Watch { key } => watch::watch(&connect(config, 2).await?, &key).await,
        Command::List { limit, json } => list(&connect(config, 1).await?, limit, json).await,
        Command::Inbox { user, limit, json } => {
            inbox(&connect(config, 1).await?, user, limit, json).await
        }
        Command::Read { user, key } => read(&connect(config, 1).await?, user, &key).await,
        Command::Rate { key, rate } => set_rate(&connect(config, 1).await?, &key, rate.0).await,
        Command::Report {
            key,
            json,
            csv,
            failed,
        } => report(&connect(config, 1).await?, &key, json, csv, failed).await,
        Command::RetryFailed { key } => retry_failed(&connect(config, 1).await?, &key).await,
        Command::Keys { command } => keys(&connect(config, 1).await?, command).await,
        Command::Settings { command } => {
            crate::consent::settings(&connect(config, 1).await?, command).await
        }
        Command::Categories { command } => {
            crate::consent::categories(&connect(config, 1).await?, command).await
        }
        Command::OptOut {
            user,
            file,
            category,
            channel,
        } => {
            let control = connect(config, 1).await?;
            match (user, file) {
                (_, Some(file)) => {
                    crate::consent::import_opt_outs(&control, &file, &category, &channel).await
                }
                (Some(user), None) => {
                    crate::consent::opt_out(&control, user, &category, &channel).await
                }
                (None, None) => unreachable!("clap asks for a user or --file"),
            }
        }
        Command::Preferences { user, json } => {
            crate::consent::preferences(&connect(config, 1).await?, user, json).await
        }
        Command::Suppressions { command } => {
            crate::consent::suppressions(&connect(config, 1).await?, command).await
        }
        Command::Migrate => {
            Control::migrate(config).await?;
            println!("the database's schema is up to date");
            Ok(())
        }
    }
}

async fn request(control: &Control, request: Request, args: RequestArgs) -> Result<()> {
    let recorded = control
        .request(&args.key, request, args.reason.as_deref(), &actor())
        .await?;
    let done = match request {
        Request::Pause => "paused: no new page starts; a page already in flight finishes",
        Request::Resume if !recorded.status.is_held() && recorded.before == Intent::Run => {
            "was not paused; the resume is recorded (it overrides any pause still on its way)"
        }
        Request::Resume => "resumed: continuing from the next unprocessed recipient",
        Request::Cancel => "cancelled: no new page starts",
    };
    let again = if recorded.repeated {
        format!(" (request {} again)", recorded.requested.seq)
    } else {
        String::new()
    };
    println!("{} {done}{again}", args.key);
    if recorded.recovered {
        println!(
            "{} had no workflow running it: a new run was started, going on from where its pages stand",
            args.key
        );
    }
    match &recorded.applied {
        Some(applied) if applied.following.intent != request.intent() => println!(
            "{}: a later request (number {}, {}) overtook this one; the campaign is {}",
            args.key,
            applied.following.seq,
            applied.following.intent.name(),
            applied.status.name()
        ),
        Some(_) => {}
        None if recorded.recovered => {}
        None if recorded.channel.is_external() && request != Request::Resume => println!(
            "{}: its workflow has not confirmed the request yet (is a worker running?); \
             no new send starts from now on (every worker's last look at the campaign's row \
             has expired), and `herald status {}` shows when it has taken it",
            args.key, args.key
        ),
        None => println!(
            "{}: its workflow has not confirmed the request yet (is a worker running?); \
             it takes it when it runs, and `herald status {}` shows when it has",
            args.key, args.key
        ),
    }
    Ok(())
}

async fn set_rate(control: &Control, key: &CampaignKey, rate: Option<Rate>) -> Result<()> {
    let changed = control.set_rate(key, rate, &actor()).await?;
    let was = changed
        .before
        .map(|r| format!("{r}/s"))
        .unwrap_or_else(|| "no limit".into());
    match rate {
        Some(r) => println!("campaign {key}: at most {r} recipients/s from now (was {was})"),
        None => println!("campaign {key}: no speed limit from now (was {was})"),
    }
    if !changed.applied {
        println!(
            "campaign {key}: its workflow has not confirmed the change yet (is a worker running?); \
             it paces its pages by it when it runs"
        );
    }
    Ok(())
}

async fn report(
    control: &Control,
    key: &CampaignKey,
    json: bool,
    csv: bool,
    failed: i64,
) -> Result<()> {
    if csv {
        return failures_csv(control, key).await;
    }
    let report = control.report(key, failed).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let c = &report.campaign;
    println!(
        "campaign  {}  [{} = {}] via {}: {} recipients",
        c.key,
        c.status.code(),
        c.status.name(),
        c.channel,
        c.total
    );
    println!(
        "outcome   {} sent, {} failed, {} pending",
        c.sent, c.failed, c.pending
    );
    if let Some(reason) = &c.reason {
        println!("reason    {reason}");
    }
    if !report.outcomes.is_empty() {
        println!("\nby outcome and error class:");
        for o in &report.outcomes {
            println!(
                "  {:<8} {:<12} {:>9}{}",
                o.outcome,
                o.class.as_deref().unwrap_or("-"),
                o.items,
                if o.retried > 0 {
                    format!("  ({} after more than one try)", o.retried)
                } else {
                    String::new()
                }
            );
        }
    }
    if !report.top_errors.is_empty() {
        println!("\ntop errors:");
        for e in &report.top_errors {
            println!("  {:>9}  {}", e.items, e.error);
        }
    }
    if !report.failed.is_empty() {
        println!(
            "\nfailed recipients ({} of {}; `--csv` lists them all):",
            report.failed.len(),
            c.failed
        );
        let width = report
            .failed
            .iter()
            .map(|f| f.email.len())
            .max()
            .unwrap_or(0);
        for f in &report.failed {
            let tries = match f.attempts {
                1 => "1 try".to_owned(),
                n => format!("{n} tries"),
            };
            println!(
                "  {:>10}  {:<width$}  {tries:>9}  {}",
                f.user_id,
                f.email,
                f.error.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}

/// Every failed recipient, as CSV, in id order.
async fn failures_csv(control: &Control, key: &CampaignKey) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "user_id,email,attempts,error_class,error,last_try")?;
    let mut after = 0;
    loop {
        let batch = control.failures(key, after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.user_id;
        for f in &batch {
            writeln!(
                out,
                "{},{},{},{},{},{}",
                f.user_id,
                csv_field(&f.email),
                f.attempts,
                csv_field(f.error_class.as_deref().unwrap_or_default()),
                csv_field(f.error.as_deref().unwrap_or_default()),
                f.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn retry_failed(control: &Control, key: &CampaignKey) -> Result<()> {
    match control.retry_failed(key, &actor()).await?.failed {
        Some(n) => println!(
            "campaign {key}: retrying {n} failed deliveries (same idempotency ids); follow it with `herald watch {key}`"
        ),
        None => println!(
            "campaign {key}: in progress; its run is started again if it had none; follow it with `herald watch {key}`"
        ),
    }
    Ok(())
}

async fn status(control: &Control, key: &CampaignKey, json: bool) -> Result<()> {
    let view = control.campaign(key).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        let asked = control.last_request(key).await?;
        print_view(&view, asked.as_ref());
        if !view.status.is_terminal() {
            let state = control.workflow_state(key).await;
            // A campaign that ended between the two looks has no workflow for good reason.
            let now = control.campaign(key).await?;
            if let Some(note) = state
                .note(key, now.intent)
                .filter(|_| !now.status.is_terminal())
            {
                println!("workflow  {note}");
            }
        }
    }
    Ok(())
}

fn print_view(v: &CampaignView, asked: Option<&RequestMade>) {
    let of = v.total.max(v.done());
    let pct = |n: i64| {
        if of > 0 {
            100.0 * n as f64 / of as f64
        } else {
            0.0
        }
    };
    println!(
        "campaign  {}  [{} = {}]{}",
        v.key,
        v.status.code(),
        v.status.name(),
        v.pending_request()
            .map(|r| format!(", {r}"))
            .unwrap_or_default()
    );
    println!("title     {}", v.title);
    println!(
        "audience  {} ({}) via {}, {}, {} per page, {} lanes{}",
        v.total,
        match (&v.segment, &v.audience) {
            (Some(s), _) => format!("segment {s}"),
            (None, Some(filter)) => format!("filter {}", filter.0),
            (None, None) => "all users".into(),
        },
        v.channel,
        v.category,
        v.page_size,
        v.lanes,
        v.rate
            .map(|r| format!(", at most {r}/s"))
            .unwrap_or_default()
    );
    let capped = match &v.frequency_cap {
        Some(cap) => format!(", {} capped ({cap})", v.capped),
        None => String::new(),
    };
    println!(
        "progress  {} sent ({:.1}%), {} failed, {} suppressed{capped}, {} pending",
        v.sent,
        pct(v.sent),
        v.failed,
        v.suppressed,
        v.pending
    );
    print_waves(v);
    match v.audience_change {
        0 => {}
        n if n > 0 => println!(
            "audience  changed during the run: {n} more recipients than the {} counted at launch \
             (users added while it counted, with explicit ids, or who came to match its audience)",
            v.total
        ),
        n => println!(
            "audience  changed during the run: {} of the {} counted at launch left it before their page",
            -n, v.total
        ),
    }
    if let (Some(min), Some(max)) = (v.min_user_id, v.max_user_id) {
        if !v.status.is_terminal() {
            println!(
                "scanned   {:.1}% of the audience's user ids ({min}–{max})",
                100.0 * v.scanned
            );
        }
        println!(
            "members   read as each page reaches them, among the ids the audience spanned at \
             launch ({min}–{max}); each user at most once"
        );
    }
    println!("read      {} ({:.1}% of sent)", v.read, 100.0 * v.read_rate);
    if let Some(r) = &v.reason {
        println!("reason    {r}");
    }
    let by = |who: &Option<String>| {
        who.as_deref()
            .map(|w| format!("  by {w}"))
            .unwrap_or_default()
    };
    println!(
        "launched  {}{}",
        v.created_at.to_rfc3339(),
        by(&v.created_by)
    );
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
    if let Some(asked) = asked {
        println!(
            "asked     {} {}{}",
            asked.request,
            asked.at.to_rfc3339(),
            by(&asked.actor)
        );
    }
}

/// A local-time campaign's waves: when each opens, its zones, and what it has done.
fn print_waves(v: &CampaignView) {
    let waves = v.waves();
    if v.waves.is_none() {
        return;
    }
    let at = match &v.send_at_local {
        Some(at) => format!("{at} in each recipient's time zone"),
        None => "at once".to_owned(),
    };
    let quiet = v
        .quiet_hours
        .as_deref()
        .map(|q| format!(", quiet hours {q}"))
        .unwrap_or_default();
    let fallback = v
        .fallback_timezone
        .as_deref()
        .map(|z| format!(", {z} for users with none"))
        .unwrap_or_default();
    let skipped = match v.skipped.unwrap_or(0) {
        0 => String::new(),
        n => format!(", {n} users skipped (their time had passed)"),
    };
    println!(
        "local     {at}{quiet}{fallback}: {} waves{skipped}",
        waves.len()
    );
    if let (Some(n), Some(until)) = (v.held, v.held_until) {
        println!(
            "held      {n} recipients in their quiet hours; the next are released {}",
            until.to_rfc3339()
        );
    }
    let now = chrono::Utc::now();
    for w in waves {
        let offsets = local::offset_names(&w.offsets);
        let done = w.done();
        let state = match (w.opened, w.opens_at > now) {
            _ if let Some(until) = w.held_until => {
                format!("held until {}", until.format("%H:%MZ"))
            }
            (false, true) => format!("opens in {}", short_duration(w.opens_at - now)),
            (false, false) => "opening".to_owned(),
            (true, _) => format!("{done} done ({} sent)", w.sent),
        };
        let zones = match w.zones.len() {
            0..=3 => w.zones.join(" "),
            n => format!("{} and {} more", w.zones[..2].join(" "), n - 2),
        };
        println!(
            "  wave    {:<13} {}  {:>9} users  {state:<24} {zones}",
            offsets.join(","),
            w.opens_at.format("%Y-%m-%d %H:%MZ"),
            w.size,
        );
    }
    if let (Some(next), Some(last)) = (v.next_wave_at(), waves.last()) {
        if !v.status.is_terminal() {
            println!(
                "next      wave opens {} (in {}); the last opens {}, so the campaign ends after that",
                next.to_rfc3339(),
                short_duration(next - now),
                last.opens_at.to_rfc3339()
            );
        }
    }
}

/// `1 h 5 min`, `3 min 20 s`, `12 s`.
fn short_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        ..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        86_400.. => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

async fn list(control: &Control, limit: i64, json: bool) -> Result<()> {
    let limit = Limit::new(limit).map_err(ControlError::from)?;
    let views = control.campaigns(None, limit, None).await?.items;
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
            v.key.as_str(),
            v.status.name(),
            v.total,
            v.sent,
            v.failed,
            v.read
        );
    }
    Ok(())
}

async fn inbox(control: &Control, user: i64, limit: i64, json: bool) -> Result<()> {
    let limit = Limit::new(limit).map_err(ControlError::from)?;
    let items = control
        .inbox(user, ReadFilter::All, limit, None)
        .await?
        .page
        .items;
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
            i.key.as_str(),
            i.title
        );
    }
    Ok(())
}

async fn read(control: &Control, user: i64, key: &CampaignKey) -> Result<()> {
    if control.read(user, key).await? {
        println!("user {user} read {key}");
    } else {
        println!("user {user} had already read {key}");
    }
    Ok(())
}

/// `herald keys …`.
async fn keys(control: &Control, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create { name, scopes } => {
            let key = control.create_key(&name, &scopes.0, &actor()).await?;
            println!("{key}");
            eprintln!(
                "key {name} ({}) made; it is shown this once: keep it where its user will find it",
                herald_wire::keys::list(&scopes.0)
            );
        }
        KeysCommand::List { json } => {
            let keys = control.keys().await?;
            if json {
                let rows: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "name": k.name, "scopes": k.scopes, "created_by": k.created_by,
                            "created_at": k.created_at, "revoked_at": k.revoked_at,
                            "sessions": k.sessions,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if keys.is_empty() {
                eprintln!("no keys yet; make one with `herald keys create NAME --scopes read`");
            } else {
                for k in keys {
                    let state = match k.revoked_at {
                        Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M UTC")),
                        None => format!("{} open sessions", k.sessions),
                    };
                    println!(
                        "{}  {}  made by {} {}  {state}",
                        k.name,
                        k.scopes.join(","),
                        k.created_by,
                        k.created_at.format("%Y-%m-%d %H:%M UTC")
                    );
                }
            }
        }
        KeysCommand::Revoke { name } => {
            let sessions = control.revoke_key(&name).await?;
            println!("key {name} revoked; {sessions} dashboard sessions ended");
        }
    }
    Ok(())
}
