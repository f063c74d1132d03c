//! Filters as JSON: reading a tree within the limits, with the path of each error, and
//! writing it back in the same form.

use serde_json::{Map, Value as Json};

use super::{
    Cmp, Column, Field, Filter, FilterError, MAX_DEPTH, MAX_NODES, MAX_VALUES, Test, Value,
    check_attr_name, err, join,
};
use crate::Segment;

#[derive(Default)]
pub(super) struct Budget {
    nodes: usize,
    values: usize,
}

const OPERATORS: [&str; 10] = [
    "eq", "ne", "in", "lt", "lte", "gt", "gte", "after", "before", "exists",
];

pub(super) fn parse_node(
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
