//! What every subcommand uses: reaching the services, who is running the command, and the
//! progress bar.

use anyhow::Result;
use herald_control::{Config, Control};
use indicatif::{ProgressBar, ProgressStyle};

/// The actor the command line records with what it does: `cli:` and the OS user it runs as.
pub fn actor() -> String {
    let user = ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()));
    format!(
        "cli:{}",
        user.as_deref().map(str::trim).unwrap_or("unknown")
    )
}

/// Reach the database (checking its schema) with up to `sessions` connections.
pub async fn connect(config: Config, sessions: u32) -> Result<Control> {
    Ok(Control::connect(config, sessions).await?)
}

/// A bar of `len` `unit`s with its rate and time left.
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
