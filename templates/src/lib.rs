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

use std::{borrow::Cow, fmt, io, sync::Arc};

use herald_wire::{Channel, Content, FieldError};
use minijinja::{AutoEscape, Environment, ErrorKind, Value, syntax::SyntaxConfig};

use context::Context;

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
        let context = Context::new(user, self.campaign.clone(), unsubscribe_url);
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

mod check;
mod context;
mod reads;

pub use reads::{AttrsRead, UserFields};

#[cfg(test)]
mod tests;
