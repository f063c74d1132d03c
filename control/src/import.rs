//! Importing users from a file: CSV with a header row, or NDJSON (one JSON user per line).
//!
//! The file is read on a thread of its own, checked row by row and handed over in chunks,
//! each upserted by id in one transaction through `COPY` (herald_store::users), so reading
//! and writing overlap. A bad row is refused with its line number and the others go on;
//! `strict` checks the whole file first and writes nothing if any row is refused.
//!
//! Attributes nobody has typed yet take the type given (`types`) or, failing that, the type
//! their values in the first [`SAMPLE`] rows look like; the outcome says which.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::Utc;
use futures::stream::{FuturesUnordered, StreamExt};
use herald_store::users;
use herald_wire::audience::AttrType;
use herald_wire::{
    FieldError,
    users::{self as wire_users, UserChange, UserRules},
};
use tokio::sync::mpsc;

use crate::{Control, ControlError, Result};

mod rows;

use rows::Rows;

/// Rows whose values infer the types of untyped attributes.
pub const SAMPLE: usize = 1_000;
/// Rows per transaction.
const CHUNK: usize = 50_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// The format a file's name says: `.csv`, or `.ndjson`, `.jsonl`, `.json`.
    pub fn of_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "ndjson" | "jsonl" | "json" => Some(Self::Ndjson),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `None`: by the file's name.
    pub format: Option<Format>,
    /// Types for attributes nobody has typed yet.
    pub types: BTreeMap<String, AttrType>,
    pub strict: bool,
}

/// How an attribute came by its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeSource {
    /// Users had it already.
    Known,
    Given,
    Inferred,
}

/// A row that was not imported: its line in the file (1 is the first), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: u64,
    pub error: FieldError,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Rows that left their user exactly as it was.
    pub unchanged: u64,
    pub refused: u64,
    /// The attributes the file holds, with their types and how they came by them.
    pub types: BTreeMap<String, (AttrType, TypeSource)>,
}

/// What an import reports while it goes.
#[derive(Debug)]
pub enum ImportEvent<'a> {
    /// The attributes' types, before any row is written.
    Types(&'a BTreeMap<String, (AttrType, TypeSource)>),
    /// Bytes of the file read so far, of `total`; rows written so far.
    Progress {
        bytes: u64,
        total: u64,
        rows: u64,
    },
    Refused(&'a Refusal),
}

/// The attributes' types and the time zones there are: what checking a user needs.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub types: HashMap<String, AttrType>,
    pub zones: std::sync::Arc<HashSet<String>>,
}

impl UserRules for Known {
    fn attr_type(&self, name: &str) -> Option<AttrType> {
        self.types.get(name).copied()
    }
    fn is_time_zone(&self, name: &str) -> bool {
        self.zones.contains(name)
    }
}

impl Control {
    /// What checking users needs now: the attributes' types as they are, and the server's
    /// time zones (read once).
    pub async fn user_rules(&self) -> Result<Known> {
        let zones = self
            .time_zones
            .get_or_try_init(|| async {
                Ok::<_, ControlError>(std::sync::Arc::new(users::time_zones(&self.db).await?))
            })
            .await?
            .clone();
        Ok(Known {
            types: users::attribute_types(&self.db).await?,
            zones,
        })
    }

