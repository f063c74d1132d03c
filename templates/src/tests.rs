use super::*;

fn content(title: &str, body: &str) -> Content {
    Content::new(title, body).unwrap()
}

fn compile(title: &str, body: &str) -> Templates {
    Templates::compile("spring", &content(title, body), Channel::Inbox).unwrap()
}

fn ada() -> Arc<Profile> {
    Arc::new(Profile {
        id: 7,
        email: "ada@example.com".into(),
        name: Some("Ada".into()),
        locale: Some("en".into()),
        timezone: None,
        segments: vec!["beta".into()],
        attrs:
            serde_json::json!({"plan": "pro", "age": 36, "score": 1.5, "vip": true, "gone": null})
                .as_object()
                .unwrap()
                .clone(),
    })
}

fn declared(name: &str) -> bool {
    ["plan", "age", "score", "vip", "gone", "last_seen"].contains(&name)
}

#[test]
fn static_text_is_its_own_rendering() {
    let t = compile("Hello", "No syntax & <tags> here\n");
    assert!(!t.is_personal());
    let r = t.render(&ada()).unwrap();
    assert!(matches!(r.title, Cow::Borrowed("Hello")));
    assert_eq!(r.body, "No syntax & <tags> here\n");
}

#[test]
fn renders_the_user_and_the_campaign() {
    let t = compile(
        "Hi {{ user.name | default(\"there\") }}",
        "{% if user.attrs.plan == \"pro\" %}\nThanks, pro #{{ user.id }} of {{ campaign.key }}.\n{% endif %}\nAge {{ user.attrs.age + 1 }}, {{ user.segments | join(\",\") }}\n",
    );
    assert!(t.is_personal());
    t.check_names(declared).unwrap();
    let r = t.render(&ada()).unwrap();
    assert_eq!(r.title, "Hi Ada");
    // Blocks take their own lines; the trailing newline stays.
    assert_eq!(r.body, "Thanks, pro #7 of spring.\nAge 37, beta\n");
    let nobody = Arc::new(Profile {
        id: 8,
        ..Profile::default()
    });
    // Arithmetic on a value the user lacks fails them (and only them).
    assert!(
        t.render(&nobody)
            .unwrap_err()
            .message
            .contains("undefined and number")
    );
    let t = compile("Hi {{ user.name | default(\"there\") }}", "b");
    assert_eq!(t.render(&nobody).unwrap().title, "Hi there");
}

#[test]
fn missing_values_print_nothing_and_default_replaces_them() {
    let t = compile(
        "{{ user.timezone }}|{{ user.attrs.gone }}|{{ user.attrs.last_seen | default(\"never\") }}",
        "x",
    );
    t.check_names(declared).unwrap();
    assert_eq!(t.render(&ada()).unwrap().title, "||never");
}

#[test]
fn output_is_escaped_for_apps_but_not_in_e_mail() {
    let mut user = ada();
    Arc::make_mut(&mut user).name = Some("<b>Tom & Jerry</b>".into());
    let inbox = compile("{{ user.name }}", "{{ user.name | safe }}");
    let r = inbox.render(&user).unwrap();
    assert_eq!(r.title, "&lt;b&gt;Tom &amp; Jerry&lt;&#x2f;b&gt;");
    assert_eq!(r.body, "<b>Tom & Jerry</b>");
    let email = Templates::compile("k", &content("{{ user.name }}", "b"), Channel::Email).unwrap();
    assert_eq!(email.render(&user).unwrap().title, "<b>Tom & Jerry</b>");
}

#[test]
fn syntax_errors_are_refused_at_their_field_line_and_column() {
    let e = Templates::compile(
        "k",
        &content("Hi", "line one\nHi {{ user.name "),
        Channel::Inbox,
    )
    .err()
    .unwrap();
    assert_eq!(e.field, "body");
    assert!(e.message.starts_with("line 2, column "), "{}", e.message);
    assert!(e.message.contains("syntax error"), "{}", e.message);
    let e = Templates::compile("k", &content("{% if %}", "b"), Channel::Inbox)
        .err()
        .unwrap();
    assert_eq!(e.field, "title");
    // No other templates exist to include or extend.
    assert!(Templates::compile("k", &content("t", "{% include \"x\" %}"), Channel::Inbox).is_err());
}

