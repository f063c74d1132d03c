//! Adding test users in bulk.

use herald_store::audience;
use herald_wire::Segment;

use crate::{Control, ControlError, Result};

/// Users added by [`Control::seed_users`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeded {
    pub count: i64,
    pub first_id: i64,
    pub last_id: i64,
}

impl Control {
    pub const MAX_SEED: i64 = 100_000_000;
    /// Users added per statement; progress is reported after each.
    const SEED_CHUNK: i64 = 250_000;

    /// Add `count` users carrying `segment`, reporting how many are in after each chunk, then
    /// make their ledger partitions and analyze them.
    pub async fn seed_users(
        &self,
        count: i64,
        segment: Option<&Segment>,
        mut progress: impl FnMut(i64),
    ) -> Result<Seeded> {
        if !(1..=Self::MAX_SEED).contains(&count) {
            return Err(ControlError::Refused(format!(
                "--count must be between 1 and {}, got {count}",
                Self::MAX_SEED
            )));
        }
        let (mut first_id, mut last_id, mut done) = (0, 0, 0);
        while done < count {
            let n = Self::SEED_CHUNK.min(count - done);
            let added = audience::seed_users(&self.db, n, segment).await?;
            if first_id == 0 {
                first_id = added.first;
            }
            last_id = added.last;
            done += n;
            progress(done);
        }
        audience::settle_users(&self.db, last_id).await?;
        Ok(Seeded {
            count,
            first_id,
            last_id,
        })
    }
}
