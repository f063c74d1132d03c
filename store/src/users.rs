//! Users written by imports and the API: checked changes ([`UserChange`]) upserted by id in
//! chunks through `COPY`, the attributes' types, and one user read back.
//!
//! A chunk of users all new and above every id the table holds (an import of a fresh or
//! growing user base, in id order) is copied straight into `users`. Any other chunk is
//! copied into a temporary table and merged, each field set, cleared or kept as its change
//! says. Either way a chunk is one transaction, so a chunk is written whole or not at all.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use herald_templates::{AttrsRead, Profile, UserFields};
use herald_wire::Segment;
use herald_wire::audience::AttrType;
use herald_wire::audience::TimeRef;
use herald_wire::users::{AttrValue, Change, UserChange};
use serde_json::Value as Json;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{Result, StoreError};

pub use crate::filter::attribute_types;

/// The time zones a user may have: PostgreSQL's IANA names, the ones its `AT TIME ZONE`
/// reads (without the `posix/` and `right/` copies).
pub async fn time_zones(pool: &PgPool) -> Result<HashSet<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM pg_timezone_names
         WHERE name !~ '^(posix|right)/' AND name NOT IN ('posixrules', 'Factory', 'localtime')",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect())
}

/// Give attributes their types, where they have none yet, and answer every attribute's type.
/// An attribute that has a type keeps it: the caller compares.
pub async fn register_types(
    pool: &PgPool,
    types: &BTreeMap<String, AttrType>,
) -> Result<HashMap<String, AttrType>> {
    if !types.is_empty() {
        let (names, kinds): (Vec<&str>, Vec<&str>) =
            types.iter().map(|(n, t)| (n.as_str(), t.name())).unzip();
        sqlx::query(
            "INSERT INTO user_attributes (name, type)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&names)
        .bind(&kinds)
        .execute(pool)
        .await?;
    }
    attribute_types(pool).await
}

/// What writing a chunk did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub updated: u64,
    /// Users the change left exactly as they were: not written.
    pub unchanged: u64,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// Which fields of a change are given, as the merge's bit mask reads them.
const EMAIL: i32 = 1;
const NAME: i32 = 2;
const LOCALE: i32 = 4;
const TIMEZONE: i32 = 8;
const SEGMENTS: i32 = 16;
const CREATED_AT: i32 = 32;
const REPLACE_ATTRS: i32 = 64;

/// Upsert one chunk of users, in one transaction. Changes to the same id merge in order (a
/// later one wins for the fields it gives) and count once. `now` is the creation time of
/// new users that give none.
/// `changes` is left merged (the caller may reuse its room).
pub async fn write(
    pool: &PgPool,
    changes: &mut Vec<UserChange>,
    now: DateTime<Utc>,
) -> Result<Written> {
    merge_repeats(changes);
    let changes = &changes[..];
    if changes.is_empty() {
        return Ok(Written::default());
    }
    // Another writer's new ids (an import writes two chunks at once) make a statement here
    // a unique violation; written again, the chunk sees them committed and updates them.
    let mut tries = 0;
    loop {
        tries += 1;
        match write_once(pool, changes, now).await {
            Err(StoreError::Database(sqlx::Error::Database(e)))
                if e.is_unique_violation() && tries < 5 => {}
            written => return written,
        }
    }
}

async fn write_once(pool: &PgPool, changes: &[UserChange], now: DateTime<Utc>) -> Result<Written> {
    let mut tx = pool.begin().await?;
    let top: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    if changes[0].id > top {
        // All new: straight in.
        let n = copy(&mut tx, changes, now, true).await?;
        tx.commit().await?;
        return Ok(Written {
            inserted: n,
            ..Written::default()
        });
    }
    // Other writers of users (the API, another import) wait for this chunk: between its
    // update and its insert, none can add an id the update missed and the insert then skips.
    // Readers (campaigns' pages, inboxes) do not wait.
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS import_users (
            id bigint NOT NULL, given int NOT NULL, email text, name text, locale text,
            timezone text, segments text[], created_at timestamptz, attrs jsonb NOT NULL
         ) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    copy(&mut tx, changes, now, false).await?;
    // Each column as the change leaves it; a user it leaves as it was is not written.
    let new = format!(
        "CASE WHEN i.given & {EMAIL} <> 0 THEN i.email ELSE u.email END,
         CASE WHEN i.given & {NAME} <> 0 THEN i.name ELSE u.name END,
         CASE WHEN i.given & {LOCALE} <> 0 THEN i.locale ELSE u.locale END,
         CASE WHEN i.given & {TIMEZONE} <> 0 THEN i.timezone ELSE u.timezone END,
         CASE WHEN i.given & {SEGMENTS} <> 0 THEN i.segments ELSE u.segments END,
         coalesce(i.created_at, u.created_at),
         jsonb_strip_nulls(CASE WHEN i.given & {REPLACE_ATTRS} <> 0 THEN i.attrs
                                ELSE u.attrs || i.attrs END)"
    );
    let columns = "email, name, locale, timezone, segments, created_at, attrs";
    let update = format!(
        "UPDATE users u SET ({columns}) = ROW({new}) FROM import_users i
         WHERE u.id = i.id
           AND (u.email, u.name, u.locale, u.timezone, u.segments, u.created_at, u.attrs)
               IS DISTINCT FROM ({new})"
    );
    let updated = sqlx::query(&update)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let insert = format!(
        "INSERT INTO users (id, {columns})
         SELECT id, email, name, locale, timezone, coalesce(segments, '{{}}'),
                coalesce(created_at, now()), jsonb_strip_nulls(attrs)
         FROM import_users i WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = i.id)"
    );
    let inserted = sqlx::query(&insert)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(Written {
        inserted,
        updated,
        unchanged: changes.len() as u64 - inserted - updated,
    })
}

