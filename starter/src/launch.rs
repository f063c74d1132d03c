//! `herald launch` and `herald audience`: flags as typed, checked by the control layer
//! ([`LaunchFields`]); an error about a field is shown at its flag.

use anyhow::Result;
use chrono::Utc;
use clap::{Args, Subcommand};
use herald_control::{
    ControlError, Preview,
    launch::{AudienceGiven, LaunchFields, split_field},
};
use herald_wire::local::{self, WavePlan};

use crate::shared::{actor, connect};

#[derive(Args)]
pub struct LaunchArgs {
    /// The title (at most 200 bytes; a template: docs/templates.md). Required.
    #[arg(long)]
    title: Option<String>,
    /// Message body (at most 32 KiB; a template). Required.
    #[arg(long)]
    body: Option<String>,
    /// E-mail only: a subject of its own (else the title is the subject).
    #[arg(long)]
    subject: Option<String>,
    /// E-mail only: an HTML part, as text or `@file.html`, sent with the body as
    /// multipart/alternative. A template like the body (docs/templates.md).
    #[arg(long)]
    html: Option<String>,
    /// Campaign key; generated when omitted. The same launch again reports the campaign and
    /// starts nothing; a different campaign under an existing key is refused.
    #[arg(long)]
    key: Option<String>,
    /// Only users carrying this segment; every user when no audience is given. Short for
    /// `--audience '{"segment": S}'`.
    #[arg(long)]
    segment: Option<String>,
    /// Only the users this filter holds, as JSON or `@file.json`: e.g. `{"all": [{"attr":
    /// "plan", "eq": "pro"}, {"attr": "last_seen", "after": "-30d"}]}` (docs/audiences.md).
    #[arg(long)]
    audience: Option<String>,
    /// Only the users of the audience saved under this name (`herald audience save`).
    #[arg(long)]
    audience_name: Option<String>,
    /// Count the audience, each top-level clause and the first members, check every flag as
    /// a launch would, and launch nothing.
    #[arg(long)]
    dry_run: bool,
    /// When to start, RFC 3339 (e.g. 2026-12-01T09:00:00Z); at once when omitted.
    #[arg(long)]
    send_at: Option<String>,
    /// Instead of --send-at: a wall time (e.g. 2027-03-01T09:00) sent when it is that time in
    /// each recipient's own time zone, one wave per UTC offset (docs/local-time.md).
    #[arg(long)]
    send_at_local: Option<String>,
    /// The IANA time zone of users who have none (required when some have none).
    #[arg(long)]
    fallback_timezone: Option<String>,
    /// Zones where --send-at-local has passed at launch: "send-now", "skip" (left out) or
    /// "next-day" (the default).
    #[arg(long)]
    past_zones: Option<String>,
    /// A daily window of each recipient's local time in which nobody is sent to (e.g.
    /// 21:00-08:00); those it holds are sent when it ends. Users without a zone take
    /// --fallback-timezone.
    #[arg(long)]
    quiet_hours: Option<String>,
    /// At most this many capped campaigns reach a user in a window (e.g. 2/24h: two a day,
    /// this one included); those over it are left out and counted capped. "none": not
    /// capped. Default: the cap set with `herald settings frequency-cap`, if any.
    /// Transactional campaigns are never capped.
    #[arg(long)]
    frequency_cap: Option<String>,
    /// Recipients per page, 1–10000 (default 500).
    #[arg(long)]
    page_size: Option<String>,
    /// Pages in flight at once, each over its own range of users, 1–64 (default 8).
    #[arg(long)]
    lanes: Option<String>,
    /// Where to deliver: "inbox" (in-app, the default), "webhook" (a signed POST per
    /// recipient to --webhook-url) or "email" (through HERALD_SMTP_URL, from
    /// HERALD_EMAIL_FROM).
    #[arg(long)]
    channel: Option<String>,
    /// What it is about, for users' opt-outs: "marketing" (the default), "transactional"
    /// (receipts, security notices: sent to users who opted out) or a category declared
    /// with `herald categories add`.
    #[arg(long)]
    category: Option<String>,
    /// The webhook channel's endpoint, http(s); requests are signed with
    /// HERALD_WEBHOOK_SECRET.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Webhook or e-mail tries per recipient before it is recorded failed, 1–20 (default 5).
    #[arg(long)]
    attempts: Option<String>,
    /// Pause the campaign by itself when more than this percentage of its latest
    /// --auto-pause-window deliveries failed (default 20; 0: never).
    #[arg(long)]
    auto_pause: Option<String>,
    /// How many of the latest deliveries --auto-pause looks at (default 1000).
    #[arg(long)]
    auto_pause_window: Option<String>,
    /// Page activities: "local" (fast: run inside the workflow task; the inbox's default) or
    /// "regular" (the webhook's and e-mail's).
    #[arg(long)]
    execution: Option<String>,
    /// At most this many recipients per second, 1–10000000 (default: as fast as the
    /// database allows); slow rates send smaller pages, about one per lane per second.
    #[arg(long)]
    rate: Option<String>,
    /// Continue-as-new after this many pages (bounds each workflow run's history; tests set
    /// it low to cross run boundaries with small audiences).
    #[arg(long, hide = true)]
    pages_per_run: Option<u32>,
    /// Seconds an error that retrying cannot fix is retried before the campaign is marked
    /// failed (default 30; tests set it low).
    #[arg(long, hide = true)]
    failure_grace: Option<u32>,
    /// Continue-as-new once a run's history holds this many events (default 8000; tests set
    /// it low to prove that every wait stays bounded).
    #[arg(long, hide = true)]
    history_events: Option<u32>,
}

