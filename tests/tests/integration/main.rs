//! Herald's integration tests, in one binary so the suite links once: each module tests one
//! area against the real Temporal dev server and PostgreSQL, through `herald_tests::TestApp`.
//!
//! - `api`: the HTTP API end to end, with a real `herald-api` process.
//! - `audience`: audience filters compiled to SQL, counted against plain SQL.
//! - `campaign`: campaigns end to end: exactly once, pause, cancel, send_at, read tracking.
//! - `channels`: webhook and e-mail campaigns against receivers the tests start.
//! - `signals`: signals sent straight through Temporal, malformed payloads included.
//! - `cli`: bad input refused with one line; unreachable services named.
//! - `dashboard`: the operator's dashboard in a real headless Chromium, and its security.
//! - `pages`: the page statement and the page connections on their own.
//! - `plan`: the page statement's plan without statistics; the inbox's per user.
//! - `history`: every wait continues as new when its history grows (a lowered threshold).
//! - `long`: campaigns that run for hours: slow rates, rolling restarts, several workers,
//!   errors that retrying cannot fix, a long database outage (`#[ignore]`d, serial).
//! - `faults`: killed and stopped workers, failures after commit, restarted services (the
//!   tests that restart shared services are `#[ignore]`d and run serially by scripts/test).
//! - `requests`: pause, resume and cancel from every side at once, in any order.
//! - `recovery`: campaigns whose workflow was terminated, resumed from the ledger's cursors.
//! - `scans`: sparse audiences in pages of bounded work; pages that run past their time.
//! - `keys`: API keys with scopes, dashboard sessions that end when signed out of or revoked,
//!   actors in the timeline, event streams per key.
//! - `launch`: one launch request for the CLI, the API and the form; saved audiences; dry runs.
//! - `local`: local-time waves opening while the test watches, paused across an opening.
//! - `users`: users imported from CSV and NDJSON, and written through the API.
//! - `webhooks`: destinations by policy, answers without end, signatures checked by the
//!   Standard Webhooks library, a pause with the database far away.
//! - `replay`: saved histories replay against the current workflow.

mod api;
mod audience;
mod campaign;
mod cap;
mod channels;
mod cli;
mod consent;
mod dashboard;
mod faults;
mod history;
mod keys;
mod launch;
mod local;
mod long;
mod pages;
mod plan;
mod preview;
mod recovery;
mod replay;
mod requests;
mod scans;
mod signals;
mod templates;
mod users;
mod webhooks;