    /// Import the users in `path`.
    pub async fn import_users(
        &self,
        path: &Path,
        options: ImportOptions,
        mut on: impl FnMut(ImportEvent<'_>),
    ) -> Result<Imported> {
        let format = match options.format.or_else(|| Format::of_path(path)) {
            Some(f) => f,
            None => {
                return Err(ControlError::Refused(format!(
                    "{}: cannot tell the format from the name; pass --format csv or ndjson",
                    path.display()
                )));
            }
        };
        let mut known = self.user_rules().await?;
        let path_buf = path.to_owned();
        let (known_now, given) = (known.clone(), options.types.clone());
        let types = blocking(move || {
            let mut rows = Rows::open(&path_buf, format)?;
            plan_types(&mut rows, &known_now, &given)
        })
        .await?;
        on(ImportEvent::Types(&types));
        for (name, (kind, _)) in &types {
            known.types.insert(name.clone(), *kind);
        }
        if options.strict {
            let (path_buf, rules) = (path.to_owned(), known.clone());
            let first_bad = blocking(move || {
                let mut rows = Rows::open(&path_buf, format)?;
                rows.set_types(&rules);
                while rows.advance()? {
                    if let Err(error) = rows.change(&rules) {
                        return Ok(Some(Refusal {
                            line: rows.line,
                            error,
                        }));
                    }
                }
                Ok(None)
            })
            .await?;
            if let Some(bad) = first_bad {
                return Err(ControlError::Refused(format!(
                    "{bad} (--strict: nothing was imported)"
                )));
            }
        }
        let new: BTreeMap<String, AttrType> = types
            .iter()
            .filter(|(_, (_, source))| *source != TypeSource::Known)
            .map(|(n, (t, _))| (n.clone(), *t))
            .collect();
        let registered = users::register_types(&self.db, &new).await?;
        for (name, kind) in &new {
            if registered.get(name) != Some(kind) {
                return Err(ControlError::Conflict(format!(
                    "attribute {name:?} was given another type while this import began; run it again"
                )));
            }
        }

        let (tx, mut rx) = mpsc::channel::<Chunk>(2);
        // Written chunks' room goes back to the reader, rather than ten megabytes a chunk
        // being freed and asked for again.
        let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<UserChange>>();
        let (path_buf, rules) = (path.to_owned(), known);
        let reader = tokio::task::spawn_blocking(move || {
            read_chunks(&path_buf, format, &rules, tx, spare_rx)
        });
        let mut out = Imported {
            types,
            ..Default::default()
        };
        let started = Utc::now();
        // Two chunks are written at once, on two connections: PostgreSQL's work on a chunk
        // is most of an import's, and one session uses one core.
        // Two chunks are written at once, on two connections (PostgreSQL's work on a chunk is
        // most of an import's, and one session uses one core), but only chunks whose ids
        // cannot meet: a later line for an id must land after an earlier one.
        let mut writing = FuturesUnordered::new();
        let mut spans: Vec<(i64, i64)> = Vec::new();
        let (mut reading, mut waiting) = (true, None::<Chunk>);
        loop {
            if let Some(chunk) = waiting.take() {
                let clear = !spans
                    .iter()
                    .any(|s| s.0 <= chunk.span.1 && chunk.span.0 <= s.1);
                if writing.len() < WRITERS && clear {
                    spans.push(chunk.span);
                    let (db, spare) = (&self.db, spare_tx.clone());
                    writing.push(async move {
                        let mut changes = chunk.changes;
                        let written = users::write(db, &mut changes, started).await;
                        changes.clear();
                        let _ = spare.send(changes);
                        Done {
                            written,
                            span: chunk.span,
                            rows: chunk.rows,
                            bytes: chunk.bytes,
                            total: chunk.total,
                        }
                    });
                } else {
                    waiting = Some(chunk);
                }
            }
            if !reading && waiting.is_none() && writing.is_empty() {
                break;
            }
            tokio::select! {
                chunk = rx.recv(), if reading && waiting.is_none() => {
                    let Some(chunk) = chunk else {
                        reading = false;
                        continue;
                    };
                    for refusal in &chunk.refused {
                        on(ImportEvent::Refused(refusal));
                    }
                    out.refused += chunk.refused.len() as u64;
                    out.rows += chunk.rows + chunk.refused.len() as u64;
                    waiting = Some(chunk);
                }
                Some(done) = writing.next(), if !writing.is_empty() => {
                    if let Some(at) = spans.iter().position(|s| *s == done.span) {
                        spans.swap_remove(at);
                    }
                    if let Err(e) = absorb(done, &mut out, &mut on) {
                        // The chunks written stay: their users get their ids and partitions.
                        let _ = users::settle(&self.db).await;
                        return Err(e);
                    }
                }
            }
        }
        reader
            .await
            .map_err(|e| ControlError::Refused(format!("the file's reader stopped: {e}")))??;
        users::settle(&self.db).await?;
        Ok(out)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ControlError::Refused(format!("the file's reader stopped: {e}")))?
}

/// Chunks written at once.
const WRITERS: usize = 2;

/// A chunk written, or not.
struct Done {
    written: herald_store::Result<users::Written>,
    span: (i64, i64),
    rows: u64,
    bytes: u64,
    total: u64,
}

fn absorb(done: Done, out: &mut Imported, on: &mut impl FnMut(ImportEvent<'_>)) -> Result<()> {
    let written = done.written?;
    // A repeated id is written once: it counts as an update of itself.
    let repeats = done.rows - written.inserted - written.updated - written.unchanged;
    out.inserted += written.inserted;
    out.updated += written.updated + repeats;
    out.unchanged += written.unchanged;
    on(ImportEvent::Progress {
        bytes: done.bytes,
        total: done.total,
        rows: out.inserted + out.updated + out.unchanged + out.refused,
    });
    Ok(())
}

struct Chunk {
    changes: Vec<UserChange>,
    /// The lowest and highest id among the changes (an empty span when none).
    span: (i64, i64),
    /// Rows checked (`changes.len()` of them good).
    rows: u64,
    refused: Vec<Refusal>,
    bytes: u64,
    total: u64,
}

fn read_chunks(
    path: &Path,
    format: Format,
    rules: &Known,
    tx: mpsc::Sender<Chunk>,
    spare: std::sync::mpsc::Receiver<Vec<UserChange>>,
) -> Result<()> {
    let mut rows = Rows::open(path, format)?;
    rows.set_types(rules);
    loop {
        let mut chunk = Chunk {
            changes: spare
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK)),
            span: (i64::MAX, i64::MIN),
            rows: 0,
            refused: Vec::new(),
            bytes: 0,
            total: rows.total,
        };
        let mut more = true;
        while chunk.changes.len() + chunk.refused.len() < CHUNK {
            if !rows.advance()? {
                more = false;
                break;
            }
            match rows.change(rules) {
                Ok(change) => {
                    chunk.span = (chunk.span.0.min(change.id), chunk.span.1.max(change.id));
                    chunk.changes.push(change);
                    chunk.rows += 1;
                }
                Err(error) => chunk.refused.push(Refusal {
                    line: rows.line,
                    error,
                }),
            }
        }
        chunk.bytes = rows.position();
        if tx.blocking_send(chunk).is_err() || !more {
            return Ok(());
        }
    }
}

