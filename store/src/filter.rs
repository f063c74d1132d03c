//! Audience filters as SQL: a checked [`Filter`] becomes a boolean expression over `users u`
//! and the parameters it binds. Every value and every attribute name is a parameter; the
//! text of the expression comes only from this file, so no filter can change a statement's
//! shape beyond the tree it describes.
//!
//! Each test is two-valued: a user without the attribute (SQL's NULL) fails it, so `not`
//! holds exactly the users its filter does not, and `ne` is `not eq`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use herald_wire::audience::{AttrType, Column, Field, Filter, FilterError, Test, TimeRef, Value};
use herald_wire::local::WavePlan;
use sqlx::{Postgres, postgres::PgArguments, query::QueryAs};

use herald_wire::{FrequencyCap, InvalidInput};

use crate::{Result, StoreError};

/// A value bound to a compiled filter's parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
    Ints(Vec<i64>),
    Number(f64),
    Numbers(Vec<f64>),
    Bool(bool),
    Bools(Vec<bool>),
    Time(DateTime<Utc>),
    Times(Vec<DateTime<Utc>>),
    Path(JsonPath),
}

/// An SQL/JSON path, bound as PostgreSQL's `jsonpath` type itself: a text parameter cast in
/// the statement would be parsed again for every row a generic plan tests.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath(pub String);

impl sqlx::Type<Postgres> for JsonPath {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_name("jsonpath")
    }
}

impl sqlx::Encode<'_, Postgres> for JsonPath {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        // The binary form: a version byte, then the path's text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(sqlx::encode::IsNull::No)
    }
}

/// A filter as a SQL expression over `users u`, whose parameters are numbered from the
/// `first` given to [`compile`].
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
    /// The campaign's frequency cap, `(count, window in seconds)`: who of the audience a
    /// page may still reach ([`crate::cap`]). Set by [`of_campaign`] only.
    pub cap: Option<(u32, u32)>,
}

impl Compiled {
    /// Every user: no filter.
    pub fn everyone() -> Self {
        Self {
            sql: "true".into(),
            params: Vec::new(),
            cap: None,
        }
    }

    /// Bind the parameters, in order, after those the statement binds before them.
    pub fn bind<'q, O>(
        &'q self,
        mut query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        for p in &self.params {
            query = match p {
                Param::Text(v) => query.bind(v),
                Param::Texts(v) => query.bind(v),
                Param::Int(v) => query.bind(v),
                Param::Ints(v) => query.bind(v),
                Param::Number(v) => query.bind(v),
                Param::Numbers(v) => query.bind(v),
                Param::Bool(v) => query.bind(v),
                Param::Bools(v) => query.bind(v),
                Param::Time(v) => query.bind(v),
                Param::Times(v) => query.bind(v),
                Param::Path(v) => query.bind(v),
            };
        }
        query
    }
}

/// The attributes users have, and their types.
pub async fn attribute_types(conn: impl sqlx::PgExecutor<'_>) -> Result<HashMap<String, AttrType>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT name, type FROM user_attributes")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, kind)| Some((name, AttrType::parse(&kind)?)))
        .collect())
}

/// A campaign's audience as it was launched, compiled for the pages of its `wave` (0 when
/// it has no waves): parameters from `first`. Attribute types never change once users have
/// them, so the worker keeps it.
pub async fn of_campaign(
    conn: &mut sqlx::PgConnection,
    campaign_id: i64,
    wave: u32,
    first: usize,
) -> Result<Compiled> {
    type Row = (
        Option<sqlx::types::Json<Filter>>,
        Option<sqlx::types::Json<WavePlan>>,
        Option<String>,
    );
    let stored: Option<Row> =
        // A row written before filters has only its segment.
        sqlx::query_as(
            "SELECT coalesce(audience, CASE WHEN segment IS NOT NULL
                         THEN jsonb_build_object('segment', segment) END), waves,
                    spec->>'frequency_cap'
             FROM messages WHERE id = $1",
        )
            .bind(campaign_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (audience, waves, cap) = stored.ok_or(StoreError::UnknownCampaignId(campaign_id))?;
    let mut compiled = match audience {
        None => Compiled::everyone(),
        Some(audience) => {
            let types = attribute_types(&mut *conn).await?;
            compile(&audience.0, &types, first, Utc::now()).map_err(|e| {
                StoreError::Invalid(InvalidInput(format!("the campaign's audience: {e}")))
            })?
        }
    };
    if let Some(plan) = waves.filter(|w| w.0.filters()) {
        compiled.and_wave(&plan.0, wave as usize, first);
    }
    compiled.cap = cap
        .map(|c| {
            FrequencyCap::parse(&c).map_err(|e| {
                StoreError::Invalid(InvalidInput(format!("the campaign's frequency cap: {e}")))
            })
        })
        .transpose()?
        .and_then(FrequencyCap::limit);
    Ok(compiled)
}

