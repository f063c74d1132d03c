//! Message templates: a campaign's title and body may speak to each recipient.
//!
//! Each field is a [MiniJinja](https://docs.rs/minijinja) template over two variables:
//!
//! - `user`: the recipient as the ledger holds them when their page runs: `id`, `email`,
//!   `name`, `locale`, `timezone`, `segments` and `attrs` (every attribute declared in
//!   `user_attributes`, typed as declared). A field the user has no value for is undefined,
//!   so `{{ user.name | default("there") }}` works and `{{ user.name }}` prints nothing.
//! - `campaign`: `key` and `channel`.
//! - `unsubscribe_url`: the recipient's one-click unsubscribe link (docs/consent.md).
//!
//! A template is compiled and checked at launch ([`Templates::compile`] for its syntax,
//! [`Templates::check_names`] for the variables, filters and tests it names), so an error
//! is refused at its field with its line and column instead of failing every recipient.
//! A rendering is bounded twice: by fuel (MiniJinja's count of the work done, about one
//! unit an instruction) and by its output ([`OUTPUT_MAX`] bytes a field), so no recipient's
//! data can stall a page. A field with no template syntax in it is its own rendering and
//! costs nothing.
//!
//! What is printed is HTML-escaped (`&`, `<`, `>`, quotes and `/`) in the fields that reach
//! apps or browsers, the inbox's and webhooks' title and body, unless the template says
//! `| safe`; an e-mail's subject and plain-text body are text and are printed as they are.
//! Blocks take their own line: `{% if %}` alone on a line leaves no blank line behind.

use std::{borrow::Cow, collections::BTreeMap, fmt, io, sync::Arc};

use herald_wire::{Channel, Content, FieldError};
use minijinja::{
    AutoEscape, Environment, ErrorKind, Value,
    machinery::{Instruction, get_compiled_template},
    syntax::SyntaxConfig,
    value::{Enumerator, Object},
};

/// The most one field's rendering may hold.
pub const OUTPUT_MAX: usize = 64 * 1024;

/// The work one field's rendering may do, in MiniJinja's fuel: ample for any message (a
/// loop over a few hundred items), and a bound on a template that would loop for ever.
pub const FUEL: u64 = 100_000;

/// The fields of a user a template may read.
pub const USER_FIELDS: [&str; 7] = [
    "id", "email", "name", "locale", "timezone", "segments", "attrs",
];

/// The fields of a campaign a template may read.
pub const CAMPAIGN_FIELDS: [&str; 2] = ["key", "channel"];

/// A content field that is a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Title,
    Body,
    /// An e-mail's subject, when it has its own.
    Subject,
    /// An e-mail's HTML part.
    Html,
}

impl Field {
    pub const ALL: [Self; 4] = [Self::Title, Self::Body, Self::Subject, Self::Html];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Body => "body",
            Self::Subject => "subject",
            Self::Html => "html",
        }
    }

    fn source(self, content: &Content) -> Option<&str> {
        match self {
            Self::Title => Some(content.title()),
            Self::Body => Some(content.body()),
            Self::Subject => content.subject(),
            Self::Html => content.html(),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One recipient, as a template sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub id: i64,
    /// Empty when the user has none.
    pub email: String,
    pub name: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub segments: Vec<String>,
    pub attrs: serde_json::Map<String, serde_json::Value>,
}

/// What of a user a campaign's templates read besides `id` and `email` (which every page
/// has): a page's statement reads only that much of each recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFields {
    pub name: bool,
    pub locale: bool,
    pub timezone: bool,
    pub segments: bool,
    pub attrs: AttrsRead,
}

/// The attributes templates read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AttrsRead {
    /// These, by name (sorted, each once; none at all when empty).
    #[default]
    None,
    Named(Vec<String>),
    /// Every one: a template reads `user.attrs` (or `user`) as a whole.
    All,
}

impl UserFields {
    /// Everything a user has: what a preview, or a template that reads `user` whole, needs.
    pub fn all() -> Self {
        Self {
            name: true,
            locale: true,
            timezone: true,
            segments: true,
            attrs: AttrsRead::All,
        }
    }

