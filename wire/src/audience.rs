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

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::Segment;

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

/// A time in a filter: absolute, or relative to when the launch resolves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRef {
    At(DateTime<Utc>),
    /// Seconds from now (negative: ago).
    FromNow(i64),
}

impl TimeRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a time: use RFC 3339 (2026-11-01T00:00:00Z) or a time relative \
                 to the launch (-30d, -12h, +1w, now; units s, m, h, d, w)"
            )
        };
        if s == "now" {
            return Ok(Self::FromNow(0));
        }
        if let Some(rest) = s.strip_prefix(['-', '+']) {
            let sign = if s.starts_with('-') { -1 } else { 1 };
            let unit = rest.chars().last().ok_or_else(bad)?;
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(bad()),
            };
            let digits = &rest[..rest.len() - unit.len_utf8()];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            // At most about a century either way.
            let n: i64 = digits.parse().map_err(|_| bad())?;
            if n > 36_500 * 86_400 / secs {
                return Err(bad());
            }
            return Ok(Self::FromNow(sign * n * secs));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Self::At(t.with_timezone(&Utc)))
            .map_err(|_| bad())
    }

    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::At(t) => t,
            Self::FromNow(secs) => now + chrono::Duration::seconds(secs),
        }
    }

    /// How times are written where they are compared as text (in filters once resolved, and
    /// in time attributes): RFC 3339 in UTC to the microsecond, so that the text order is
    /// the time order.
    pub fn canonical(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
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
        let mut budget = Budget::default();
        parse_node(json, "", 1, &mut budget)
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

    /// The top-level clauses: an `all`'s members, or the filter itself (for dry-run counts).
    pub fn clauses(&self) -> Vec<&Filter> {
        match self {
            Self::All(members) => members.iter().collect(),
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

#[derive(Default)]
struct Budget {
    nodes: usize,
    values: usize,
}

const OPERATORS: [&str; 10] = [
    "eq", "ne", "in", "lt", "lte", "gt", "gte", "after", "before", "exists",
];

fn parse_node(
    json: &Json,
    path: &str,
    depth: usize,
    b: &mut Budget,
) -> Result<Filter, FilterError> {
    if depth > MAX_DEPTH {
        return Err(err(path, format!("filters nest at most {MAX_DEPTH} deep")));
    }
    b.nodes += 1;
    if b.nodes > MAX_NODES {
        return Err(err(path, format!("a filter has at most {MAX_NODES} nodes")));
    }
    let Json::Object(obj) = json else {
        return Err(err(
            path,
            "expected an object such as {\"segment\": \"beta\"} or {\"attr\": \"plan\", \"eq\": \"pro\"}",
        ));
    };
    let list = |key: &str, v: &Json, b: &mut Budget| -> Result<Vec<Filter>, FilterError> {
        let at = join(path, key);
        let Json::Array(items) = v else {
            return Err(err(&at, "expected a list of filters"));
        };
        if items.is_empty() {
            return Err(err(&at, "expected at least one filter"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, x)| parse_node(x, &format!("{at}[{i}]"), depth + 1, b))
            .collect()
    };
    let only = |key: &str| -> Result<(), FilterError> {
        match obj.keys().find(|k| *k != key) {
            Some(other) => Err(err(
                path,
                format!("{key:?} stands alone in its object; {other:?} does not belong there"),
            )),
            None => Ok(()),
        }
    };
    if let Some(v) = obj.get("all") {
        only("all")?;
        return Ok(Filter::All(list("all", v, b)?));
    }
    if let Some(v) = obj.get("any") {
        only("any")?;
        return Ok(Filter::Any(list("any", v, b)?));
    }
    if let Some(v) = obj.get("not") {
        only("not")?;
        return Ok(Filter::Not(Box::new(parse_node(
            v,
            &join(path, "not"),
            depth + 1,
            b,
        )?)));
    }
    if let Some(v) = obj.get("segment") {
        only("segment")?;
        let at = join(path, "segment");
        let Json::String(s) = v else {
            return Err(err(&at, "expected a segment name"));
        };
        return Segment::parse(s)
            .map(Filter::Segment)
            .map_err(|e| err(&at, e.0));
    }
    if let Some(name) = obj.get("attr") {
        let Json::String(name) = name else {
            return Err(err(&join(path, "attr"), "expected an attribute's name"));
        };
        let mut rest = obj.clone();
        rest.remove("attr");
        return parse_test(name, &rest, path, b);
    }
    // The shorthand `{"email": {"exists": true}}`.
    if obj.len() == 1 {
        let (name, v) = obj.iter().next().expect("one entry");
        if let (Some(_), Json::Object(ops)) = (Column::of(name), v) {
            return parse_test(name, ops, &join(path, name), b);
        }
    }
    let keys: Vec<&String> = obj.keys().collect();
    Err(err(
        path,
        format!(
            "unknown filter {keys:?}: use all, any, not, segment, or attr with one of {}",
            OPERATORS.join(", ")
        ),
    ))
}

fn parse_test(
    name: &str,
    ops: &Map<String, Json>,
    path: &str,
    b: &mut Budget,
) -> Result<Filter, FilterError> {
    let field = match Column::of(name) {
        Some(c) => Field::Column(c),
        None => {
            check_attr_name(name).map_err(|m| err(&join(path, "attr"), m))?;
            Field::Attr(name.to_owned())
        }
    };
    let mut entries = ops.iter();
    let (op, v) = match (entries.next(), entries.next()) {
        (Some(one), None) => one,
        (None, _) => {
            return Err(err(
                path,
                format!(
                    "a test of {name} needs an operator: one of {}",
                    OPERATORS.join(", ")
                ),
            ));
        }
        (Some(_), Some(_)) => {
            let keys: Vec<&String> = ops.keys().collect();
            return Err(err(
                path,
                format!("one operator per test, got {keys:?}; combine tests with all or any"),
            ));
        }
    };
    let at = join(path, op);
    let scalar = |v: &Json| {
        Value::from_json(v).ok_or_else(|| err(&at, "expected a string, a number, true or false"))
    };
    b.values += 1;
    let test = match op.as_str() {
        "eq" => Test::Eq(scalar(v)?),
        "ne" => Test::Ne(scalar(v)?),
        "in" => {
            let Json::Array(items) = v else {
                return Err(err(&at, "expected a list of values"));
            };
            if items.is_empty() {
                return Err(err(&at, "expected at least one value"));
            }
            b.values += items.len();
            Test::In(items.iter().map(scalar).collect::<Result<_, _>>()?)
        }
        "exists" => match v {
            Json::Bool(want) => Test::Exists(*want),
            _ => return Err(err(&at, "expected true or false")),
        },
        other => match Cmp::ALL.into_iter().find(|c| c.name() == other) {
            Some(cmp) => Test::Cmp(cmp, scalar(v)?),
            None => {
                return Err(err(
                    &at,
                    format!(
                        "unknown operator {other:?}: use one of {}",
                        OPERATORS.join(", ")
                    ),
                ));
            }
        },
    };
    if b.values > MAX_VALUES {
        return Err(err(
            &at,
            format!("a filter lists at most {MAX_VALUES} values"),
        ));
    }
    Ok(Filter::Test { field, test })
}

impl TryFrom<Json> for Filter {
    type Error = FilterError;
    fn try_from(json: Json) -> Result<Self, FilterError> {
        Self::parse(&json)
    }
}

impl From<Filter> for Json {
    fn from(f: Filter) -> Json {
        let mut obj = Map::new();
        match f {
            Filter::All(v) => {
                obj.insert("all".into(), v.into_iter().map(Json::from).collect());
            }
            Filter::Any(v) => {
                obj.insert("any".into(), v.into_iter().map(Json::from).collect());
            }
            Filter::Not(x) => {
                obj.insert("not".into(), Json::from(*x));
            }
            Filter::Segment(s) => {
                obj.insert("segment".into(), Json::String(s.as_str().to_owned()));
            }
            Filter::Test { field, test } => {
                obj.insert("attr".into(), Json::String(field.name().to_owned()));
                let (op, v) = match test {
                    Test::Eq(v) => ("eq", v.to_json()),
                    Test::Ne(v) => ("ne", v.to_json()),
                    Test::In(vs) => ("in", vs.iter().map(Value::to_json).collect()),
                    Test::Cmp(c, v) => (c.name(), v.to_json()),
                    Test::Exists(b) => ("exists", Json::Bool(b)),
                };
                obj.insert(op.into(), v);
            }
        }
        Json::Object(obj)
    }
}

impl std::fmt::Display for Filter {
    /// The filter as compact JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Json::from(self.clone()).to_string())
    }
}

#[cfg(test)]
mod tests;
