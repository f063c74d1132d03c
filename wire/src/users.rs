//! Users as imports and the API give them: the columns Herald itself reads (`email`, `name`,
//! `locale`, `timezone`, `segments`, `created_at`) and typed attributes.
//!
//! A [`UserChange`] says, for each field, whether to set it, clear it or leave it as it is,
//! so that one type serves a replacing `PUT` (every field not given is cleared) and an
//! import that updates only the columns its file has. Every value in it has been checked:
//! an e-mail address has its `@`, a time zone is one of the server's IANA names, an
//! attribute's value has the attribute's type.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value as Json};

use crate::audience::{AttrType, Column, TimeRef, check_attr_name};
use crate::{FieldError, Segment};

/// The largest user id: 2^53 − 1, the largest whole number that every JSON reader (a
/// browser's among them) keeps exactly. The table refuses larger ids too.
pub const MAX_USER_ID: i64 = (1 << 53) - 1;
/// The longest text Herald keeps in a user's column or text attribute.
pub const MAX_TEXT: usize = 4_096;
/// How many attributes one user may carry.
pub const MAX_ATTRS: usize = 256;
/// A user's own fields beside `id`, as imports and the API name them.
pub const OWN_FIELDS: [&str; 6] = [
    "email",
    "name",
    "locale",
    "timezone",
    "segments",
    "created_at",
];

/// What to do with one field of a stored user.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Change<T> {
    /// Leave it as it is (a new user gets the default: none).
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_given(&self) -> bool {
        !matches!(self, Self::Keep)
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// A checked value of an attribute, of the attribute's type.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Text(String),
    Int(i64),
    Number(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl AttrValue {
    /// As stored in `users.attrs`: times in their canonical text (see [`TimeRef::canonical`]).
    pub fn to_json(&self) -> Json {
        match self {
            Self::Text(s) => Json::String(s.clone()),
            Self::Int(i) => Json::from(*i),
            Self::Number(n) => Json::from(*n),
            Self::Bool(b) => Json::Bool(*b),
            Self::Time(t) => Json::String(TimeRef::canonical(*t)),
        }
    }

    /// Read a value of type `kind` from text, as a CSV cell holds it.
    pub fn from_text(kind: AttrType, s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not {}", kind.a());
        Ok(match kind {
            AttrType::Text => Self::Text(checked_text(s)?.to_owned()),
            AttrType::Int => Self::Int(s.trim().parse().map_err(|_| bad())?),
            AttrType::Number => {
                let n: f64 = s.trim().parse().map_err(|_| bad())?;
                if !n.is_finite() {
                    return Err(bad());
                }
                Self::Number(n)
            }
            AttrType::Bool => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" => Self::Bool(true),
                "false" | "f" | "0" | "no" => Self::Bool(false),
                _ => return Err(bad()),
            },
            AttrType::Time => Self::Time(parse_time(s.trim()).ok_or_else(|| {
                format!("{s:?} is not a time: use RFC 3339 (2026-11-01T09:30:00Z) or a date (2026-11-01)")
            })?),
        })
    }

    /// Read a value of type `kind` from JSON. A JSON string is read as text would be only for
    /// text and time attributes: `"5"` is not an int.
    pub fn from_json(kind: AttrType, v: &Json) -> Result<Self, String> {
        let bad = || format!("{v} is not {}", kind.a());
        match (kind, v) {
            (AttrType::Text | AttrType::Time, Json::String(s)) => Self::from_text(kind, s),
            (AttrType::Int, Json::Number(n)) => n.as_i64().map(Self::Int).ok_or_else(bad),
            (AttrType::Number, Json::Number(n)) => n
                .as_f64()
                .filter(|n| n.is_finite())
                .map(Self::Number)
                .ok_or_else(bad),
            (AttrType::Bool, Json::Bool(b)) => Ok(Self::Bool(*b)),
            _ => Err(bad()),
        }
    }
}

/// A time as users give one: RFC 3339, or a date (midnight UTC), in the years 1–9999 (UTC)
/// that PostgreSQL and the canonical text form both hold.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc(),
    };
    (1..=9999).contains(&t.year()).then_some(t)
}