impl Compiled {
    /// Narrow to the users of one wave of `plan`: those whose zone (or the fallback, for
    /// those with none) is one of the wave's. The last wave also takes users in a zone the
    /// plan does not name (set after it was made), so that nobody is left out; zones left
    /// out by `past_zones: skip` stay out. Both page statements bind the campaign's id as $1.
    fn and_wave(&mut self, plan: &WavePlan, wave: usize, first: usize) {
        let zone = |c: &mut Self, p: Param| {
            c.params.push(p);
            format!("${}::text[]", first + c.params.len() - 1)
        };
        let fallback = {
            self.params
                .push(Param::Text(plan.fallback.clone().unwrap_or_default()));
            format!("${}::text", first + self.params.len() - 1)
        };
        let of = format!("coalesce(u.timezone, nullif({fallback}, ''), '')");
        let zones = plan
            .waves
            .get(wave)
            .map(|w| w.zones.clone())
            .unwrap_or_default();
        let mine = zone(self, Param::Texts(zones));
        let mut test = format!("{of} = ANY({mine})");
        if wave + 1 == plan.waves.len() {
            let all = zone(self, Param::Texts(plan.planned_zones()));
            test = format!("({test} OR NOT {of} = ANY({all}))");
        }
        // Someone who moved to another wave's zone after their wave reached them is not
        // reached again: the statement's $1 is the campaign's id.
        self.sql = format!(
            "({}) AND {test} AND NOT EXISTS (SELECT 1 FROM message_items i
                                             WHERE i.message_id = $1 AND i.user_id = u.id)",
            self.sql
        );
    }
}

/// Compile `filter`, checked against `types`, with its parameters numbered from `first`.
/// Times still relative are fixed at `now`.
pub fn compile(
    filter: &Filter,
    types: &HashMap<String, AttrType>,
    first: usize,
    now: DateTime<Utc>,
) -> std::result::Result<Compiled, FilterError> {
    let lookup = |name: &str| types.get(name).copied();
    filter.check(&lookup)?;
    let mut c = Compiler {
        params: Vec::new(),
        first,
        types: &lookup,
        now,
    };
    let sql = c.node(filter);
    Ok(Compiled {
        sql,
        params: c.params,
        cap: None,
    })
}

struct Compiler<'a, T: Fn(&str) -> Option<AttrType>> {
    params: Vec<Param>,
    first: usize,
    types: &'a T,
    now: DateTime<Utc>,
}

