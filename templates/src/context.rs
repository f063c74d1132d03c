//! What a rendering sees: `user`, `campaign` and `unsubscribe_url`, as MiniJinja objects
//! that build a value only when the template reads it.

use std::{collections::BTreeMap, sync::Arc};

use minijinja::{
    Value,
    value::{Enumerator, Object},
};

use crate::{Profile, USER_FIELDS};

/// The `user` variable, read field by field as the template asks (a rendering touches a
/// few of a user's values; building all of them would cost more than the rendering). A
/// field the user has no value for is undefined. Each of `segments` and `attrs` is built
/// once a rendering, when first read.
#[derive(Debug)]
struct User {
    user: Arc<Profile>,
    segments: std::sync::OnceLock<Value>,
    attrs: std::sync::OnceLock<Value>,
}

impl Object for User {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    // Read by name with no value made of the name (MiniJinja's default makes one).
    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let user = &self.user;
        let text = |v: &Option<String>| v.as_deref().map(Value::from);
        match key {
            "id" => Some(Value::from(user.id)),
            "email" => (!user.email.is_empty()).then(|| Value::from(user.email.as_str())),
            "name" => text(&user.name),
            "locale" => text(&user.locale),
            "timezone" => text(&user.timezone),
            // Built once: reading an object's field costs no fuel.
            "segments" => Some(
                self.segments
                    .get_or_init(|| {
                        user.segments
                            .iter()
                            .map(|s| Value::from(s.as_str()))
                            .collect()
                    })
                    .clone(),
            ),
            "attrs" => Some(
                self.attrs
                    .get_or_init(|| Value::from_object(Attrs(user.clone())))
                    .clone(),
            ),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&USER_FIELDS)
    }
}

/// `user.attrs`: the user's attributes, each converted when read.
#[derive(Debug)]
struct Attrs(Arc<Profile>);

impl Object for Attrs {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let value = self.0.attrs.get(key)?;
        (!value.is_null()).then(|| json_value(value))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = self.0.attrs.iter().filter(|(_, v)| !v.is_null());
        Enumerator::Values(names.map(|(k, _)| Value::from(k.as_str())).collect())
    }
}

/// What a rendering sees: `user`, `campaign` and `unsubscribe_url` (undefined when the
/// campaign has none), looked up by name with nothing built per lookup.
#[derive(Debug)]
pub(crate) struct Context {
    user: Value,
    campaign: Value,
    unsubscribe_url: Option<Value>,
}

impl Context {
    /// The context of one rendering for `user`.
    pub(crate) fn new(
        user: &Arc<Profile>,
        campaign: Value,
        unsubscribe_url: Option<&str>,
    ) -> Value {
        Value::from_object(Self {
            user: Value::from_object(User {
                user: user.clone(),
                segments: Default::default(),
                attrs: Default::default(),
            }),
            campaign,
            unsubscribe_url: unsubscribe_url.map(Value::from),
        })
    }
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "user" => Some(self.user.clone()),
            "campaign" => Some(self.campaign.clone()),
            "unsubscribe_url" => self.unsubscribe_url.clone(),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["user", "campaign", "unsubscribe_url"])
    }
}

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) => Value::from(f),
            _ => Value::from(n.to_string()),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => a.iter().map(json_value).collect(),
        serde_json::Value::Object(o) => Value::from(
            o.iter()
                .map(|(k, v)| (k.as_str(), json_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}
