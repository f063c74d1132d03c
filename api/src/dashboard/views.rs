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
use crate::schema::{Campaign, Report, RequestMade, StatusChange, Timeline};

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
    (secs >= 1.0).then(|| (c.sent + c.failed) as f64 / secs)
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
        (c.sent + c.failed) as f64 / c.total as f64
    } else {
        0.0
    };
    let done = c.scanned.max(processed).min(1.0);
    match (speed(c), c.started_at) {
        _ if status(c.status) == CampaignStatus::Completed => "done".into(),
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
    let done = c.sent + c.failed;
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

/// Where a page of the list stands among the others.
pub struct Pages {
    /// The cursor this page starts after (`None`: the newest page).
    pub after: Option<String>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
}

/// The list's address with a filter and a page.
fn list_href(status: Option<&str>, after: Option<&str>) -> String {
    let query: Vec<String> = [("status", status), ("after", after)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
        .collect();
    if query.is_empty() {
        "/campaigns".to_owned()
    } else {
        format!("/campaigns?{}", query.join("&"))
    }
}

pub fn list(
    op: &Operator,
    status: Option<&str>,
    items: &[Campaign],
    pages: &Pages,
) -> Html<String> {
    let body = html! {
        div.heading {
            h1 { "Campaigns" }
            a.button.primary href="/launch" { "Launch a campaign" }
        }
        form.filter method="get" action="/campaigns" {
            label for="status" { "Status" }
            select #status name="status" data-autosubmit {
                option value="" selected[status.is_none()] { "all" }
                @for s in CampaignStatus::ALL {
                    @let name = s.name();
                    option value=(name) selected[status == Some(name)] { (s.code()) " · " (label(name)) }
                }
            }
            button type="submit" { "Filter" }
        }
        @let empty = items.is_empty();
        p #empty .empty hidden[!empty] {
            @match (status, &pages.after) {
                (_, Some(_)) => { "No older campaigns. " a href=(list_href(status, None)) { "Back to the newest" } "." }
                (None, None) => { "No campaigns yet. " a href="/launch" { "Launch the first one" } "." }
                (Some(s), None) => { "No " (label(s)) " campaigns." }
            }
        }
        table.campaigns data-live-list data-filter=(status.unwrap_or("")) data-after=(pages.after.as_deref().unwrap_or("")) hidden[empty] {
            caption.sr-only { @if pages.after.is_some() { "Older campaigns, newest first" } @else { "Campaigns, newest first" } }
            thead {
                tr {
                    th scope="col" { "Campaign" }
                    th scope="col" { "Status" }
                    th scope="col" { "Progress" }
                    th scope="col" { "Speed" }
                    th scope="col" { "ETA" }
                    th scope="col" { "Read" }
                }
            }
            tbody { @for c in items { (row_markup(c)) } }
        }
        @if pages.after.is_some() || pages.next.is_some() {
            nav.pages aria-label="Pages of campaigns" {
                @if pages.after.is_some() { a href=(list_href(status, None)) { "← Newest campaigns" } }
                @if let Some(next) = &pages.next { a href=(list_href(status, Some(next))) rel="next" { "Older campaigns →" } }
            }
        }
    };
    Html(page("Campaigns", Some(op), body).into_string())
}

fn row_markup(c: &Campaign) -> Markup {
    html! {
        tr data-key=(c.key) data-status=(c.status_name) {
            td data-label="Campaign" {
                a href={ "/campaigns/" (c.key) } { (c.title) }
                span.key { (c.key) " · " (c.channel) }
            }
            td data-label="Status" { (badge(c)) span.request data-f="request" { (c.pending_request.as_deref().unwrap_or("")) } }
            td data-label="Progress" { (progress(c)) (counts(c)) }
            td data-label="Speed" data-f="speed" { (speed_text(c)) }
            td data-label="ETA" data-f="eta" { (eta_text(c)) }
            td data-label="Read" data-f="read_rate" { (percent((c.read_rate * 10_000.0) as i64, 10_000)) }
        }
    }
}

pub fn row(c: &Campaign) -> Html<String> {
    Html(row_markup(c).into_string())
}

