//! Launching from the dashboard: a form, then a confirmation that shows how many would
//! receive it (the dry run: the count, each clause's, the first members), then the launch.
//! The form's fields go to the control layer as typed ([`LaunchFields`]), which checks them
//! once for every front end; each error names its field, and shows at that field's input.

use axum::{
    extract::State,
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use chrono::Utc;
use herald_control::{
    ControlError, Preview,
    launch::{AudienceGiven, LaunchFields, generate_key, split_field},
};
use maud::{Markup, html};
use serde::Deserialize;

use herald_wire::keys::Scope;

use super::{ChangeForm, Checked, Operator, views};
use crate::{AppState, error::ApiError};

/// The form as typed: every field text, empty when left blank.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LaunchForm {
    csrf: String,
    /// `review` (count, then confirm), `launch` (confirmed) or `edit` (back to the form).
    step: String,
    key: String,
    title: String,
    body: String,
    subject: String,
    html: String,
    segment: String,
    audience: String,
    audience_name: String,
    send_at: String,
    send_at_local: String,
    fallback_timezone: String,
    past_zones: String,
    quiet_hours: String,
    frequency_cap: String,
    page_size: String,
    rate: String,
    channel: String,
    category: String,
    webhook_url: String,
    /// Users to preview or test-send to, comma-separated.
    try_users: String,
}

/// The form's inputs, by the names the control layer gives their fields.
const INPUTS: [&str; 20] = [
    "title",
    "body",
    "subject",
    "html",
    "segment",
    "audience",
    "audience_name",
    "send_at",
    "send_at_local",
    "fallback_timezone",
    "past_zones",
    "quiet_hours",
    "frequency_cap",
    "page_size",
    "rate",
    "channel",
    "category",
    "webhook_url",
    "key",
    "try_users",
];

/// An error at one input (or, with `field` empty, about the whole form).
struct FieldError {
    field: &'static str,
    message: String,
}

impl FieldError {
    /// An error at the input for `field` (`audience.all[2]` is the audience's input, the
    /// path inside the filter kept in the message); one the form has no input for is about
    /// the whole form, named.
    fn new(field: &str, message: String) -> Self {
        let (head, rest) = split_field(field);
        match INPUTS.into_iter().find(|input| *input == head) {
            Some(input) if rest.is_empty() => Self {
                field: input,
                message,
            },
            Some(input) => Self {
                field: input,
                message: format!("{rest}: {message}"),
            },
            None if field.is_empty() => Self { field: "", message },
            None => Self {
                field: "",
                message: format!("{field}: {message}"),
            },
        }
    }

    fn of(e: ControlError) -> (Self, StatusCode) {
        // A key taken by a different campaign is the only conflict a launch meets.
        let field = match &e {
            ControlError::Conflict(_) => "key".to_owned(),
            e => e.field().unwrap_or_default().to_owned(),
        };
        let message = match &e {
            ControlError::Field { message, .. }
            | ControlError::Unmet { message, .. }
            | ControlError::Conflict(message) => message.clone(),
            _ => String::new(),
        };
        let api = ApiError::from(e);
        let message = if message.is_empty() {
            api.message
        } else {
            message
        };
        (Self::new(&field, message), api.status)
    }
}

