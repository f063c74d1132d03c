//! Adding test users in bulk.

use herald_store::audience;
use herald_wire::Segment;

use crate::{Control, ControlError, Result};

/// Users added by [`Control::seed_users`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeded {
    pub count: i64,
    pub first_id: i64,
    pub last_id: i64,
}

impl Control {
    pub const MAX_SEED: i64 = 100_000_000;
    /// Users added per statement; progress is reported after each.
    const SEED_CHUNK: i64 = 250_000;

    /// Add `count` users carrying `segment`, reporting how many are in after each chunk, then
    /// make their ledger partitions and analyze them.
    /// Test data: refused on a database that is not on this machine unless `allow_remote`.
    pub async fn seed_users(
        &self,
        count: i64,
        segment: Option<&Segment>,
        allow_remote: bool,
        mut progress: impl FnMut(i64),
    ) -> Result<Seeded> {
        seed_target_allowed(&self.config.database_url, allow_remote)?;
        if !(1..=Self::MAX_SEED).contains(&count) {
            return Err(ControlError::Refused(format!(
                "--count must be between 1 and {}, got {count}",
                Self::MAX_SEED
            )));
        }
        let (mut first_id, mut last_id, mut done) = (0, 0, 0);
        while done < count {
            let n = Self::SEED_CHUNK.min(count - done);
            let added = audience::seed_users(&self.db, n, segment).await?;
            if first_id == 0 {
                first_id = added.first;
            }
            last_id = added.last;
            done += n;
            progress(done);
        }
        audience::settle_users(&self.db, last_id).await?;
        Ok(Seeded {
            count,
            first_id,
            last_id,
        })
    }
}

/// Test users go to a database on this machine only, unless `allow_remote`. Front ends call
/// this before connecting, so that a refused seed touches nothing.
pub fn seed_target_allowed(database_url: &str, allow_remote: bool) -> Result<()> {
    if allow_remote || is_local_database(database_url) {
        return Ok(());
    }
    Err(ControlError::Refused(format!(
        "`herald users seed` adds test users, and {} is not on this machine; pass --allow-remote if that is what you mean",
        crate::error::redact(database_url)
    )))
}

/// Whether a connection string names a server on this machine: a loopback address,
/// `localhost`, or a Unix socket (no host, or a `host=/path` parameter).
pub fn is_local_database(url: &str) -> bool {
    let Ok(u) = temporalio_client::Url::parse(url) else {
        return false;
    };
    if let Some((_, host)) = u.query_pairs().find(|(k, _)| k == "host") {
        return host.starts_with('/');
    }
    match u.host_str() {
        None | Some("") => true,
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_database;

    #[test]
    fn only_this_machine_is_local() {
        for url in [
            "postgres://herald@127.0.0.1:55432/herald",
            "postgres://herald@localhost/herald",
            "postgres://herald@[::1]/herald",
            "postgres:///herald",
            "postgres://herald@x/herald?host=/var/run/postgresql",
        ] {
            assert!(is_local_database(url), "{url}");
        }
        for url in [
            "postgres://herald@db.example.com/herald",
            "postgres://herald@10.0.0.5/herald",
            "not a url",
        ] {
            assert!(!is_local_database(url), "{url}");
        }
    }
}
