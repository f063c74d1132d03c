//! Saved audiences: a filter kept under a name, checked as a launch checks it, and launched
//! with `audience_name`. A launch copies the filter; saving it again changes no campaign.

use herald_store::saved_audiences::{self, Saved};
use herald_wire::{FieldError, audience::AudienceName};

use crate::{
    Control, ControlError, Result,
    launch::{AudienceGiven, filter_error},
};

/// A filter just saved.
#[derive(Clone, Debug)]
pub struct SavedNow {
    pub name: AudienceName,
    /// Whether the name was new (otherwise its filter was replaced).
    pub created: bool,
    /// Users it holds now.
    pub members: i64,
}

fn name_of(name: &str) -> Result<AudienceName> {
    AudienceName::parse(name).map_err(|e| FieldError::at("name", e).into())
}

impl Control {
    /// Keep `filter` under `name`, replacing any filter saved under it. The filter is
    /// checked against the attributes users have now, as a launch would check it.
    pub async fn save_audience(&self, name: &str, filter: AudienceGiven) -> Result<SavedNow> {
        let name = name_of(name)?;
        let filter = filter.parse().map_err(|e| filter_error("filter", e))?;
        herald_store::audience::check(&self.db, &filter)
            .await?
            .map_err(|e| filter_error("filter", e))?;
        let created = saved_audiences::save(&self.db, &name, &filter).await?;
        let members = herald_store::audience::preview(&self.db, Some(&filter))
            .await?
            .total;
        Ok(SavedNow {
            name,
            created,
            members,
        })
    }

    /// Every saved audience, by name.
    pub async fn audiences(&self) -> Result<Vec<Saved>> {
        Ok(saved_audiences::list(&self.db).await?)
    }

    /// Forget a saved audience. Campaigns launched with it keep their copy.
    pub async fn delete_audience(&self, name: &str) -> Result<()> {
        let name = name_of(name)?;
        if saved_audiences::delete(&self.db, &name).await? {
            Ok(())
        } else {
            Err(ControlError::Unmet {
                field: "name".into(),
                message: format!("no audience is saved as {:?}", name.as_str()),
            })
        }
    }
}
