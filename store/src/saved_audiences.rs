//! Audience filters kept under a name. A launch reads the filter and copies it into its
//! campaign, so a later save under the same name changes no campaign.

use chrono::{DateTime, Utc};
use herald_wire::audience::{AudienceName, Filter};
use sqlx::PgPool;

use crate::{Result, StoreError};

/// A saved audience.
#[derive(Clone, Debug)]
pub struct Saved {
    pub name: String,
    pub filter: Filter,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Keep `filter` under `name`, replacing what was there; `true` when the name is new.
pub async fn save(pool: &PgPool, name: &AudienceName, filter: &Filter) -> Result<bool> {
    let json = serde_json::Value::from(filter.clone());
    Ok(sqlx::query_scalar(
        "INSERT INTO saved_audiences (name, filter) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET filter = EXCLUDED.filter, updated_at = now()
         RETURNING xmax = 0",
    )
    .bind(name.as_str())
    .bind(json)
    .fetch_one(pool)
    .await?)
}

/// The filter saved under `name`.
pub async fn get(pool: &PgPool, name: &AudienceName) -> Result<Option<Filter>> {
    let json: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT filter FROM saved_audiences WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(pool)
            .await?;
    json.map(|j| decode(name.as_str(), &j)).transpose()
}

/// Every saved audience, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<Saved>> {
    let rows: Vec<(String, serde_json::Value, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT name, filter, created_at, updated_at FROM saved_audiences ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(name, json, created_at, updated_at)| {
            Ok(Saved {
                filter: decode(&name, &json)?,
                name,
                created_at,
                updated_at,
            })
        })
        .collect()
}

/// Forget the audience saved under `name`; `false` when there was none.
pub async fn delete(pool: &PgPool, name: &AudienceName) -> Result<bool> {
    let done = sqlx::query("DELETE FROM saved_audiences WHERE name = $1")
        .bind(name.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

fn decode(name: &str, json: &serde_json::Value) -> Result<Filter> {
    Filter::parse(json).map_err(|e| {
        StoreError::Database(sqlx::Error::Decode(
            format!("saved audience {name:?}: {e}").into(),
        ))
    })
}
