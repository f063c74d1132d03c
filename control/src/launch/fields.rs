//! A launch as a front end receives it, checked once for all of them. The CLI, the API and
//! the dashboard each fill [`LaunchFields`] from their own input, as given, and show each
//! [`FieldError`] at their own name for its field. Fields are named as the API names them
//! (`send_at`, `webhook_url`); a filter's errors add the path inside it (`audience.all[2]`).

use chrono::{DateTime, Utc};
use herald_templates::Templates;
use herald_wire::{
    Attempts, CampaignKey, CampaignSpec, Category, Channel, Content, FieldError, FrequencyCap,
    InvalidInput, Lanes, PageExecution, PageSize, Rate, Segment, Tuning, WebhookUrl,
    audience::{AudienceName, Filter, FilterError},
    local::{self, PastZones, QuietHours},
    parse_send_at,
};

use super::LaunchRequest;
use crate::ControlError;

/// A filter as given: JSON (the API), or its text (the CLI, the dashboard).
#[derive(Clone, Debug)]
pub enum AudienceGiven {
    Json(serde_json::Value),
    Text(String),
}

/// Every field of a launch as a front end took it in, unchecked. `None` is "not given":
/// the default applies. Numbers are text, so that a front end that reads text passes it on
/// and the one check below says what is wrong with it.
#[derive(Clone, Debug, Default)]
pub struct LaunchFields {
    pub key: Option<String>,
    pub title: String,
    pub body: String,
    /// E-mail only: a subject of its own, and an HTML part.
    pub subject: Option<String>,
    pub html: Option<String>,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub segment: Option<String>,
    pub audience: Option<AudienceGiven>,
    pub audience_name: Option<String>,
    pub send_at: Option<String>,
    /// A wall time read in each recipient's own zone, its fallback zone, and what it does
    /// where that time has passed (docs/local-time.md).
    pub send_at_local: Option<String>,
    pub fallback_timezone: Option<String>,
    pub past_zones: Option<String>,
    /// A daily window of local time in which recipients are held, `21:00-08:00`.
    pub quiet_hours: Option<String>,
    /// At most so many capped campaigns per user in a window, `2/24h`, or `none`; not
    /// given: the operators' default (docs/local-time.md).
    pub frequency_cap: Option<String>,
    pub page_size: Option<String>,
    pub lanes: Option<String>,
    pub rate: Option<String>,
    pub webhook_url: Option<String>,
    pub attempts: Option<String>,
    pub auto_pause: Option<String>,
    pub auto_pause_window: Option<String>,
    pub execution: Option<String>,
}

/// What is wrong with a launch, field by field, in the order of the fields; never empty.
#[derive(Clone, Debug)]
pub struct FieldErrors(pub Vec<FieldError>);

impl From<FieldErrors> for ControlError {
    /// The first: a CLI and an API answer say one thing.
    fn from(errors: FieldErrors) -> Self {
        let first = errors.0.into_iter().next().unwrap_or_else(|| {
            FieldError::new(
                "",
                "the launch was refused without a reason (a bug in Herald)",
            )
        });
        first.into()
    }
}

/// A filter's error at `field`, its path inside the filter appended.
pub fn filter_error(field: &str, e: FilterError) -> FieldError {
    let field = match e.path.as_str() {
        "" => field.to_owned(),
        path if path.starts_with('[') => format!("{field}{path}"),
        path => format!("{field}.{path}"),
    };
    FieldError {
        field,
        message: e.message,
    }
}

/// A field as errors name it, split into the request's field and the path inside it:
/// `audience.all[1].not` is `("audience", "all[1].not")`; `send_at` is `("send_at", "")`.
/// The inverse of [`filter_error`]'s naming, for front ends that show an error at their own
/// name for the field.
pub fn split_field(field: &str) -> (&str, &str) {
    let cut = field.find(['.', '[']).unwrap_or(field.len());
    let (head, rest) = field.split_at(cut);
    (head, rest.trim_start_matches('.'))
}

/// Collects each field's error while the others are still checked.
#[derive(Default)]
struct Check(Vec<FieldError>);

impl Check {
    fn field<T>(&mut self, field: &str, r: Result<T, InvalidInput>) -> Option<T> {
        r.map_err(|e| self.0.push(FieldError::at(field, e))).ok()
    }

    /// An optional number: `Ok(None)` when not given, `Err(())` when wrong (recorded).
    fn number<T>(
        &mut self,
        field: &str,
        text: Option<&str>,
        make: impl FnOnce(u32) -> Result<T, InvalidInput>,
    ) -> Result<Option<T>, ()> {
        let Some(text) = text else { return Ok(None) };
        let n = match text.trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                self.0.push(FieldError::new(
                    field,
                    format!("{text:?} is not a whole number"),
                ));
                return Err(());
            }
        };
        self.field(field, make(n)).map(Some).ok_or(())
    }
}

fn within(what: &str, n: u32, range: std::ops::RangeInclusive<u32>) -> Result<u32, InvalidInput> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(InvalidInput(format!(
            "{what} must be between {} and {}, got {n}",
            range.start(),
            range.end()
        )))
    }
}