fn blank(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl LaunchForm {
    /// The form's fields as the control layer checks them: a blank field is one not given.
    fn fields(&self) -> LaunchFields {
        let given = |s: &str| blank(s).map(str::to_owned);
        LaunchFields {
            key: given(&self.key),
            title: self.title.clone(),
            body: self.body.clone(),
            subject: given(&self.subject),
            html: given(&self.html),
            channel: given(&self.channel),
            category: given(&self.category),
            segment: given(&self.segment),
            audience: given(&self.audience).map(AudienceGiven::Text),
            audience_name: given(&self.audience_name),
            send_at: given(&self.send_at),
            send_at_local: given(&self.send_at_local),
            fallback_timezone: given(&self.fallback_timezone),
            past_zones: given(&self.past_zones),
            quiet_hours: given(&self.quiet_hours),
            frequency_cap: given(&self.frequency_cap),
            page_size: given(&self.page_size),
            rate: given(&self.rate),
            webhook_url: given(&self.webhook_url),
            ..LaunchFields::default()
        }
    }
}

pub async fn form_page(op: Operator) -> Response {
    render_form(&op, &LaunchForm::default(), &[], StatusCode::OK)
}

impl ChangeForm for LaunchForm {
    const SCOPE: Scope = Scope::Launch;
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn submit(
    State(state): State<AppState>,
    op: Operator,
    Checked(mut form): Checked<LaunchForm>,
) -> Response {
    if form.step == "edit" {
        return render_form(&op, &form, &[], StatusCode::OK);
    }
    if blank(&form.key).is_none() {
        // Fixed now, so that confirming twice launches once.
        form.key = generate_key().to_string();
    }
    let request = match form.fields().check(Utc::now()) {
        Ok(request) => request,
        Err(errors) => {
            let errors: Vec<FieldError> = errors
                .0
                .into_iter()
                .map(|e| FieldError::new(&e.field, e.message))
                .collect();
            return render_form(&op, &form, &errors, StatusCode::BAD_REQUEST);
        }
    };
    if form.step == "preview" || form.step == "test" {
        return try_out(&state, &op, &form, request).await;
    }
    let result = if form.step == "launch" {
        state
            .control
            .launch(request, &op.actor.name)
            .await
            .map(|launched| {
                Redirect::to(&format!("/campaigns/{}?done=launched", launched.key)).into_response()
            })
    } else {
        state
            .control
            .dry_run(request)
            .await
            .map(|preview| confirm(&op, &form, &preview))
    };
    result.unwrap_or_else(|e| {
        let (error, status) = FieldError::of(e);
        render_form(&op, &form, &[error], status)
    })
}

/// The form again, with the content rendered for the users named (or three random
/// recipients), or with what a test send to them did.
async fn try_out(
    state: &AppState,
    op: &Operator,
    form: &LaunchForm,
    request: herald_control::launch::LaunchRequest,
) -> Response {
    use herald_control::preview::Subject;
    let users = match super::parse_user_list(&form.try_users) {
        Ok(users) => users,
        Err(message) => {
            let error = FieldError::new("try_users", message);
            return render_form(op, form, &[error], StatusCode::BAD_REQUEST);
        }
    };
    let subject = Subject::Launch(Box::new(request));
    // The form itself needs the launch scope (`Checked`): a test send is allowed here.
    let shown = if form.step == "test" {
        state
            .control
            .test_send(subject, &users, &op.actor.name)
            .await
            .map(|sent| views::test_results(&sent))
    } else {
        state
            .control
            .preview(subject, &users)
            .await
            .map(|shown| views::renderings(&shown))
    };
    match shown {
        Ok(markup) => render_form_with(op, form, &[], StatusCode::OK, Some(markup)),
        Err(e) => {
            let (mut error, status) = FieldError::of(e);
            if error.field.is_empty() && error.message.starts_with("user_ids") {
                error.field = "try_users";
            }
            render_form(op, form, &[error], status)
        }
    }
}

fn hidden(form: &LaunchForm) -> Markup {
    html! {
        input type="hidden" name="key" value=(form.key);
        input type="hidden" name="title" value=(form.title);
        input type="hidden" name="body" value=(form.body);
        input type="hidden" name="subject" value=(form.subject);
        input type="hidden" name="html" value=(form.html);
        input type="hidden" name="segment" value=(form.segment);
        input type="hidden" name="audience" value=(form.audience);
        input type="hidden" name="audience_name" value=(form.audience_name);
        input type="hidden" name="send_at" value=(form.send_at);
        input type="hidden" name="send_at_local" value=(form.send_at_local);
        input type="hidden" name="fallback_timezone" value=(form.fallback_timezone);
        input type="hidden" name="past_zones" value=(form.past_zones);
        input type="hidden" name="quiet_hours" value=(form.quiet_hours);
        input type="hidden" name="frequency_cap" value=(form.frequency_cap);
        input type="hidden" name="page_size" value=(form.page_size);
        input type="hidden" name="rate" value=(form.rate);
        input type="hidden" name="channel" value=(form.channel);
        input type="hidden" name="category" value=(form.category);
        input type="hidden" name="webhook_url" value=(form.webhook_url);
    }
}

fn confirm(op: &Operator, form: &LaunchForm, preview: &Preview) -> Response {
    let recipients = preview.total;
    let count = views::number(recipients);
    let channel = blank(&form.channel).unwrap_or("inbox");
    let body = html! {
        h1 { "Launch to " (count) " recipients?" }
        div.card {
            p #audience-count .count role="status" {
                "It would go to " strong data-recipients=(recipients) { (count) } " recipients"
                @if let Some(s) = blank(&form.segment) { " carrying segment " code { (s) } }
                @else if let Some(n) = blank(&form.audience_name) { " of the saved audience " code { (n) } }
                @else if blank(&form.audience).is_some() { " matching the filter" }
                @else { ", every user" }
                ", counted now; the launch fixes its own count."
            }
            @if !preview.clauses.is_empty() {
                table #clause-counts {
                    caption { "Each clause by itself" }
                    thead { tr { th scope="col" { "Clause" } th scope="col" { "Users" } } }
                    tbody {
                        @for (clause, n) in &preview.clauses {
                            tr { td { code { (clause) } } td.num { (views::number(*n)) } }
                        }
                    }
                }
            }
            @if let Some(plan) = &preview.waves {
                table #wave-plan {
                    caption { (plan.waves.len()) " waves, one per UTC offset at that local time"
                        @if plan.skipped > 0 { "; " (views::number(plan.skipped)) " users skipped (their time had passed)" } }
                    thead { tr { th scope="col" { "Offset" } th scope="col" { "Opens (UTC)" } th scope="col" { "Recipients" } th scope="col" { "Takes" } th scope="col" { "Zones" } } }
                    tbody {
                        @for w in &plan.waves {
                            tr {
                                td { (herald_wire::local::offset_names(&w.offsets).join(" ")) }
                                td { (w.opens_at.format("%Y-%m-%d %H:%M"))
                                    @if let Some(t) = w.held_from { " (held by quiet hours from " (t.format("%H:%M")) ")" } }
                                td.num { (views::number(w.size)) }
                                td { (blank(&form.rate).and_then(|r| r.parse::<u64>().ok()).filter(|r| *r > 0)
                                        .map(|r| format!("about {} s", (w.size.max(0) as u64).div_ceil(r)))
                                        .unwrap_or_else(|| "as fast as the database takes them".into())) }
                                td { (w.zones.join(", ")) }
                            }
                        }
                    }
                }
            }
            @if !preview.sample.is_empty() {
                p #audience-sample {
                    "First members by id: "
                    @for (i, id) in preview.sample.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (id) }
                    }
                }
            }
            dl.details {
                div { dt { "Title" } dd #confirm-title { (form.title) } }
                div { dt { "Body" } dd { pre.body { (form.body) } } }
                div { dt { "Channel" } dd { (channel) @if let Some(u) = blank(&form.webhook_url) { " to " code { (u) } } } }
                div { dt { "Category" } dd { (blank(&form.category).unwrap_or("marketing")) } }
                @if let Some(q) = blank(&form.quiet_hours) { div { dt { "Quiet hours" } dd { (q) " in each recipient's time zone" } } }
                div { dt { "Frequency cap" } dd #confirm-cap { (cap_text(preview)) } }
                div { dt { "Sends" } dd { (match (blank(&form.send_at), blank(&form.send_at_local)) {
                    (_, Some(local)) => format!("at {local} in each recipient's time zone"),
                    (Some(at), None) => at.to_owned(),
                    (None, None) => "at once".to_owned(),
                }) } }
                div { dt { "Page size" } dd { (blank(&form.page_size).unwrap_or("500")) } }
                div { dt { "Rate limit" } dd { (blank(&form.rate).map(|r| format!("{r} /s")).unwrap_or_else(|| "none".into())) } }
                div { dt { "Key" } dd { code { (form.key) } } }
            }
            form method="post" action="/launch" {
                input type="hidden" name="csrf" value=(op.csrf);
                (hidden(form))
                div.actions {
                    button.primary type="submit" name="step" value="launch" { "Launch to " (count) " recipients" }
                    button type="submit" name="step" value="edit" { "Change something" }
                }
            }
        }
    };
    Html(views::page("Confirm the launch", Some(op), body).into_string()).into_response()
}