#[derive(Subcommand)]
pub enum AudienceCommand {
    /// Save a filter under a name (replacing any saved under it), checked as a launch
    /// checks it; launch with `herald launch --audience-name NAME`. A campaign keeps the
    /// filter it was launched with: saving again changes no campaign.
    Save {
        name: String,
        /// The filter, as JSON or `@file.json`.
        filter: String,
    },
    /// List the saved audiences.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Forget a saved audience (campaigns launched with it keep their copy).
    Delete { name: String },
}

/// A field's error at the flag (or argument) that gave it: `send_at` is `--send-at`, and
/// `audience.all[2]` is `--audience` with the path inside the filter.
fn at_flag(e: ControlError, flag: impl Fn(&str) -> String) -> ControlError {
    let place = |field: String| {
        if field.is_empty() {
            return field;
        }
        match split_field(&field) {
            (head, "") => flag(head),
            (head, rest) => format!("{} at {rest}", flag(head)),
        }
    };
    match e {
        ControlError::Field { field, message } => ControlError::Field {
            field: place(field),
            message,
        },
        ControlError::Unmet { field, message } => ControlError::Unmet {
            field: place(field),
            message,
        },
        other => other,
    }
}

fn launch_flag(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// A filter as typed: its JSON, or `@path` to a file holding it.
fn filter_text(given: &str, flag: &str) -> Result<String, ControlError> {
    match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| ControlError::Field {
            field: flag.to_owned(),
            message: format!("cannot read {path}: {e}"),
        }),
        None => Ok(given.to_owned()),
    }
}

impl LaunchArgs {
    fn fields(&self) -> Result<LaunchFields, ControlError> {
        let audience = self
            .audience
            .as_deref()
            .map(|a| filter_text(a, "audience").map(AudienceGiven::Text))
            .transpose()?;
        let required = |field: &str, given: &Option<String>| {
            given.clone().ok_or_else(|| ControlError::Field {
                field: field.to_owned(),
                message: format!("a campaign needs a {field}"),
            })
        };
        Ok(LaunchFields {
            key: self.key.clone(),
            title: required("title", &self.title)?,
            body: required("body", &self.body)?,
            subject: self.subject.clone(),
            html: self
                .html
                .as_deref()
                .map(|h| filter_text(h, "html"))
                .transpose()?,
            channel: self.channel.clone(),
            category: self.category.clone(),
            segment: self.segment.clone(),
            audience,
            audience_name: self.audience_name.clone(),
            send_at: self.send_at.clone(),
            send_at_local: self.send_at_local.clone(),
            fallback_timezone: self.fallback_timezone.clone(),
            past_zones: self.past_zones.clone(),
            quiet_hours: self.quiet_hours.clone(),
            frequency_cap: self.frequency_cap.clone(),
            page_size: self.page_size.clone(),
            lanes: self.lanes.clone(),
            rate: self.rate.clone(),
            webhook_url: self.webhook_url.clone(),
            attempts: self.attempts.clone(),
            auto_pause: self.auto_pause.clone(),
            auto_pause_window: self.auto_pause_window.clone(),
            execution: self.execution.clone(),
        })
    }
}

