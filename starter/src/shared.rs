//! What every subcommand uses: reaching the services, who is running the command, and the
//! progress bar.

use anyhow::Result;
use herald_control::{Config, Control};
use indicatif::{ProgressBar, ProgressStyle};

/// The actor the command line records with what it does: `cli:` and the OS user it runs as
/// (`USER` or `LOGNAME`; where neither is set, as under cron, systemd or a container, the
/// account of its effective uid, and the uid itself where no account names it).
pub fn actor() -> String {
    let name = ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|v| std::env::var(v).ok())
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    format!("cli:{}", name.unwrap_or_else(effective_account))
}

/// The account of the effective uid, or `uid-N` when the system's user database has none.
fn effective_account() -> String {
    // SAFETY: geteuid takes nothing and cannot fail.
    let uid = unsafe { libc::geteuid() };
    account_name(uid).unwrap_or_else(|| format!("uid-{uid}"))
}

/// The name of the account `uid`, from the system's user database.
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes only into `entry` and `buf` (whose length it is given) and
    // sets `found` to `&entry` or null; the name is read before `buf` is dropped.
    let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().trim().to_owned()).filter(|n| !n.is_empty())
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
    /// Without `USER`, the actor is the account the command runs as (what `id -un` says).
    #[test]
    fn the_account_of_the_effective_uid_names_the_actor_without_user() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let name = String::from_utf8(id.stdout).unwrap();
        assert_eq!(super::effective_account(), name.trim());
    }
}