pub fn detail(
    op: &Operator,
    t: &Timeline,
    report: Option<&Report>,
    notice: Option<Notice>,
    workflow: &str,
) -> Html<String> {
    let c = &t.campaign;
    let rate_error = notice
        .as_ref()
        .filter(|n| n.at_rate)
        .map(|n| n.text.clone());
    let body = html! {
        div data-live-campaign data-key=(c.key) {
            p.crumbs { a href="/campaigns" { "Campaigns" } " / " (c.key) }
            h1 { (c.title) }
            @if let Some(n) = notice.as_ref().filter(|n| !n.at_rate) {
                div class=(if n.error { "error" } else { "notice" }) role=(if n.error { "alert" } else { "status" }) { (n.text) }
            }
            section.card aria-labelledby="progress-h" {
                h2 #progress-h { "Progress" }
                // A screen reader hears the status change (pause, completion), not every count.
                div.status-line aria-live="polite" { (badge(c)) span.request data-f="request" { (c.pending_request.as_deref().unwrap_or("")) } }
                (progress(c))
                (counts(c))
                dl.stats {
                    div { dt { "Done" } dd data-f="percent" { (percent(c.sent + c.failed, c.total)) } }
                    div { dt title="Of the audience's user ids, how many its pages have looked through" { "Scanned" } dd data-f="scanned" { (percent((c.scanned * 10_000.0) as i64, 10_000)) } }
                    div { dt { "Speed" } dd data-f="speed" { (speed_text(c)) } }
                    div { dt { "ETA" } dd data-f="eta" { (eta_text(c)) } }
                    div { dt { "Read" } dd { span data-f="read" { (number(c.read)) } " (" span data-f="read_rate" { (percent((c.read_rate * 10_000.0) as i64, 10_000)) } ")" } }
                }
            }
            div #panel { (panel_markup(op, t)) }
            (rate_markup(op, c, rate_error.as_deref()))
            div #failures {
                @if let Some(r) = report { (report_markup(op, r)) }
            }
            section.card aria-labelledby="details-h" {
                h2 #details-h { "Details" }
                dl.details {
                    div { dt { "Key" } dd { code { (c.key) } } }
                    div { dt { "Channel" } dd { (c.channel) } }
                    div { dt { "Audience" } dd { (match (&c.segment, &c.audience) { (Some(s), _) => format!("segment {s}"), (None, Some(f)) => format!("filter {f}"), (None, None) => "every user".into() }) } }
                    div { dt { "Pages" } dd { (c.page_size) " recipients, " (c.lanes) " in flight" } }
                    div { dt { "Rate limit" } dd { (c.rate.map(|r| format!("{} /s", number(r.into()))).unwrap_or_else(|| "none".into())) } }
                }
                p { a href=(workflow) rel="noopener noreferrer" target="_blank" { "Its workflow in the Temporal web UI" } }
            }
        }
    };
    Html(page(&c.title, Some(op), body).into_string())
}

/// What changes with the status: the actions and the timeline.
fn panel_markup(op: &Operator, t: &Timeline) -> Markup {
    let (c, history) = (&t.campaign, &t.changes[..]);
    let standing = Standing::of(c);
    let terminal = standing.status.is_terminal();
    let cancelling = standing.intent == Intent::Cancel;
    let can_pause = standing.offers(Request::Pause);
    let can_resume = standing.offers(Request::Resume);
    let state = format!(
        "{}/{}/{}",
        c.status,
        c.intent,
        c.pending_request.as_deref().unwrap_or("")
    );
    html! {
        section.card aria-labelledby="actions-h" data-state=(state) {
            h2 #actions-h { "Actions" }
            @if terminal || cancelling {
                @let what = match standing.status {
                    CampaignStatus::Completed => "It has completed",
                    CampaignStatus::Cancelled => "It was cancelled",
                    _ => "It has been asked to cancel",
                };
                p.hint { (what) "; there is nothing to pause or resume." }
            }
            div.actions {
                @if can_pause {
                    form method="post" action={ "/campaigns/" (c.key) "/pause" } {
                        input type="hidden" name="csrf" value=(op.csrf);
                        button.primary type="submit" { "Pause" }
                    }
                }
                @if can_resume {
                    form method="post" action={ "/campaigns/" (c.key) "/resume" } {
                        input type="hidden" name="csrf" value=(op.csrf);
                        button.primary type="submit" { "Resume" }
                    }
                }
                @if !terminal && !cancelling {
                    a.button.danger href={ "/campaigns/" (c.key) "/cancel" } { "Cancel…" }
                }
            }
        }
        section.card aria-labelledby="timeline-h" {
            h2 #timeline-h { "Timeline" }
            ol.timeline {
                li { span.what { "Created" } (time(c.created_at)) (by(c.created_by.as_deref())) }
                @if let Some(t) = c.send_at { li { span.what { "Scheduled for" } (time(t)) } }
                @for entry in entries(t) {
                    @match entry {
                        Entry::Change(i) => li {
                            span.what { (step(history, i)) }
                            (time(history[i].at))
                            (by(history[i].actor.as_deref()))
                            @if let Some(r) = &history[i].reason { span.why { (r) } }
                        },
                        Entry::Request(r) => li.request {
                            span.what { (asked(r)) }
                            (time(r.at))
                            (by(r.actor.as_deref()))
                            @if let Some(d) = r.detail.as_ref().filter(|_| r.request != "rate") { span.why { (d) } }
                        },
                    }
                }
                @if let (Some(p), Some(t)) = (&c.pending_request, c.requested_at) {
                    li.pending { span.what { "Waiting: " (p) } (time(t)) (by(c.requested_by.as_deref())) }
                }
            }
        }
    }
}