/// After writing users: new users take ids above every one there is, their ledger
/// partitions are made, and the planner learns the table anew. Vacuuming is left to
/// autovacuum, whose inserted-rows threshold a large import crosses.
pub async fn settle(pool: &PgPool) -> Result<()> {
    settle_new(pool).await?;
    sqlx::raw_sql("ANALYZE users").execute(pool).await?;
    Ok(())
}

/// After writing a few users (the API): new users take ids above them, and the ledger has
/// partitions for them.
pub async fn settle_new(pool: &PgPool) -> Result<()> {
    let top: Option<i64> = sqlx::query_scalar(
        "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users HAVING max(id) > 0",
    )
    .fetch_optional(pool)
    .await?;
    crate::partitions::cover(pool, top).await?;
    Ok(())
}

/// Put the changes in id order, one per id.
fn merge_repeats(changes: &mut Vec<UserChange>) {
    changes.sort_by_key(|c| c.id); // stable: a later change stays after an earlier one
    changes.dedup_by(|later, earlier| {
        let same = later.id == earlier.id;
        if same {
            merge(earlier, std::mem::take(later));
        }
        same
    });
}

fn merge(into: &mut UserChange, later: UserChange) {
    fn take<T>(into: &mut Change<T>, later: Change<T>) {
        if later.is_given() {
            *into = later;
        }
    }
    take(&mut into.email, later.email);
    take(&mut into.name, later.name);
    take(&mut into.locale, later.locale);
    take(&mut into.timezone, later.timezone);
    take(&mut into.segments, later.segments);
    take(&mut into.created_at, later.created_at);
    if later.replace_attrs {
        into.attrs.clear();
        into.replace_attrs = true;
    }
    into.attrs.extend(later.attrs);
}

/// The user columns a `COPY` carries besides `id` (and, to the merge's table, the mask).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Email,
    Name,
    Locale,
    Timezone,
    Segments,
    CreatedAt,
    Attrs,
}

impl Col {
    const ALL: [Col; 7] = [
        Self::Email,
        Self::Name,
        Self::Locale,
        Self::Timezone,
        Self::Segments,
        Self::CreatedAt,
        Self::Attrs,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
            Self::Locale => "locale",
            Self::Timezone => "timezone",
            Self::Segments => "segments",
            Self::CreatedAt => "created_at",
            Self::Attrs => "attrs",
        }
    }

    fn given(self, c: &UserChange) -> bool {
        match self {
            Self::Email => c.email.is_given(),
            Self::Name => c.name.is_given(),
            Self::Locale => c.locale.is_given(),
            Self::Timezone => c.timezone.is_given(),
            Self::Segments => c.segments.is_given(),
            Self::CreatedAt => c.created_at.is_given(),
            Self::Attrs => !c.attrs.is_empty(),
        }
    }
}

