//! The names of a run's fields and attributes: what clients record, the index
//! keeps, queries, tables and the API call them. Every layer takes the names
//! from here; `lab_store`'s field table says what each one is (its column,
//! its kind, whether listings show it).

/// Run fields that come from the run itself, not from an attribute.
pub mod field {
    /// The full id: 32 hex digits.
    pub const ID: &str = "id";
    /// The first 8 hex digits of the id.
    pub const SHORT_ID: &str = "short_id";
    /// The experiment's name.
    pub const EXPERIMENT: &str = "experiment";
    /// `running`, `finished`, ...
    pub const STATUS: &str = "status";
    /// When the run started.
    pub const START_TIME: &str = "start_time";
    /// When it ended.
    pub const END_TIME: &str = "end_time";
    /// From start to end, in seconds.
    pub const DURATION: &str = "duration";
}

/// Attributes: the facts a client records about a run (each an Attr record).
pub mod attr {
    /// The script's absolute path, or `<interactive>`, `<command>`, `<notebook>`.
    pub const SOURCE: &str = "source";
    /// The script's arguments.
    pub const ARGV: &str = "argv";
    /// Who ran it.
    pub const USER: &str = "user";
    /// The machine's name.
    pub const HOST: &str = "host";
    /// The process id.
    pub const PID: &str = "pid";
    /// The Python version, `3.11.7`.
    pub const PYTHON_VERSION: &str = "python_version";
    /// The Python interpreter's path.
    pub const PYTHON_EXECUTABLE: &str = "python_executable";
    /// The working folder.
    pub const CWD: &str = "cwd";
    /// The version of Lab that recorded the run.
    pub const LAB_VERSION: &str = "lab_version";
    /// The dataset description given to the experiment.
    pub const DATASET: &str = "dataset";
    /// Set when `lab run` launched the script.
    pub const LAUNCH: &str = "launch";
    /// The git commit of the script's repository.
    pub const GIT_COMMIT: &str = "git_commit";
    /// Its branch.
    pub const GIT_BRANCH: &str = "git_branch";
    /// Whether tracked files had uncommitted changes.
    pub const GIT_DIRTY: &str = "git_dirty";
    /// The installed distributions, `name==version`.
    pub const PACKAGES: &str = "packages";
    /// Who writes the journal (see `lab_journal`'s liveness).
    pub const WRITER: &str = "writer";
    /// The group the run belongs to: the runs of one sweep or one
    /// cross-validation, listed and drawn together.
    pub const GROUP: &str = "group";
    /// The id of the run this one was started inside (a nested run).
    pub const PARENT: &str = "parent";
    /// The run's readable name (given at start, or generated; a rename in
    /// the run's meta journal replaces it).
    pub const NAME: &str = "name";
    /// The run's note, Markdown (from the run's meta journal).
    pub const NOTE: &str = "note";

    /// Every attribute name above.
    pub const ALL: &[&str] = &[
        SOURCE,
        ARGV,
        USER,
        HOST,
        PID,
        PYTHON_VERSION,
        PYTHON_EXECUTABLE,
        CWD,
        LAB_VERSION,
        DATASET,
        LAUNCH,
        GIT_COMMIT,
        GIT_BRANCH,
        GIT_DIRTY,
        PACKAGES,
        WRITER,
        GROUP,
        PARENT,
        NAME,
        NOTE,
    ];
}
