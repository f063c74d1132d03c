//! Consent (docs/consent.md): categories, users' opt-outs and preferences, one-click
//! unsubscribe, the suppression list, and the default frequency cap (docs/local-time.md).

use herald_store::consent as store;
pub use herald_store::consent::{
    CategoryView, OptOut, OptOutSource, Suppression, SuppressionReason,
};
use herald_wire::{Category, Channel, FrequencyCap, OptOutChannel, Unsubscribe, UnsubscribeKey};

use crate::{Control, ControlError, Result};

/// Addresses one request may suppress.
pub const MAX_SUPPRESSIONS: usize = 100_000;

/// Opt-outs one request may add.
pub const MAX_OPT_OUTS: usize = 100_000;

/// Lines one CSV import may hold.
pub const MAX_IMPORT: usize = 100_000;

/// What a one-click unsubscribe did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribed {
    pub link: Unsubscribe,
    /// `false`: the user had opted out already (a second click, a mail scanner's POST).
    pub new: bool,
}

/// What a suppression import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Imported {
    /// Addresses read.
    pub read: usize,
    /// Of those, newly suppressed (the others were already).
    pub added: u64,
}

/// One opt-out as an operator gave it, with where (to name it when it is wrong).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOutLine {
    pub place: Place,
    pub user_id: i64,
    /// A category's name, as given.
    pub category: String,
    /// A channel's name or `all`, as given.
    pub channel: String,
}

/// Where an entry of a list was: a CSV file's line, or a JSON array's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Line(u64),
    Index(usize),
}

impl Place {
    /// The error field for `field` of the entry here: `line 3` (a CSV line's fields are
    /// named in the message) or `opt_outs[2].category`.
    fn field(self, field: &str) -> String {
        match self {
            Self::Line(n) => format!("line {n}"),
            Self::Index(i) => format!("opt_outs[{i}].{field}"),
        }
    }
}

impl Control {
    /// The key of unsubscribe links (HERALD_UNSUBSCRIBE_SECRET, or the ledger's).
    pub async fn unsubscribe_key(&self) -> Result<&UnsubscribeKey> {
        self.unsubscribe
            .get_or_try_init(|| self.config.unsubscribe_key(&self.db))
            .await
    }

    /// The link that opts `user_id` out of `category` on `channel`.
    pub async fn unsubscribe_url(
        &self,
        user_id: i64,
        category: Category,
        channel: Channel,
    ) -> Result<String> {
        let link = Unsubscribe {
            user_id,
            category,
            channel,
        };
        Ok(self
            .unsubscribe_key()
            .await?
            .url(&self.config.public_url, &link))
    }

    /// What an unsubscribe token stands for; a token this Herald did not sign is not found.
    pub async fn unsubscribe_link(&self, token: &str) -> Result<Unsubscribe> {
        self.unsubscribe_key()
            .await?
            .verify(token)
            .ok_or_else(|| ControlError::NotFound("this unsubscribe link is not valid".into()))
    }

