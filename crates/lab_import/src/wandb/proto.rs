//! The few messages of W&B's `wandb_internal.proto` a run's import needs,
//! with the field numbers of that file. Fields and record kinds not named
//! here (telemetry, console output, system stats, artifacts, requests) are
//! skipped by the decoder.

/// `Record`: one entry of a `.wandb` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// `num = 1`.
    #[prost(int64, tag = "1")]
    pub num: i64,
    /// The `record_type` oneof, the kinds read here.
    #[prost(oneof = "RecordType", tags = "2, 3, 5, 6, 17, 18")]
    pub record_type: Option<RecordType>,
}

/// The kinds of record an import reads.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RecordType {
    /// `HistoryRecord history = 2`.
    #[prost(message, tag = "2")]
    History(HistoryRecord),
    /// `SummaryRecord summary = 3`.
    #[prost(message, tag = "3")]
    Summary(SummaryRecord),
    /// `ConfigRecord config = 5`.
    #[prost(message, tag = "5")]
    Config(ConfigRecord),
    /// `FilesRecord files = 6`.
    #[prost(message, tag = "6")]
    Files(FilesRecord),
    /// `RunRecord run = 17`.
    #[prost(message, boxed, tag = "17")]
    Run(Box<RunRecord>),
    /// `RunExitRecord exit = 18`.
    #[prost(message, tag = "18")]
    Exit(RunExitRecord),
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    /// `seconds = 1`.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// `nanos = 2`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `RunRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunRecord {
    /// `run_id = 1`.
    #[prost(string, tag = "1")]
    pub run_id: String,
    /// `entity = 2`.
    #[prost(string, tag = "2")]
    pub entity: String,
    /// `project = 3`.
    #[prost(string, tag = "3")]
    pub project: String,
    /// `ConfigRecord config = 4`.
    #[prost(message, optional, tag = "4")]
    pub config: Option<ConfigRecord>,
    /// `run_group = 6`.
    #[prost(string, tag = "6")]
    pub run_group: String,
    /// `job_type = 7`.
    #[prost(string, tag = "7")]
    pub job_type: String,
    /// `display_name = 8`.
    #[prost(string, tag = "8")]
    pub display_name: String,
    /// `notes = 9`.
    #[prost(string, tag = "9")]
    pub notes: String,
    /// `repeated string tags = 10`.
    #[prost(string, repeated, tag = "10")]
    pub tags: Vec<String>,
    /// `host = 13`.
    #[prost(string, tag = "13")]
    pub host: String,
    /// `google.protobuf.Timestamp start_time = 17`.
    #[prost(message, optional, tag = "17")]
    pub start_time: Option<Timestamp>,
    /// `GitRepoRecord git = 21`.
    #[prost(message, optional, tag = "21")]
    pub git: Option<GitRepoRecord>,
}

/// `GitRepoRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GitRepoRecord {
    /// `remote_url = 1`.
    #[prost(string, tag = "1")]
    pub remote_url: String,
    /// `commit = 2`.
    #[prost(string, tag = "2")]
    pub commit: String,
}

/// `RunExitRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunExitRecord {
    /// `exit_code = 1`.
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
    /// `runtime = 2`, seconds.
    #[prost(int32, tag = "2")]
    pub runtime: i32,
}

/// `HistoryRecord`: one `wandb.log` call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryRecord {
    /// `repeated HistoryItem item = 1`.
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<Item>,
    /// `HistoryStep step = 2`.
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

/// `HistoryStep`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryStep {
    /// `num = 1`.
    #[prost(int64, tag = "1")]
    pub num: i64,
}

/// `HistoryItem`, `ConfigItem` and `SummaryItem`: the same three fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Item {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `repeated string nested_key = 2`.
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    /// `value_json = 16`.
    #[prost(string, tag = "16")]
    pub value_json: String,
}

impl Item {
    /// The key, nested keys joined with `.`.
    #[must_use]
    pub fn name(&self) -> String {
        if self.nested_key.is_empty() {
            self.key.clone()
        } else {
            self.nested_key.join(".")
        }
    }
}

/// `ConfigRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigRecord {
    /// `repeated ConfigItem update = 1`.
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
    /// `repeated ConfigItem remove = 2`.
    #[prost(message, repeated, tag = "2")]
    pub remove: Vec<Item>,
}

/// `SummaryRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryRecord {
    /// `repeated SummaryItem update = 1`.
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
    /// `repeated SummaryItem remove = 2`.
    #[prost(message, repeated, tag = "2")]
    pub remove: Vec<Item>,
}

/// `FilesRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FilesRecord {
    /// `repeated FilesItem files = 1`.
    #[prost(message, repeated, tag = "1")]
    pub files: Vec<FilesItem>,
}

/// `FilesItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FilesItem {
    /// `path = 1`.
    #[prost(string, tag = "1")]
    pub path: String,
}
