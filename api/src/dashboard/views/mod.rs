//! The dashboard's pages and fragments. Every value goes through maud's escaping; the only
//! script is `/assets/app.js`, and no element carries inline script or style.
//!
//! Elements the script keeps live carry `data-f="<field>"` inside an element with
//! `data-key`: the script fills them from the API's campaign JSON.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use herald_control::{Request, offers, retry_offered};
use herald_wire::{CampaignStatus, Channel, Intent};

use super::Operator;

mod campaign;
mod consent;
mod list;
mod report;

use crate::schema::{Campaign, Report, RequestMade, StatusChange, Timeline, Wave};
pub use campaign::{cancel_confirm, detail, panel};
pub use consent::consent_page;
pub use list::{Pages, list, row};
pub use report::report;

/// A campaign's status, what it was asked and its channel, typed again from the API's view
/// of it, for the rules (`offers`, `retry_offered`) to judge.
struct Standing {
    status: CampaignStatus,
    intent: Intent,
    channel: Channel,
}

impl Standing {
    fn of(c: &Campaign) -> Self {
        Self {
            status: status(c.status),
            intent: Intent::ALL
                .into_iter()
                .find(|i| i.name() == c.intent)
                .expect("the API names the intent"),
            channel: c.channel.parse().expect("the API names the channel"),
        }
    }

    fn offers(&self, request: Request) -> bool {
        offers(request, self.status, self.intent)
    }
}

/// A status from its code, as the API's views carry it.
fn status(code: i16) -> CampaignStatus {
    CampaignStatus::from_code(code).expect("the API's status codes are statuses")
}

/// A message shown at the top of a campaign's page.
pub struct Notice {
    pub text: String,
    pub error: bool,
    /// The rate form's message, shown at that field.
    pub at_rate: bool,
}

impl Notice {
    /// After a request went through (`?done=…`); only known words show anything.
    pub fn done(what: &str) -> Option<Self> {
        let text = match what {
            "pause" => "Paused: the pages in flight have returned, and no new page starts.",
            "resume" => "Resumed: it goes on from the next unprocessed recipient.",
            "cancel" => "Cancelled: no new page starts.",
            "rate" => "Rate changed: the next pages follow it.",
            "recovered" => {
                "Recorded. No workflow ran this campaign: a new run was started, going on \
                 from where its pages stand."
            }
            "unconfirmed" => {
                "Recorded. The campaign's workflow has not confirmed it yet (is a worker \
                 running?); it takes the request when it runs."
            }
            "retry" => "Retrying the failed recipients.",
            "launched" => "Launched.",
            _ => return None,
        };
        Some(Self {
            text: text.into(),
            error: false,
            at_rate: false,
        })
    }

    pub fn refused(message: String) -> Self {
        Self {
            text: message,
            error: true,
            at_rate: false,
        }
    }

    pub fn rate_refused(message: String) -> Self {
        Self {
            text: message,
            error: true,
            at_rate: true,
        }
    }
}

/// "in progress" from "in_progress".
pub fn label(status_name: &str) -> String {
    status_name.replace('_', " ")
}

pub(super) fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

