//! Launching from the dashboard: a form, then a confirmation that shows how many would
//! receive it (the API's dry run), then the launch. Each field is checked with the parser the
//! API uses for it, so its error shows at that field; what only the whole request can tell
//! (a missing channel setting, an empty audience) is placed at the field it is about.

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use chrono::Utc;
use herald_control::launch::generate_key;
use herald_wire::{
    CampaignKey, Channel, Content, PageSize, Rate, Segment, WebhookUrl, parse_send_at,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Operator, views};
use crate::{AppState, campaigns::launch_request, error::ApiError, schema::LaunchBody};

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
    segment: String,
    send_at: String,
    page_size: String,
    rate: String,
    channel: String,
    webhook_url: String,
}

/// An error at one field (or, with `field` empty, about the whole form).
struct FieldError {
    field: &'static str,
    message: String,
}

fn blank(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

fn whole(field: &'static str, what: &str, s: &str) -> Result<Option<u32>, FieldError> {
    blank(s)
        .map(|t| {
            t.parse::<u32>().map_err(|_| FieldError {
                field,
                message: format!("{what} must be a whole number, got {t:?}"),
            })
        })
        .transpose()
}

impl LaunchForm {
    /// Check each field with the API's parser for it.
    fn field_errors(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, r: Result<(), String>| {
            if let Err(message) = r {
                errors.push(FieldError { field, message });
            }
        };
        if let Some(k) = blank(&self.key) {
            check("key", CampaignKey::parse(k).map(drop).map_err(|e| e.0));
        }
        // Title and body are one `Content`; each is checked beside a valid other half.
        check(
            "title",
            if self.title.trim().is_empty() {
                Err("a title is required".into())
            } else {
                Content::new(&self.title, "x").map(drop).map_err(|e| e.0)
            },
        );
        check(
            "body",
            if self.body.trim().is_empty() {
                Err("a body is required".into())
            } else {
                Content::new("x", &self.body).map(drop).map_err(|e| e.0)
            },
        );
        if let Some(s) = blank(&self.segment) {
            check("segment", Segment::parse(s).map(drop).map_err(|e| e.0));
        }
        if let Some(s) = blank(&self.send_at) {
            check(
                "send_at",
                parse_send_at(s, Utc::now())
                    .map(drop)
                    .map_err(|e| e.0.replace("--send-at", "the send time")),
            );
        }
        match whole("page_size", "the page size", &self.page_size) {
            Ok(Some(n)) => check("page_size", PageSize::new(n).map(drop).map_err(|e| e.0)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        match whole("rate", "the rate", &self.rate) {
            Ok(Some(n)) => errors.extend(Rate::new(n).err().map(|e| FieldError {
                field: "rate",
                message: e.0,
            })),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        let channel = blank(&self.channel).unwrap_or("inbox");
        if let Err(e) = channel.parse::<Channel>() {
            errors.push(FieldError {
                field: "channel",
                message: e.0,
            });
        }
        if let Some(u) = blank(&self.webhook_url) {
            errors.extend(WebhookUrl::parse(u).err().map(|e| FieldError {
                field: "webhook_url",
                message: e.0,
            }));
        }
        errors
    }

    /// The same launch as JSON to `POST /v1/campaigns`.
    fn body(&self) -> LaunchBody {
        let number = |s: &str| blank(s).and_then(|t| t.parse().ok());
        LaunchBody {
            key: blank(&self.key).map(str::to_owned),
            title: self.title.clone(),
            body: self.body.clone(),
            segment: blank(&self.segment).map(str::to_owned),
            audience: None,
            send_at: blank(&self.send_at).map(str::to_owned),
            page_size: number(&self.page_size),
            lanes: None,
            rate: number(&self.rate),
            channel: blank(&self.channel).map(str::to_owned),
            webhook_url: blank(&self.webhook_url).map(str::to_owned),
            attempts: None,
            auto_pause: None,
            auto_pause_window: None,
            execution: None,
        }
    }
}

/// Where an error of the whole request belongs, from what it is about.
fn place(message: String) -> FieldError {
    let m = message.to_lowercase();
    let field = if m.contains("audience") || m.contains("segment") {
        "segment"
    } else if m.contains("webhook_url") || m.contains("webhook url") || m.contains("--webhook-url")
    {
        "webhook_url"
    } else if m.contains("channel")
        || m.contains("herald_webhook_secret")
        || m.contains("herald_smtp")
        || m.contains("herald_email")
    {
        "channel"
    } else if m.contains("key") {
        "key"
    } else {
        ""
    };
    FieldError { field, message }
}

pub async fn form_page(op: Operator) -> Response {
    render_form(&op, &LaunchForm::default(), &[], StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(mut form): Form<LaunchForm>,
) -> Response {
    if let Err(refused) = op.check(&headers, &form.csrf) {
        return refused;
    }
    if form.step == "edit" {
        return render_form(&op, &form, &[], StatusCode::OK);
    }
    let errors = form.field_errors();
    if !errors.is_empty() {
        return render_form(&op, &form, &errors, StatusCode::BAD_REQUEST);
    }
    if blank(&form.key).is_none() {
        // Fixed now, so that confirming twice launches once.
        form.key = generate_key().to_string();
    }
    let request = match launch_request(&HeaderMap::new(), form.body()) {
        Ok(r) => r,
        Err(e) => return render_form(&op, &form, &[place(e.message)], e.status),
    };
    if form.step != "launch" {
        return match state.control.dry_run(&request).await {
            Ok(recipients) => confirm(&op, &form, recipients),
            Err(e) => {
                let e = ApiError::from(e);
                render_form(&op, &form, &[place(e.message)], e.status)
            }
        };
    }
    match state.control.launch(request).await {
        Ok(launched) => {
            Redirect::to(&format!("/campaigns/{}?done=launched", launched.key)).into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            render_form(&op, &form, &[place(e.message)], e.status)
        }
    }
}

fn hidden(form: &LaunchForm) -> Markup {
    html! {
        input type="hidden" name="key" value=(form.key);
        input type="hidden" name="title" value=(form.title);
        input type="hidden" name="body" value=(form.body);
        input type="hidden" name="segment" value=(form.segment);
        input type="hidden" name="send_at" value=(form.send_at);
        input type="hidden" name="page_size" value=(form.page_size);
        input type="hidden" name="rate" value=(form.rate);
        input type="hidden" name="channel" value=(form.channel);
        input type="hidden" name="webhook_url" value=(form.webhook_url);
    }
}

fn confirm(op: &Operator, form: &LaunchForm, recipients: i64) -> Response {
    let count = views::number(recipients);
    let channel = blank(&form.channel).unwrap_or("inbox");
    let body = html! {
        h1 { "Launch to " (count) " recipients?" }
        div.card {
            p #audience-count .count role="status" {
                "It would go to " strong data-recipients=(recipients) { (count) } " recipients"
                @if let Some(s) = blank(&form.segment) { " carrying segment " code { (s) } } @else { ", every user" }
                ", counted now; the launch fixes its own count."
            }
            dl.details {
                div { dt { "Title" } dd #confirm-title { (form.title) } }
                div { dt { "Body" } dd { pre.body { (form.body) } } }
                div { dt { "Channel" } dd { (channel) @if let Some(u) = blank(&form.webhook_url) { " to " code { (u) } } } }
                div { dt { "Sends" } dd { (blank(&form.send_at).unwrap_or("at once")) } }
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

fn field_label(field: &str) -> &str {
    match field {
        "title" => "Title",
        "body" => "Body",
        "segment" => "Segment",
        "send_at" => "Send time",
        "page_size" => "Page size",
        "rate" => "Rate limit",
        "channel" => "Channel",
        "webhook_url" => "Webhook URL",
        "key" => "Key",
        other => other,
    }
}

fn render_form(
    op: &Operator,
    form: &LaunchForm,
    errors: &[FieldError],
    status: StatusCode,
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
            (field("segment", "Segment", "Only users carrying this segment; leave empty for every user.", html! {
                input #segment type="text" name="segment" value=(form.segment)
                    aria-invalid=(invalid("segment")) aria-describedby=(described("segment", true));
            }))
            (field("send_at", "Send time", "RFC 3339 with an offset, e.g. 2026-12-24T09:00:00Z; empty: at once.", html! {
                input #send_at type="text" name="send_at" value=(form.send_at) placeholder="at once"
                    aria-invalid=(invalid("send_at")) aria-describedby=(described("send_at", true));
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
            (field("webhook_url", "Webhook URL", "For the webhook channel: http:// or https://.", html! {
                input #webhook_url type="url" name="webhook_url" value=(form.webhook_url)
                    aria-invalid=(invalid("webhook_url")) aria-describedby=(described("webhook_url", true));
            }))
            (field("key", "Key (optional)", "1–64 of A-Z a-z 0-9 . _ -; generated when empty. Launching the same key twice starts it once.", html! {
                input #key type="text" name="key" value=(form.key)
                    aria-invalid=(invalid("key")) aria-describedby=(described("key", true));
            }))
            div.actions {
                button.primary type="submit" name="step" value="review" { "Count the audience" }
            }
        }
    };
    let mut page = Html(views::page("Launch", Some(op), body).into_string()).into_response();
    *page.status_mut() = status;
    page
}
