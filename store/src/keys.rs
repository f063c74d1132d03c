//! API keys and dashboard sessions. Secrets are never stored: rows hold their SHA-256,
//! computed by PostgreSQL from the value given, and every lookup is by that hash.

use chrono::{DateTime, Utc};
use herald_wire::keys::{Actor, Scope};
use sqlx::PgPool;

use crate::{Result, StoreError};

/// A key as listed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Key {
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Dashboard sessions signed in with it and still open.
    pub sessions: i64,
}

fn actor(name: String, scopes: Vec<String>) -> Result<Actor> {
    let scopes = scopes
        .iter()
        .map(|s| Scope::parse(s).map_err(StoreError::Invalid))
        .collect::<Result<Vec<_>>>()?;
    Ok(Actor { name, scopes })
}

/// Keep a new key; `false` when the name is taken (by a revoked key too).
pub async fn create(
    pool: &PgPool,
    name: &str,
    scopes: &[Scope],
    secret: &str,
    created_by: &str,
) -> Result<bool> {
    let scopes: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
    let made = sqlx::query(
        "INSERT INTO api_keys (name, scopes, hash, created_by)
         VALUES ($1, $2, sha256(convert_to($3, 'UTF8')), $4)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&scopes)
    .bind(secret)
    .bind(created_by)
    .execute(pool)
    .await?;
    Ok(made.rows_affected() == 1)
}

/// Every key, revoked ones too, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<Key>> {
    Ok(sqlx::query_as(
        "SELECT k.name, k.scopes, k.created_by, k.created_at, k.revoked_at,
                (SELECT count(*) FROM api_sessions s
                  WHERE s.key_hash = k.hash AND s.ended_at IS NULL AND s.expires_at > now())
                  AS sessions
           FROM api_keys k ORDER BY k.name",
    )
    .fetch_all(pool)
    .await?)
}

/// What revoking a key did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked now, and this many of its sessions ended.
    Now {
        sessions: i64,
    },
    Already,
    NoSuchKey,
}

/// Revoke a key and end its sessions, in one statement.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<Revoked> {
    let (existed, revoked, sessions): (bool, bool, i64) = sqlx::query_as(
        "WITH k AS (UPDATE api_keys SET revoked_at = now()
                     WHERE name = $1 AND revoked_at IS NULL RETURNING hash),
              s AS (UPDATE api_sessions SET ended_at = now()
                     WHERE key_hash IN (SELECT hash FROM k) AND ended_at IS NULL
                       AND expires_at > now() RETURNING 1)
         SELECT EXISTS (SELECT FROM api_keys WHERE name = $1),
                EXISTS (SELECT FROM k), (SELECT count(*) FROM s)",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(match (existed, revoked) {
        (_, true) => Revoked::Now { sessions },
        (true, false) => Revoked::Already,
        (false, _) => Revoked::NoSuchKey,
    })
}

/// The key `secret` is, if it is one and not revoked.
pub async fn find(pool: &PgPool, secret: &str) -> Result<Option<Actor>> {
    let row: Option<(String, Vec<String>)> = sqlx::query_as(
        "SELECT name, scopes FROM api_keys
          WHERE hash = sha256(convert_to($1, 'UTF8')) AND revoked_at IS NULL",
    )
    .bind(secret)
    .fetch_optional(pool)
    .await?;
    row.map(|(name, scopes)| actor(name, scopes)).transpose()
}

/// Open a session `session` (the cookie's value) for the key `secret`, signed in as `name`.
/// Sessions that ended or expired more than a day ago are forgotten on the way, so the table
/// holds about a day of sign-ins plus the open ones.
pub async fn start_session(
    pool: &PgPool,
    session: &str,
    name: &str,
    secret: &str,
    lasts: chrono::Duration,
) -> Result<()> {
    sqlx::query(
        "WITH gone AS (DELETE FROM api_sessions
                        WHERE least(ended_at, expires_at) < now() - interval '1 day')
         INSERT INTO api_sessions (hash, key_name, key_hash, expires_at)
         VALUES (sha256(convert_to($1, 'UTF8')), $2, sha256(convert_to($3, 'UTF8')), now() + $4)",
    )
    .bind(session)
    .bind(name)
    .bind(secret)
    .bind(lasts)
    .execute(pool)
    .await?;
    Ok(())
}

/// Who a session's cookie signs in, if it is open: not expired, not signed out of, and its
/// key not revoked. A session of the bootstrap token (`api_token`, when one is configured)
/// lasts while the token is the same.
pub async fn session(
    pool: &PgPool,
    session: &str,
    api_token: Option<&str>,
) -> Result<Option<Actor>> {
    let row: Option<(String, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT s.key_name, k.scopes
           FROM api_sessions s
           LEFT JOIN api_keys k ON k.hash = s.key_hash AND k.revoked_at IS NULL
          WHERE s.hash = sha256(convert_to($1, 'UTF8'))
            AND s.ended_at IS NULL AND s.expires_at > now()
            AND (k.name IS NOT NULL OR s.key_hash = sha256(convert_to($2, 'UTF8')))",
    )
    .bind(session)
    .bind(api_token)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((name, Some(scopes))) => actor(name, scopes).map(Some),
        Some((name, None)) => Ok(Some(Actor::admin(&name))),
    }
}

/// Sign out of a session. Ending one that is not open changes nothing.
pub async fn end_session(pool: &PgPool, session: &str) -> Result<()> {
    sqlx::query(
        "UPDATE api_sessions SET ended_at = now()
          WHERE hash = sha256(convert_to($1, 'UTF8')) AND ended_at IS NULL",
    )
    .bind(session)
    .execute(pool)
    .await?;
    Ok(())
}
