//! The campaign list and its rows.

use super::*;

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