    /// Carry out a one-click unsubscribe: opt the link's user out of its category on its
    /// channel. Idempotent. A user deleted since the link was sent has nothing to opt out
    /// of, and is answered as done.
    pub async fn unsubscribe(&self, token: &str) -> Result<Unsubscribed> {
        let link = self.unsubscribe_link(token).await?;
        if link.category.is_transactional() {
            // Herald makes no such link; one signed before it stopped is not honoured.
            return Err(ControlError::NotFound(
                "transactional messages have no unsubscribe link".into(),
            ));
        }
        let done = store::opt_out(
            &self.db,
            link.user_id,
            &link.category,
            OptOutChannel::One(link.channel),
            OptOutSource::OneClick,
            "recipient",
        )
        .await;
        let new = match done {
            Ok(new) => new,
            Err(herald_store::StoreError::UnknownUser(_)) => false,
            // A category removed since: nothing will be sent in it.
            Err(herald_store::StoreError::UnknownCategory(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if new {
            tracing::info!(
                user = link.user_id,
                category = %link.category,
                channel = %link.channel,
                "unsubscribed"
            );
        }
        Ok(Unsubscribed { link, new })
    }

    pub async fn categories(&self) -> Result<Vec<CategoryView>> {
        Ok(store::categories(&self.db).await?)
    }

    /// The frequency cap a launch that names none gets (docs/local-time.md); `None`:
    /// uncapped.
    pub async fn default_cap(&self) -> Result<Option<FrequencyCap>> {
        Ok(herald_store::cap::default_cap(&self.db).await?)
    }

    /// Set the default frequency cap from its text (`2/24h`, or `none` to remove it), as
    /// `actor`; returns it as set. Campaigns launched before keep theirs.
    pub async fn set_default_cap(&self, cap: &str, actor: &str) -> Result<Option<FrequencyCap>> {
        let cap = FrequencyCap::parse(cap).map_err(|message| ControlError::Field {
            field: "frequency_cap".into(),
            message,
        })?;
        herald_store::cap::set_default_cap(&self.db, cap, actor).await?;
        Ok(cap.limit().map(|_| cap))
    }

    /// Declare a category; `false` if it existed already.
    pub async fn add_category(
        &self,
        name: &str,
        description: Option<&str>,
        actor: &str,
    ) -> Result<bool> {
        let name = Category::parse(name).map_err(|e| ControlError::Field {
            field: "name".into(),
            message: e.0,
        })?;
        if let Some(d) = description
            && d.chars().count() > 200
        {
            return Err(ControlError::Field {
                field: "description".into(),
                message: "a description is at most 200 characters".into(),
            });
        }
        Ok(store::add_category(&self.db, &name, description, actor).await?)
    }

    /// A user's opt-outs.
    pub async fn preferences(&self, user_id: i64) -> Result<Vec<OptOut>> {
        Ok(store::opt_outs(&self.db, user_id).await?)
    }

    /// Make a user's opt-outs exactly `wanted` (category and channel names, as given);
    /// each wrong entry is named by its place (`opt_outs[2].channel`).
    pub async fn set_preferences(
        &self,
        user_id: i64,
        wanted: &[(String, String)],
        source: OptOutSource,
        actor: &str,
    ) -> Result<Vec<OptOut>> {
        if wanted.len() > 1_000 {
            return Err(ControlError::Field {
                field: "opt_outs".into(),
                message: format!("at most 1000 opt-outs, not {}", wanted.len()),
            });
        }
        let parsed = wanted
            .iter()
            .enumerate()
            .map(|(i, (category, channel))| {
                parse_opt_out(category, channel, |field| format!("opt_outs[{i}].{field}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(store::set_opt_outs(&self.db, user_id, &parsed, source, actor).await?)
    }

    /// Opt a user out of a category on a channel (or `all`), as an operator.
    pub async fn opt_out(
        &self,
        user_id: i64,
        category: &str,
        channel: &str,
        actor: &str,
    ) -> Result<bool> {
        let (category, channel) = parse_opt_out(category, channel, str::to_owned)?;
        Ok(store::opt_out(
            &self.db,
            user_id,
            &category,
            channel,
            OptOutSource::Operator,
            actor,
        )
        .await?)
    }

    /// Opt users out in bulk, as given (`source` says how: an import, the API). Each entry is
    /// checked, and a wrong one (a bad name, an unknown user or category, transactional) is
    /// named by its place and adds none.
    pub async fn add_opt_outs(
        &self,
        entries: &[OptOutLine],
        source: OptOutSource,
        actor: &str,
    ) -> Result<Imported> {
        if entries.is_empty() || entries.len() > MAX_OPT_OUTS {
            return Err(ControlError::Field {
                field: "opt_outs".into(),
                message: format!("give 1 to {MAX_OPT_OUTS} opt-outs, not {}", entries.len()),
            });
        }
        let parsed = entries
            .iter()
            .map(|e| {
                let at = |field: &str, message: String| ControlError::Field {
                    field: e.place.field(field),
                    message,
                };
                if e.user_id <= 0 {
                    return Err(at("user_id", format!("{} is not a user id", e.user_id)));
                }
                let (category, channel) =
                    parse_opt_out(&e.category, &e.channel, |field| e.place.field(field))?;
                Ok((e.user_id, category, channel))
            })
            .collect::<Result<Vec<_>>>()?;
        match store::add_opt_outs(&self.db, &parsed, source, actor).await {
            Ok(added) => Ok(Imported {
                read: entries.len(),
                added,
            }),
            Err(herald_store::StoreError::UnknownUser(user)) => {
                let e = entries.iter().find(|e| e.user_id == user);
                Err(ControlError::Field {
                    field: e.map_or("opt_outs".into(), |e| e.place.field("user_id")),
                    message: format!("no user {user}"),
                })
            }
            Err(herald_store::StoreError::UnknownCategory(name)) => {
                let e = entries.iter().find(|e| e.category == name);
                Err(ControlError::Field {
                    field: e.map_or("opt_outs".into(), |e| e.place.field("category")),
                    message: format!(
                        "no category {name:?}: declare it first (herald categories add {name})"
                    ),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opt out the users of a CSV file: a user id a line, then optionally a category and a
    /// channel (absent or empty: `category`, `channel`); a header line naming `user_id` is
    /// skipped. A bad line, named by its number, adds none.
    pub async fn import_opt_outs(
        &self,
        csv_text: &str,
        category: &str,
        channel: &str,
        actor: &str,
    ) -> Result<Imported> {
        // The defaults named as the flags they came from, before any line uses them.
        parse_opt_out(category, channel, str::to_owned)?;
        let entries = parse_opt_out_csv(csv_text, category, channel)?;
        if entries.is_empty() {
            return Err(ControlError::Field {
                field: "file".into(),
                message: "the file holds no user".into(),
            });
        }
        self.add_opt_outs(&entries, OptOutSource::Import, actor)
            .await
    }

    /// Suppress addresses on a channel, as given (each checked and normalized; one bad
    /// address, named by its place, suppresses none).
    pub async fn suppress(
        &self,
        channel: &str,
        entries: &[(String, Option<String>)],
        reason: SuppressionReason,
        actor: &str,
    ) -> Result<Imported> {
        let channel = parse_channel(channel)?;
        if entries.is_empty() || entries.len() > MAX_SUPPRESSIONS {
            return Err(ControlError::Field {
                field: "addresses".into(),
                message: format!(
                    "give 1 to {MAX_SUPPRESSIONS} addresses, not {}",
                    entries.len()
                ),
            });
        }
        let normalized = entries
            .iter()
            .enumerate()
            .map(|(i, (address, detail))| {
                let address = store::normalize_address(channel, address).map_err(|message| {
                    ControlError::Field {
                        field: format!("addresses[{i}]"),
                        message,
                    }
                })?;
                let detail = detail
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| d.chars().take(200).collect());
                Ok((address, detail))
            })
            .collect::<Result<Vec<_>>>()?;
        let added = store::suppress(&self.db, channel, &normalized, reason, actor).await?;
        Ok(Imported {
            read: normalized.len(),
            added,
        })
    }

    /// Suppress the addresses of a CSV file: one address a line in the first column, an
    /// optional note in the second; a header line naming `address` or `email` is skipped.
    /// A bad line, named by its number, suppresses none.
    pub async fn import_suppressions(
        &self,
        channel: &str,
        csv_text: &str,
        actor: &str,
    ) -> Result<Imported> {
        let entries = parse_suppression_csv(csv_text)?;
        if entries.is_empty() {
            return Err(ControlError::Field {
                field: "file".into(),
                message: "the file holds no address".into(),
            });
        }
        let channel_parsed = parse_channel(channel)?;
        for (line, (address, _)) in &entries {
            store::normalize_address(channel_parsed, address).map_err(|message| {
                ControlError::Field {
                    field: format!("line {line}"),
                    message,
                }
            })?;
        }
        let entries: Vec<(String, Option<String>)> =
            entries.into_iter().map(|(_, entry)| entry).collect();
        self.suppress(channel, &entries, SuppressionReason::Import, actor)
            .await
    }

    /// Take an address off a channel's suppression list; whether it was on it.
    pub async fn unsuppress(&self, channel: &str, address: &str) -> Result<bool> {
        let channel = parse_channel(channel)?;
        let address =
            store::normalize_address(channel, address).map_err(|message| ControlError::Field {
                field: "address".into(),
                message,
            })?;
        Ok(store::unsuppress(&self.db, channel, &address).await?)
    }

    /// A page of the suppression list, newest first, and how many entries it has.
    pub async fn suppressions(
        &self,
        channel: Option<&str>,
        search: Option<&str>,
        before: Option<(chrono::DateTime<chrono::Utc>, String)>,
        limit: u32,
    ) -> Result<(Vec<Suppression>, i64)> {
        let channel = channel.map(parse_channel).transpose()?;
        Ok(store::suppressions(&self.db, channel, search, before, limit.clamp(1, 1_000)).await?)
    }
}

/// A category and a channel someone may opt out of (not transactional), each refused at the
/// field `field` names.
fn parse_opt_out(
    category: &str,
    channel: &str,
    field: impl Fn(&str) -> String,
) -> Result<(Category, OptOutChannel)> {
    let at = |name: &str, message: String| ControlError::Field {
        field: field(name),
        message,
    };
    let category = Category::parse(category).map_err(|e| at("category", e.0))?;
    if category.is_transactional() {
        return Err(at(
            "category",
            "transactional messages ignore opt-outs; nobody opts out of them".into(),
        ));
    }
    let channel = channel
        .parse::<OptOutChannel>()
        .map_err(|e| at("channel", e.0))?;
    Ok((category, channel))
}

fn parse_channel(channel: &str) -> Result<Channel> {
    channel
        .parse()
        .map_err(|e: herald_wire::InvalidInput| ControlError::Field {
            field: "channel".into(),
            message: e.0,
        })
}

/// The records of a CSV import with their line numbers: one record a line (no field holds
/// a line break), blank lines and records with an empty first field skipped, and a first
/// record skipped when its first field is one of `header` (case aside). At most
/// `MAX_IMPORT` records.
fn csv_records(text: &str, header: &[&str]) -> Result<Vec<(u64, csv::StringRecord)>> {
    let mut out = Vec::new();
    // A spreadsheet's export may begin with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(raw.as_bytes());
        let Some(record) = reader.records().next() else {
            continue;
        };
        let record = record.map_err(|e| ControlError::Field {
            field: format!("line {line}"),
            message: e.to_string(),
        })?;
        let Some(first) = record.get(0).filter(|a| !a.is_empty()) else {
            continue;
        };
        if out.is_empty() && header.contains(&first.to_lowercase().as_str()) {
            continue;
        }
        out.push((line, record));
        if out.len() > MAX_IMPORT {
            return Err(ControlError::Field {
                field: "file".into(),
                message: format!("one import holds at most {MAX_IMPORT} lines"),
            });
        }
    }
    Ok(out)
}

/// The entries of a suppression CSV: an address, an optional note.
fn parse_suppression_csv(text: &str) -> Result<Vec<(u64, (String, Option<String>))>> {
    Ok(csv_records(text, &["address", "email", "e-mail"])?
        .into_iter()
        .map(|(line, r)| {
            let address = r[0].to_owned();
            (line, (address, r.get(1).map(str::to_owned)))
        })
        .collect())
}

/// The entries of an opt-out CSV: a user id, then optionally a category and a channel
/// (empty or absent: `category`, `channel`).
fn parse_opt_out_csv(text: &str, category: &str, channel: &str) -> Result<Vec<OptOutLine>> {
    csv_records(text, &["user_id", "user", "id"])?
        .into_iter()
        .map(|(line, r)| {
            let user_id = r[0]
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ControlError::Field {
                    field: format!("line {line}"),
                    message: format!("{:?} is not a user id", &r[0]),
                })?;
            let or = |i: usize, default: &str| {
                r.get(i)
                    .filter(|v| !v.is_empty())
                    .unwrap_or(default)
                    .to_owned()
            };
            Ok(OptOutLine {
                place: Place::Line(line),
                user_id,
                category: or(1, category),
                channel: or(2, channel),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opt_out_file_takes_its_defaults_where_a_line_says_nothing() {
        let rows = parse_opt_out_csv(
            "user_id,category,channel\n7\n8,news\n\n9,,email\n",
            "marketing",
            "all",
        )
        .unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.place, r.user_id, r.category.as_str(), r.channel.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Place::Line(2), 7, "marketing", "all"),
                (Place::Line(3), 8, "news", "all"),
                (Place::Line(5), 9, "marketing", "email"),
            ]
        );
        let bom = parse_opt_out_csv("\u{feff}user_id\n7\n", "marketing", "all").unwrap();
        assert_eq!(bom.len(), 1);
        let err = parse_opt_out_csv("7\nseven\n", "marketing", "all").unwrap_err();
        assert!(
            matches!(&err, ControlError::Field { field, .. } if field == "line 2"),
            "{err:?}"
        );
    }

    #[test]
    fn a_suppression_file_is_read_line_by_line() {
        let rows = parse_suppression_csv(
            "email,note\na@example.com, bounced elsewhere\n\n\"b@example.com\"\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            [
                (
                    2,
                    (
                        "a@example.com".to_owned(),
                        Some("bounced elsewhere".to_owned())
                    )
                ),
                (4, ("b@example.com".to_owned(), None)),
            ]
        );
    }
}
