//! API keys and dashboard sessions: `herald keys create|list|revoke`, and what the API asks
//! of every request's credentials.
//!
//! A key is `hk_` and 32 random bytes in hex, shown once when it is made; only its SHA-256
//! is stored. `HERALD_API_TOKEN` stays the bootstrap admin key, acting as `api-token`.

use herald_store::keys::{self, Key, Revoked};
use herald_wire::keys::{Actor, Scope, check_key_name};

use crate::{Control, ControlError, Result};

/// The start of every key Herald makes, so a leaked one is recognisable.
pub const KEY_PREFIX: &str = "hk_";

/// How long a dashboard session lasts.
pub const SESSION_HOURS: i64 = 12;

/// `bytes` random bytes from the kernel, in hex.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn named(name: &str) -> Result<()> {
    check_key_name(name).map_err(|e| ControlError::Field {
        field: "name".into(),
        message: e.0,
    })
}

impl Control {
    /// Make a key called `name` with `scopes`; returns the key, which is never shown again.
    pub async fn create_key(&self, name: &str, scopes: &[Scope], by: &str) -> Result<String> {
        named(name)?;
        if scopes.is_empty() {
            return Err(ControlError::Field {
                field: "scopes".into(),
                message: "a key needs at least one scope: read, operate, launch or admin".into(),
            });
        }
        let secret = format!("{KEY_PREFIX}{}", random_hex(32));
        if !keys::create(&self.db, name, scopes, &secret, by).await? {
            return Err(ControlError::Conflict(format!(
                "a key named {name:?} exists already (a revoked key keeps its name); pick another"
            )));
        }
        Ok(secret)
    }

    /// Every key, revoked ones too.
    pub async fn keys(&self) -> Result<Vec<Key>> {
        Ok(keys::list(&self.db).await?)
    }

    /// Revoke a key: requests with it are refused from now on, and its dashboard sessions
    /// end. Returns how many sessions ended.
    pub async fn revoke_key(&self, name: &str) -> Result<i64> {
        named(name)?;
        match keys::revoke(&self.db, name).await? {
            Revoked::Now { sessions } => Ok(sessions),
            Revoked::Already => Err(ControlError::Refused(format!(
                "key {name:?} is revoked already"
            ))),
            Revoked::NoSuchKey => Err(ControlError::Unmet {
                field: "name".into(),
                message: format!("there is no key named {name:?}; `herald keys list` shows them"),
            }),
        }
    }

    /// The actor a presented key acts as, if it is a key Herald made and it is not revoked.
    pub async fn key(&self, secret: &str) -> Result<Option<Actor>> {
        if !secret.starts_with(KEY_PREFIX) {
            return Ok(None);
        }
        Ok(keys::find(&self.db, secret).await?)
    }

    /// Open a dashboard session for `actor`, who signed in with `secret`; returns the
    /// session's cookie value.
    pub async fn start_session(&self, actor: &Actor, secret: &str) -> Result<String> {
        let session = random_hex(32);
        keys::start_session(
            &self.db,
            &session,
            &actor.name,
            secret,
            chrono::Duration::hours(SESSION_HOURS),
        )
        .await?;
        Ok(session)
    }

    /// Who an open session signs in. `api_token`: the bootstrap token now configured (its
    /// sessions end when it changes).
    pub async fn session(&self, session: &str, api_token: Option<&str>) -> Result<Option<Actor>> {
        if session.len() != 64 || !session.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Ok(keys::session(&self.db, session, api_token).await?)
    }

    /// Sign out of a session, everywhere its cookie was copied to.
    pub async fn end_session(&self, session: &str) -> Result<()> {
        Ok(keys::end_session(&self.db, session).await?)
    }
}
