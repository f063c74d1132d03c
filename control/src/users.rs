//! Adding test users in bulk.

use herald_store::audience;
pub use herald_store::users::{User, Written};
use herald_wire::Segment;
use herald_wire::users::{UserChange, infer_json_types};
use serde_json::Value as Json;

use crate::{Control, ControlError, Result};

/// Users added by [`Control::seed_users`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeded {
    pub count: i64,
    pub first_id: i64,
    pub last_id: i64,
}

/// Users one batch may write.
pub const MAX_BATCH: usize = 1_000;

impl Control {
    /// Create or replace one user from its JSON (a `PUT`): every field it does not give is
    /// cleared. Attributes new to Herald take the type their values look like. Answers the
    /// user as stored, and whether it is new.
    pub async fn put_user(&self, id: i64, json: &Json) -> Result<(User, bool)> {
        if id < 1 {
            return Err(ControlError::Field {
                field: "id".into(),
                message: format!("{id} is not a user id (a whole number from 1)"),
            });
        }
        let written = self
            .put_users_at(std::slice::from_ref(json), Some(id), "")
            .await?;
        Ok((self.user(id).await?, written.inserted == 1))
    }

    /// Create or replace up to [`MAX_BATCH`] users, each as [`Control::put_user`] would, in
    /// one transaction: one bad user (named by its place, `users[3].email`) writes none.
    pub async fn put_users(&self, users: &[Json]) -> Result<Written> {
        if users.is_empty() || users.len() > MAX_BATCH {
            return Err(ControlError::Field {
                field: "users".into(),
                message: format!("a batch holds 1 to {MAX_BATCH} users, not {}", users.len()),
            });
        }
        self.put_users_at(users, None, "users").await
    }

    async fn put_users_at(&self, users: &[Json], id: Option<i64>, at: &str) -> Result<Written> {
        let mut rules = self.user_rules().await?;
        let new = infer_json_types(users, |name| rules.types.contains_key(name));
        rules.types.extend(new.clone());
        let mut changes = users
            .iter()
            .enumerate()
            .map(|(i, json)| {
                UserChange::from_json(json, id, true, &rules).map_err(|mut e| {
                    if !at.is_empty() {
                        e.field = format!(
                            "{at}[{i}]{}{}",
                            if e.field.is_empty() { "" } else { "." },
                            e.field
                        );
                    }
                    ControlError::from(e)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let registered = herald_store::users::register_types(&self.db, &new).await?;
        if let Some((name, _)) = new.iter().find(|(n, t)| registered.get(*n) != Some(t)) {
            return Err(ControlError::Conflict(format!(
                "attribute {name:?} was given another type meanwhile; send the request again"
            )));
        }
        let written =
            herald_store::users::write(&self.db, &mut changes, chrono::Utc::now()).await?;
        if written.inserted > 0 {
            herald_store::users::settle_new(&self.db).await?;
        }
        Ok(written)
    }

    /// One user as stored.
    pub async fn user(&self, id: i64) -> Result<User> {
        Ok(herald_store::users::get(&self.db, id)
            .await?
            .ok_or(herald_store::StoreError::UnknownUser(id))?)
    }

    pub const MAX_SEED: i64 = 100_000_000;
    /// Users added per statement; progress is reported after each.
    const SEED_CHUNK: i64 = 250_000;

    /// Add `count` users carrying `segment` (and the demo attributes, with `attrs`), reporting how many are in after each chunk, then
    /// make their ledger partitions and analyze them.
    /// Test data: refused on a database that is not on this machine unless `allow_remote`.
    pub async fn seed_users(
        &self,
        count: i64,
        segment: Option<&Segment>,
        attrs: bool,
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
            let added = audience::seed_users(&self.db, n, segment, attrs).await?;
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
