//! What every subcommand uses: reaching the services, who is running the command, and the
//! progress bar.

use anyhow::Result;
use herald_control::{Config, Control};
use indicatif::{ProgressBar, ProgressStyle};

/// The actor the command line records with what it does: `cli:` and the OS user it runs as
/// (`USER` or `LOGNAME`; where neither is set, as under cron, systemd or a container, the
/// account of its effective uid, and the uid itself where no account names it).
pub fn actor() -> String {
    let name = ["USER", "LOGNAME"].into_iter().find_map(|v| {
        let user = std::env::var(v).ok()?;
        let user = user.trim();
        (!user.is_empty()).then(|| user.to_owned())
    });
    format!("cli:{}", name.unwrap_or_else(effective_account))
}

/// The account of the effective uid (from the system's user database: files, LDAP, …), or
/// `uid-N` when it has none.
fn effective_account() -> String {
    whoami::fallible::username()
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        // SAFETY: geteuid takes nothing and cannot fail.
        .unwrap_or_else(|| format!("uid-{}", unsafe { libc::geteuid() }))
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

#[cfg(test)]
mod tests {
    /// Without `USER`, the actor is the account the command runs as (what `id -un` says), or
    /// its uid where no account names it (`id -un` then fails).
    #[test]
    fn the_account_of_the_effective_uid_names_the_actor_without_user() {
        let id = |flag| {
            let out = std::process::Command::new("id").arg(flag).output().unwrap();
            out.status
                .success()
                .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
        };
        let expected = id("-un").unwrap_or_else(|| format!("uid-{}", id("-u").unwrap()));
        assert_eq!(super::effective_account(), expected);
    }
}