/// The type a value read from a file looks like, for an attribute whose type nobody gave.
/// Text that reads as a number only when nothing is lost: `01234` (a postcode), `+49…` (a
/// phone number) and digits past an int's range are text.
pub fn looks_like_text(s: &str) -> AttrType {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain = !digits.starts_with('+')
        && !(digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit());
    if plain && s.parse::<i64>().is_ok() {
        AttrType::Int
    } else if plain
        && !digits.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<f64>().is_ok_and(f64::is_finite)
    {
        AttrType::Number
    } else if ["true", "false"].contains(&s.to_ascii_lowercase().as_str()) {
        AttrType::Bool
    } else if parse_time(s).is_some() {
        AttrType::Time
    } else {
        AttrType::Text
    }
}

/// The same for a JSON value (`None` for null and for what no attribute can hold).
pub fn looks_like_json(v: &Json) -> Option<AttrType> {
    Some(match v {
        Json::Bool(_) => AttrType::Bool,
        Json::Number(n) if n.is_i64() => AttrType::Int,
        Json::Number(_) => AttrType::Number,
        Json::String(s) if parse_time(s).is_some() => AttrType::Time,
        Json::String(_) => AttrType::Text,
        _ => return None,
    })
}

/// The types of the attributes that `users` (JSON objects with an `attrs` object) give and
/// `known` does not, as their values look: what a `PUT`, a batch or an import infers.
pub fn infer_json_types<'a>(
    users: impl IntoIterator<Item = &'a Json>,
    known: impl Fn(&str) -> bool,
) -> BTreeMap<String, AttrType> {
    let mut found = BTreeMap::new();
    for attrs in users
        .into_iter()
        .filter_map(|u| u.get("attrs")?.as_object())
    {
        for (name, v) in attrs.iter().filter(|(name, _)| !known(name)) {
            if let Some(kind) = looks_like_json(v) {
                found
                    .entry(name.clone())
                    .and_modify(|k| *k = widen(*k, kind))
                    .or_insert(kind);
            }
        }
    }
    found
}

/// Two types seen for one attribute: the one that holds both, if any.
pub fn widen(a: AttrType, b: AttrType) -> AttrType {
    use AttrType::*;
    match (a, b) {
        _ if a == b => a,
        (Int, Number) | (Number, Int) => Number,
        _ => Text,
    }
}

fn checked_text(s: &str) -> Result<&str, String> {
    if s.len() > MAX_TEXT {
        return Err(format!("is longer than {MAX_TEXT} bytes"));
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err("holds a control character".into());
    }
    Ok(s)
}

/// Whether `name` can name an attribute: the attribute-name rules, and none of the columns'.
pub fn check_new_attr_name(name: &str) -> Result<(), String> {
    check_attr_name(name)?;
    if Column::of(name).is_some() || ["segments", "segment", "attrs"].contains(&name) {
        return Err(format!(
            "{name:?} is one of a user's own fields, not an attribute"
        ));
    }
    Ok(())
}

/// A change to one user, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserChange {
    pub id: i64,
    pub email: Change<String>,
    pub name: Change<String>,
    pub locale: Change<String>,
    pub timezone: Change<String>,
    pub segments: Change<Vec<Segment>>,
    pub created_at: Change<DateTime<Utc>>,
    /// The attributes given: `None` clears one.
    pub attrs: BTreeMap<String, Option<AttrValue>>,
    /// Whether the attributes given replace all the user had (a `PUT`), or are merged into
    /// them (an import).
    pub replace_attrs: bool,
}

/// What checking a user needs to know: the attributes' types, and the time zones there are.
pub trait UserRules {
    fn attr_type(&self, name: &str) -> Option<AttrType>;
    fn is_time_zone(&self, name: &str) -> bool;
}

fn field_err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

