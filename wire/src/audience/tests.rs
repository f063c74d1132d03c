//! The filter language: what parses, what each error says and where, and how types are
//! checked.

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn parse(v: Json) -> Result<Filter, FilterError> {
    Filter::parse(&v)
}

fn types(name: &str) -> Option<AttrType> {
    match name {
        "plan" | "country" => Some(AttrType::Text),
        "age" => Some(AttrType::Int),
        "score" => Some(AttrType::Number),
        "beta" => Some(AttrType::Bool),
        "last_seen" => Some(AttrType::Time),
        _ => None,
    }
}

fn refused(v: Json) -> FilterError {
    match parse(v.clone()).and_then(|f| f.check(&types).map(|()| f)) {
        Ok(f) => panic!("{v} was accepted as {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_operator_parses_and_round_trips() {
    let v = json!({"all": [
        {"attr": "plan", "eq": "pro"},
        {"attr": "plan", "ne": "free"},
        {"attr": "country", "in": ["DE", "AT"]},
        {"attr": "age", "gte": 18},
        {"attr": "age", "lt": 65},
        {"attr": "score", "gt": 0.5},
        {"attr": "score", "lte": 3},
        {"attr": "beta", "eq": true},
        {"attr": "last_seen", "after": "-30d"},
        {"attr": "last_seen", "before": "2026-12-01T00:00:00Z"},
        {"attr": "phone", "exists": true},
        {"any": [{"segment": "vip"}, {"not": {"segment": "beta"}}]},
        {"attr": "created_at", "after": "-1w"},
        {"attr": "id", "gt": 1000},
    ]});
    let f = parse(v.clone()).unwrap();
    assert_eq!(Json::from(f.clone()), v);
    assert_eq!(f.clauses().len(), 14);
    // "phone" is not a known attribute: the type check names it, with its path.
    let e = f.check(&types).unwrap_err();
    assert_eq!(e.path, "all[10]");
    assert!(e.message.contains("\"phone\""), "{e}");
}

#[test]
fn a_column_can_be_tested_by_its_name() {
    let f = parse(json!({"email": {"exists": true}})).unwrap();
    assert_eq!(
        f,
        Filter::Test {
            field: Field::Column(Column::Email),
            test: Test::Exists(true)
        }
    );
    assert_eq!(parse(json!({"attr": "email", "exists": true})).unwrap(), f);
    f.check(&|_| None).unwrap();
}

#[test]
fn shape_errors_name_the_offending_node() {
    for (v, path, says) in [
        (json!([]), "", "expected an object"),
        (json!({"all": []}), "all", "at least one"),
        (json!({"all": {"segment": "x"}}), "all", "a list of filters"),
        (
            json!({"any": [{"segment": "a"}, {"attr": "plan", "like": "p%"}]}),
            "any[1].like",
            "unknown operator",
        ),
        (json!({"not": {"segment": ""}}), "not.segment", "1 to 64"),
        (json!({"attr": "plan"}), "", "needs an operator"),
        (
            json!({"attr": "plan", "eq": "a", "ne": "b"}),
            "",
            "one operator per test",
        ),
        (json!({"attr": "Plan!", "eq": "a"}), "attr", "a-z"),
        (
            json!({"attr": "country", "in": []}),
            "in",
            "at least one value",
        ),
        (
            json!({"attr": "country", "in": [["DE"]]}),
            "in",
            "a string, a number",
        ),
        (
            json!({"attr": "beta", "exists": "yes"}),
            "exists",
            "true or false",
        ),
        (json!({"segment": "a", "attr": "plan"}), "", "stands alone"),
        (json!({"plan": "pro"}), "", "unknown filter"),
        (
            json!({"all": [{"all": [{"not": {"segment": 7}}]}]}),
            "all[0].all[0].not.segment",
            "segment name",
        ),
    ] {
        let e = parse(v.clone()).unwrap_err();
        assert_eq!(e.path, path, "{v}: {e}");
        assert!(e.message.contains(says), "{v}: {e}");
    }
}

#[test]
fn type_errors_name_the_attribute_its_type_and_the_operator() {
    for (v, path, says) in [
        (
            json!({"attr": "plan", "gte": 3}),
            "gte",
            "gte compares numbers and times; plan is a text attribute",
        ),
        (
            json!({"attr": "age", "gte": "18"}),
            "gte",
            "age is an int attribute: gte needs a whole number, not a string",
        ),
        (
            json!({"attr": "age", "eq": 1.5}),
            "eq",
            "needs a whole number",
        ),
        (
            json!({"attr": "age", "after": 3}),
            "after",
            "after compares times; age is an int attribute",
        ),
        (
            json!({"attr": "last_seen", "after": "last month"}),
            "after",
            "is not a time",
        ),
        (
            json!({"attr": "beta", "in": [true, "no"]}),
            "in",
            "needs true or false",
        ),
        (
            json!({"all": [{"segment": "a"}, {"attr": "score", "eq": "high"}]}),
            "all[1].eq",
            "needs a number",
        ),
        (
            json!({"attr": "created_at", "gt": "-3x"}),
            "gt",
            "is not a time",
        ),
        (
            json!({"not": {"attr": "plna", "eq": "pro"}}),
            "not",
            "no user has an attribute \"plna\"",
        ),
    ] {
        let e = refused(v.clone());
        assert_eq!(e.path, path, "{v}: {e}");
        assert!(e.message.contains(says), "{v}: {e}");
    }
    // A number attribute takes whole numbers too.
    parse(json!({"attr": "score", "gte": 2}))
        .unwrap()
        .check(&types)
        .unwrap();
}

#[test]
fn limits_keep_a_filter_small() {
    let mut deep = json!({"segment": "a"});
    for _ in 0..MAX_DEPTH {
        deep = json!({"not": deep});
    }
    assert!(parse(deep).unwrap_err().message.contains("nest at most"));
    let wide = json!({"any": (0..MAX_NODES).map(|_| json!({"segment": "a"})).collect::<Vec<_>>()});
    assert!(
        parse(wide)
            .unwrap_err()
            .message
            .contains("at most 256 nodes")
    );
    let many = json!({"attr": "age", "in": (0..=MAX_VALUES as i64).collect::<Vec<_>>()});
    assert!(
        parse(many)
            .unwrap_err()
            .message
            .contains("at most 10000 values")
    );
    let long = json!({"any": [{"attr": "plan", "in": ["x".repeat(MAX_JSON_BYTES)]}]});
    assert!(parse(long).unwrap_err().message.contains("bytes"));
    let long = format!("{{\"segment\": \"{}\"}}", "a".repeat(MAX_JSON_BYTES));
    assert!(
        Filter::parse_str(&long)
            .unwrap_err()
            .message
            .contains("bytes")
    );
    assert!(
        Filter::parse_str("{")
            .unwrap_err()
            .message
            .contains("not JSON")
    );
}

#[test]
fn a_launch_fixes_relative_times() {
    let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
    let mut f = parse(json!({"all": [
        {"attr": "last_seen", "after": "-30d"},
        {"attr": "created_at", "before": "now"},
        {"attr": "plan", "eq": "-30d"},
        {"attr": "last_seen", "before": "2027-01-01T01:00:00+01:00"},
    ]}))
    .unwrap();
    f.check(&types).unwrap();
    f.resolve(now, &types);
    assert_eq!(
        Json::from(f),
        json!({"all": [
            {"attr": "last_seen", "after": "2026-11-05T12:00:00.000000Z"},
            {"attr": "created_at", "before": "2026-12-05T12:00:00.000000Z"},
            // Not a time attribute's value: left alone.
            {"attr": "plan", "eq": "-30d"},
            {"attr": "last_seen", "before": "2027-01-01T00:00:00.000000Z"},
        ]})
    );
}

#[test]
fn relative_times_read_as_people_write_them() {
    assert_eq!(TimeRef::parse("-30d"), Ok(TimeRef::FromNow(-30 * 86_400)));
    assert_eq!(TimeRef::parse("+2w"), Ok(TimeRef::FromNow(2 * 604_800)));
    assert_eq!(TimeRef::parse("-90m"), Ok(TimeRef::FromNow(-5_400)));
    assert_eq!(TimeRef::parse("now"), Ok(TimeRef::FromNow(0)));
    for bad in [
        "30d",
        "-d",
        "-3y",
        "-99999999999d",
        "+-99999999999999d",
        "--9999999999999999w",
        "-+1d",
        "- 1d",
        "-1é",
        "yesterday",
        "",
    ] {
        assert!(TimeRef::parse(bad).is_err(), "{bad}");
    }
}