    /// Take in a read of `user.FIELD`, and of `user.attrs.ATTR`; false for a field it
    /// cannot place, which reads the user whole.
    fn read(&mut self, field: &str, attr: Option<&str>) -> bool {
        match (field, attr) {
            ("id" | "email", _) => {}
            ("name", _) => self.name = true,
            ("locale", _) => self.locale = true,
            ("timezone", _) => self.timezone = true,
            ("segments", _) => self.segments = true,
            ("attrs", Some(attr)) => match &mut self.attrs {
                AttrsRead::All => {}
                AttrsRead::None => self.attrs = AttrsRead::Named(vec![attr.to_owned()]),
                AttrsRead::Named(names) => names.push(attr.to_owned()),
            },
            ("attrs", None) => self.attrs = AttrsRead::All,
            _ => return false,
        }
        true
    }
}

/// A campaign's content, compiled.
pub struct Templates {
    env: Environment<'static>,
    /// The fields that hold template syntax; the others are their own rendering.
    templated: Vec<Field>,
    /// What of a user `templated` reads.
    reads: UserFields,
    content: Content,
    campaign: Value,
}

/// The content for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered<'a> {
    pub title: Cow<'a, str>,
    pub body: Cow<'a, str>,
    /// An e-mail's own subject and HTML part, when it has them.
    pub subject: Option<Cow<'a, str>>,
    pub html: Option<Cow<'a, str>>,
}

/// Why a recipient's rendering failed: the field and MiniJinja's account of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    pub field: Field,
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for RenderError {}

/// Whether `source` holds any template syntax at all (otherwise it is its own rendering).
pub fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

impl Templates {
    /// Compile `content` for a campaign of `channel` keyed `key`. A syntax error is refused
    /// at its field, with its line and column.
    pub fn compile(key: &str, content: &Content, channel: Channel) -> Result<Self, FieldError> {
        let mut t = Self::verbatim(key, content, channel);
        for field in Field::ALL {
            let Some(source) = field.source(content) else {
                continue;
            };
            if !is_template(source) {
                continue;
            }
            t.env
                .add_template_owned(field.name(), source.to_owned())
                .map_err(|e| syntax_error(field, source, &e))?;
            t.templated.push(field);
        }
        t.reads = t.read_fields();
        Ok(t)
    }

    /// `content` as written, for everyone, whatever it holds (text stored before templates
    /// came in that does not compile as one).
    pub fn verbatim(key: &str, content: &Content, channel: Channel) -> Self {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_fuel(Some(FUEL));
        // Errors name their line, not the template's state (which would hold user data).
        env.set_debug(false);
        // The HTML part is HTML wherever it goes; an e-mail's subject and text are text.
        env.set_auto_escape_callback(move |name| match (channel, name) {
            (_, "html") => AutoEscape::Html,
            (Channel::Email, _) => AutoEscape::None,
            (Channel::Inbox | Channel::Webhook, _) => AutoEscape::Html,
        });
        let campaign = Value::from_pairs([
            ("key", Value::from(key)),
            ("channel", Value::from(channel.name())),
        ]);
        Self {
            env,
            templated: Vec::new(),
            reads: UserFields::default(),
            content: content.clone(),
            campaign,
        }
    }

    /// Whether any field is a template (otherwise every recipient gets the same text).
    pub fn is_personal(&self) -> bool {
        !self.templated.is_empty()
    }

