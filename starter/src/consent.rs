//! `herald categories`, `herald opt-out`, `herald preferences`, `herald suppressions` and
//! `herald settings`.

use anyhow::{Context, Result};
use clap::Subcommand;
use herald_control::Control;
use herald_control::consent::SuppressionReason;

use crate::shared::actor;

#[derive(Subcommand)]
pub(crate) enum CategoriesCommand {
    /// Every category, with how many users opted out of it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Declare a category campaigns may be launched in (--category NAME); idempotent.
    Add {
        /// 1–40 characters of a-z, 0-9, _ and -.
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum SettingsCommand {
    /// The frequency cap of launches that name none (--frequency-cap): e.g. 2/24h, or none
    /// for uncapped. Campaigns launched before keep theirs.
    FrequencyCap { cap: String },
}

#[derive(Subcommand)]
pub(crate) enum SuppressionsCommand {
    /// The newest entries of the list.
    List {
        /// inbox, webhook or email; every channel when omitted.
        #[arg(long)]
        channel: Option<String>,
        /// Only addresses containing this.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Suppress one address (an e-mail address, or a user id for inbox and webhook).
    Add {
        address: String,
        #[arg(long, default_value = "email")]
        channel: String,
        /// Why, kept with the entry.
        #[arg(long)]
        note: Option<String>,
    },
    /// Suppress the addresses of a CSV file: the address in the first column, an optional
    /// note in the second, an optional header line. A bad line imports nothing.
    Import {
        file: std::path::PathBuf,
        #[arg(long, default_value = "email")]
        channel: String,
    },
    /// Take an address off the list: campaigns may send to it again.
    Remove {
        address: String,
        #[arg(long, default_value = "email")]
        channel: String,
    },
}

pub async fn settings(control: &Control, command: Option<SettingsCommand>) -> Result<()> {
    let cap = match command {
        None => control.default_cap().await?,
        Some(SettingsCommand::FrequencyCap { cap }) => {
            control.set_default_cap(&cap, &actor()).await?
        }
    };
    match cap {
        Some(cap) => println!("frequency-cap  {cap}  (launches that name none get it)"),
        None => println!("frequency-cap  none  (launches that name none are not capped)"),
    }
    Ok(())
}

pub async fn categories(control: &Control, command: CategoriesCommand) -> Result<()> {
    match command {
        CategoriesCommand::List { json } => {
            let all = control.categories().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            for c in all {
                println!(
                    "{:<24} {:>9} opted out  {}",
                    c.name,
                    c.opted_out,
                    c.description.unwrap_or_default()
                );
            }
        }
        CategoriesCommand::Add { name, description } => {
            let added = control
                .add_category(&name, description.as_deref(), &actor())
                .await?;
            if added {
                println!("category {name} declared: launch with --category {name}");
            } else {
                println!("category {name} exists already");
            }
        }
    }
    Ok(())
}

pub async fn opt_out(control: &Control, user: i64, category: &str, channel: &str) -> Result<()> {
    let new = control.opt_out(user, category, channel, &actor()).await?;
    let on = if channel == "all" {
        "every channel".to_owned()
    } else {
        channel.to_owned()
    };
    if new {
        println!("user {user} opted out of {category} on {on}");
    } else {
        println!("user {user} had opted out of {category} on {on} already");
    }
    Ok(())
}

pub async fn import_opt_outs(
    control: &Control,
    file: &std::path::Path,
    category: &str,
    channel: &str,
) -> Result<()> {
    let done = control
        .import_opt_outs(&read_list(file)?, category, channel, &actor())
        .await?;
    println!(
        "{} opt-outs read, {} new ({} were there already)",
        done.read,
        done.added,
        already(&done)
    );
    Ok(())
}

pub async fn preferences(control: &Control, user: i64, json: bool) -> Result<()> {
    let opt_outs = control.preferences(user).await?;
    if json {
        let out = serde_json::json!({ "user_id": user, "opt_outs": opt_outs });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if opt_outs.is_empty() {
        println!("user {user} has opted out of nothing");
    }
    for o in opt_outs {
        println!(
            "{:<24} {:<8} {}  {} {}",
            o.category,
            o.channel,
            o.created_at.to_rfc3339(),
            o.source,
            o.actor.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn suppressions(control: &Control, command: SuppressionsCommand) -> Result<()> {
    match command {
        SuppressionsCommand::List {
            channel,
            search,
            limit,
            json,
        } => {
            let (entries, total) = control
                .suppressions(channel.as_deref(), search.as_deref(), None, limit)
                .await?;
            if json {
                let out = serde_json::json!({ "total": total, "suppressions": entries });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            for e in &entries {
                println!(
                    "{:<8} {:<40} {:<9} {}  {}",
                    e.channel,
                    e.address,
                    e.reason,
                    e.created_at.to_rfc3339(),
                    e.detail.as_deref().unwrap_or_default()
                );
            }
            println!("{} of {total} shown", entries.len());
        }
        SuppressionsCommand::Add {
            address,
            channel,
            note,
        } => {
            let done = control
                .suppress(
                    &channel,
                    &[(address.clone(), note)],
                    SuppressionReason::Operator,
                    &actor(),
                )
                .await?;
            if done.added == 1 {
                println!("{address} suppressed on {channel}");
            } else {
                println!("{address} was suppressed on {channel} already");
            }
        }
        SuppressionsCommand::Import { file, channel } => {
            let done = control
                .import_suppressions(&channel, &read_list(&file)?, &actor())
                .await?;
            println!(
                "{} addresses read, {} newly suppressed on {channel} ({} were already)",
                done.read,
                done.added,
                already(&done)
            );
        }
        SuppressionsCommand::Remove { address, channel } => {
            if control.unsuppress(&channel, &address).await? {
                println!("{address} is no longer suppressed on {channel}");
            } else {
                anyhow::bail!(herald_control::ControlError::NotFound(format!(
                    "{address} is not suppressed on {channel}"
                )));
            }
        }
    }
    Ok(())
}

/// The text of a list to import, or an error naming the file.
fn read_list(file: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

/// Of an import's entries, those that were there already (or repeated in the list).
fn already(done: &herald_control::consent::Imported) -> u64 {
    done.read as u64 - done.added
}