/// Whether `id` may name a user: a whole number from 1 to [`MAX_USER_ID`].
pub fn is_user_id(id: i64) -> bool {
    (1..=MAX_USER_ID).contains(&id)
}

fn not_an_id(given: impl std::fmt::Display) -> FieldError {
    field_err(
        "id",
        format!("{given} is not a user id (a whole number from 1 to {MAX_USER_ID})"),
    )
}

/// Check a user id as given in text.
pub fn parse_id(s: &str) -> Result<i64, FieldError> {
    match s.trim().parse::<i64>() {
        Ok(id) if is_user_id(id) => Ok(id),
        _ => Err(not_an_id(format_args!("{s:?}"))),
    }
}

impl UserChange {
    /// Set one of the user's own fields from text (a CSV cell). Empty text clears it.
    pub fn set_column(
        &mut self,
        column: &str,
        text: &str,
        rules: &impl UserRules,
    ) -> Result<(), FieldError> {
        let text = text.trim();
        let clear = text.is_empty();
        let fail = |m: String| field_err(column, m);
        match column {
            "email" => self.email = given(clear, || check_email(text).map_err(fail))?,
            "name" => {
                self.name = given(clear, || Ok(checked_text(text).map_err(fail)?.to_owned()))?
            }
            "locale" => self.locale = given(clear, || check_locale(text).map_err(fail))?,
            "timezone" => {
                self.timezone = given(clear, || {
                    if rules.is_time_zone(text) {
                        Ok(text.to_owned())
                    } else {
                        Err(fail(format!(
                            "{text:?} is not an IANA time zone name (like Europe/Berlin or America/New_York)"
                        )))
                    }
                })?
            }
            "segments" => {
                self.segments = Change::Set(
                    text.split_whitespace()
                        .map(|s| Segment::parse(s).map_err(|e| fail(e.0)))
                        .collect::<Result<_, _>>()?,
                )
            }
            "created_at" => {
                self.created_at = given(clear, || {
                    parse_time(text)
                        .ok_or_else(|| fail(format!("{text:?} is not a time (RFC 3339)")))
                })?
            }
            other => return Err(field_err(other, "is not one of a user's own fields")),
        }
        Ok(())
    }

    /// Set an attribute from text (a CSV cell). Empty text clears it.
    pub fn set_attr_text(
        &mut self,
        name: &str,
        kind: AttrType,
        text: &str,
    ) -> Result<(), FieldError> {
        let value = if text.is_empty() {
            None
        } else {
            Some(AttrValue::from_text(kind, text).map_err(|m| field_err(&attr_path(name), m))?)
        };
        self.attrs.insert(name.to_owned(), value);
        Ok(())
    }