/// The rate of a webhook or e-mail campaign that has not finished. Outside the panel, so a
/// status change never replaces what the operator is typing; the script hides it once the
/// campaign has finished.
fn rate_markup(op: &Operator, c: &Campaign, rate_error: Option<&str>) -> Markup {
    let standing = Standing::of(c);
    let terminal = standing.status.is_terminal();
    let external = standing.channel.is_external();
    html! {
        @if external && !terminal {
            section.card #rate-card aria-labelledby="rate-h" {
                h2 #rate-h { "Rate limit" }
                form.rate method="post" action={ "/campaigns/" (c.key) "/rate" } novalidate {
                    input type="hidden" name="csrf" value=(op.csrf);
                    div.field {
                        label for="rate" { "Rate limit, recipients per second" }
                        input #rate type="number" name="rate" min="1" max="10000000" inputmode="numeric"
                            value=(c.rate.map(|r| r.to_string()).unwrap_or_default())
                            aria-invalid=(if rate_error.is_some() { "true" } else { "false" })
                            aria-describedby=[rate_error.map(|_| "rate-error")];
                        @if let Some(e) = rate_error { p #rate-error .field-error { (e) } }
                    }
                    button type="submit" { "Set rate" }
                    button type="submit" name="unlimited" value="1" { "No limit" }
                }
            }
        }
    }
}

/// One line of the timeline: a status change (by its index) or a request.
enum Entry<'a> {
    Change(usize),
    Request(&'a RequestMade),
}

/// The status changes (but the first, "not started", which "Created" stands for) and the
/// requests (but the launch, likewise), by time; a request before the change it caused.
fn entries(t: &Timeline) -> Vec<Entry<'_>> {
    let mut entries: Vec<(DateTime<Utc>, u8, Entry<'_>)> = t
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| status(c.status) != CampaignStatus::NotStarted)
        .map(|(i, c)| (c.at, 1, Entry::Change(i)))
        .chain(
            t.requests
                .iter()
                .filter(|r| r.request != "launch")
                .map(|r| (r.at, 0, Entry::Request(r))),
        )
        .collect();
    entries.sort_by_key(|(at, order, _)| (*at, *order));
    entries.into_iter().map(|(_, _, e)| e).collect()
}

/// What a request asked, as the timeline says it.
fn asked(r: &RequestMade) -> String {
    match r.request.as_str() {
        "rate" => format!("Rate set to {}", r.detail.as_deref().unwrap_or("unlimited")),
        "retry-failed" => "Retry of the failed asked".into(),
        "pause" => "Pause asked".into(),
        "resume" => "Resume asked".into(),
        "cancel" => "Cancel asked".into(),
        other => format!("{other} asked"),
    }
}

/// Who did it, when known.
fn by(actor: Option<&str>) -> Markup {
    html! {
        @if let Some(a) = actor { span.by { "by " (a) } }
    }
}

