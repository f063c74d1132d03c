//! `herald users`: test users, imports, and one user as stored.

use std::time::Instant;

use anyhow::{Context, Result};
use herald_control::import::{ImportEvent, ImportOptions, TypeSource};
use herald_control::{Config, Control};
use herald_wire::Segment;

use crate::UsersCommand;
use crate::shared::{connect, progress_bar};

/// Refused rows printed one by one; past this, only counted.
const SHOWN_REFUSALS: u64 = 100;

pub async fn run(config: Config, command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::Seed {
            count,
            segment,
            attrs,
            allow_remote,
        } => {
            herald_control::users::seed_target_allowed(&config.database_url, allow_remote)?;
            seed(
                &connect(config, 1).await?,
                count,
                segment,
                attrs,
                allow_remote,
            )
            .await
        }
        UsersCommand::Import {
            file,
            format,
            types,
            strict,
        } => {
            let options = ImportOptions {
                format,
                types: types.unwrap_or_default(),
                strict,
            };
            // Two chunks are written at once (herald_control::import).
            import(&connect(config, 3).await?, &file, options).await
        }
        UsersCommand::Show { id } => {
            let control = connect(config, 1).await?;
            let user = control.user(id).await?;
            println!("{}", serde_json::to_string_pretty(&user)?);
            Ok(())
        }
    }
}

async fn seed(
    control: &Control,
    count: i64,
    segment: Option<Segment>,
    attrs: bool,
    allow_remote: bool,
) -> Result<()> {
    let bar = progress_bar(count.max(0) as u64, "users");
    let started = Instant::now();
    let seeded = control
        .seed_users(count, segment.as_ref(), attrs, allow_remote, |done| {
            bar.set_position(done as u64)
        })
        .await
        .context("adding users")?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "added {count} users (ids {}..={}{}{}) in {seconds:.1}s ({:.0}/s)",
        seeded.first_id,
        seeded.last_id,
        segment
            .map(|s| format!(", segment {s}"))
            .unwrap_or_default(),
        if attrs { ", demo attributes" } else { "" },
        count as f64 / seconds
    );
    Ok(())
}

async fn import(control: &Control, file: &std::path::Path, options: ImportOptions) -> Result<()> {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .expect("valid template"),
    );
    let mut shown = 0;
    let imported = control
        .import_users(file, options, |event| match event {
            ImportEvent::Types(types) => {
                for (name, (kind, source)) in types {
                    let how = match source {
                        TypeSource::Known => "as users have it",
                        TypeSource::Given => "given",
                        TypeSource::Inferred => "inferred from the first rows; --types overrides",
                    };
                    bar.suspend(|| eprintln!("attribute {name}: {} ({how})", kind.name()));
                }
            }
            ImportEvent::Progress { bytes, total, rows } => {
                bar.set_length(total);
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows"));
            }
            ImportEvent::Refused(refusal) => {
                shown += 1;
                if shown <= SHOWN_REFUSALS {
                    bar.suspend(|| eprintln!("refused: {refusal}"));
                } else if shown == SHOWN_REFUSALS + 1 {
                    bar.suspend(|| eprintln!("refused: more rows; only counted from here on"));
                }
            }
        })
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {}: {} rows, {} inserted, {} updated, {} unchanged, {} refused, in {seconds:.1}s ({:.0} rows/s)",
        file.display(),
        imported.rows,
        imported.inserted,
        imported.updated,
        imported.unchanged,
        imported.refused,
        imported.rows as f64 / seconds.max(1e-9)
    );
    Ok(())
}
