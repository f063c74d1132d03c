//! Audience filters: which users a campaign goes to, as a JSON expression tree.
//!
//! ```json
//! {"all": [{"attr": "plan", "eq": "pro"},
//!          {"attr": "country", "in": ["DE", "AT"]},
//!          {"attr": "last_seen", "after": "-30d"},
//!          {"not": {"segment": "beta"}}]}
//! ```
//!
//! - `all`, `any` (a non-empty list of filters) and `not` (one filter) combine;
//! - `{"segment": S}` holds users carrying the segment;
//! - `{"attr": NAME, OP: VALUE}` tests an attribute, or one of the users' own columns by
//!   name (`id`, `email`, `name`, `locale`, `timezone`, `created_at`); `{"email": {"exists":
//!   true}}` is the same as `{"attr": "email", "exists": true}`. One operator per test: `eq`,
//!   `ne` (the same as `not` … `eq`: users without the attribute match), `in` (a list),
//!   `lt`, `lte`, `gt`, `gte` (numbers and times), `after`, `before` (times), `exists`.
//! - A time is RFC 3339 (`2026-11-01T00:00:00Z`) or relative to the launch: `-30d`, `-12h`,
//!   `+2w`, `now` (units `s`, `m`, `h`, `d`, `w`). A launch fixes relative times
//!   ([`Filter::resolve`]), so the audience does not drift while the campaign runs.
//!
//! Parsing checks the shape, with the path of the offending node in every error (`all[2].in:
//! …`); [`Filter::check`] checks each test against the type of its attribute. The store
//! compiles a checked filter to parameterized SQL: no text from a filter is ever spliced
//! into a statement.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{InvalidInput, Segment};

mod json;
mod time;

pub use time::TimeRef;

/// How deep filters may nest, how many nodes and listed values one may hold, and how long
/// its JSON may be: enough for any real audience, and small enough to travel in a launch.
pub const MAX_DEPTH: usize = 8;
pub const MAX_NODES: usize = 256;
pub const MAX_VALUES: usize = 10_000;
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A parsed audience filter. Serializes to the JSON it was read from (relative times
/// included, until [`Filter::resolve`] fixes them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Json", into = "Json")]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Segment(Segment),
    Test { field: Field, test: Test },
}

/// What a test is about: one of the users' own columns, or an attribute in `users.attrs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Column(Column),
    Attr(String),
}

/// The columns Herald itself gives users, with their types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Id,
    Email,
    Name,
    Locale,
    Timezone,
    CreatedAt,
}

impl Column {
    pub const ALL: [Column; 6] = [
        Self::Id,
        Self::Email,
        Self::Name,
        Self::Locale,
        Self::Timezone,
        Self::CreatedAt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Email => "email",
            Self::Name => "name",
            Self::Locale => "locale",
            Self::Timezone => "timezone",
            Self::CreatedAt => "created_at",
        }
    }

    pub fn of(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn kind(self) -> AttrType {
        match self {
            Self::Id => AttrType::Int,
            Self::CreatedAt => AttrType::Time,
            _ => AttrType::Text,
        }
    }
}

impl Field {
    pub fn name(&self) -> &str {
        match self {
            Self::Column(c) => c.name(),
            Self::Attr(a) => a,
        }
    }
}

/// The type of an attribute: every user's value of it has this type (imports and the API
/// refuse others).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    Text,
    Int,
    Number,
    Bool,
    Time,
}

impl AttrType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Int => "int",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::Time => "time",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Text, Self::Int, Self::Number, Self::Bool, Self::Time]
            .into_iter()
            .find(|t| t.name() == s)
    }

    /// The type's name with its article: "a text", "an int".
    pub fn a(self) -> &'static str {
        match self {
            Self::Text => "a text",
            Self::Int => "an int",
            Self::Number => "a number",
            Self::Bool => "a bool",
            Self::Time => "a time",
        }
    }

    fn ordered(self) -> bool {
        matches!(self, Self::Int | Self::Number | Self::Time)
    }
}