    /// Check the names the templates use: every variable is a field of `user` or
    /// `campaign` (a user attribute one that `declared` says exists), every filter and test
    /// is one MiniJinja has. Refused at its field, line and column.
    pub fn check_names(&self, declared: impl Fn(&str) -> bool) -> Result<(), FieldError> {
        let globals: Vec<&str> = self.env.globals().map(|(name, _)| name).collect();
        for &field in &self.templated {
            let template = self.template(field);
            let source = template.source();
            // MiniJinja's analysis scopes a `set` inside `if` to the block, where rendering
            // does not: a name set anywhere is the template's own.
            let mut known = globals.clone();
            known.extend(set_targets(source));
            let mut names: Vec<String> = template.undeclared_variables(true).into_iter().collect();
            names.sort();
            for name in names {
                if let Err(message) = check_variable(&name, &known, &declared) {
                    let offset = find_variable(source, &name);
                    return Err(position(field, source, offset, message));
                }
            }
            let compiled = get_compiled_template(&template);
            let streams =
                || std::iter::once(&compiled.instructions).chain(compiled.blocks.values());
            // The analysis above does not see every read (those in slices, in the filters of
            // filter and `set` blocks): each `user.…` of the compiled form is checked too,
            // unless the template has a `user` of its own.
            let own_user = streams().any(|instructions| {
                let mut i = 0;
                while let Some(instruction) = instructions.get(i) {
                    if matches!(instruction, Instruction::StoreLocal("user")) {
                        return true;
                    }
                    i += 1;
                }
                false
            });
            for instructions in streams() {
                let mut i = 0;
                while let Some(instruction) = instructions.get(i) {
                    let unknown = match instruction {
                        Instruction::Lookup("user") if !own_user => {
                            let mut name = String::from("user");
                            let mut j = i + 1;
                            while let Some(Instruction::GetAttr(part)) = instructions.get(j) {
                                name = format!("{name}.{part}");
                                j += 1;
                            }
                            check_variable(&name, &known, &declared).err()
                        }
                        Instruction::ApplyFilter(name, ..) if !self.has_filter(name) => {
                            Some(format!("no filter is called {name:?}"))
                        }
                        Instruction::PerformTest(name, ..) if !self.has_test(name) => {
                            Some(format!("no test is called {name:?}"))
                        }
                        _ => None,
                    };
                    if let Some(message) = unknown {
                        let offset = instructions.get_span(i).map(|s| s.start_offset as usize);
                        return Err(position(field, source, offset, message));
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// The variables the templates read (`user.name`, `user.attrs.plan`, `campaign.key`,
    /// `unsubscribe_url`), sorted, each once: what a preview lists.
    pub fn variables(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .templated
            .iter()
            .flat_map(|&f| self.template(f).undeclared_variables(true))
            .filter(|name| {
                let top = name.split('.').next().unwrap_or(name);
                matches!(top, "user" | "campaign" | "unsubscribe_url")
            })
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// What of each user the templates read, for the statement that reads a page's users.
    pub fn user_fields(&self) -> &UserFields {
        &self.reads
    }

    /// Read from the compiled templates, where every read of `user` is a `Lookup("user")`
    /// and what follows it: `user.name` reads the name, `user.attrs.plan` one attribute,
    /// and any other use (`user` whole, `user.attrs[k]`, `user.attrs | items`) all it can
    /// reach. A template that assigns a name `user` of its own (`set`, `with`, a loop or a
    /// macro's argument) or dumps its context (`debug()`) reads everything. The compiled
    /// form, not MiniJinja's analysis of the source, which misses names inside slices
    /// (`user.name[:1]`) and the filters of filter and `set` blocks.
    fn read_fields(&self) -> UserFields {
        let mut fields = UserFields::default();
        for &field in &self.templated {
            let template = self.template(field);
            let compiled = get_compiled_template(&template);
            let streams = std::iter::once(&compiled.instructions).chain(compiled.blocks.values());
            for instructions in streams {
                let name_at = |i: u32| match instructions.get(i) {
                    Some(Instruction::GetAttr(name)) => Some(*name),
                    _ => None,
                };
                let mut i = 0;
                while let Some(instruction) = instructions.get(i) {
                    match instruction {
                        Instruction::Lookup("user") => {
                            let Some(name) = name_at(i + 1) else {
                                return UserFields::all();
                            };
                            let attr = name_at(i + 2).filter(|_| name == "attrs");
                            if !fields.read(name, attr) {
                                return UserFields::all();
                            }
                        }
                        Instruction::StoreLocal("user") | Instruction::CallFunction("debug", _) => {
                            return UserFields::all();
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        if let AttrsRead::Named(names) = &mut fields.attrs {
            names.sort();
            names.dedup();
        }
        fields
    }

    /// Of `variables`, those `user` has no value for: what prints nothing (or fails) in
    /// their rendering.
    pub fn missing(user: &Profile, variables: &[String]) -> Vec<String> {
        variables
            .iter()
            .filter(|name| {
                let parts: Vec<&str> = name.split('.').collect();
                match parts.as_slice() {
                    ["user", "email"] => user.email.is_empty(),
                    ["user", "name"] => user.name.is_none(),
                    ["user", "locale"] => user.locale.is_none(),
                    ["user", "timezone"] => user.timezone.is_none(),
                    ["user", "attrs", attr, ..] => {
                        user.attrs.get(*attr).is_none_or(serde_json::Value::is_null)
                    }
                    _ => false,
                }
            })
            .cloned()
            .collect()
    }

    fn template(&self, field: Field) -> minijinja::Template<'_, '_> {
        self.env
            .get_template(field.name())
            .expect("every templated field was added")
    }

    fn has_filter(&self, name: &str) -> bool {
        // A filter's own errors (its arguments) mean it exists.
        match self.env.render_str(&format!("{{{{ none | {name} }}}}"), ()) {
            Ok(_) => true,
            Err(e) => e.kind() != ErrorKind::UnknownFilter,
        }
    }

    fn has_test(&self, name: &str) -> bool {
        match self
            .env
            .render_str(&format!("{{{{ none is {name} }}}}"), ())
        {
            Ok(_) => true,
            Err(e) => e.kind() != ErrorKind::UnknownTest,
        }
    }

    /// The content for `user`.
    pub fn render(&self, user: &Arc<Profile>) -> Result<Rendered<'_>, RenderError> {
        self.render_with(user, None)
    }

    /// The content for `user`, whose unsubscribe link is `unsubscribe_url` (`None`: the
    /// variable is undefined).
    pub fn render_with(
        &self,
        user: &Arc<Profile>,
        unsubscribe_url: Option<&str>,
    ) -> Result<Rendered<'_>, RenderError> {
        let mut rendered = Rendered {
            title: Cow::Borrowed(self.content.title()),
            body: Cow::Borrowed(self.content.body()),
            subject: self.content.subject().map(Cow::Borrowed),
            html: self.content.html().map(Cow::Borrowed),
        };
        if self.templated.is_empty() {
            return Ok(rendered);
        }
        let context = Value::from_object(Context {
            user: Value::from_object(User {
                user: user.clone(),
                segments: Default::default(),
                attrs: Default::default(),
            }),
            campaign: self.campaign.clone(),
            unsubscribe_url: unsubscribe_url.map(Value::from),
        });
        for &field in &self.templated {
            let text = self.render_field(field, &context)?;
            match field {
                Field::Title => rendered.title = Cow::Owned(text),
                Field::Body => rendered.body = Cow::Owned(text),
                Field::Subject => rendered.subject = Some(Cow::Owned(text)),
                Field::Html => rendered.html = Some(Cow::Owned(text)),
            }
        }
        Ok(rendered)
    }

    fn render_field(&self, field: Field, context: &Value) -> Result<String, RenderError> {
        let mut out = Bounded(Vec::new());
        let failed = |message: String| RenderError { field, message };
        match self.template(field).render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.0).map_err(|_| failed("not UTF-8".into())),
            Err(e) if e.kind() == ErrorKind::WriteFailure => Err(failed(format!(
                "the rendering is longer than {} KiB",
                OUTPUT_MAX / 1024
            ))),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(failed(
                "the template did too much work for one recipient (out of fuel)".into(),
            )),
            Err(e) => Err(failed(describe(&e))),
        }
    }
}

/// A writer that refuses to hold more than [`OUTPUT_MAX`] bytes.
struct Bounded(Vec<u8>);

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > OUTPUT_MAX {
            return Err(io::Error::other("the rendering is too long"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// MiniJinja's error in one line, without the template's name (the field says it).
fn describe(e: &minijinja::Error) -> String {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("{}{detail}{line}", e.kind())
}

/// The error of `field` at byte `offset` of its source (the start when unknown).
fn position(field: Field, source: &str, offset: Option<usize>, message: String) -> FieldError {
    let offset = offset.unwrap_or(0).min(source.len());
    let before = &source[..source.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    FieldError::new(
        field.name(),
        format!("line {line}, column {column}: {message}"),
    )
}

/// A template that does not compile, at the place MiniJinja names (its line when it names
/// no place).
fn syntax_error(field: Field, source: &str, e: &minijinja::Error) -> FieldError {
    let offset = e.range().map(|r| r.start).or_else(|| {
        let line = e.line()?;
        Some(
            source
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum(),
        )
    });
    let detail = e.detail().unwrap_or("cannot be read");
    position(field, source, offset, format!("{}: {detail}", e.kind()))
}

/// The names `{% set a = … %}` and `{% set a, b = … %}` assign anywhere in `source`.
fn set_targets(source: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("{%") {
        let rest = source[at + 2..].trim_start_matches(['-', '+']).trim_start();
        let Some(rest) = rest.strip_prefix("set") else {
            continue;
        };
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let targets = rest.split(['=', '%']).next().unwrap_or("");
        names.extend(
            targets
                .split(',')
                .map(|t| t.trim().trim_matches(['(', ')']).trim())
                .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_')),
        );
    }
    names
}

/// Where `name` (a dotted path) first appears in `source`: as written, else its first part.
fn find_variable(source: &str, name: &str) -> Option<usize> {
    let word = |needle: &str| {
        source.match_indices(needle).map(|(i, _)| i).find(|&i| {
            let before = source[..i].chars().next_back();
            let after = source[i + needle.len()..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !ident(before) && before != Some('.') && !ident(after)
        })
    };
    word(name).or_else(|| word(name.split('.').next().unwrap_or(name)))
}

/// Whether `name`, a variable a template reads (`user.attrs.plan`), can exist.
fn check_variable(
    name: &str,
    globals: &[&str],
    declared: &impl Fn(&str) -> bool,
) -> Result<(), String> {
    let parts: Vec<&str> = name.split('.').collect();
    let list = |names: &[&str]| names.join(", ");
    match parts.as_slice() {
        ["user"] | ["campaign"] | ["unsubscribe_url"] => Ok(()),
        ["user", "attrs", rest @ ..] => match rest {
            [] => Ok(()),
            [attr] if declared(attr) => Ok(()),
            [attr] => Err(format!("no user has an attribute {attr:?}")),
            [attr, ..] => Err(format!("user.attrs.{attr} is one value; it has no fields")),
        },
        ["user", field, rest @ ..] => {
            if !USER_FIELDS.contains(field) {
                Err(format!(
                    "a user has no field {field:?}; templates may read {}, and attributes \
                     as user.attrs.NAME",
                    list(&USER_FIELDS)
                ))
            } else if rest.is_empty() {
                Ok(())
            } else {
                Err(format!("user.{field} is one value; it has no fields"))
            }
        }
        ["campaign", field, rest @ ..] => {
            if !CAMPAIGN_FIELDS.contains(field) {
                Err(format!(
                    "a campaign has no field {field:?}; templates may read {}",
                    list(&CAMPAIGN_FIELDS)
                ))
            } else if rest.is_empty() {
                Ok(())
            } else {
                Err(format!("campaign.{field} is one value; it has no fields"))
            }
        }
        [top, ..] if globals.contains(top) => Ok(()),
        [top, ..] => Err(format!(
            "{top:?} is not a variable here; templates read user, campaign and \
             unsubscribe_url (user.name, user.attrs.plan, campaign.key)"
        )),
        [] => Ok(()),
    }
}

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
struct Context {
    user: Value,
    campaign: Value,
    unsubscribe_url: Option<Value>,
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

#[cfg(test)]
mod tests;
