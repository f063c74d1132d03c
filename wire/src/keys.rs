//! Who may do what through the API: the scopes of a key, and the actor a request is made by.

use serde::{Deserialize, Serialize};

use crate::{InvalidInput, types::invalid};

/// What a key allows. `admin` allows everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read campaigns, reports, users and metrics; follow event streams.
    Read,
    /// Pause, resume, cancel, change the rate, retry the failed.
    Operate,
    /// Launch campaigns and manage their audiences (users, saved audiences).
    Launch,
    /// All of the above, and managing keys.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Operate, Scope::Launch, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Launch => "launch",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.name() == s.trim())
            .ok_or_else(|| {
                invalid(format!(
                    "{s:?} is not a scope: read, operate, launch or admin"
                ))
            })
    }

    /// A comma-separated list, each scope once, in order.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, InvalidInput> {
        let mut scopes = s
            .split(',')
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who makes a request: the name of the key it came with, and what that key allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub scopes: Vec<Scope>,
}

/// The name HERALD_API_TOKEN acts under: the bootstrap admin key.
pub const API_TOKEN_ACTOR: &str = "api-token";
/// The name every caller acts under when the API serves without a token (HERALD_API_DEV).
pub const DEV_ACTOR: &str = "dev";

impl Actor {
    /// An actor that may do everything.
    pub fn admin(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            scopes: vec![Scope::Admin],
        }
    }

    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// The scopes, as `read, operate`.
    pub fn scope_list(&self) -> String {
        list(&self.scopes)
    }
}

/// Scopes as `read, operate`.
pub fn list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` may name a key: 1–63 of lowercase letters, digits, `_`, `.` and `-`,
/// starting with a letter or digit, and not a name Herald acts under itself.
pub fn check_key_name(name: &str) -> Result<(), InvalidInput> {
    let shaped = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if !shaped {
        return Err(invalid(format!(
            "{name:?} is not a key name: 1 to 63 lowercase letters, digits, '_', '.' or '-', \
             starting with a letter or digit"
        )));
    }
    if [API_TOKEN_ACTOR, DEV_ACTOR, "temporal", "cli", "herald"].contains(&name) {
        return Err(invalid(format!(
            "{name:?} is a name Herald acts under itself; pick another"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_admin_allows_all() {
        assert_eq!(
            Scope::parse_list("operate,read,operate").unwrap(),
            vec![Scope::Read, Scope::Operate]
        );
        assert!(Scope::parse_list("read,write").is_err());
        assert!(Scope::parse_list("").is_err());
        let admin = Actor::admin("a");
        assert!(Scope::ALL.iter().all(|s| admin.may(*s)));
        let reader = Actor {
            name: "r".into(),
            scopes: vec![Scope::Read],
        };
        assert!(reader.may(Scope::Read) && !reader.may(Scope::Operate));
    }

    #[test]
    fn key_names_are_checked() {
        for good in ["ci", "grafana.prod", "ops-team_2"] {
            check_key_name(good).unwrap();
        }
        for bad in [
            "",
            "Ops",
            "-x",
            "a b",
            "api-token",
            "dev",
            "herald",
            &"x".repeat(64),
        ] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
    }
}