/// An attribute's name: 1–63 of `a-z 0-9 _`, starting with a letter.
pub fn check_attr_name(name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "attribute name {name:?} must be 1–63 of a-z, 0-9 and _, starting with a letter"
        ))
    }
}

/// One test of a field.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Cmp(Cmp, Value),
    Exists(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Lte,
    Gt,
    Gte,
    /// `after` and `before`: `gt` and `lt` for times, by the names people use for them.
    After,
    Before,
}

impl Cmp {
    pub fn name(self) -> &'static str {
        match self {
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::After => "after",
            Self::Before => "before",
        }
    }

    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Lt | Self::Before => "<",
            Self::Lte => "<=",
            Self::Gt | Self::After => ">",
            Self::Gte => ">=",
        }
    }

    const ALL: [Cmp; 6] = [
        Self::Lt,
        Self::Lte,
        Self::Gt,
        Self::Gte,
        Self::After,
        Self::Before,
    ];
}

/// A value in a test, as JSON gave it. A string may be a time; [`Filter::check`] reads it
/// as one where the attribute is a time.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Number(f64),
    Bool(bool),
}

impl Value {
    fn from_json(v: &Json) -> Option<Self> {
        Some(match v {
            Json::String(s) => Self::Text(s.clone()),
            Json::Bool(b) => Self::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Self::Int(i),
                None => Self::Number(n.as_f64()?),
            },
            _ => return None,
        })
    }

    fn to_json(&self) -> Json {
        match self {
            Self::Text(s) => Json::String(s.clone()),
            Self::Int(i) => Json::from(*i),
            Self::Number(n) => Json::from(*n),
            Self::Bool(b) => Json::Bool(*b),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "a string",
            Self::Int(_) | Self::Number(_) => "a number",
            Self::Bool(_) => "true or false",
        }
    }
}

/// A saved audience's name: 1–64 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AudienceName(String);

