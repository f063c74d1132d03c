//! Declarations of the activities the campaign workflow calls. The bodies live in
//! `herald-activities`, which implements each one with `#[activity(definition = ...)]`.
#![allow(unreachable_pub)]

use herald_wire::{
    LedgerRequests, PageInput, PageOutcome, RegisterInput, Registered, SetStatusInput,
    StatusRecorded, SyncRequestsInput, names,
};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub struct CampaignActivities;

#[activity_definitions]
impl CampaignActivities {
    /// Upsert the campaign row and fix its audience (idempotent).
    #[activity(name = names::ACTIVITY_REGISTER)]
    pub fn register(input: RegisterInput) -> Result<Registered, ActivityError> {
        unimplemented!()
    }

    /// Deliver one page and record it in the ledger, in one transaction (idempotent).
    #[activity(name = names::ACTIVITY_PAGE)]
    pub fn page(input: PageInput) -> Result<PageOutcome, ActivityError> {
        unimplemented!()
    }

    /// Record the workflow's status in the campaign's row; returns the stored status and
    /// the ledger's totals.
    #[activity(name = names::ACTIVITY_SET_STATUS)]
    pub fn set_status(input: SetStatusInput) -> Result<StatusRecorded, ActivityError> {
        unimplemented!()
    }

    /// Append the bare signals' requests to the campaign's row; returns the requests it holds.
    #[activity(name = names::ACTIVITY_SYNC_REQUESTS)]
    pub fn sync_requests(input: SyncRequestsInput) -> Result<LedgerRequests, ActivityError> {
        unimplemented!()
    }

    /// Nothing: scheduling it ends the current workflow task (see `options::YIELD_AFTER`).
    #[activity(name = names::ACTIVITY_YIELD)]
    pub fn yield_task(input: ()) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

/// The definition markers that the implementing crate names in
/// `#[activity(definition = ...)]` (the macro keeps its module private).
pub mod definitions {
    pub use super::campaign_activities::{Page, Register, SetStatus, SyncRequests, YieldTask};
}