impl AudienceGiven {
    /// The filter it holds, within the limits on size and shape (not yet checked against
    /// the attributes users have).
    pub fn parse(&self) -> Result<Filter, FilterError> {
        match self {
            Self::Json(json) => Filter::parse(json),
            Self::Text(text) => Filter::parse_str(text),
        }
    }
}

impl LaunchFields {
    /// Check every field, and the fields against each other. `now` dates a relative
    /// `send_at` check (a time more than a year away is refused).
    pub fn check(self, now: DateTime<Utc>) -> Result<LaunchRequest, FieldErrors> {
        let mut check = Check::default();
        let key = self
            .key
            .as_deref()
            .map(|k| check.field("key", CampaignKey::parse(k)).ok_or(()))
            .transpose();
        // Title and body are one `Content`; each is checked beside a valid other half, so
        // that both can be wrong at once.
        check.field("title", Content::new(&self.title, "x"));
        check.field("body", Content::new("x", &self.body));
        if let Some(subject) = &self.subject {
            check.field("subject", Content::check_subject(subject));
        }
        if let Some(html) = &self.html {
            check.field("html", Content::check_html(html));
        }
        let channel = match self.channel.as_deref() {
            None => Ok(Channel::Inbox),
            Some(c) => check.field("channel", c.parse()).ok_or(()),
        };
        let category = self
            .category
            .as_deref()
            .map(|c| check.field("category", Category::parse(c.trim())).ok_or(()))
            .transpose();
        let audience = self.audience(&mut check);
        let send_at = self
            .send_at
            .as_deref()
            .map(|s| check.field("send_at", parse_send_at(s, now)).ok_or(()))
            .transpose();
        let send_at_local = self
            .send_at_local
            .as_deref()
            .map(|s| {
                check
                    .field("send_at_local", local::parse_local_time(s, now))
                    .ok_or(())
            })
            .transpose();
        let fallback_timezone = self
            .fallback_timezone
            .as_deref()
            .map(|z| {
                let z = z.trim();
                check
                    .field(
                        "fallback_timezone",
                        local::zone(z).map(|_| z.to_owned()).map_err(InvalidInput),
                    )
                    .ok_or(())
            })
            .transpose();
        let past_zones = self
            .past_zones
            .as_deref()
            .map(|p| {
                let parsed = PastZones::parse(p.trim()).ok_or_else(|| {
                    InvalidInput(format!("{p:?} is not one of {}", PastZones::NAMES))
                });
                check.field("past_zones", parsed).ok_or(())
            })
            .transpose();
        let quiet_hours = self
            .quiet_hours
            .as_deref()
            .map(|q| {
                check
                    .field("quiet_hours", QuietHours::parse(q).map_err(InvalidInput))
                    .ok_or(())
            })
            .transpose();
        let frequency_cap = self
            .frequency_cap
            .as_deref()
            .map(|c| {
                check
                    .field(
                        "frequency_cap",
                        FrequencyCap::parse(c).map_err(InvalidInput),
                    )
                    .ok_or(())
            })
            .transpose();
        let page_size = check.number("page_size", self.page_size.as_deref(), PageSize::new);
        let lanes = check.number("lanes", self.lanes.as_deref(), Lanes::new);
        let rate = check.number("rate", self.rate.as_deref(), Rate::new);
        let webhook_url = self
            .webhook_url
            .as_deref()
            .map(|u| check.field("webhook_url", WebhookUrl::parse(u)).ok_or(()))
            .transpose();
        let attempts = check.number("attempts", self.attempts.as_deref(), Attempts::new);
        let auto_pause = check.number("auto_pause", self.auto_pause.as_deref(), |n| {
            within("a percentage", n, 0..=100)
        });
        let window = check.number(
            "auto_pause_window",
            self.auto_pause_window.as_deref(),
            |n| within("the window", n, 1..=1_000_000),
        );
        let execution = self
            .execution
            .as_deref()
            .map(|e| {
                check
                    .field("execution", e.parse::<PageExecution>())
                    .ok_or(())
            })
            .transpose();
        let content = Content::new(&self.title, &self.body)
            .and_then(|c| c.with_email(self.subject.as_deref(), self.html.as_deref()));
        let (
            Ok(key),
            Ok(content),
            Ok(channel),
            Ok(category),
            Ok((audience, audience_name)),
            Ok(send_at),
            Ok(send_at_local),
            Ok(fallback_timezone),
            Ok(past_zones),
            Ok(quiet_hours),
            Ok(frequency_cap),
            Ok(page_size),
            Ok(lanes),
            Ok(rate),
            Ok(webhook_url),
            Ok(attempts),
            Ok(auto_pause),
            Ok(window),
            Ok(execution),
        ) = (
            key,
            content,
            channel,
            category,
            audience,
            send_at,
            send_at_local,
            fallback_timezone,
            past_zones,
            quiet_hours,
            frequency_cap,
            page_size,
            lanes,
            rate,
            webhook_url,
            attempts,
            auto_pause,
            window,
            execution,
        )
        else {
            return Err(FieldErrors(check.0));
        };
        let spec = CampaignSpec {
            content,
            channel,
            category: category.unwrap_or_default(),
            audience,
            send_at,
            send_at_local,
            fallback_timezone,
            past_zones,
            quiet_hours,
            frequency_cap,
            page_size: page_size.unwrap_or_default(),
            lanes: lanes.unwrap_or_default(),
            execution: execution.unwrap_or(PageExecution::default_for(channel)),
            rate,
            webhook_url,
            attempts,
        };
        spec.check().map_err(|e| FieldErrors(vec![e]))?;
        // The templates' syntax; the names they use are checked against the users'
        // attributes at launch (`Control::settle_audience`).
        Templates::compile("", &spec.content, spec.channel).map_err(|e| FieldErrors(vec![e]))?;
        let mut tuning = Tuning::default();
        if let Some(percent) = auto_pause {
            tuning.auto_pause_percent = percent;
        }
        if let Some(window) = window {
            tuning.auto_pause_window = window;
        }
        Ok(LaunchRequest {
            key,
            spec,
            tuning,
            audience_name,
        })
    }