/// `herald launch`: every flag is checked before anything is reached, so bad input is
/// refused even with the services down, and changes nothing.
pub async fn launch(config: herald_control::Config, args: LaunchArgs) -> Result<()> {
    let checked = args
        .fields()
        .and_then(|f| f.check(Utc::now()).map_err(ControlError::from));
    let mut request = checked.map_err(|e| at_flag(e, launch_flag))?;
    if let Some(n) = args.pages_per_run {
        request.tuning.pages_per_run = n.max(1);
    }
    if let Some(secs) = args.failure_grace {
        request.tuning.failure_grace_secs = secs;
    }
    if let Some(events) = args.history_events {
        request.tuning.history_events = events.max(1);
    }
    let control = connect(config, 1).await?;
    let rate = request.spec.rate.map(|r| r.get());
    if args.dry_run {
        let preview = control
            .dry_run(request)
            .await
            .map_err(|e| at_flag(e, launch_flag))?;
        print_preview(&preview, rate);
        return Ok(());
    }
    let (page_size, lanes, send_at) = (
        request.spec.page_size,
        request.spec.lanes,
        request.spec.send_at,
    );
    let launched = control
        .launch(request, &actor())
        .await
        .map_err(|e| at_flag(e, launch_flag))?;
    let key = &launched.key;
    println!("{key}");
    if let Some(status) = launched.already {
        eprintln!(
            "campaign {key} was already launched with this spec and is {status} ({} recipients); nothing new was started",
            launched.total
        );
        return Ok(());
    }
    eprintln!(
        "launched {key}: {} recipients, {page_size} per page, up to {lanes} lanes{}; follow it with `herald watch {key}`",
        launched.total,
        send_at
            .map(|t| format!(", starting at {}", t.to_rfc3339()))
            .unwrap_or_default(),
    );
    Ok(())
}

fn print_preview(preview: &Preview, rate: Option<u32>) {
    println!(
        "{} recipients now (the launch fixes its own count)",
        preview.total
    );
    if !preview.clauses.is_empty() {
        println!("each clause by itself:");
        let width = preview
            .clauses
            .iter()
            .map(|(_, n)| n.to_string().len())
            .max()
            .unwrap_or(1);
        for (clause, n) in &preview.clauses {
            println!("  {n:>width$}  {clause}");
        }
    }
    let sample: Vec<String> = preview.sample.iter().map(i64::to_string).collect();
    println!("first members by id: {}", sample.join(", "));
    if let Some((cap, over)) = &preview.cap {
        println!(
            "frequency cap {cap}: up to {over} of them would be capped now (reached that often already)"
        );
    }
    if let Some(plan) = &preview.waves {
        print_waves(plan, rate);
    }
}

/// The waves a local-time launch would have now, and how long each takes at the rate.
fn print_waves(plan: &WavePlan, rate: Option<u32>) {
    println!(
        "{} waves, one per UTC offset at that local time{}:",
        plan.waves.len(),
        match plan.skipped {
            0 => String::new(),
            n => format!(" ({n} users skipped: {})", plan.skipped_zones.join(" ")),
        }
    );
    for w in &plan.waves {
        let offsets = local::offset_names(&w.offsets);
        let takes = match rate {
            Some(r) => format!(
                "takes about {} s at {r}/s",
                (w.size as u64).div_ceil(u64::from(r))
            ),
            None => "as fast as the database takes them".to_owned(),
        };
        let held = w
            .held_from
            .map(|t| format!(" (held by quiet hours from {})", t.to_rfc3339()))
            .unwrap_or_default();
        println!(
            "  {:<13} opens {}{held}  {:>9} recipients  {takes}  {}",
            offsets.join(","),
            w.opens_at.to_rfc3339(),
            w.size,
            w.zones.join(" ")
        );
    }
}