/// The types of the file's attributes: known ones as they are (a conflicting `given` type is
/// refused), then given ones, then as the sample's values look.
fn plan_types(
    rows: &mut Rows,
    known: &Known,
    given: &BTreeMap<String, AttrType>,
) -> Result<BTreeMap<String, (AttrType, TypeSource)>> {
    for (name, kind) in given {
        wire_users::check_new_attr_name(name)
            .map_err(|m| ControlError::Refused(format!("--types: {m}")))?;
        if let Some(have) = known.attr_type(name).filter(|have| have != kind) {
            return Err(ControlError::Refused(format!(
                "--types: attribute {name:?} is {} already, not {}",
                have.a(),
                kind.a()
            )));
        }
    }
    // Every given type counts, whether or not the sample shows its attribute.
    let mut seen: BTreeMap<String, Option<AttrType>> = rows
        .header_attrs()
        .into_iter()
        .chain(given.keys().cloned())
        .map(|n| (n, None))
        .collect();
    let mut sample = 0;
    while sample < SAMPLE {
        if !rows.advance()? {
            break;
        }
        sample += 1;
        rows.look(&mut |name, kind| {
            let slot = seen.entry(name.to_owned()).or_default();
            *slot = Some(slot.map_or(kind, |k| wire_users::widen(k, kind)));
        });
    }
    let mut out = BTreeMap::new();
    for (name, looks) in seen {
        let planned = if let Some(kind) = known.attr_type(&name) {
            (kind, TypeSource::Known)
        } else if let Some(kind) = given.get(&name) {
            (*kind, TypeSource::Given)
        } else {
            wire_users::check_new_attr_name(&name)
                .map_err(|m| ControlError::Refused(format!("column {name:?}: {m}")))?;
            (looks.unwrap_or(AttrType::Text), TypeSource::Inferred)
        };
        out.insert(name, planned);
    }
    Ok(out)
}

/// Parse `--types plan=text,age=int`.
pub fn parse_types(text: &str) -> Result<BTreeMap<String, AttrType>> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, kind) = pair
            .split_once('=')
            .ok_or_else(|| ControlError::Refused(format!("--types: {pair:?} is not NAME=TYPE")))?;
        let kind = AttrType::parse(kind.trim()).ok_or_else(|| {
            ControlError::Refused(format!(
                "--types: {kind:?} is not a type (text, int, number, bool, time)"
            ))
        })?;
        out.insert(name.trim().to_owned(), kind);
    }
    Ok(out)
}
