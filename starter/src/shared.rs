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

/// The account of the effective uid, or `uid-N` when the system's user database has none.
fn effective_account() -> String {
    // SAFETY: geteuid takes nothing and cannot fail.
    let uid = unsafe { libc::geteuid() };
    account_name(uid).unwrap_or_else(|| format!("uid-{uid}"))
}

/// The name of the account `uid`, from the system's user database (files, LDAP, …).
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut len = 1024;
    loop {
        // SAFETY: a passwd of plain integers and pointers, all zero, is a valid value; it is
        // only read after getpwuid_r has filled it in.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: getpwuid_r writes only into `entry` and `buf`, whose length it is given, and
        // sets `found` to `&entry` or null.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
        match rc {
            0 if !found.is_null() && !entry.pw_name.is_null() => {
                // SAFETY: `pw_name` points into `buf`, alive here, at a NUL-terminated string.
                let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
                let name = name.to_string_lossy().trim().to_owned();
                return (!name.is_empty()).then_some(name);
            }
            libc::ERANGE if len < 1 << 20 => len *= 4, // a large entry: a larger buffer
            libc::EINTR => {}
            _ => return None,
        }
    }
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
