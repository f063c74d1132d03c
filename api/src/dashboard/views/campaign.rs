//! A campaign's page: what it is, its actions and rate, its timeline, and cancelling.

use super::*;

pub fn detail(
    op: &Operator,
    t: &Timeline,
    report: Option<&Report>,
    notice: Option<Notice>,
    workflow: &str,
    tried: Option<Markup>,
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
                    div { dt { "Done" } dd data-f="percent" { (percent(c.done(), c.total)) } }
                    div { dt title="Of the audience's user ids, how many its pages have looked through" { "Scanned" } dd data-f="scanned" { (percent((c.scanned * 10_000.0) as i64, 10_000)) } }
                    div { dt { "Speed" } dd data-f="speed" { (speed_text(c)) } }
                    div { dt { "ETA" } dd data-f="eta" { (eta_text(c)) } }
                    div { dt { "Read" } dd { span data-f="read" { (number(c.read)) } " (" span data-f="read_rate" { (percent((c.read_rate * 10_000.0) as i64, 10_000)) } ")" } }
                }
            }
            @if let Some(waves) = &c.waves { (waves_markup(c, waves)) }
            div #panel { (panel_markup(op, t)) }
            (rate_markup(op, c, rate_error.as_deref()))
            div #failures {
                @if let Some(r) = report { (super::report::report_markup(op, r)) }
            }
            section.card aria-labelledby="try-h" {
                h2 #try-h { "Preview and test" }
                form.inline method="get" action={ "/campaigns/" (c.key) "/preview" } {
                    div.field {
                        label for="preview-users" { "Preview as user…" }
                        input #preview-users type="text" name="users" placeholder="ids, or empty for 3 random recipients";
                    }
                    button type="submit" { "Preview" }
                }
                @if op.actor.may(herald_wire::keys::Scope::Launch) {
                    form.inline method="post" action={ "/campaigns/" (c.key) "/test-send" } {
                        input type="hidden" name="csrf" value=(op.csrf);
                        div.field {
                            label for="test-users" { "Send a test to" }
                            input #test-users type="text" name="users" required placeholder="user ids, at most 20";
                        }
                        button type="submit" { "Send a test" }
                    }
                }
                @if let Some(tried) = &tried { (tried) }
            }
            section.card aria-labelledby="details-h" {
                h2 #details-h { "Details" }
                dl.details {
                    div { dt { "Key" } dd { code { (c.key) } } }
                    div { dt { "Channel" } dd { (c.channel) } }
                    div { dt { "Category" } dd { (c.category) } }
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

/// A local-time campaign's waves as a strip: one cell per UTC offset, in opening order,
/// each with its opening, its zones and how far it has come. Kept live by app.js.
fn waves_markup(c: &Campaign, waves: &[Wave]) -> Markup {
    html! {
        section.card aria-labelledby="waves-h" {
            h2 #waves-h { "Waves" }
            p.counts {
                @if let Some(at) = &c.send_at_local { "Sent at " (at) " in each recipient's own time zone" } @else { "Sent at once" }
                @if let Some(q) = &c.quiet_hours { "; quiet hours " (q) " of their local time" }
                @if let Some(z) = &c.fallback_timezone { "; " (z) " for users with none" }
                @if let Some(n) = c.skipped.filter(|n| *n > 0) { "; " (number(n)) " skipped (their time had passed)" }
                "."
            }
            p.counts data-f="held" {
                (held_text(c))
            }
            ol.waves {
                @for (i, w) in waves.iter().enumerate() {
                    @let done = w.done();
                    li data-wave=(i) data-state=(wave_state(w)) title=(w.zones.join(", ")) {
                        span.offset { (w.offsets.join(" ")) }
                        span.opens { (time(w.opens_at)) }
                        progress data-w="bar" max=(w.size.max(1)) value=(done.min(w.size.max(1))) aria-label={ "Wave " (w.offsets.join(" ")) } {}
                        span.counts { span data-w="done" { (number(done)) } " / " (number(w.size)) }
                        span.zones { (zones_text(&w.zones)) }
                    }
                }
            }
        }
    }
}

/// Who quiet hours hold now, and until when.
fn held_text(c: &Campaign) -> String {
    match (c.held, c.held_until) {
        (Some(n), Some(t)) if n > 0 => format!(
            "{} held by quiet hours; the next are released at {}",
            number(n),
            t.format("%Y-%m-%d %H:%M UTC")
        ),
        _ => String::new(),
    }
}

fn wave_state(w: &Wave) -> &'static str {
    match (w.opened, w.done() >= w.size) {
        _ if w.held_until.is_some() => "held",
        (false, _) => "waiting",
        (true, false) => "open",
        (true, true) => "done",
    }
}

fn zones_text(zones: &[String]) -> String {
    match zones.len() {
        0..=3 => zones.join(", "),
        n => format!("{} and {} more", zones[..2].join(", "), n - 2),
    }
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