    /// The audience: at most one of `segment`, `audience` and `audience_name`.
    fn audience(&self, check: &mut Check) -> Result<(Option<Filter>, Option<AudienceName>), ()> {
        let given: Vec<&str> = [
            ("segment", self.segment.is_some()),
            ("audience", self.audience.is_some()),
            ("audience_name", self.audience_name.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect();
        if let [_, second, ..] = given[..] {
            check.0.push(FieldError::new(
                second,
                format!(
                    "give one of segment, audience and audience_name, not {}: a segment S is \
                     short for the audience {{\"segment\": S}}",
                    given.join(" and ")
                ),
            ));
            return Err(());
        }
        if let Some(s) = &self.segment {
            let segment = check.field("segment", Segment::parse(s)).ok_or(())?;
            return Ok((Some(Filter::Segment(segment)), None));
        }
        if let Some(name) = &self.audience_name {
            let name = check.field("audience_name", AudienceName::parse(name));
            return name.map(|n| (None, Some(n))).ok_or(());
        }
        let Some(given) = &self.audience else {
            return Ok((None, None));
        };
        match given.parse() {
            Ok(filter) => Ok((Some(filter), None)),
            Err(e) => {
                check.0.push(filter_error("audience", e));
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> LaunchFields {
        LaunchFields {
            title: "Hello".into(),
            body: "World".into(),
            ..LaunchFields::default()
        }
    }

    fn errors(f: LaunchFields) -> Vec<(String, String)> {
        f.check(Utc::now())
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn every_wrong_field_is_named_at_once() {
        let wrong = LaunchFields {
            key: Some("no spaces".into()),
            title: String::new(),
            send_at: Some("tomorrow".into()),
            page_size: Some("many".into()),
            lanes: Some("0".into()),
            audience: Some(AudienceGiven::Text(
                r#"{"all": [{"attr": "x", "near": 1}]}"#.into(),
            )),
            ..fields()
        };
        let named: Vec<String> = errors(wrong).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            named,
            [
                "key",
                "title",
                "audience.all[0].near",
                "send_at",
                "page_size",
                "lanes"
            ]
        );
    }

    #[test]
    fn messages_name_no_front_end() {
        let wrong = LaunchFields {
            channel: Some("webhook".into()),
            ..fields()
        };
        let found = errors(wrong);
        assert_eq!(found[0].0, "webhook_url");
        let late = LaunchFields {
            send_at: Some("2999-01-01T00:00:00Z".into()),
            ..fields()
        };
        for (_, message) in errors(late).into_iter().chain(found) {
            assert!(!message.contains("--"), "{message}");
        }
    }

    #[test]
    fn a_field_splits_into_the_request_field_and_the_path_inside_it() {
        assert_eq!(
            split_field("audience.all[1].not"),
            ("audience", "all[1].not")
        );
        assert_eq!(split_field("users[2].email"), ("users", "[2].email"));
        assert_eq!(split_field("send_at"), ("send_at", ""));
        assert_eq!(split_field(""), ("", ""));
    }

    #[test]
    fn one_audience_at_most() {
        let both = LaunchFields {
            segment: Some("beta".into()),
            audience_name: Some("pros".into()),
            ..fields()
        };
        assert_eq!(errors(both)[0].0, "audience_name");
        let named = LaunchFields {
            audience_name: Some("pros".into()),
            ..fields()
        };
        let request = named.check(Utc::now()).unwrap();
        assert_eq!(request.audience_name.unwrap().as_str(), "pros");
        assert_eq!(request.spec.audience, None);
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let request = fields().check(Utc::now()).unwrap();
        assert_eq!(request.spec.channel, Channel::Inbox);
        assert_eq!(request.spec.page_size, PageSize::default());
        assert_eq!(request.key, None);
    }
}
