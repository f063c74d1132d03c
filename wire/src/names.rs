//! Durable names. Workflow histories, other services and the Temporal UI refer to these
//! strings; a Rust rename must never change them, so they are spelled out here once.

/// Workflow type of a campaign.
pub const CAMPAIGN_WORKFLOW: &str = "herald.campaign";

/// Signal: stop before the next page. Payload: optional JSON `{"reason": "..."}`; any other
/// field is ignored. Signals are obeyed as what they name and appended to the campaign's
/// requests in the ledger.
pub const SIGNAL_PAUSE: &str = "pause";
/// Signal: continue from the next unprocessed recipient. Payload as for pause.
pub const SIGNAL_RESUME: &str = "resume";
/// Signal: stop for good; the campaign ends with status 4. Payload as for pause.
pub const SIGNAL_CANCEL: &str = "cancel";

/// Signal: change the campaign's speed limit while it runs. Payload: JSON `{"rate": N}`
/// (recipients per second, 1–10,000,000) or `{"rate": null}` for none.
pub const SIGNAL_RATE: &str = "rate";

/// Signal: Herald's own front ends recorded a request in the campaign's row; read the row.
/// It carries nothing: whatever its payload, the workflow acts on what the ledger holds.
pub const SIGNAL_REQUESTS: &str = "herald.requests";

/// Update: Herald's own front ends recorded a request in the campaign's row; read the row and
/// answer once the workflow has taken it (a stop: every page in flight has returned and the
/// status is written). Input: [`crate::RecordedRequests`], the numbers the row gave the
/// request, which the workflow checks against the row; answer: [`crate::Applied`].
pub const UPDATE_REQUESTS: &str = "herald.apply";

/// Query: the campaign's live progress, as [`crate::Progress`].
pub const QUERY_PROGRESS: &str = "progress";

/// Activity: upsert the campaign row and fix its audience.
pub const ACTIVITY_REGISTER: &str = "herald.register";
/// Activity: deliver one page of recipients and record it in the ledger.
pub const ACTIVITY_PAGE: &str = "herald.page";
/// Activity: record the workflow's status in the campaign's row.
pub const ACTIVITY_SET_STATUS: &str = "herald.set_status";
/// Activity: append to the campaign's row the requests that came as bare signals, and read
/// the requests it holds.
pub const ACTIVITY_SYNC_REQUESTS: &str = "herald.sync_requests";
/// Activity: nothing, on the task queue. Scheduling it ends the workflow task that local
/// activities hold open, so that signals get in (see the workflow's options).
pub const ACTIVITY_YIELD: &str = "herald.yield";

/// Failure type of a page or bookkeeping activity that did not start because its worker is
/// shutting down: nothing was written, and the workflow hands the work to another worker.
pub const FAILURE_WORKER_STOPPING: &str = "herald.WorkerStopping";
/// Failure type of an error that retrying cannot fix (permission denied, a missing table, a
/// value Herald cannot read): the workflow retries it for a grace period, then marks the
/// campaign failed.
pub const FAILURE_PERMANENT: &str = "herald.Permanent";
/// Failure type of a page whose statement ran past its time limit: the workflow tries the
/// page again at once over fewer user ids (`herald_workflows::scan`).
pub const FAILURE_TOO_SLOW: &str = "herald.TooSlow";
/// Failure type of an error that may go away (a lost connection, a restart, a timeout).
pub const FAILURE_TRANSIENT: &str = "herald.Transient";

/// Search attribute (Keyword): the campaign's status name, for the web UI's list.
pub const SA_STATUS: &str = "HeraldStatus";
/// Search attribute (Int): recipients processed (sent + failed + suppressed).
pub const SA_PROCESSED: &str = "HeraldProcessed";

/// Default task queue shared by the worker and the CLI.
pub const DEFAULT_TASK_QUEUE: &str = "herald";

/// The workflow id of a campaign: one workflow per campaign key, so launching the same key
/// twice cannot start a second campaign.
pub fn workflow_id(key: &crate::CampaignKey) -> String {
    format!("campaign-{}", key.as_str())
}
