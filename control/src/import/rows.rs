//! An import's file, one row at a time: CSV with a header row, or NDJSON. The current row is
//! held in place (no row is allocated afresh) and read as a [`UserChange`] or looked at for
//! the types of its attributes.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use herald_wire::audience::AttrType;
use herald_wire::{
    FieldError,
    users::{self as wire_users, UserChange, UserRules},
};
use serde_json::Value as Json;

use super::{Format, Known};
use crate::{ControlError, Result};

pub(super) struct Rows {
    source: Source,
    /// The file's size in bytes.
    pub total: u64,
    read: Arc<AtomicU64>,
    /// The current row's line in the file (1 is the first).
    pub line: u64,
}

enum Source {
    Csv {
        reader: csv::Reader<Counted>,
        header: Vec<String>,
        cells: Vec<Cell>,
        record: csv::StringRecord,
        /// Why the current record is no row (a field too many or too few), if it is not.
        broken: Option<String>,
    },
    Ndjson {
        reader: BufReader<Counted>,
        text: Vec<u8>,
        json: std::result::Result<Json, String>,
    },
}

/// What one CSV column holds.
enum Cell {
    Id,
    Column(&'static str),
    /// An attribute, and its type once known.
    Attr(String, Option<AttrType>),
}

/// A file that counts the bytes read from it, for progress.
struct Counted {
    file: File,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> ControlError {
    ControlError::Refused(format!("{}: {e}", path.display()))
}

fn reading(e: impl std::fmt::Display) -> ControlError {
    ControlError::Refused(format!("reading the file: {e}"))
}

impl Rows {
    pub fn open(path: &Path, format: Format) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let read = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            file,
            read: read.clone(),
        };
        let source = match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .buffer_capacity(1 << 20)
                    .from_reader(counted);
                let header: Vec<String> = reader
                    .headers()
                    .map_err(|e| io_error(path, format!("the header row: {e}")))?
                    .iter()
                    .map(|h| h.trim().to_owned())
                    .collect();
                let cells = plan(&header).map_err(|m| io_error(path, m))?;
                Source::Csv {
                    reader,
                    record: csv::StringRecord::with_capacity(256, header.len()),
                    header,
                    cells,
                    broken: None,
                }
            }
            Format::Ndjson => Source::Ndjson {
                reader: BufReader::with_capacity(1 << 20, counted),
                text: Vec::new(),
                json: Ok(Json::Null),
            },
        };
        Ok(Self {
            source,
            total,
            read,
            line: 0,
        })
    }

    /// Bytes of the file read so far.
    pub fn position(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The attribute columns of a CSV file's header.
    pub fn header_attrs(&self) -> Vec<String> {
        match &self.source {
            Source::Csv { cells, .. } => cells
                .iter()
                .filter_map(|c| match c {
                    Cell::Attr(name, _) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
            Source::Ndjson { .. } => Vec::new(),
        }
    }

    /// Give the CSV's attribute columns their types.
    pub fn set_types(&mut self, rules: &Known) {
        if let Source::Csv { cells, .. } = &mut self.source {
            for cell in cells {
                if let Cell::Attr(name, kind) = cell {
                    *kind = rules.attr_type(name);
                }
            }
        }
    }

    /// Move to the next row (blank lines are none); `false` at the end of the file.
    pub fn advance(&mut self) -> Result<bool> {
        match &mut self.source {
            Source::Csv {
                reader,
                header,
                record,
                broken,
                ..
            } => loop {
                match reader.read_record(record) {
                    Ok(false) => return Ok(false),
                    Ok(true) => {
                        self.line = record.position().map_or(0, |p| p.line());
                        if record.len() == 1 && record[0].trim().is_empty() {
                            continue;
                        }
                        *broken = (record.len() != header.len()).then(|| {
                            format!(
                                "has {} fields where the header has {}",
                                record.len(),
                                header.len()
                            )
                        });
                        return Ok(true);
                    }
                    Err(e) => {
                        if let csv::ErrorKind::Io(io) = e.kind() {
                            return Err(reading(io));
                        }
                        self.line = e.position().map_or(self.line + 1, |p| p.line());
                        *broken = Some(e.to_string());
                        return Ok(true);
                    }
                }
            },
            Source::Ndjson { reader, text, json } => loop {
                text.clear();
                if reader.read_until(b'\n', text).map_err(reading)? == 0 {
                    return Ok(false);
                }
                self.line += 1;
                if text.trim_ascii().is_empty() {
                    continue;
                }
                // A line that is not UTF-8 is one bad row, not a bad file.
                *json = match std::str::from_utf8(text) {
                    Ok(line) => serde_json::from_str(line).map_err(|e| format!("not JSON: {e}")),
                    Err(e) => Err(format!("not UTF-8: {e}")),
                };
                return Ok(true);
            },
        }
    }

    /// Report the type each attribute value of the current row looks like.
    pub fn look(&self, see: &mut impl FnMut(&str, AttrType)) {
        match &self.source {
            Source::Csv {
                cells,
                record,
                broken: None,
                ..
            } => {
                for (cell, text) in cells.iter().zip(record) {
                    if let Cell::Attr(name, _) = cell
                        && !text.trim().is_empty()
                    {
                        see(name, wire_users::looks_like_text(text));
                    }
                }
            }
            Source::Ndjson { json: Ok(json), .. } => {
                if let Some(attrs) = json.get("attrs").and_then(Json::as_object) {
                    for (name, v) in attrs {
                        if let Some(kind) = wire_users::looks_like_json(v) {
                            see(name, kind);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The current row as a change to its user.
    pub fn change(&self, rules: &Known) -> std::result::Result<UserChange, FieldError> {
        let broken = |message: &str| FieldError {
            field: "row".into(),
            message: message.to_owned(),
        };
        match &self.source {
            Source::Csv {
                broken: Some(why), ..
            } => Err(broken(why)),
            Source::Csv { cells, record, .. } => {
                let mut change = UserChange::default();
                for (cell, text) in cells.iter().zip(record) {
                    match cell {
                        Cell::Id => change.id = wire_users::parse_id(text)?,
                        Cell::Column(column) => change.set_column(column, text, rules)?,
                        Cell::Attr(name, kind) => change.set_attr_text(
                            name,
                            kind.unwrap_or(AttrType::Text),
                            text.trim(),
                        )?,
                    }
                }
                Ok(change)
            }
            Source::Ndjson { json: Ok(json), .. } => {
                UserChange::from_json(json, None, false, rules)
            }
            Source::Ndjson { json: Err(why), .. } => Err(broken(why)),
        }
    }
}

/// What each column of a CSV header holds: `id` (required), a user's own field, or an
/// attribute (named as attributes must be).
fn plan(header: &[String]) -> std::result::Result<Vec<Cell>, String> {
    if !header.iter().any(|h| h == "id") {
        return Err("the header row has no id column (the users' ids)".into());
    }
    let mut cells = Vec::with_capacity(header.len());
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            return Err(format!("the header row names {h:?} twice"));
        }
        cells.push(if h == "id" {
            Cell::Id
        } else if let Some(column) = wire_users::OWN_FIELDS.iter().find(|c| **c == h) {
            Cell::Column(column)
        } else {
            wire_users::check_new_attr_name(h).map_err(|m| format!("column {h:?}: {m}"))?;
            Cell::Attr(h.clone(), None)
        });
    }
    Ok(cells)
}