/// The cap a launch would get (asked for, or the default), and whom it would leave out now.
fn cap_text(preview: &Preview) -> String {
    match &preview.cap {
        Some((cap, over)) => format!(
            "{cap}: up to {} of the recipients would be capped now",
            views::number(*over)
        ),
        None => "none".to_owned(),
    }
}

fn field_label(field: &str) -> &str {
    match field {
        "title" => "Title",
        "body" => "Body",
        "subject" => "E-mail subject",
        "html" => "E-mail HTML",
        "segment" => "Segment",
        "audience" => "Audience filter",
        "audience_name" => "Saved audience",
        "send_at" => "Send time",
        "send_at_local" => "Local send time",
        "fallback_timezone" => "Fallback time zone",
        "past_zones" => "Where the time has passed",
        "quiet_hours" => "Quiet hours",
        "frequency_cap" => "Frequency cap",
        "page_size" => "Page size",
        "rate" => "Rate limit",
        "channel" => "Channel",
        "category" => "Category",
        "webhook_url" => "Webhook URL",
        "key" => "Key",
        "try_users" => "Users to preview or test",
        other => other,
    }
}

fn render_form(
    op: &Operator,
    form: &LaunchForm,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    render_form_with(op, form, errors, status, None)
}

fn render_form_with(
    op: &Operator,
    form: &LaunchForm,
    errors: &[FieldError],
    status: StatusCode,
    tried: Option<Markup>,
) -> Response {
    let error_of = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    };
    let field = |name: &'static str, label: &str, hint: &str, input: Markup| {
        let error = error_of(name);
        html! {
            div.field.invalid[error.is_some()] {
                label for=(name) { (label) }
                (input)
                @if !hint.is_empty() { p.hint id={ (name) "-hint" } { (hint) } }
                @if let Some(e) = error { p.field-error id={ (name) "-error" } { (e) } }
            }
        }
    };
    let described = |name: &str, hint: bool| {
        let mut ids = Vec::new();
        if hint {
            ids.push(format!("{name}-hint"));
        }
        if error_of(name).is_some() {
            ids.push(format!("{name}-error"));
        }
        ids.join(" ")
    };
    let invalid = |name: &str| {
        if error_of(name).is_some() {
            "true"
        } else {
            "false"
        }
    };
    let channel = blank(&form.channel).unwrap_or("inbox");
    let body = html! {
        h1 { "Launch a campaign" }
        @if !errors.is_empty() {
            div.error role="alert" #form-errors tabindex="-1" {
                p { "The campaign was not launched:" }
                ul {
                    @for e in errors {
                        @if e.field.is_empty() {
                            li { (e.message) }
                        } @else {
                            li { a href={ "#" (e.field) } { (field_label(e.field)) } ": " (e.message) }
                        }
                    }
                }
            }
        }
        form.card.launch method="post" action="/launch" novalidate {
            input type="hidden" name="csrf" value=(op.csrf);
            (field("title", "Title", "At most 200 bytes.", html! {
                input #title type="text" name="title" value=(form.title) required maxlength="200"
                    aria-invalid=(invalid("title")) aria-describedby=(described("title", true));
            }))
            (field("body", "Body", "At most 32 KiB. Shown as text, never as markup.", html! {
                textarea #body name="body" rows="5" required aria-invalid=(invalid("body")) aria-describedby=(described("body", true)) { (form.body) }
            }))
            (field("subject", "E-mail subject", "E-mail only, optional: a subject of its own; the title otherwise.", html! {
                input #subject type="text" name="subject" value=(form.subject) maxlength="998"
                    aria-invalid=(invalid("subject")) aria-describedby=(described("subject", true));
            }))
            (field("html", "E-mail HTML", "E-mail only, optional: an HTML part, sent beside the body as multipart/alternative.", html! {
                textarea #html name="html" rows="4" spellcheck="false" aria-invalid=(invalid("html")) aria-describedby=(described("html", true)) { (form.html) }
            }))
            (field("segment", "Segment", "Only users carrying this segment; leave empty for every user.", html! {
                input #segment type="text" name="segment" value=(form.segment)
                    aria-invalid=(invalid("segment")) aria-describedby=(described("segment", true));
            }))
            (field("audience", "Audience filter", "Instead of a segment: JSON, e.g. {\"all\": [{\"attr\": \"plan\", \"eq\": \"pro\"}, {\"attr\": \"last_seen\", \"after\": \"-30d\"}]} (docs/audiences.md).", html! {
                textarea #audience name="audience" rows="3" spellcheck="false"
                    aria-invalid=(invalid("audience")) aria-describedby=(described("audience", true)) { (form.audience) }
            }))
            (field("audience_name", "Saved audience", "Or the name of an audience saved with `herald audience save`.", html! {
                input #audience_name type="text" name="audience_name" value=(form.audience_name)
                    aria-invalid=(invalid("audience_name")) aria-describedby=(described("audience_name", true));
            }))
            (field("send_at", "Send time", "RFC 3339 with an offset, e.g. 2026-12-24T09:00:00Z; empty: at once.", html! {
                input #send_at type="text" name="send_at" value=(form.send_at) placeholder="at once"
                    aria-invalid=(invalid("send_at")) aria-describedby=(described("send_at", true));
            }))
            (field("send_at_local", "Local send time", "Instead of a send time: a wall time with no offset, e.g. 2027-03-01T09:00, sent when it is that time in each recipient's own time zone (docs/local-time.md).", html! {
                input #send_at_local type="text" name="send_at_local" value=(form.send_at_local) placeholder="none"
                    aria-invalid=(invalid("send_at_local")) aria-describedby=(described("send_at_local", true));
            }))
            div.row {
                (field("fallback_timezone", "Fallback time zone", "The IANA zone of users who have none, e.g. Europe/Berlin.", html! {
                    input #fallback_timezone type="text" name="fallback_timezone" value=(form.fallback_timezone) placeholder="none"
                        aria-invalid=(invalid("fallback_timezone")) aria-describedby=(described("fallback_timezone", true));
                }))
                (field("past_zones", "Where the time has passed", "", html! {
                    select #past_zones name="past_zones" aria-invalid=(invalid("past_zones")) aria-describedby=(described("past_zones", false)) {
                        option value="" selected[form.past_zones.is_empty()] { "next day (the default)" }
                        option value="next-day" selected[form.past_zones == "next-day"] { "next day" }
                        option value="send-now" selected[form.past_zones == "send-now"] { "send now" }
                        option value="skip" selected[form.past_zones == "skip"] { "skip those users" }
                    }
                }))
                (field("quiet_hours", "Quiet hours", "Nobody is sent to in this window of their local time, e.g. 21:00-08:00; they are sent when it ends.", html! {
                    input #quiet_hours type="text" name="quiet_hours" value=(form.quiet_hours) placeholder="none"
                        aria-invalid=(invalid("quiet_hours")) aria-describedby=(described("quiet_hours", true));
                }))
            }
            (field("frequency_cap", "Frequency cap", "At most so many capped campaigns reach a user in a window, e.g. 2/24h (this one included); those over it are left out and counted capped. none: not capped. Empty: the default cap. A transactional campaign is never capped.", html! {
                input #frequency_cap type="text" name="frequency_cap" value=(form.frequency_cap) placeholder="the default"
                    aria-invalid=(invalid("frequency_cap")) aria-describedby=(described("frequency_cap", true));
            }))
            div.row {
                (field("page_size", "Page size", "Recipients per page, 1–10,000 (500).", html! {
                    input #page_size type="text" inputmode="numeric" name="page_size" value=(form.page_size) placeholder="500"
                        aria-invalid=(invalid("page_size")) aria-describedby=(described("page_size", true));
                }))
                (field("rate", "Rate limit", "Recipients per second; empty: no limit.", html! {
                    input #rate type="text" inputmode="numeric" name="rate" value=(form.rate) placeholder="none"
                        aria-invalid=(invalid("rate")) aria-describedby=(described("rate", true));
                }))
            }
            (field("channel", "Channel", "", html! {
                select #channel name="channel" aria-invalid=(invalid("channel")) aria-describedby=(described("channel", false)) {
                    option value="inbox" selected[channel == "inbox"] { "inbox (in-app)" }
                    option value="webhook" selected[channel == "webhook"] { "webhook (a signed POST per recipient)" }
                    option value="email" selected[channel == "email"] { "e-mail (through the workers' SMTP relay)" }
                }
            }))
            (field("category", "Category", "What users opt out of: marketing (empty), transactional (receipts, security notices: sent to users who opted out) or a declared category (see Consent).", html! {
                input #category type="text" name="category" value=(form.category) placeholder="marketing"
                    aria-invalid=(invalid("category")) aria-describedby=(described("category", true));
            }))
            (field("webhook_url", "Webhook URL", "For the webhook channel: http:// or https://.", html! {
                input #webhook_url type="url" name="webhook_url" value=(form.webhook_url)
                    aria-invalid=(invalid("webhook_url")) aria-describedby=(described("webhook_url", true));
            }))
            (field("key", "Key (optional)", "1–64 of A-Z a-z 0-9 . _ -; generated when empty. Launching the same key twice starts it once.", html! {
                input #key type="text" name="key" value=(form.key)
                    aria-invalid=(invalid("key")) aria-describedby=(described("key", true));
            }))
            (field("try_users", "Preview as user…", "User ids, comma-separated (at most 20): Preview renders the content for them (three random recipients when empty); Send a test sends it to them now, marked as a test, outside the campaign's counts.", html! {
                input #try_users type="text" name="try_users" value=(form.try_users) placeholder="e.g. 42, 1337"
                    aria-invalid=(invalid("try_users")) aria-describedby=(described("try_users", true));
            }))
            div.actions {
                button.primary type="submit" name="step" value="review" { "Count the audience" }
                button type="submit" name="step" value="preview" { "Preview" }
                button type="submit" name="step" value="test" { "Send a test" }
            }
        }
        @if let Some(tried) = tried { (tried) }
    };
    let mut page = Html(views::page("Launch", Some(op), body).into_string()).into_response();
    *page.status_mut() = status;
    page
}