impl AudienceName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let fits = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(fits) {
            let shown: String = s.chars().take(70).collect();
            return Err(InvalidInput(format!(
                "{shown:?} is not an audience name (1 to 64 of A-Z a-z 0-9 . _ -)"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AudienceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A filter that cannot be valid: where (`all[2].in`, empty for the whole filter), and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Filter {
    /// Read a filter from JSON text, within the size limits.
    pub fn parse_str(text: &str) -> Result<Self, FilterError> {
        if text.len() > MAX_JSON_BYTES {
            return Err(err(
                "",
                format!("a filter is at most {MAX_JSON_BYTES} bytes of JSON"),
            ));
        }
        let json: Json =
            serde_json::from_str(text).map_err(|e| err("", format!("not JSON: {e}")))?;
        Self::parse(&json)
    }

    /// Read a filter from JSON, within the limits on size, depth, nodes and values.
    pub fn parse(json: &Json) -> Result<Self, FilterError> {
        if json.to_string().len() > MAX_JSON_BYTES {
            return Err(err(
                "",
                format!("a filter is at most {MAX_JSON_BYTES} bytes of JSON"),
            ));
        }
        let mut budget = json::Budget::default();
        json::parse_node(json, "", 1, &mut budget)
    }

    /// Check every test against its field's type: `types` gives an attribute's type, `None`
    /// for one no user has. Times given as text become times here.
    pub fn check(&self, types: &impl Fn(&str) -> Option<AttrType>) -> Result<(), FilterError> {
        self.visit_tests("", &mut |path, field, test| {
            let kind = match field {
                Field::Column(c) => c.kind(),
                Field::Attr(a) => types(a).ok_or_else(|| {
                    err(
                        path,
                        format!("no user has an attribute {a:?}; check its spelling"),
                    )
                })?,
            };
            check_test(path, field.name(), kind, test)
        })
    }

    /// Fix the times of a checked filter: relative ones at `now` (a launch does, so that the
    /// audience does not drift while the campaign runs), and every one in the canonical form
    /// that time attributes are compared in ([`TimeRef::canonical`]). `types` as for
    /// [`Filter::check`]; values of other types are left alone.
    pub fn resolve(&mut self, now: DateTime<Utc>, types: &impl Fn(&str) -> Option<AttrType>) {
        self.for_each_test(&mut |field, test| {
            let kind = match field {
                Field::Column(c) => Some(c.kind()),
                Field::Attr(a) => types(a),
            };
            if kind != Some(AttrType::Time) {
                return;
            }
            let fix = |v: &mut Value| {
                if let Value::Text(s) = v
                    && let Ok(t) = TimeRef::parse(s)
                {
                    *s = TimeRef::canonical(t.at(now));
                }
            };
            match test {
                Test::Eq(v) | Test::Ne(v) | Test::Cmp(_, v) => fix(v),
                Test::In(vs) => vs.iter_mut().for_each(fix),
                Test::Exists(_) => {}
            }
        });
    }

    /// A shorthand: users carrying one segment.
    pub fn segment(segment: Segment) -> Self {
        Self::Segment(segment)
    }

    /// The top-level clauses: an `all`'s or an `any`'s members, or the filter itself (for
    /// dry-run counts).
    pub fn clauses(&self) -> Vec<&Filter> {
        match self {
            Self::All(members) | Self::Any(members) => members.iter().collect(),
            other => vec![other],
        }
    }

    fn for_each_test(&mut self, f: &mut impl FnMut(&Field, &mut Test)) {
        match self {
            Self::All(v) | Self::Any(v) => v.iter_mut().for_each(|x| x.for_each_test(f)),
            Self::Not(x) => x.for_each_test(f),
            Self::Segment(_) => {}
            Self::Test { field, test } => f(field, test),
        }
    }

    fn visit_tests(
        &self,
        path: &str,
        f: &mut impl FnMut(&str, &Field, &Test) -> Result<(), FilterError>,
    ) -> Result<(), FilterError> {
        match self {
            Self::All(v) | Self::Any(v) => {
                let key = if matches!(self, Self::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (i, x) in v.iter().enumerate() {
                    x.visit_tests(&format!("{}[{i}]", join(path, key)), f)?;
                }
                Ok(())
            }
            Self::Not(x) => x.visit_tests(&join(path, "not"), f),
            Self::Segment(_) => Ok(()),
            Self::Test { field, test } => f(path, field, test),
        }
    }
}

fn check_test(path: &str, name: &str, kind: AttrType, test: &Test) -> Result<(), FilterError> {
    let value_fits = |op: &str, v: &Value| -> Result<(), FilterError> {
        let fits = match (kind, v) {
            (AttrType::Text, Value::Text(_)) => true,
            (AttrType::Int, Value::Int(_)) => true,
            (AttrType::Number, Value::Int(_) | Value::Number(_)) => true,
            (AttrType::Bool, Value::Bool(_)) => true,
            (AttrType::Time, Value::Text(s)) => {
                TimeRef::parse(s).map_err(|m| err(&join(path, op), m))?;
                true
            }
            _ => false,
        };
        if fits {
            return Ok(());
        }
        let wanted = match kind {
            AttrType::Text => "a string",
            AttrType::Int => "a whole number",
            AttrType::Number => "a number",
            AttrType::Bool => "true or false",
            AttrType::Time => "a time",
        };
        Err(err(
            &join(path, op),
            format!(
                "{name} is {} attribute: {op} needs {wanted}, not {}",
                kind.a(),
                v.kind()
            ),
        ))
    };
    match test {
        Test::Eq(v) => value_fits("eq", v),
        Test::Ne(v) => value_fits("ne", v),
        Test::In(vs) => vs.iter().try_for_each(|v| value_fits("in", v)),
        Test::Cmp(cmp, v) => {
            let times_only = matches!(cmp, Cmp::After | Cmp::Before);
            if (times_only && kind != AttrType::Time) || !kind.ordered() {
                let what = if times_only {
                    "times"
                } else {
                    "numbers and times"
                };
                return Err(err(
                    &join(path, cmp.name()),
                    format!(
                        "{} compares {what}; {name} is {} attribute",
                        cmp.name(),
                        kind.a()
                    ),
                ));
            }
            value_fits(cmp.name(), v)
        }
        Test::Exists(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
