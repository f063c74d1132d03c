//! The consent page's HTML.

use super::*;
use crate::dashboard::consent::{ConsentView, REASONS};

pub fn consent_page(op: &Operator, v: &ConsentView) -> Html<String> {
    let body = html! {
        h1 { "Consent" }
        @if let Some(n) = &v.notice {
            div class=(if n.error { "error" } else { "notice" }) role=(if n.error { "alert" } else { "status" }) { (n.text) }
        }
        section.card aria-labelledby="categories-h" {
            h2 #categories-h { "Categories" }
            p.hint { "A campaign is launched in one category. Users opt out of a category on one channel or all; "
                code { "transactional" } " ignores opt-outs. Suppressed addresses get nothing, whatever the category." }
            table #categories {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Opted out" } th scope="col" { "About" } } }
                tbody {
                    @for c in &v.categories {
                        tr {
                            td { code { (c.name) } }
                            td.num { (number(c.opted_out)) }
                            td { (c.description.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            form.inline method="post" action="/consent/categories" {
                input type="hidden" name="csrf" value=(op.csrf);
                div.field {
                    label for="category-name" { "New category" }
                    input #category-name type="text" name="name" required maxlength="40" placeholder="product-news";
                }
                div.field {
                    label for="category-description" { "About it" }
                    input #category-description type="text" name="description" maxlength="200";
                }
                button type="submit" { "Declare" }
            }
        }
        section.card aria-labelledby="suppressions-h" {
            h2 #suppressions-h { "Suppression list" }
            p.hint { "Reasons: "
                @for (i, r) in REASONS.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (r.name()) }
                }
                ". A hard bounce (SMTP 550, 551 or 553 with status 5.1.x: no such mailbox) suppresses its address by itself." }
            form.inline method="get" action="/consent" {
                div.field {
                    label for="search" { "Address contains" }
                    input #search type="search" name="search" value=(v.search);
                }
                div.field {
                    label for="filter-channel" { "Channel" }
                    select #filter-channel name="channel" {
                        option value="" selected[v.channel.is_empty()] { "every channel" }
                        @for ch in ["email", "webhook", "inbox"] {
                            option value=(ch) selected[v.channel == ch] { (ch) }
                        }
                    }
                }
                button type="submit" { "Search" }
            }
            p #suppression-count { (number(v.total)) " suppressed" @if !v.channel.is_empty() { " on " (v.channel) } "; the newest " (v.suppressions.len()) " shown." }
            table #suppressions {
                thead { tr {
                    th scope="col" { "Channel" } th scope="col" { "Address" } th scope="col" { "Reason" }
                    th scope="col" { "Since" } th scope="col" { "Note" } th scope="col" { span.visually-hidden { "Remove" } }
                } }
                tbody {
                    @for s in &v.suppressions {
                        tr {
                            td { (s.channel) }
                            td { code { (s.address) } }
                            td { (s.reason) }
                            td { (time(s.created_at)) }
                            td { (s.detail.as_deref().unwrap_or("")) }
                            td {
                                form method="post" action="/consent/suppressions/remove" {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    input type="hidden" name="channel" value=(s.channel);
                                    input type="hidden" name="address" value=(s.address);
                                    button.link type="submit" aria-label={ "Remove " (s.address) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/consent/suppressions" {
                input type="hidden" name="csrf" value=(op.csrf);
                div.field {
                    label for="addresses" { "Import addresses" }
                    textarea #addresses name="addresses" rows="5" spellcheck="false" aria-describedby="addresses-hint" {}
                    p #addresses-hint .hint { "CSV: an address a line, an optional note after a comma; a header line is skipped. A bad line imports nothing." }
                }
                div.field {
                    label for="import-channel" { "Channel" }
                    select #import-channel name="channel" {
                        option value="email" selected { "email" }
                        option value="webhook" { "webhook (user ids)" }
                        option value="inbox" { "inbox (user ids)" }
                    }
                }
                button.primary type="submit" { "Suppress" }
            }
        }
    };
    Html(page("Consent", Some(op), body).into_string())
}
