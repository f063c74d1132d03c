use std::collections::HashMap;

use serde_json::json;

use super::*;

struct Rules(HashMap<&'static str, AttrType>);

impl UserRules for Rules {
    fn attr_type(&self, name: &str) -> Option<AttrType> {
        self.0.get(name).copied()
    }
    fn is_time_zone(&self, name: &str) -> bool {
        ["Europe/Berlin", "UTC"].contains(&name)
    }
}

fn rules() -> Rules {
    Rules(HashMap::from([
        ("plan", AttrType::Text),
        ("age", AttrType::Int),
        ("score", AttrType::Number),
        ("pro", AttrType::Bool),
        ("seen", AttrType::Time),
    ]))
}

#[test]
fn a_json_user_is_checked_field_by_field() {
    let u = UserChange::from_json(
        &json!({"id": 7, "email": "a@b.de", "timezone": "Europe/Berlin", "locale": "de_AT",
                "segments": ["beta"], "attrs": {"plan": "pro", "age": 30, "score": 2,
                "pro": true, "seen": "2026-11-01", "gone": null}}),
        None,
        false,
        &rules(),
    )
    .unwrap();
    assert_eq!(u.id, 7);
    assert_eq!(u.email, Change::Set("a@b.de".into()));
    assert_eq!(u.locale, Change::Set("de-AT".into()));
    assert_eq!(u.name, Change::Keep);
    assert_eq!(
        u.attrs_json(),
        json!({"age": 30, "gone": null, "plan": "pro", "pro": true, "score": 2.0,
               "seen": "2026-11-01T00:00:00.000000Z"})
    );

    let bad = |j: serde_json::Value| UserChange::from_json(&j, None, false, &rules()).unwrap_err();
    assert_eq!(bad(json!({"email": "a@b"})).field, "id");
    assert_eq!(bad(json!({"id": 0})).field, "id");
    // Past 2^53 - 1 a browser would read another number: refused, as in text.
    assert_eq!(bad(json!({"id": MAX_USER_ID + 1})).field, "id");
    assert_eq!(
        bad(json!({"id": MAX_USER_ID, "email": "nobody"})).field,
        "email"
    );
    assert!(parse_id("9007199254740991").is_ok());
    assert!(parse_id("9007199254740992").is_err());
    assert!(parse_id("9223372036854775806").is_err());
    assert_eq!(bad(json!({"id": 1, "email": "nobody"})).field, "email");
    assert_eq!(bad(json!({"id": 1, "timezone": "CEST"})).field, "timezone");
    assert_eq!(
        bad(json!({"id": 1, "attrs": {"age": "30"}})).field,
        "attrs.age"
    );
    assert_eq!(
        bad(json!({"id": 1, "attrs": {"age": 1.5}})).field,
        "attrs.age"
    );
    assert_eq!(
        bad(json!({"id": 1, "attrs": {"email": "x"}})).field,
        "attrs.email"
    );
    assert_eq!(
        bad(json!({"id": 1, "attrs": {"new": 1}})).field,
        "attrs.new"
    );
    assert_eq!(bad(json!({"id": 1, "plan": "pro"})).field, "plan");
    assert_eq!(
        bad(json!({"id": 1, "segments": ["a b"]})).field,
        "segments[0]"
    );
    assert_eq!(
        bad(json!({"id": 1, "created_at": "0000-06-01"})).field,
        "created_at"
    );
    let cleared = UserChange::from_json(&json!({"id": 1, "email": ""}), None, false, &rules());
    assert_eq!(cleared.unwrap().email, Change::Clear);
}

#[test]
fn a_replacing_user_clears_what_it_does_not_give() {
    let u = UserChange::from_json(&json!({"email": "a@b.de"}), Some(3), true, &rules()).unwrap();
    assert_eq!(u.id, 3);
    assert_eq!(u.name, Change::Clear);
    assert_eq!(u.segments, Change::Set(vec![]));
    assert!(u.replace_attrs);
    let wrong = UserChange::from_json(&json!({"id": 4}), Some(3), true, &rules()).unwrap_err();
    assert_eq!(wrong.field, "id");
}

#[test]
fn text_cells_read_by_type() {
    let mut u = UserChange::default();
    u.set_attr_text("age", AttrType::Int, " 41 ").unwrap();
    u.set_attr_text("pro", AttrType::Bool, "yes").unwrap();
    u.set_attr_text("plan", AttrType::Text, "").unwrap();
    assert_eq!(
        u.attrs_json(),
        json!({"age": 41, "pro": true, "plan": null})
    );
    assert_eq!(
        u.set_attr_text("age", AttrType::Int, "x")
            .unwrap_err()
            .field,
        "attrs.age"
    );
    u.set_column("segments", "a  b", &rules()).unwrap();
    assert_eq!(u.segments.value().unwrap().len(), 2);
    u.set_column("email", "", &rules()).unwrap();
    assert_eq!(u.email, Change::Clear);
}

#[test]
fn types_are_inferred_and_widened() {
    assert_eq!(looks_like_text("12"), AttrType::Int);
    assert_eq!(looks_like_text("1.5"), AttrType::Number);
    assert_eq!(looks_like_text("TRUE"), AttrType::Bool);
    assert_eq!(looks_like_text("2026-01-02T03:04:05Z"), AttrType::Time);
    assert_eq!(looks_like_text("NaN"), AttrType::Text);
    for text in ["01234", "+4930123", "123456789012345678901234"] {
        assert_eq!(looks_like_text(text), AttrType::Text, "{text}");
    }
    assert_eq!(looks_like_text("-0.5"), AttrType::Number);
    assert!(parse_time("0000-01-01").is_none());
    assert!(
        parse_time("0001-01-01T00:30:00+01:00").is_none(),
        "year 0 in UTC"
    );
    assert!(parse_time("9999-12-31").is_some());
    assert_eq!(widen(AttrType::Int, AttrType::Number), AttrType::Number);
    assert_eq!(widen(AttrType::Int, AttrType::Bool), AttrType::Text);
    let users = [
        json!({"attrs": {"a": 1, "b": "x", "plan": 3}}),
        json!({"attrs": {"a": 1.5}}),
    ];
    let found = infer_json_types(&users, |n| n == "plan");
    assert_eq!(found.get("a"), Some(&AttrType::Number));
    assert_eq!(found.get("b"), Some(&AttrType::Text));
    assert!(!found.contains_key("plan"));
}