impl<T: Fn(&str) -> Option<AttrType>> Compiler<'_, T> {
    /// Add a parameter; its placeholder, cast to `cast`.
    fn param(&mut self, p: Param, cast: &str) -> String {
        self.params.push(p);
        format!("${}::{cast}", self.first + self.params.len() - 1)
    }

    fn node(&mut self, f: &Filter) -> String {
        match f {
            Filter::All(v) | Filter::Any(v) => {
                let op = if matches!(f, Filter::All(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = v.iter().map(|x| self.node(x)).collect();
                format!("({})", parts.join(op))
            }
            Filter::Not(x) => format!("(NOT {})", self.node(x)),
            Filter::Segment(s) => {
                let p = self.param(Param::Text(s.as_str().to_owned()), "text");
                format!("(u.segments @> ARRAY[{p}] AND u.segments <> '{{}}')")
            }
            Filter::Test { field, test } => self.test(field, test),
        }
    }

    fn test(&mut self, field: &Field, test: &Test) -> String {
        let target = match field {
            Field::Column(Column::CreatedAt) => Target::Timestamp,
            Field::Column(c) => Target::of(c.kind()),
            Field::Attr(a) => {
                Target::of((self.types)(a).expect("checked: every attribute has a type"))
            }
        };
        if let Field::Attr(attr) = field
            && let Some(path) = self.attr_path(attr, target, test)
        {
            return path;
        }
        let value = self.value_expr(field, target);
        if let Test::Exists(want) = test {
            let has = format!("({value} IS NOT NULL)");
            return if *want { has } else { format!("(NOT {has})") };
        }
        let leaf = |sql: String| format!("coalesce({sql}, false)");
        match test {
            Test::Eq(v) => {
                let p = self.scalar(target, v);
                leaf(format!("{value} = {p}"))
            }
            Test::Ne(v) => {
                let p = self.scalar(target, v);
                format!("(NOT {})", leaf(format!("{value} = {p}")))
            }
            Test::In(vs) => {
                let p = self.list(target, vs);
                leaf(format!("{value} = ANY({p})"))
            }
            Test::Cmp(cmp, v) => {
                let p = self.scalar(target, v);
                leaf(format!("{value} {} {p}", cmp.sql()))
            }
            Test::Exists(_) => unreachable!("handled above"),
        }
    }

    /// A test of one attribute as an SQL/JSON path over `u.attrs`, where one says the same:
    /// PostgreSQL walks the attributes once for it, where the typed expression of
    /// [`Self::value_expr`] finds the value twice and converts it (over 10,000,000 users,
    /// 2.6 s against 4.0 s on one core). A strict path compares only values of the literal's
    /// own JSON type: another type, an array or no value at all makes its result unknown,
    /// which fails the test, as in the typed expression. Text is only tested for equality
    /// here, so that its order stays the database's.
    fn attr_path(&mut self, attr: &str, target: Target, test: &Test) -> Option<String> {
        let literal = |v: &Value| match (target, v) {
            (Target::Int, Value::Int(i)) => Some(i.to_string()),
            (Target::Float, v) => Some(float(v).to_string()),
            (Target::Bool, Value::Bool(b)) => Some(b.to_string()),
            (Target::Text, Value::Text(t)) => Some(json_string(t)),
            _ => None,
        };
        let key = json_string(attr);
        let (path, negate) = match test {
            Test::Eq(v) => (format!("strict $.{key} == {}", literal(v)?), false),
            Test::Ne(v) => (format!("strict $.{key} == {}", literal(v)?), true),
            // A path's `||` nests once per value, and PostgreSQL walks it recursively for
            // every row: a long list is left to `= ANY`.
            Test::In(vs) if !vs.is_empty() && vs.len() <= PATH_IN_VALUES => {
                let any: Option<Vec<String>> = vs
                    .iter()
                    .map(|v| Some(format!("@ == {}", literal(v)?)))
                    .collect();
                (
                    format!("strict exists($.{key} ? ({}))", any?.join(" || ")),
                    false,
                )
            }
            Test::Cmp(cmp, v) if matches!(target, Target::Int | Target::Float) => (
                format!("strict $.{key} {} {}", cmp.sql(), literal(v)?),
                false,
            ),
            _ => return None,
        };
        let p = self.param(Param::Path(JsonPath(path)), "jsonpath");
        let holds = format!("coalesce(u.attrs @@ {p}, false)");
        Some(if negate {
            format!("(NOT {holds})")
        } else {
            holds
        })
    }

    /// Each user's value of the field, in SQL: NULL when the user has none. An attribute's
    /// value that is not of its type (written by hand) is no value.
    fn value_expr(&mut self, field: &Field, target: Target) -> String {
        let attr = match field {
            Field::Column(c) => return format!("u.{}", c.name()),
            Field::Attr(a) => a,
        };
        let k = self.param(Param::Text(attr.clone()), "text");
        match target {
            Target::Text => format!(
                "(CASE WHEN jsonb_typeof(u.attrs -> {k}) = 'string' THEN u.attrs ->> {k} END)"
            ),
            Target::Int | Target::Float => format!(
                "(CASE WHEN jsonb_typeof(u.attrs -> {k}) = 'number' THEN (u.attrs ->> {k})::numeric END)"
            ),
            Target::Bool => format!(
                "(CASE WHEN jsonb_typeof(u.attrs -> {k}) = 'boolean' THEN (u.attrs ->> {k})::boolean END)"
            ),
            // Canonical RFC 3339 text (`TimeRef::canonical`): compared byte by byte, its
            // order is the time order. Text in any other form is no value.
            Target::TimeText | Target::Timestamp => format!(
                "((CASE WHEN u.attrs ->> {k} ~ '{CANONICAL_TIME}' THEN u.attrs ->> {k} END) COLLATE \"C\")"
            ),
        }
    }

    fn time(&self, s: &str) -> DateTime<Utc> {
        TimeRef::parse(s).expect("checked: a time").at(self.now)
    }

    fn scalar(&mut self, target: Target, v: &Value) -> String {
        let p = match target {
            Target::Int => Param::Int(int(v)),
            Target::Float => Param::Number(float(v)),
            Target::Bool => Param::Bool(boolean(v)),
            Target::Text => Param::Text(text(v).to_owned()),
            Target::TimeText => Param::Text(TimeRef::canonical(self.time(text(v)))),
            Target::Timestamp => Param::Time(self.time(text(v))),
        };
        self.param(p, target.cast())
    }

    fn list(&mut self, target: Target, vs: &[Value]) -> String {
        let p = match target {
            Target::Int => Param::Ints(vs.iter().map(int).collect()),
            Target::Float => Param::Numbers(vs.iter().map(float).collect()),
            Target::Bool => Param::Bools(vs.iter().map(boolean).collect()),
            Target::Text => Param::Texts(vs.iter().map(|v| text(v).to_owned()).collect()),
            Target::TimeText => Param::Texts(
                vs.iter()
                    .map(|v| TimeRef::canonical(self.time(text(v))))
                    .collect(),
            ),
            Target::Timestamp => Param::Times(vs.iter().map(|v| self.time(text(v))).collect()),
        };
        self.param(p, &format!("{}[]", target.cast()))
    }
}

// A checked filter's values fit their fields' types ([`Filter::check`]).
fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        v => unreachable!("checked: {v:?} is a whole number"),
    }
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Number(n) => *n,
        v => unreachable!("checked: {v:?} is a number"),
    }
}

