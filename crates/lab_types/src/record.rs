//! Journal records: everything a run says about itself, in the order it said it.

use crate::{RunId, Value};

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Its process is alive and has not ended the run.
    Running,
    /// The run's code returned.
    Finished,
    /// The run's code raised an exception.
    Failed,
    /// The process died without ending the run (`kill -9`, out of memory, power off).
    Crashed,
    /// The user pressed Ctrl-C (`KeyboardInterrupt`).
    Interrupted,
    /// The journal is damaged where it would tell how the run went (its
    /// Start record, or the stretch where an End record may have been). A
    /// reader's verdict, like `Crashed`: never written in a journal.
    Damaged,
    /// A team server's verdict: the run has no End record and its client
    /// has not been heard from for a while (it may be offline and alive).
    /// Never written in a journal, never made by a project's own index.
    Unreachable,
}

impl Status {
    /// Every status, in the order tables list them.
    pub const ALL: [Status; 7] = [
        Status::Running,
        Status::Finished,
        Status::Failed,
        Status::Crashed,
        Status::Interrupted,
        Status::Damaged,
        Status::Unreachable,
    ];

    /// The lower-case name used everywhere (`finished`, `failed`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::Interrupted => "interrupted",
            Status::Damaged => "damaged",
            Status::Unreachable => "unreachable",
        }
    }

    /// The status with that name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Its code in the journal.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Status::Running => 0,
            Status::Finished => 1,
            Status::Failed => 2,
            Status::Crashed => 3,
            Status::Interrupted => 4,
            Status::Damaged => 5,
            Status::Unreachable => 6,
        }
    }

    /// The status with that journal code. `Damaged` and `Unreachable` are
    /// no journal statuses: a journal cannot say it is damaged, nor that
    /// its writer is out of reach.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL
            .into_iter()
            .filter(|s| !matches!(s, Status::Damaged | Status::Unreachable))
            .find(|s| s.code() == code)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Status {
    /// Its name, as [`Status::as_str`] spells it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Status::parse(&name).ok_or_else(|| {
            let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            serde::de::Error::custom(format!(
                "`status` must be one of {}: got `{name}`",
                names.join(", ")
            ))
        })
    }
}

/// The exception that ended a failed run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The exception's type, e.g. `NameError`.
    pub kind: String,
    /// `str(exception)`.
    pub message: String,
    /// The formatted traceback.
    pub traceback: String,
}

/// One point of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricPoint {
    /// The metric, as declared by a [`Record::MetricKey`].
    pub key: u32,
    /// The step.
    pub step: i64,
    /// The value.
    pub value: f64,
}

/// Which of a run's console streams a line was printed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output, file descriptor 1.
    Stdout,
    /// Standard error, file descriptor 2.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Its code in the journal: its file descriptor.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    /// The stream with that journal code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One line a run printed, as its final state: a line rewritten with
/// carriage returns (a progress bar) is the text it was left showing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleLine {
    /// When the line was read (its end, for a line written in pieces).
    pub time_nanos: i64,
    /// The text, without its line ending; bytes that were not UTF-8 are
    /// U+FFFD.
    pub text: String,
}

/// What a media file of a run holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A PNG image.
    Image,
    /// A table, as JSON `{"columns": [...], "rows": [[...], ...]}`.
    Table,
}