#[test]
fn names_that_cannot_exist_are_refused_where_they_are() {
    let check = |title: &str, body: &str| compile(title, body).check_names(declared);
    let e = check("Hi", "ok\n  {{ user.attrs.plam }}").unwrap_err();
    assert_eq!(e.field, "body");
    assert!(
        e.message
            .starts_with("line 2, column 6: no user has an attribute \"plam\""),
        "{}",
        e.message
    );
    let e = check("{{ usr.name }}", "b").unwrap_err();
    assert!(
        e.message
            .starts_with("line 1, column 4: \"usr\" is not a variable"),
        "{}",
        e.message
    );
    let e = check("{{ user.nmae }}", "b").unwrap_err();
    assert!(
        e.message.contains("a user has no field \"nmae\""),
        "{}",
        e.message
    );
    let e = check("{{ user.name.first }}", "b").unwrap_err();
    assert!(
        e.message.contains("user.name is one value"),
        "{}",
        e.message
    );
    // Names the analysis of the source does not see: in a slice, in a filter block's filter.
    let e = check("Dear {{ user.nmae[:1] }}", "b").unwrap_err();
    assert!(
        e.message
            .starts_with("line 1, column 9: a user has no field \"nmae\""),
        "{}",
        e.message
    );
    let e = check(
        "x",
        "{% filter replace(\"P\", user.attrs.plam) %}P{% endfilter %}",
    )
    .unwrap_err();
    assert!(
        e.message.contains("no user has an attribute \"plam\""),
        "{}",
        e.message
    );
    // A `user` of the template's own is not the recipient.
    check("{% set user = {\"nick\": 1} %}{{ user.nick }}", "b").unwrap();
    let e = check("{{ campaign.title }}", "b").unwrap_err();
    assert!(
        e.message.contains("a campaign has no field \"title\""),
        "{}",
        e.message
    );
    let e = check("Hi", "{{ user.name | shout }}").unwrap_err();
    assert_eq!(e.field, "body");
    assert!(
        e.message.contains("no filter is called \"shout\""),
        "{}",
        e.message
    );
    assert!(e.message.starts_with("line 1, column "), "{}", e.message);
    let e = check("{% if user.attrs.age is big %}x{% endif %}", "b").unwrap_err();
    assert!(
        e.message.contains("no test is called \"big\""),
        "{}",
        e.message
    );
    // A name set in a block is seen after it, as rendering sees it.
    let t = compile(
        "{% if user.name %}{% set n = user.name %}{% else %}{% set n = \"friend\" %}{% endif %}Hi {{ n }}",
        "b",
    );
    t.check_names(declared).unwrap();
    assert_eq!(t.render(&ada()).unwrap().title, "Hi Ada");
    // Loop variables, macros, sets and built-in functions are the template's own.
    check(
        "{% for i in range(3) %}{{ loop.index }}{{ i }}{% endfor %}",
        "{% set n = user.attrs.age %}{% macro m(x) %}{{ x | upper }}{% endmacro %}{{ m(n) }}{{ user.attrs.age is number }}",
    )
    .unwrap();
}