/// What the `i`-th status change was: "Started" the first time it runs, "Resumed" after.
fn step(history: &[StatusChange], i: usize) -> String {
    let change = &history[i];
    use CampaignStatus::*;
    let before = |s: CampaignStatus| history[..i].iter().any(|c| status(c.status) == s);
    let after_completion = history[..i]
        .last()
        .is_some_and(|c| status(c.status) == Completed);
    match status(change.status) {
        InProgress if after_completion => "Sending again".into(),
        InProgress if before(InProgress) => "Resumed".into(),
        InProgress => "Started".into(),
        Paused => "Paused".into(),
        Completed => "Completed".into(),
        Cancelled => "Cancelled".into(),
        Failed => "Failed".into(),
        NotStarted => label(&change.status_name),
    }
}

pub fn panel(op: &Operator, t: &Timeline) -> Html<String> {
    Html(panel_markup(op, t).into_string())
}

fn report_markup(op: &Operator, r: &Report) -> Markup {
    let c = &r.campaign;
    let standing = Standing::of(c);
    let can_retry = retry_offered(standing.status, standing.channel, c.failed);
    html! {
        section.card aria-labelledby="failures-h" data-failed=(c.failed) {
            h2 #failures-h { "Deliveries" }
            @if c.failed == 0 {
                p { "No failed deliveries." }
            } @else {
                p { (number(c.failed)) " recipients failed." }
            }
            @if !r.outcomes.is_empty() {
                table {
                    caption { "By outcome" }
                    thead { tr { th scope="col" { "Outcome" } th scope="col" { "Class" } th scope="col" { "Recipients" } th scope="col" { "Retried" } } }
                    tbody {
                        @for o in &r.outcomes {
                            tr { td { (o.outcome) } td { (o.class.as_deref().unwrap_or("—")) } td { (number(o.items)) } td { (number(o.retried)) } }
                        }
                    }
                }
            }
            @if !r.top_errors.is_empty() {
                table.errors {
                    caption { "Most common errors" }
                    thead { tr { th scope="col" { "Error" } th scope="col" { "Class" } th scope="col" { "Recipients" } } }
                    tbody {
                        @for e in &r.top_errors {
                            tr { td { (e.error) } td { (e.class.as_deref().unwrap_or("—")) } td { (number(e.items)) } }
                        }
                    }
                }
            }
            @if !r.failed.is_empty() {
                table.failed {
                    caption { "Failed recipients (the first " (r.failed.len()) ")" }
                    thead { tr { th scope="col" { "User" } th scope="col" { "Address" } th scope="col" { "Tries" } th scope="col" { "Last error" } th scope="col" { "Last try" } } }
                    tbody {
                        @for f in &r.failed {
                            tr {
                                td { (f.user_id) }
                                td { (f.email) }
                                td { (f.attempts) }
                                td { (f.error.as_deref().unwrap_or("—")) @if let Some(class) = &f.error_class { " (" (class) ")" } }
                                td { @if let Some(t) = f.last_try { (time(t)) } @else { "—" } }
                            }
                        }
                    }
                }
                p.hint { "Every failed recipient: " code { "herald report " (c.key) " --csv" } " or " code { "GET /v1/campaigns/" (c.key) "/report" } "." }
            }
            @if can_retry {
                form method="post" action={ "/campaigns/" (c.key) "/retry-failed" } {
                    input type="hidden" name="csrf" value=(op.csrf);
                    button.primary type="submit" { "Retry the " (number(c.failed)) " failed" }
                }
            }
        }
    }
}

pub fn report(op: &Operator, r: &Report) -> Html<String> {
    Html(report_markup(op, r).into_string())
}

pub fn cancel_confirm(op: &Operator, c: &Campaign) -> Html<String> {
    let body = html! {
        p.crumbs { a href="/campaigns" { "Campaigns" } " / " a href={ "/campaigns/" (c.key) } { (c.key) } }
        h1 { "Cancel " (c.title) "?" }
        div.card {
            p { "Cancelling stops it for good: the " (number(c.pending)) " recipients not yet processed will not get it, and it cannot be resumed. "
                (number(c.sent)) " have it already." }
            form method="post" action={ "/campaigns/" (c.key) "/cancel" } {
                input type="hidden" name="csrf" value=(op.csrf);
                div.field {
                    label for="reason" { "Why (optional, shown in its timeline)" }
                    input #reason type="text" name="reason" maxlength="500";
                }
                div.actions {
                    button.danger type="submit" { "Cancel it for good" }
                    a.button href={ "/campaigns/" (c.key) } { "Keep it" }
                }
            }
        }
    };
    Html(page("Cancel", Some(op), body).into_string())
}