pub async fn audience(config: herald_control::Config, command: AudienceCommand) -> Result<()> {
    let argument = |field: &str| match field {
        "name" => "NAME".to_owned(),
        "filter" => "FILTER".to_owned(),
        other => other.to_owned(),
    };
    // The name is checked before anything is reached, as a launch's flags are.
    let checked = |name: &str| {
        herald_wire::audience::AudienceName::parse(name)
            .map_err(|e| at_flag(herald_wire::FieldError::at("name", e).into(), argument))
    };
    match command {
        AudienceCommand::Save { name, filter } => {
            checked(&name)?;
            let text = filter_text(&filter, "filter").map_err(|e| at_flag(e, argument))?;
            let control = connect(config, 1).await?;
            let saved = control
                .save_audience(&name, AudienceGiven::Text(text))
                .await
                .map_err(|e| at_flag(e, argument))?;
            println!(
                "{} {}: {} users match it now; launch with `herald launch --audience-name {} …`",
                if saved.created { "saved" } else { "replaced" },
                saved.name,
                saved.members,
                saved.name
            );
        }
        AudienceCommand::List { json } => {
            let saved = connect(config, 1).await?.audiences().await?;
            if json {
                let rows: Vec<serde_json::Value> = saved
                    .into_iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name,
                            "filter": serde_json::Value::from(s.filter),
                            "created_at": s.created_at,
                            "updated_at": s.updated_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if saved.is_empty() {
                eprintln!("no saved audiences; save one with `herald audience save NAME FILTER`");
            } else {
                for s in saved {
                    println!(
                        "{}  {}  (saved {})",
                        s.name,
                        s.filter,
                        s.updated_at.format("%Y-%m-%d %H:%M UTC")
                    );
                }
            }
        }
        AudienceCommand::Delete { name } => {
            checked(&name)?;
            connect(config, 1)
                .await?
                .delete_audience(&name)
                .await
                .map_err(|e| at_flag(e, argument))?;
            println!("deleted {name}");
        }
    }
    Ok(())
}

/// `herald preview` and `herald test-send`: a campaign launched already (its key), or the
/// launch flags of one not launched.
#[derive(Args)]
pub struct TryArgs {
    /// A launched campaign's key; or give launch flags (--title, --body, …) instead.
    #[arg(id = "campaign", value_name = "KEY", value_parser = parse_key, conflicts_with = "title")]
    campaign: Option<herald_wire::CampaignKey>,
    #[command(flatten)]
    launch: Option<LaunchArgs>,
}

fn parse_key(s: &str) -> Result<herald_wire::CampaignKey, String> {
    herald_wire::CampaignKey::parse(s).map_err(|e| e.to_string())
}

impl TryArgs {
    fn subject(&self) -> Result<herald_control::preview::Subject> {
        use herald_control::preview::Subject;
        match (&self.campaign, &self.launch) {
            (Some(key), _) => Ok(Subject::Campaign(key.clone())),
            (None, Some(args)) => {
                let checked = args
                    .fields()
                    .and_then(|f| f.check(Utc::now()).map_err(ControlError::from));
                let request = checked.map_err(|e| at_flag(e, launch_flag))?;
                Ok(Subject::Launch(Box::new(request)))
            }
            (None, None) => anyhow::bail!(ControlError::Field {
                field: String::new(),
                message: "name a campaign's key, or give its launch flags (--title, --body, …)"
                    .into(),
            }),
        }
    }
}

/// `herald preview`: the content rendered for each user, with the variables it read.
pub async fn preview(
    config: herald_control::Config,
    args: TryArgs,
    users: Vec<i64>,
    json: bool,
) -> Result<()> {
    let subject = args.subject()?;
    let control = connect(config, 1).await?;
    let shown = control
        .preview(subject, &users)
        .await
        .map_err(|e| at_flag(e, launch_flag))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    for (i, r) in shown.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("── user {} ──", r.user_id);
        if let Some(e) = &r.error {
            println!("cannot be rendered: {e}");
        } else {
            if let Some(s) = &r.subject {
                println!("subject   {s}");
            }
            println!("title     {}", r.title);
            println!("body\n{}", r.body);
            if let Some(h) = &r.html {
                println!("html\n{h}");
            }
        }
        if !r.variables.is_empty() {
            println!("reads     {}", r.variables.join(", "));
        }
        if !r.missing.is_empty() {
            println!("missing   {}", r.missing.join(", "));
        }
    }
    Ok(())
}

/// `herald test-send`: the campaign sent to the users named, marked as a test.
pub async fn test_send(
    config: herald_control::Config,
    args: TryArgs,
    users: Vec<i64>,
    json: bool,
) -> Result<()> {
    let subject = args.subject()?;
    let control = connect(config, 1).await?;
    let sent = control
        .test_send(subject, &users, &actor())
        .await
        .map_err(|e| at_flag(e, launch_flag))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sent)?);
        return Ok(());
    }
    for s in &sent {
        let what = match s.outcome {
            "shown" => {
                "rendered (a test puts nothing in an inbox: `herald preview` shows it)".to_owned()
            }
            "sent" => format!("sent as {}", s.delivery_id.as_deref().unwrap_or_default()),
            other => format!("{other}: {}", s.error.as_deref().unwrap_or_default()),
        };
        println!("user {:<10} {what}", s.user_id);
    }
    if sent
        .iter()
        .any(|s| s.outcome == "failed" || s.outcome == "render")
    {
        anyhow::bail!("some test sends did not go out");
    }
    Ok(())
}