fn boolean(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        v => unreachable!("checked: {v:?} is true or false"),
    }
}

fn text(v: &Value) -> &str {
    match v {
        Value::Text(s) => s,
        v => unreachable!("checked: {v:?} is a string"),
    }
}

/// The most values an `in` is tested with as a path.
const PATH_IN_VALUES: usize = 16;

/// `s` as a string literal of an SQL/JSON path: JSON's escapes are the path's too.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string is JSON")
}

/// The form time attributes are stored in, as a regular expression.
const CANONICAL_TIME: &str = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$";

/// How a field's values are compared in SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Text,
    Int,
    Float,
    Bool,
    /// A time attribute: canonical RFC 3339 text.
    TimeText,
    /// A time column.
    Timestamp,
}

impl Target {
    fn of(kind: AttrType) -> Self {
        match kind {
            AttrType::Text => Self::Text,
            AttrType::Int => Self::Int,
            AttrType::Number => Self::Float,
            AttrType::Bool => Self::Bool,
            AttrType::Time => Self::TimeText,
        }
    }

    fn cast(self) -> &'static str {
        match self {
            Self::Text | Self::TimeText => "text",
            Self::Int => "bigint",
            Self::Float => "float8",
            Self::Bool => "boolean",
            Self::Timestamp => "timestamptz",
        }
    }
}