/// `COPY` the changes in binary format: new users straight into `users` (`fresh`: only the
/// columns some change gives, the others left to their defaults; cleared attributes left
/// out), or every column and the mask into the merge's table. Binary spares PostgreSQL
/// parsing ids, arrays and times, and this side escaping text.
async fn copy(
    conn: &mut PgConnection,
    changes: &[UserChange],
    now: DateTime<Utc>,
    fresh: bool,
) -> Result<u64> {
    let cols: Vec<Col> = Col::ALL
        .into_iter()
        .filter(|col| !fresh || changes.iter().any(|c| col.given(c)))
        .collect();
    let (table, mut names) = if fresh {
        ("users", vec!["id"])
    } else {
        ("import_users", vec!["id", "given"])
    };
    // A chunk whose rows give only ids copies only ids.
    names.extend(cols.iter().map(|c| c.name()));
    let statement = format!(
        "COPY {table} ({}) FROM STDIN WITH (FORMAT binary)",
        names.join(", ")
    );
    let mut copy = conn.copy_in_raw(&statement).await?;
    let (mut buf, mut scratch) = (Vec::with_capacity(1 << 20), String::new());
    buf.extend_from_slice(COPY_HEADER);
    for c in changes {
        encode(&mut buf, &mut scratch, c, &cols, now, fresh);
        if buf.len() >= 1 << 20 {
            copy.send(&buf[..]).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(&buf[..]).await?;
    Ok(copy.finish().await?)
}

/// The start of binary `COPY` data: its signature, no flags, no header extension.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// PostgreSQL's oid of `text`, which an array names for its elements.
const TEXT_OID: i32 = 25;
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 UTC.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One change as a row of binary `COPY`: each field its length, then its bytes.
fn encode(
    buf: &mut Vec<u8>,
    scratch: &mut String,
    c: &UserChange,
    cols: &[Col],
    now: DateTime<Utc>,
    fresh: bool,
) {
    let fields = 1 + usize::from(!fresh) + cols.len();
    buf.extend_from_slice(&(fields as i16).to_be_bytes());
    put(buf, &c.id.to_be_bytes());
    if !fresh {
        let mask: i32 = [
            (c.email.is_given(), EMAIL),
            (c.name.is_given(), NAME),
            (c.locale.is_given(), LOCALE),
            (c.timezone.is_given(), TIMEZONE),
            (c.segments.is_given(), SEGMENTS),
            (c.created_at.is_given(), CREATED_AT),
            (c.replace_attrs, REPLACE_ATTRS),
        ]
        .into_iter()
        .filter(|(given, _)| *given)
        .fold(0, |m, (_, bit)| m | bit);
        put(buf, &mask.to_be_bytes());
    }
    let text = |buf: &mut Vec<u8>, value: Option<&String>| match value {
        Some(v) => put(buf, v.as_bytes()),
        None => null(buf),
    };
    for col in cols {
        match col {
            Col::Email => text(buf, c.email.value()),
            Col::Name => text(buf, c.name.value()),
            Col::Locale => text(buf, c.locale.value()),
            Col::Timezone => text(buf, c.timezone.value()),
            Col::Segments => match (c.segments.value(), fresh) {
                (Some(list), _) => text_array(buf, list),
                (None, true) => text_array(buf, &[]),
                (None, false) => null(buf),
            },
            Col::CreatedAt => match (c.created_at.value(), fresh) {
                (Some(t), _) => put(buf, &pg_micros(*t).to_be_bytes()),
                (None, true) => put(buf, &pg_micros(now).to_be_bytes()),
                (None, false) => null(buf),
            },
            Col::Attrs => {
                scratch.clear();
                // `jsonb`'s binary form: a version, then the JSON text.
                scratch.push('\u{1}');
                attrs_json(scratch, c, fresh);
                put(buf, scratch.as_bytes());
            }
        }
    }
}

/// A field's length and bytes.
fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn pg_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros() - PG_EPOCH_MICROS
}

/// Segments as a `text[]` in binary form: its dimensions (none when empty), no NULL element,
/// the element type, then each element.
fn text_array(buf: &mut Vec<u8>, items: &[Segment]) {
    let dims: &[i32] = if items.is_empty() {
        &[]
    } else {
        &[items.len() as i32, 1] // length and lower bound
    };
    let len = 12 + 4 * dims.len() + items.iter().map(|s| 4 + s.as_str().len()).sum::<usize>();
    buf.extend_from_slice(&(len as i32).to_be_bytes());
    for n in [(dims.len() / 2) as i32, 0, TEXT_OID].iter().chain(dims) {
        buf.extend_from_slice(&n.to_be_bytes());
    }
    for item in items {
        put(buf, item.as_str().as_bytes());
    }
}

/// The change's attributes as a JSON object, written without building one: cleared ones as
/// `null`, or left out when `fresh`.
fn attrs_json(out: &mut String, c: &UserChange, fresh: bool) {
    use std::fmt::Write;
    out.push('{');
    let mut first = true;
    for (name, value) in &c.attrs {
        if fresh && value.is_none() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        // Attribute names are `a-z 0-9 _`: nothing to escape.
        let _ = write!(out, "\"{name}\":");
        match value {
            None => out.push_str("null"),
            Some(AttrValue::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            Some(AttrValue::Bool(b)) => {
                let _ = write!(out, "{b}");
            }
            Some(AttrValue::Time(t)) => {
                let _ = write!(out, "\"{}\"", TimeRef::canonical(*t));
            }
            Some(v) => out.push_str(&v.to_json().to_string()),
        }
    }
    out.push('}');
}

/// A user as stored; as JSON, what `herald users show` prints.
#[derive(Clone, Debug, PartialEq, FromRow, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub segments: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub attrs: sqlx::types::Json<Json>,
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, locale, timezone, segments, created_at, attrs FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The columns of `users` that [`profile_sql`] reads for `fields`, each as `, u.column`: what
/// a statement carries from its scan of `users u` to where it builds the profiles.
pub(crate) fn profile_columns(fields: &UserFields) -> String {
    let mut columns = String::new();
    for (on, column) in [
        (fields.name, "name"),
        (fields.locale, "locale"),
        (fields.timezone, "timezone"),
        (fields.segments, "segments"),
        (fields.attrs != AttrsRead::None, "attrs"),
    ] {
        if on {
            columns.push_str(", u.");
            columns.push_str(column);
        }
    }
    columns
}

/// What templates read of the user `u` (a row with the columns of [`profile_columns`]), as
/// the text of a JSON array in the order [`profile_from_json`] takes it: `name`, `locale`,
/// `timezone`, `segments` when read, then `attrs` whole or each attribute read. An array of
/// plain values costs PostgreSQL a third of an object of every field.
pub(crate) fn profile_sql(fields: &UserFields) -> String {
    let mut items: Vec<String> = [
        (fields.name, "u.name"),
        (fields.locale, "u.locale"),
        (fields.timezone, "u.timezone"),
        (fields.segments, "u.segments"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, item)| item.to_owned())
    .collect();
    match &fields.attrs {
        AttrsRead::None => {}
        AttrsRead::All => items.push("u.attrs".to_owned()),
        // Attribute names are `a-z 0-9 _`; quoted all the same.
        AttrsRead::Named(names) => items.extend(
            names
                .iter()
                .map(|name| format!("u.attrs -> '{}'", name.replace('\'', "''"))),
        ),
    }
    format!("json_build_array({})::text", items.join(", "))
}

/// A user as templates see them, from the JSON array [`profile_sql`] built for `fields`.
/// Attributes are never `null` in the ledger (writes strip them): a `null` is one the user
/// does not have.
pub(crate) fn profile_from_json(
    id: i64,
    email: &str,
    fields: &UserFields,
    json: &str,
) -> Result<Profile> {
    let bad = |e: String| {
        StoreError::Database(sqlx::Error::Decode(
            format!("user {id}'s fields: {e}").into(),
        ))
    };
    let values: Vec<Json> = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let mut values = values.into_iter();
    let mut next = |what: &str| values.next().ok_or_else(|| bad(format!("no {what}")));
    let text = |v: Json| match v {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s)),
        other => Err(bad(format!("{other} is not text"))),
    };
    let mut user = Profile {
        id,
        email: email.to_owned(),
        ..Profile::default()
    };
    if fields.name {
        user.name = text(next("name")?)?;
    }
    if fields.locale {
        user.locale = text(next("locale")?)?;
    }
    if fields.timezone {
        user.timezone = text(next("timezone")?)?;
    }
    if fields.segments {
        user.segments = match next("segments")? {
            Json::Null => Vec::new(),
            Json::Array(items) => items
                .into_iter()
                .map(|s| text(s)?.ok_or_else(|| bad("a null segment".into())))
                .collect::<Result<_>>()?,
            other => return Err(bad(format!("segments {other} are not a list"))),
        };
    }
    match &fields.attrs {
        AttrsRead::None => {}
        AttrsRead::All => {
            user.attrs = match next("attrs")? {
                Json::Object(attrs) => attrs,
                other => return Err(bad(format!("attrs {other} are not an object"))),
            }
        }
        AttrsRead::Named(names) => {
            for name in names {
                let value = next(name)?;
                if !value.is_null() {
                    user.attrs.insert(name.clone(), value);
                }
            }
        }
    }
    // The statement and this reading must name the same fields in the same order.
    if values.next().is_some() {
        return Err(bad("more values than the fields read".into()));
    }
    Ok(user)
}