#[test]
fn a_rendering_is_bounded_in_work_and_size() {
    let t = compile(
        "t",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let e = t.render(&ada()).unwrap_err();
    assert_eq!(e.field, Field::Body);
    assert!(
        e.message.contains("out of fuel") || e.message.contains("longer than"),
        "{e}"
    );
    let t = compile("t", "{{ \"x\" * 70000 }}");
    let e = t.render(&ada()).unwrap_err();
    assert!(e.message.contains("longer than 64 KiB"), "{e}");
    let t = compile(
        "t",
        "{% for i in range(50000) %}{% endfor %}{% for i in range(60000) %}{% endfor %}",
    );
    let e = t.render(&ada()).unwrap_err();
    assert!(e.message.contains("out of fuel"), "{e}");
}

#[test]
fn a_type_error_fails_the_recipient_not_the_template() {
    let t = compile("t", "{{ user.attrs.plan + 1 }}");
    t.check_names(declared).unwrap();
    let e = t.render(&ada()).unwrap_err();
    assert_eq!(e.field, Field::Body);
    assert!(e.message.contains("invalid operation"), "{e}");
    let mut other = ada();
    Arc::make_mut(&mut other)
        .attrs
        .insert("plan".into(), serde_json::json!(2));
    assert_eq!(t.render(&other).unwrap().body, "3");
}

#[test]
fn a_preview_names_the_variables_read_and_those_a_user_lacks() {
    let content = Content::new(
        "Hi {{ user.name | default(\"there\") }}",
        "{{ user.attrs.plan }} {{ campaign.key }} {{ unsubscribe_url }}",
    )
    .unwrap();
    let t = Templates::compile("k", &content, Channel::Email).unwrap();
    let vars = t.variables();
    assert_eq!(
        vars,
        [
            "campaign.key",
            "unsubscribe_url",
            "user.attrs.plan",
            "user.name"
        ]
    );
    let nameless = Profile {
        id: 1,
        ..Profile::default()
    };
    assert_eq!(
        Templates::missing(&nameless, &vars),
        ["user.attrs.plan", "user.name"]
    );
}

/// `user` with only what `fields` names (what a page's statement reads of them).
fn trimmed(user: &Profile, fields: &UserFields) -> Arc<Profile> {
    let keep = |on: bool, v: &Option<String>| v.clone().filter(|_| on);
    Arc::new(Profile {
        id: user.id,
        email: user.email.clone(),
        name: keep(fields.name, &user.name),
        locale: keep(fields.locale, &user.locale),
        timezone: keep(fields.timezone, &user.timezone),
        segments: if fields.segments {
            user.segments.clone()
        } else {
            Vec::new()
        },
        attrs: match &fields.attrs {
            AttrsRead::All => user.attrs.clone(),
            AttrsRead::None => serde_json::Map::new(),
            AttrsRead::Named(names) => user
                .attrs
                .iter()
                .filter(|(k, _)| names.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
    })
}

#[test]
fn user_fields_are_what_the_templates_read() {
    let named = |names: &[&str]| AttrsRead::Named(names.iter().map(|n| n.to_string()).collect());
    let fields = |title: &str, body: &str| compile(title, body).user_fields().clone();
    assert_eq!(fields("Hi", "static"), UserFields::default());
    assert_eq!(
        fields("#{{ user.id }}", "{{ user.email }}"),
        UserFields::default()
    );
    let name_age_plan = UserFields {
        name: true,
        attrs: named(&["age", "plan"]),
        ..Default::default()
    };
    for (title, body) in [
        (
            "Hi {{ user.name }}",
            "{{ user.attrs.plan }} {{ user.attrs.age | default(1) }} {{ user.attrs.plan }}",
        ),
        // Reads inside slices and in the filters of filter and `set` blocks count too.
        (
            "Dear {{ user.name[:1] }}",
            "{% filter replace(\"P\", user.attrs.plan) %}P{% endfilter %}\
             {% set g | replace(\"A\", user.attrs.age | string) %}A{% endset %}{{ g }}",
        ),
    ] {
        assert_eq!(fields(title, body), name_age_plan, "{title} / {body}");
    }
    assert_eq!(
        fields(
            "{% for s in user.segments %}{{ s }}{% endfor %}",
            "{{ user.locale }}/{{ user.timezone }}"
        ),
        UserFields {
            locale: true,
            timezone: true,
            segments: true,
            ..Default::default()
        }
    );
    // Reads the analysis cannot follow by name read everything they might reach.
    let all_attrs = UserFields {
        attrs: AttrsRead::All,
        ..Default::default()
    };
    assert_eq!(fields("x", "{{ user.attrs['plan'] }}"), all_attrs);
    assert_eq!(fields("x", "{{ user.attrs | length }}"), all_attrs);
    assert_eq!(
        fields(
            "x",
            "{% for k, v in user.attrs | items %}{{ v }}{% endfor %}"
        ),
        all_attrs
    );
    for whole in [
        "{% for k in user %}{{ k }}{% endfor %}",
        "{{ user['name'] }}",
        "{% set u = user %}{{ u.attrs.plan }}",
        "{% with u = user %}{{ u.name }}{% endwith %}",
        "{% macro m(u) %}{{ u.locale }}{% endmacro %}{{ m(user) }}",
        "{{ (user).attrs.plan if true }}{{ [user][0].name }}",
        // A name `user` of the template's own hides what it was made of.
        "{% set user = user.attrs %}{{ user.plan }}",
        "{% with user = user.attrs %}{{ user.plan }}{% endwith %}",
        "{% macro m(user=user.name) %}{{ user }}{% endmacro %}{{ m() }}",
        "{% for user in [user] %}{{ user.name }}{% endfor %}",
        "{{ debug() }}",
    ] {
        assert_eq!(fields("x", whole), UserFields::all(), "{whole}");
    }
}

#[test]
fn a_user_trimmed_to_what_the_templates_read_renders_the_same() {
    let full = ada();
    for (title, body) in [
        (
            "Hi {{ user.name | default(\"there\") }}",
            "{{ user.attrs.plan }}",
        ),
        (
            "{% if user.attrs.vip %}VIP{% endif %}",
            "{{ user.attrs.gone is none }} {{ user.attrs.nope | default(\"-\") }} {{ user.attrs.age }}",
        ),
        (
            "{{ user.segments | join(\",\") }}",
            "{{ user.locale }}{{ user.timezone }}",
        ),
        ("{{ user.attrs | length }}", "{{ user.attrs['score'] }}"),
        (
            "{% set p = user.attrs %}{{ p.plan }}",
            "{% for k in user %}{{ k }}{% endfor %}",
        ),
        (
            "{% macro hi(u) %}{{ u.name }}{% endmacro %}{{ hi(user) }}",
            "x",
        ),
        ("{{ user.id }} {{ user.email }}", "{{ campaign.key }}"),
        (
            "Dear {{ user.name[:1] }}.",
            "{{ user.segments[:1] | join }}",
        ),
        (
            "{% filter replace(\"P\", user.attrs.plan) %}P{% endfilter %}",
            "{% set g | replace(\"A\", user.attrs.age | string) %}A{% endset %}{{ g }}",
        ),
        ("{% set user = user.attrs %}{{ user.plan }}", "x"),
        (
            "{% with user = user.attrs %}{{ user.plan }}{% endwith %}",
            "x",
        ),
    ] {
        let t = compile(title, body);
        let fields = t.user_fields().clone();
        let want = t.render(&full).unwrap();
        let got = t.render(&trimmed(&full, &fields)).unwrap();
        assert_eq!(got, want, "{title} / {body}: {fields:?}");
    }
}