impl MediaKind {
    /// `image` or `table`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Table => "table",
        }
    }

    /// Its code in the journal.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            MediaKind::Image => 1,
            MediaKind::Table => 2,
        }
    }

    /// The kind with that journal code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(MediaKind::Image),
            2 => Some(MediaKind::Table),
            _ => None,
        }
    }

    /// The kind with that name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [MediaKind::Image, MediaKind::Table]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// One journal entry. Times are nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// The first record of every journal.
    Start {
        /// The run.
        run: RunId,
        /// When it started.
        time_nanos: i64,
        /// The experiment it belongs to.
        experiment: String,
    },
    /// A fact about the run: `source`, `argv`, `user`, `host`, `pid`,
    /// `python_version`, `dataset`, `git_commit`, `git_dirty`, `packages`, ...
    Attr {
        /// When it was recorded.
        time_nanos: i64,
        /// Its name.
        key: String,
        /// Its value.
        value: Value,
    },
    /// The feature names or column indices the run trained on.
    Features {
        /// When they were logged.
        time_nanos: i64,
        /// Names (strings) or indices (integers).
        names: Vec<Value>,
    },
    /// A hyperparameter; a later one with the same key replaces it.
    Param {
        /// When it was logged.
        time_nanos: i64,
        /// Its name.
        key: String,
        /// Its value.
        value: Value,
    },
    /// Declares the number a metric name goes by in the rest of the journal.
    MetricKey {
        /// The number.
        key: u32,
        /// The name.
        name: String,
    },
    /// One metric point.
    Metric {
        /// When it was logged.
        time_nanos: i64,
        /// The point.
        point: MetricPoint,
    },
    /// Several points logged by one call.
    Metrics {
        /// When they were logged.
        time_nanos: i64,
        /// The points.
        points: Vec<MetricPoint>,
    },
    /// A tag.
    Tag {
        /// When it was set.
        time_nanos: i64,
        /// Its name.
        key: String,
        /// Its text.
        value: String,
    },
    /// `log_artifact` was called: the source is known, the copy comes at the end.
    Artifact {
        /// When it was logged.
        time_nanos: i64,
        /// The artifact's name.
        name: String,
        /// The file or folder it will be copied from.
        source: String,
    },
    /// An artifact was copied into the run.
    ArtifactStored {
        /// When the copy finished.
        time_nanos: i64,
        /// The artifact's name.
        name: String,
        /// Where it is, relative to the run's folder.
        path: String,
        /// How many files it holds.
        files: u64,
        /// How many bytes they hold.
        bytes: u64,
    },
    /// A model was serialised into the run.
    Model {
        /// When it was stored.
        time_nanos: i64,
        /// The model's name.
        name: String,
        /// Where the file is, relative to the run's folder.
        path: String,
        /// `joblib` or `pickle`.
        format: String,
        /// The object's Python type, `module.Class`.
        class: String,
        /// The library the type comes from (`sklearn`, ...).
        library: String,
        /// That library's version, or empty.
        library_version: String,
        /// File size in bytes.
        size: u64,
        /// SHA-256 of the file, lower-case hex.
        sha256: String,
    },
    /// The run ended.
    End {
        /// When.
        time_nanos: i64,
        /// How.
        status: Status,
        /// The exception of a failed run.
        error: Option<ErrorInfo>,
    },
    /// Lines the run printed on one stream, read together.
    Console {
        /// Where they were printed.
        stream: Stream,
        /// The lines, in the order printed.
        lines: Vec<ConsoleLine>,
    },
    /// The run printed more than its console bound: this many lines (of
    /// both streams) between the head before this record and the tail after
    /// it were left out.
    ConsoleCut {
        /// When the tail was written (the run's end).
        time_nanos: i64,
        /// Lines left out.
        lines: u64,
        /// Bytes of text left out.
        bytes: u64,
    },
    /// The run was given a new name (a run's meta journal, `meta.lab`).
    Rename {
        /// When.
        time_nanos: i64,
        /// The new name.
        name: String,
    },
    /// A tag was removed (a run's meta journal).
    Untag {
        /// When.
        time_nanos: i64,
        /// The tag's name.
        key: String,
    },
    /// The run's note was replaced (a run's meta journal): Markdown, empty
    /// for none.
    Note {
        /// When.
        time_nanos: i64,
        /// The whole note.
        text: String,
    },
    /// The run was put in a group, or taken out of its group (a run's meta
    /// journal).
    SetGroup {
        /// When.
        time_nanos: i64,
        /// The group, or `None` for no group.
        group: Option<String>,
    },
    /// A media file (an image, a table) was written into the run's folder.
    /// A later one with the same key and step replaces it.
    Media {
        /// When it was written.
        time_nanos: i64,
        /// Its key: the name the step slider of the run page goes by.
        key: String,
        /// The step.
        step: i64,
        /// What it holds.
        kind: MediaKind,
        /// Where the file is, relative to the run's folder
        /// (`media/<key>/<step>.png`, `media/<key>/<step>.json`).
        path: String,
        /// An image's width in pixels; a table's number of columns.
        width: u32,
        /// An image's height in pixels; a table's number of rows.
        height: u32,
        /// The file's size in bytes.
        bytes: u64,
    },
    /// The writer closed the journal; nothing follows.
    Close {
        /// When.
        time_nanos: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn the_readers_verdicts_have_names_but_no_journal_code() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            let in_journal = !matches!(status, Status::Damaged | Status::Unreachable);
            assert_eq!(
                Status::from_code(status.code()).is_some(),
                in_journal,
                "{status}"
            );
        }
        assert_eq!(Status::parse("unreachable"), Some(Status::Unreachable));
        assert_eq!(Status::from_code(6), None);
    }
}
