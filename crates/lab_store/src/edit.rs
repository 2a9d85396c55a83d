//! Editing a run after it started: its name, tags, note and group, from any
//! process and in any state (running, crashed, finished). An edit is a few
//! records appended to the run's meta journal (`meta.lab`, see
//! `lab_journal::append_edits`), never a change to its training journal,
//! then folded into the index like every record: a rebuilt index, or a team
//! server the run is pushed to, shows the same edits.

use lab_types::names::MAX_NAME_CHARS;
use lab_types::{Record, now_nanos};

use crate::{Error, RunInfo, Store};

/// The longest tag key, in bytes (as for tags logged by the run).
pub const MAX_TAG_KEY_BYTES: usize = 250;

/// The longest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// The changes one edit makes. Applied in this order: name, tags removed,
/// tags set, note, group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    /// A new name.
    pub name: Option<String>,
    /// Tags to set, `key` to `value`.
    pub tags: Vec<(String, String)>,
    /// Tags to remove (a tag the run does not have is no error).
    pub untag: Vec<String>,
    /// A new note (Markdown; empty removes it).
    pub note: Option<String>,
    /// A new group (`Some(None)` takes the run out of its group).
    pub group: Option<Option<String>>,
}

impl Edit {
    /// Whether the edit changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.tags.is_empty()
            && self.untag.is_empty()
            && self.note.is_none()
            && self.group.is_none()
    }

    /// The records the edit appends, checked: a bad value is an
    /// [`Error::BadEdit`] naming the field and the value.
    pub fn records(&self) -> Result<Vec<Record>, Error> {
        let time_nanos = now_nanos();
        let mut out = Vec::new();
        if let Some(name) = &self.name {
            check_name(name)?;
            out.push(Record::Rename {
                time_nanos,
                name: name.clone(),
            });
        }
        for key in &self.untag {
            check_tag_key("untag", key)?;
            out.push(Record::Untag {
                time_nanos,
                key: key.clone(),
            });
        }
        for (key, value) in &self.tags {
            check_tag_key("tags", key)?;
            out.push(Record::Tag {
                time_nanos,
                key: key.clone(),
                value: value.clone(),
            });
        }
        if let Some(text) = &self.note {
            if text.len() > MAX_NOTE_BYTES {
                return Err(bad(
                    "note",
                    &shorten(text),
                    &format!(
                        "at most {MAX_NOTE_BYTES} bytes long (it has {})",
                        text.len()
                    ),
                ));
            }
            out.push(Record::Note {
                time_nanos,
                text: text.clone(),
            });
        }
        if let Some(group) = &self.group {
            if let Some(g) = group {
                check_name_like("group", g)?;
            }
            out.push(Record::SetGroup {
                time_nanos,
                group: group.clone(),
            });
        }
        Ok(out)
    }
}

fn bad(field: &'static str, value: &str, expected: &str) -> Error {
    Error::BadEdit {
        field,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// The first 40 characters of a long value, for a message.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_owned(),
    }
}

/// A run's name: not blank, at most [`MAX_NAME_CHARS`] characters, no
/// control characters.
pub fn check_name(name: &str) -> Result<(), Error> {
    check_name_like("name", name)
}

fn check_name_like(field: &'static str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(bad(field, name, "a non-empty text"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(bad(
            field,
            &shorten(name),
            &format!("at most {MAX_NAME_CHARS} characters long (it has {chars})"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(bad(
            field,
            &name.escape_debug().to_string(),
            "a text without control characters (tabs, newlines, NUL, ...)",
        ));
    }
    Ok(())
}

/// A tag's key: not blank, at most [`MAX_TAG_KEY_BYTES`] bytes, no control
/// characters.
fn check_tag_key(field: &'static str, key: &str) -> Result<(), Error> {
    if key.trim().is_empty() {
        return Err(bad(field, key, "a non-empty tag key"));
    }
    if key.len() > MAX_TAG_KEY_BYTES {
        return Err(bad(
            field,
            &shorten(key),
            &format!(
                "a tag key at most {MAX_TAG_KEY_BYTES} bytes long (it has {})",
                key.len()
            ),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(bad(
            field,
            &key.escape_debug().to_string(),
            "a tag key without control characters (tabs, newlines, NUL, ...)",
        ));
    }
    Ok(())
}

impl Store {
    /// Edits run `run` (an id prefix or a name) and returns it as edited.
    /// The edit is durable when this returns: its records are appended to
    /// the run's meta journal and synced, then folded into the index. A bad
    /// value changes nothing.
    pub fn edit(&mut self, run: &str, edit: &Edit) -> Result<RunInfo, Error> {
        let records = edit.records()?;
        let id = self.resolve(run)?;
        if records.is_empty() {
            return self.run(&id);
        }
        let short = self.run(&id)?.short_id;
        let paths = self.project().run_paths(&short);
        if !paths.dir.is_dir() {
            // Its folder is gone (removed while we looked): nothing to edit.
            return Err(Error::UnknownRun {
                prefix: run.to_owned(),
            });
        }
        // The stamp moves first, so that a refresh in any process looks for
        // this edit even when this one dies before folding it.
        let stamp = self.project().edits_stamp();
        fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&stamp)?
            .set_modified(std::time::SystemTime::now())?;
        lab_journal::append_edits(&paths.meta, &records)?;
        self.fold_edits(&short, &id)?;
        self.run(&id)
    }
}