    /// Read a user from a JSON object: `{"id": 1, "email": …, "segments": […], "attrs": {…}}`
    /// (the id may instead come from elsewhere, as a `PUT`'s path). A field not given is
    /// left alone, unless `replace` (then it is cleared, and `attrs` replaces every
    /// attribute); `null` clears it.
    pub fn from_json(
        json: &Json,
        id: Option<i64>,
        replace: bool,
        rules: &impl UserRules,
    ) -> Result<Self, FieldError> {
        let Json::Object(obj) = json else {
            return Err(field_err("", "a user is a JSON object"));
        };
        for key in obj.keys() {
            if !(["id", "attrs"].contains(&key.as_str()) || OWN_FIELDS.contains(&key.as_str())) {
                return Err(field_err(
                    key,
                    "is not a field of a user (id, email, name, locale, timezone, segments, \
                     created_at, attrs); attributes go in attrs",
                ));
            }
        }
        let id = match (obj.get("id"), id) {
            (None, Some(id)) => id,
            (Some(Json::Number(n)), path) => {
                let given = n
                    .as_i64()
                    .filter(|id| is_user_id(*id))
                    .ok_or_else(|| not_an_id(n))?;
                if path.is_some_and(|p| p != given) {
                    return Err(field_err(
                        "id",
                        format!("{given} is not the id in the path"),
                    ));
                }
                given
            }
            (Some(other), _) => return Err(not_an_id(other)),
            (None, None) => return Err(field_err("id", "is required")),
        };
        let mut user = UserChange {
            id,
            replace_attrs: replace,
            ..Default::default()
        };
        if replace {
            user.email = Change::Clear;
            user.name = Change::Clear;
            user.locale = Change::Clear;
            user.timezone = Change::Clear;
            user.segments = Change::Set(Vec::new());
        }
        for column in ["email", "name", "locale", "timezone", "created_at"] {
            match obj.get(column) {
                None => {}
                Some(Json::Null) => user.set_column(column, "", rules)?,
                // An empty string clears, as an empty CSV cell does.
                Some(Json::String(s)) => user.set_column(column, s, rules)?,
                Some(other) => return Err(field_err(column, format!("{other} is not a string"))),
            }
        }
        match obj.get("segments") {
            None => {}
            Some(Json::Null) => user.segments = Change::Set(Vec::new()),
            Some(Json::Array(list)) => {
                let segments =
                    list.iter()
                        .enumerate()
                        .map(|(i, s)| match s {
                            Json::String(s) => Segment::parse(s)
                                .map_err(|e| field_err(&format!("segments[{i}]"), e.0)),
                            other => Err(field_err(
                                &format!("segments[{i}]"),
                                format!("{other} is not a string"),
                            )),
                        })
                        .collect::<Result<_, _>>()?;
                user.segments = Change::Set(segments);
            }
            Some(other) => return Err(field_err("segments", format!("{other} is not a list"))),
        }
        match obj.get("attrs") {
            None | Some(Json::Null) => {}
            Some(Json::Object(attrs)) => user.read_attrs(attrs, rules)?,
            Some(other) => return Err(field_err("attrs", format!("{other} is not an object"))),
        }
        Ok(user)
    }

    fn read_attrs(
        &mut self,
        attrs: &Map<String, Json>,
        rules: &impl UserRules,
    ) -> Result<(), FieldError> {
        if attrs.len() > MAX_ATTRS {
            return Err(field_err(
                "attrs",
                format!("a user has at most {MAX_ATTRS} attributes"),
            ));
        }
        for (name, v) in attrs {
            let path = attr_path(name);
            check_new_attr_name(name).map_err(|m| field_err(&path, m))?;
            let value = match v {
                Json::Null => None,
                v => {
                    let kind = rules.attr_type(name).ok_or_else(|| {
                        field_err(
                            &path,
                            "has no type yet: an import of users gives attributes their types",
                        )
                    })?;
                    Some(AttrValue::from_json(kind, v).map_err(|m| field_err(&path, m))?)
                }
            };
            self.attrs.insert(name.clone(), value);
        }
        Ok(())
    }

    /// The attributes as they go into `users.attrs`: cleared ones as JSON null.
    pub fn attrs_json(&self) -> Json {
        Json::Object(
            self.attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map_or(Json::Null, AttrValue::to_json)))
                .collect(),
        )
    }
}

fn attr_path(name: &str) -> String {
    format!("attrs.{name}")
}

fn given<T>(
    clear: bool,
    value: impl FnOnce() -> Result<T, FieldError>,
) -> Result<Change<T>, FieldError> {
    if clear {
        Ok(Change::Clear)
    } else {
        value().map(Change::Set)
    }
}

/// An e-mail address as far as Herald checks one: something before and after one `@`, no
/// spaces, at most 254 bytes. The relay has the last word.
pub fn check_email(s: &str) -> Result<String, String> {
    let ok = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not an e-mail address"))
    }
}

/// A locale as a BCP 47 tag (`de`, `pt-BR`, `zh-Hant-TW`); `_` is read as `-`.
pub fn check_locale(s: &str) -> Result<String, String> {
    let tag = s.replace('_', "-");
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    let ok = tag.len() <= 35
        && (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(tag)
    } else {
        Err(format!(
            "{s:?} is not a locale (a BCP 47 tag like en, de-AT or pt-BR)"
        ))
    }
}

#[cfg(test)]
mod tests;