/// The users `ids` as templates see them (`herald_templates::Profile`), with what `fields`
/// names, in id order; ids of users deleted since are left out. A page's recipients get
/// their data as of their page.
pub async fn profiles(
    conn: &mut PgConnection,
    ids: &[i64],
    fields: &UserFields,
) -> Result<Vec<Profile>> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(&format!(
        "SELECT u.id, coalesce(u.email, ''), {}
         FROM users u WHERE u.id = ANY($1) ORDER BY u.id",
        profile_sql(fields)
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, email, json)| profile_from_json(id, &email, fields, &json))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's handlers need `write`'s future to be `Send` (`raw_sql` would make it not).
    #[allow(dead_code)]
    fn write_is_send(pool: &PgPool) {
        fn is_send<T: Send>(_: T) {}
        is_send(write(pool, &mut Vec::new(), Utc::now()));
    }

    #[test]
    fn copy_rows_are_binary_fields() {
        let c = UserChange {
            id: 5,
            email: Change::Clear,
            segments: Change::Set(vec![Segment::parse("x\"y").unwrap()]),
            ..Default::default()
        };
        let mut buf = Vec::new();
        let cols = [Col::Email, Col::Segments, Col::Attrs];
        encode(&mut buf, &mut String::new(), &c, &cols, Utc::now(), false);
        let mut want: Vec<u8> = vec![0, 5]; // id, mask and three columns
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5]);
        want.extend([0, 0, 0, 4, 0, 0, 0, (EMAIL | SEGMENTS) as u8]);
        want.extend([0xff; 4]); // email: NULL
        want.extend([
            0, 0, 0, 27, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1,
        ]);
        want.extend([0, 0, 0, 3, b'x', b'"', b'y']);
        want.extend([0, 0, 0, 3, 1, b'{', b'}']);
        assert_eq!(buf, want);
        // No segments: an array of no dimension.
        let mut buf = Vec::new();
        text_array(&mut buf, &[]);
        assert_eq!(buf, [0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]);
        assert_eq!(COPY_HEADER.len(), 19);
    }

    #[test]
    fn repeated_ids_merge_in_order() {
        let first = UserChange {
            id: 2,
            email: Change::Set("a@x".into()),
            name: Change::Set("A".into()),
            ..Default::default()
        };
        let later = UserChange {
            id: 2,
            name: Change::Clear,
            ..Default::default()
        };
        let one = UserChange {
            id: 1,
            ..Default::default()
        };
        let mut out = vec![first, one, later];
        merge_repeats(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].email, Change::Set("a@x".into()));
        assert_eq!(out[1].name, Change::Clear);
    }
}
