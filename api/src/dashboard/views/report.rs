//! A campaign's delivery report: outcomes, top errors, the failed, and retry-failed.

use super::*;

pub(super) fn report_markup(op: &Operator, r: &Report) -> Markup {
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
