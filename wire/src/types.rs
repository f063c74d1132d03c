//! Values that can only hold valid data. Parse at the edge (CLI arguments, workflow input),
//! then pass the parsed type around: nothing downstream re-checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The caller's fault: a bad value, explained in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// One field of a request that cannot be valid: which, as the API names it (`send_at`,
/// `attrs.age`, `users[2].email`; empty for the whole request), and why. A front end shows
/// it at its own name for the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The same error at `field` (an [`InvalidInput`] names no field).
    pub fn at(field: &str, e: InvalidInput) -> Self {
        Self::new(field, e.0)
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> InvalidInput {
    InvalidInput(msg.into())
}

/// The operator's name for a campaign: 1–64 characters of `A-Z a-z 0-9 . _ -`.
/// It becomes part of the workflow id, so it must be safe in URLs and shell commands.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CampaignKey(String);

impl CampaignKey {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty() {
            return Err(invalid("campaign key is empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(invalid(format!(
                "campaign key is {} characters; the limit is {}",
                s.len(),
                Self::MAX_LEN
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(invalid(format!(
                "campaign key {s:?} contains {c:?}; use letters, digits, '.', '_' or '-'"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CampaignKey {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}

impl From<CampaignKey> for String {
    fn from(k: CampaignKey) -> String {
        k.0
    }
}

impl std::fmt::Display for CampaignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:expr, $max:expr, $default:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u32", into = "u32")]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;
            pub const DEFAULT: Self = Self($default);

            pub fn new(n: u32) -> Result<Self, InvalidInput> {
                if (Self::MIN..=Self::MAX).contains(&n) {
                    Ok(Self(n))
                } else {
                    Err(invalid(format!(
                        "{} must be between {} and {}, got {n}",
                        $what,
                        Self::MIN,
                        Self::MAX
                    )))
                }
            }

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::DEFAULT
            }
        }

        impl TryFrom<u32> for $name {
            type Error = InvalidInput;
            fn try_from(n: u32) -> Result<Self, InvalidInput> {
                Self::new(n)
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, InvalidInput> {
                let n: u32 = s.trim().parse().map_err(|_| {
                    invalid(format!("{} must be a whole number, got {s:?}", $what))
                })?;
                Self::new(n)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded_u32!(
    /// Recipients per page activity. 500 by default, as specified.
    PageSize,
    "page size",
    1,
    10_000,
    500
);

bounded_u32!(
    /// Pages in flight at once for one campaign, each over its own disjoint range of user ids.
    /// Bounded well below Temporal's 2,000 pending activities per workflow.
    Lanes,
    "lanes",
    1,
    64,
    8
);

bounded_u32!(
    /// How many times an external channel tries one recipient before recording it failed.
    Attempts,
    "attempts",
    1,
    20,
    5
);

bounded_u32!(
    /// A campaign's speed limit in recipients per second.
    Rate,
    "rate",
    1,
    10_000_000,
    1_000
);

/// An audience segment name: 1–64 printable characters, no whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Segment(String);

impl Segment {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty() || s.len() > 64 {
            return Err(invalid(format!(
                "segment {s:?} must be 1 to 64 characters long"
            )));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!(
                "segment {s:?} must not contain whitespace"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Segment {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}

impl From<Segment> for String {
    fn from(s: Segment) -> String {
        s.0
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Message content. The body travels in the workflow input (and again at every
/// continue-as-new), so it is capped well below Temporal's 2 MB payload limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ContentRaw", into = "ContentRaw")]
pub struct Content {
    title: String,
    body: String,
    /// E-mail only: the subject, when it differs from the title.
    subject: Option<String>,
    /// E-mail only: an HTML part, sent with the text body as multipart/alternative.
    html: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ContentRaw {
    title: String,
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    html: Option<String>,
}

impl Content {
    pub const MAX_TITLE_BYTES: usize = 200;
    pub const MAX_BODY_BYTES: usize = 32 * 1024;

    pub fn new(title: &str, body: &str) -> Result<Self, InvalidInput> {
        for (what, text) in [("title", title), ("body", body)] {
            if text.contains('\0') {
                return Err(invalid(format!(
                    "{what} contains a NUL character, which text cannot hold"
                )));
            }
        }
        if title.trim().is_empty() {
            return Err(invalid("title is empty"));
        }
        if title.len() > Self::MAX_TITLE_BYTES {
            return Err(invalid(format!(
                "title is {} bytes; the limit is {}",
                title.len(),
                Self::MAX_TITLE_BYTES
            )));
        }
        if body.trim().is_empty() {
            return Err(invalid("body is empty"));
        }
        if body.len() > Self::MAX_BODY_BYTES {
            return Err(invalid(format!(
                "body is {} bytes; the limit is {} (32 KiB)",
                body.len(),
                Self::MAX_BODY_BYTES
            )));
        }
        Ok(Self {
            title: title.to_owned(),
            body: body.to_owned(),
            subject: None,
            html: None,
        })
    }

    pub const MAX_SUBJECT_BYTES: usize = 998;
    pub const MAX_HTML_BYTES: usize = 256 * 1024;

    /// An e-mail's own subject (instead of the title) and HTML part.
    pub fn with_email(
        mut self,
        subject: Option<&str>,
        html: Option<&str>,
    ) -> Result<Self, InvalidInput> {
        if let Some(subject) = subject {
            Self::check_subject(subject)?;
            self.subject = Some(subject.to_owned());
        }
        if let Some(html) = html {
            Self::check_html(html)?;
            self.html = Some(html.to_owned());
        }
        Ok(self)
    }

    /// A subject on its own: one line of at most 998 bytes (RFC 5322's line).
    pub fn check_subject(subject: &str) -> Result<(), InvalidInput> {
        if subject.trim().is_empty() {
            return Err(invalid("subject is empty"));
        }
        if subject.contains(['\0', '\r', '\n']) {
            return Err(invalid("subject must be one line"));
        }
        if subject.len() > Self::MAX_SUBJECT_BYTES {
            return Err(invalid(format!(
                "subject is {} bytes; the limit is {}",
                subject.len(),
                Self::MAX_SUBJECT_BYTES
            )));
        }
        Ok(())
    }

    /// An HTML part on its own: at most 256 KiB.
    pub fn check_html(html: &str) -> Result<(), InvalidInput> {
        if html.trim().is_empty() {
            return Err(invalid("html is empty"));
        }
        if html.contains('\0') {
            return Err(invalid("html contains a NUL character"));
        }
        if html.len() > Self::MAX_HTML_BYTES {
            return Err(invalid(format!(
                "html is {} bytes; the limit is {} (256 KiB)",
                html.len(),
                Self::MAX_HTML_BYTES
            )));
        }
        Ok(())
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    pub fn html(&self) -> Option<&str> {
        self.html.as_deref()
    }
}

impl TryFrom<ContentRaw> for Content {
    type Error = InvalidInput;
    fn try_from(r: ContentRaw) -> Result<Self, InvalidInput> {
        Self::new(&r.title, &r.body)?.with_email(r.subject.as_deref(), r.html.as_deref())
    }
}

impl From<Content> for ContentRaw {
    fn from(c: Content) -> Self {
        Self {
            title: c.title,
            body: c.body,
            subject: c.subject,
            html: c.html,
        }
    }
}

/// Where a campaign is delivered. In the in-app inbox the ledger row *is* the delivery; the
/// webhook and e-mail channels call out, one request or message per recipient, and record
/// each outcome (`herald_activities::channels`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Inbox,
    Webhook,
    Email,
}

impl Channel {
    pub const ALL: [Self; 3] = [Self::Inbox, Self::Webhook, Self::Email];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }

    /// Whether delivering means calling out to a receiver that can fail, so that each
    /// recipient goes pending → sent | failed.
    pub const fn is_external(self) -> bool {
        !matches!(self, Self::Inbox)
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Channel {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        s.parse()
    }
}

impl std::str::FromStr for Channel {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                invalid(format!(
                    "unknown channel {s:?}; the channels are \"inbox\", \"webhook\" and \"email\""
                ))
            })
    }
}

/// How page work is scheduled on Temporal. `Regular` activities cost the server a few history
/// events and a task dispatch per page; `Local` activities run inside the worker's workflow
/// task and cost about one marker event. Both are idempotent (figures: docs/performance.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageExecution {
    Regular,
    #[default]
    Local,
}

impl PageExecution {
    /// Local for the inbox (a page is one short statement); regular for a channel that
    /// waits on receivers, whose pages may take longer than a workflow task should be held.
    pub const fn default_for(channel: Channel) -> Self {
        if channel.is_external() {
            Self::Regular
        } else {
            Self::Local
        }
    }
}

impl std::str::FromStr for PageExecution {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "regular" => Ok(Self::Regular),
            "local" => Ok(Self::Local),
            _ => Err(invalid(format!(
                "page execution must be \"regular\" or \"local\", got {s:?}"
            ))),
        }
    }
}

/// Parse a launch's start time: RFC 3339 with an explicit offset, not absurdly far away.
pub fn parse_send_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidInput> {
    let at = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| {
            invalid(format!(
                "{s:?} is not an RFC 3339 time ({e}); example: 2026-12-01T09:00:00Z"
            ))
        })?
        .with_timezone(&Utc);
    within_a_year(s, at, now)
}

/// A start time more than a year away is a typo, not a plan: `send_at` and `send_at_local`
/// refuse it alike.
pub(crate) fn within_a_year<T: PartialOrd<DateTime<Utc>>>(
    s: &str,
    at: T,
    now: DateTime<Utc>,
) -> Result<T, InvalidInput> {
    if at > now + chrono::Duration::days(366) {
        return Err(invalid(format!(
            "{s:?} is more than a year away; schedule it closer to the date"
        )));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_keys() {
        assert!(CampaignKey::parse("spring-sale_2026.v1").is_ok());
        assert!(CampaignKey::parse("").is_err());
        assert!(CampaignKey::parse("has space").is_err());
        assert!(CampaignKey::parse("slash/no").is_err());
        assert!(CampaignKey::parse(&"a".repeat(64)).is_ok());
        assert!(CampaignKey::parse(&"a".repeat(65)).is_err());
        let k: Result<CampaignKey, _> = serde_json::from_str("\"bad key\"");
        assert!(k.is_err(), "deserialising must validate too");
    }

    #[test]
    fn page_size_bounds_and_parsing() {
        assert_eq!(PageSize::default().get(), 500);
        assert!(PageSize::new(0).is_err());
        assert!(PageSize::new(10_001).is_err());
        assert_eq!("250".parse::<PageSize>().unwrap().get(), 250);
        let e = "abc".parse::<PageSize>().unwrap_err();
        assert!(e.0.contains("whole number"), "{e}");
        assert!(serde_json::from_str::<PageSize>("0").is_err());
    }

    #[test]
    fn rate_bounds() {
        assert!(Rate::new(0).is_err());
        assert_eq!(Rate::new(1).unwrap().get(), 1);
        assert!(Rate::new(10_000_001).is_err());
    }

    #[test]
    fn lanes_bounds() {
        assert!(Lanes::new(0).is_err());
        assert!(Lanes::new(64).is_ok());
        assert!(Lanes::new(65).is_err());
    }

    #[test]
    fn content_limits() {
        assert!(Content::new("Hi", "Hello").is_ok());
        assert!(Content::new(" ", "Hello").is_err());
        assert!(Content::new("Hi", "").is_err());
        assert!(Content::new("H\0i", "Hello").is_err());
        let big = "x".repeat(Content::MAX_BODY_BYTES + 1);
        let e = Content::new("Hi", &big).unwrap_err();
        assert!(e.0.contains("limit"), "{e}");
        assert!(Content::new("Hi", &big[1..]).is_ok());
    }

    #[test]
    fn send_at() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = parse_send_at("2026-11-28T09:30:00+01:00", now).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-28T08:30:00+00:00");
        assert!(parse_send_at("tomorrow", now).is_err());
        assert!(parse_send_at("2026-11-28 09:30", now).is_err());
        assert!(parse_send_at("2030-01-01T00:00:00Z", now).is_err());
        // The past is allowed: it means "now".
        assert!(parse_send_at("2020-01-01T00:00:00Z", now).is_ok());
    }

    #[test]
    fn segments() {
        assert!(Segment::parse("bar-1m").is_ok());
        assert!(Segment::parse("").is_err());
        assert!(Segment::parse("a b").is_err());
    }
}