fn time(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// Recipients a second since it started, while it runs (the script replaces it with the
/// speed it measures).
fn speed(c: &Campaign) -> Option<f64> {
    let started = c.started_at?;
    if status(c.status) != CampaignStatus::InProgress {
        return None;
    }
    let secs = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
    (secs >= 1.0).then(|| c.done() as f64 / secs)
}

fn speed_text(c: &Campaign) -> String {
    match speed(c) {
        Some(s) => format!("{} /s", number(s.round() as i64)),
        None => "—".into(),
    }
}

/// What is left at the pace so far. The pace is that of the scan through the audience's
/// user ids when it is ahead of the recipients processed (a sparse audience: pages that find
/// nobody still move it on).
fn eta_text(c: &Campaign) -> String {
    let processed = if c.total > 0 {
        c.done() as f64 / c.total as f64
    } else {
        0.0
    };
    let done = c.scanned.max(processed).min(1.0);
    let last_wave = c
        .waves
        .as_ref()
        .and_then(|w| w.last())
        .filter(|w| !w.opened);
    match (speed(c), c.started_at) {
        _ if status(c.status) == CampaignStatus::Completed => "done".into(),
        // Not before its last wave opens.
        _ if let Some(w) = last_wave => {
            let secs = (w.opens_at - Utc::now()).num_seconds().max(0) as f64;
            format!("after {} (the last wave opens then)", duration(secs))
        }
        (Some(s), Some(started)) if s > 0.0 && c.pending > 0 && done > 0.0 => {
            let secs = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
            duration(secs * (1.0 - done) / done)
        }
        _ => "—".into(),
    }
}

fn duration(secs: f64) -> String {
    let s = secs.round() as i64;
    match s {
        ..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn badge(c: &Campaign) -> Markup {
    html! {
        span class={ "badge s-" (c.status_name) } data-f="status" {
            (c.status) " · " (label(&c.status_name))
        }
    }
}

fn progress(c: &Campaign) -> Markup {
    let done = c.done();
    html! {
        progress data-f="bar" max=(c.total.max(1)) value=(done.min(c.total.max(1)))
            aria-label={ "Progress of " (c.title) } { (percent(done, c.total)) }
    }
}

fn counts(c: &Campaign) -> Markup {
    html! {
        span.counts {
            span data-f="sent" { (number(c.sent)) } " sent · "
            span data-f="failed" { (number(c.failed)) } " failed · "
            span data-f="suppressed" title="Opted out of its category, or their address suppressed" { (number(c.suppressed)) } " suppressed · "
            @if let Some(cap) = &c.frequency_cap {
                span data-f="capped" title={ "Reached by capped campaigns as often as " (cap) " allows" } { (number(c.capped)) } " capped · "
            }
            span data-f="pending" { (number(c.pending)) } " pending of "
            span data-f="total" { (number(c.total)) }
        }
    }
}

pub fn page(title: &str, op: Option<&Operator>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Herald" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/campaigns" { "Herald" }
                    @if let Some(op) = op {
                        nav aria-label="Main" {
                            a href="/campaigns" { "Campaigns" }
                            a href="/launch" { "Launch" }
                            a href="/consent" { "Consent" }
                        }
                        @if op.signed_in {
                            span.who title=(format!("scopes: {}", op.actor.scope_list())) { (op.actor.name) }
                            form.signout method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(op.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                div #offline .banner role="alert" hidden {
                    "The API is unreachable; retrying. What you see may be out of date."
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

pub fn sign_in(next: &str, error: Option<&str>, notice: Option<&str>) -> Html<String> {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        form.card method="post" action="/sign-in" novalidate {
            input type="hidden" name="next" value=(next);
            div.field {
                label for="token" { "API key" }
                input #token type="password" name="token" autocomplete="current-password" required
                    autofocus aria-describedby=(if error.is_some() { "token-error token-hint" } else { "token-hint" })
                    aria-invalid=(if error.is_some() { "true" } else { "false" });
                p #token-hint .hint { "A key from `herald keys create`, or the token this server was started with (HERALD_API_TOKEN)." }
                @if let Some(e) = error { p #token-error .field-error { (e) } }
            }
            button.primary type="submit" { "Sign in" }
        }
    };
    Html(page("Sign in", None, body).into_string())
}

pub fn error_page(
    status: StatusCode,
    op: Option<&Operator>,
    title: &str,
    detail: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        div.error role="alert" { p { (detail) } }
        p { a href="/campaigns" { "Back to the campaigns" } }
    };
    (status, Html(page(title, op, body).into_string())).into_response()
}

/// Renderings for users (a preview).
pub fn renderings(shown: &[herald_control::preview::Rendering]) -> Markup {
    html! {
        section.card #preview aria-labelledby="preview-h" {
            h2 #preview-h { "Preview" }
            @for r in shown {
                article.rendering data-user=(r.user_id) {
                    h3 { "User " (r.user_id) }
                    @if let Some(e) = &r.error {
                        div.error role="alert" { p { "Cannot be rendered for this user: " (e) } }
                    } @else {
                        dl.details {
                            @if let Some(s) = &r.subject { div { dt { "Subject" } dd { (s) } } }
                            div { dt { "Title" } dd.rendered-title { (r.title) } }
                            div { dt { "Body" } dd { pre.body { (r.body) } } }
                            @if let Some(h) = &r.html {
                                div { dt { "HTML (source)" } dd { pre.body { (h) } } }
                            }
                        }
                    }
                    @if !r.variables.is_empty() {
                        p.hint { "Reads " (r.variables.join(", ")) "." }
                    }
                    @if !r.missing.is_empty() {
                        p.hint.missing { "This user has no " (r.missing.join(", ")) "." }
                    }
                }
            }
        }
    }
}

/// What a test send did, user by user.
pub fn test_results(sent: &[herald_control::preview::TestSent]) -> Markup {
    html! {
        section.card #test-results aria-labelledby="test-h" role="status" {
            h2 #test-h { "Test send" }
            ul {
                @for t in sent {
                    li data-user=(t.user_id) data-outcome=(t.outcome) {
                        "User " (t.user_id) ": "
                        @match t.outcome {
                            "sent" => { "sent as " code { (t.delivery_id.as_deref().unwrap_or_default()) } }
                            "shown" => { "rendered; a test puts nothing in an inbox (Preview shows it)" }
                            other => { (other) ": " (t.error.as_deref().unwrap_or_default()) }
                        }
                    }
                }
            }
            p.hint { "Kept in the test-send log; the campaign's counts are untouched." }
        }
    }
}
