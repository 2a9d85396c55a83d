//! Command-line arguments. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Lab tracks machine-learning experiments: every run of a script that uses
/// `Experiment` is recorded with its features, parameters, metrics, artifacts
/// and models. These commands list, show and maintain those runs.
///
/// Lab works on the project found from the current folder upward (the folder
/// holding `.lab/`), or on the one `LAB_PROJECT` names.
#[derive(Debug, Parser)]
#[command(name = "lab", version, max_term_width = 100)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Lab's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runs, newest first, with one column per metric.
    ///
    /// Each metric column shows the run's last value and a bar scaled to the
    /// largest value in the column. Runs that lack a metric show a blank.
    Ls(LsArgs),
    /// Show everything recorded about one run.
    Show(ShowArgs),
    /// Rebuild the index from the run journals alone.
    ///
    /// The index is derived data; this is safe at any time, also while runs
    /// are logging.
    Reindex,
    /// Look the project over for damage, and put back what can be saved.
    ///
    /// Checks the index, reads every run's journal whole, and lists damaged
    /// stretches, runs listed as damaged, and pieces cut off journals
    /// (`journal.lab.damaged.N`) with the good records they still hold.
    /// Exits with 1 when it found damage.
    Doctor(DoctorArgs),
    /// Show runs side by side: parameters, metrics and features.
    ///
    /// One column per run, the first run being the reference: parameters
    /// that differ come first, metrics show each later run's difference to
    /// the first, and features added or removed relative to the first run are
    /// listed.
    Compare(CompareArgs),
    /// Delete runs: their journals, artifacts, models and index rows.
    ///
    /// Asks for confirmation unless `--yes` is given; with no terminal to ask
    /// on, refuses without `--yes`.
    Rm(RmArgs),
    /// Give a run a new name, in any state (running, crashed, finished).
    ///
    /// The edit is appended to the run's meta journal (`meta.lab`), never
    /// to its training journal, and travels with the run.
    Rename(RenameArgs),
    /// Set tags on a run, in any state.
    Tag(TagArgs),
    /// Remove tags from a run, in any state.
    Untag(UntagArgs),
    /// Set a run's note (Markdown), in any state.
    ///
    /// The note replaces the one before; an empty TEXT removes it.
    Note(NoteArgs),
    /// Delete what interrupted commands and runs left behind.
    ///
    /// Removes leftover `.lab/trash` folders and temporary files of
    /// processes that are gone. (Index rows of runs whose folder no longer
    /// exists need no `lab gc`: every command drops them.) Writes the
    /// series file of each ended run with a long journal that lacks one.
    Gc(GcArgs),
    /// Show the Lab version, the project and the machine.
    Info,
    /// Write the runs to a file, one row per run with its parameters and
    /// last metric values.
    Export(ExportArgs),
    /// Follow a live run: each metric's latest value, step, rate and a
    /// sparkline, refreshed as points arrive, until the run ends.
    ///
    /// Meant for training over SSH. On a terminal the view is redrawn in
    /// place; piped, a line is printed for each change.
    Watch(WatchArgs),
    /// Show what a run printed on its standard output and error.
    ///
    /// Runs record their console by default (Python's and native code's
    /// output, each line with its time; a progress bar as its final state).
    /// On a terminal, colours are kept and other control characters shown as
    /// escapes; piped, lines are written as the run printed them.
    Logs(LogsArgs),
    /// Open the project in a web browser: runs, charts, comparisons, live.
    ///
    /// Serves the web page and its JSON API (`/api/v1`, described at
    /// `/api/v1/openapi.json`) until Ctrl-C. Listens on 127.0.0.1 only unless
    /// `--host` says otherwise; any other address needs `--token` (or an
    /// explicit `--no-auth`), because the page shows and deletes runs.
    Ui(UiArgs),
    /// Run a team's server: runs sent by `lab` clients, kept in an object
    /// store and indexed in PostgreSQL, served per project.
    ///
    /// The object store (`--artifacts`) holds the truth: every journal and
    /// file. PostgreSQL (`--database`) holds the index, rebuilt from it.
    /// Every request but `GET /api/v1/health` needs a token made with
    /// `lab server token create`. Runs until Ctrl-C or SIGTERM.
    Server(ServerArgs),
    /// Make a new project folder with its own Python environment.
    ///
    /// Needs a `requirements.txt` in the current folder. Creates the folder
    /// NAME with a Lab store, a `.labignore`, a `notebooks/` folder, a copy of
    /// `requirements.txt`, and a virtual environment `.venv` with those
    /// requirements and this Lab in it (taken from this machine, not
    /// downloaded). If anything fails, nothing is left behind.
    Init(InitArgs),
    /// Run a script in the project's environment, with the project as its store.
    ///
    /// Uses the project's `.venv` Python when it has one (else the Python Lab
    /// runs in), passes the arguments through untouched, returns the script's
    /// exit status, and ends by listing the runs the script made.
    Run(RunArgs),
    /// Reinstall `requirements.txt` (and this Lab) into the project's environment.
    Update,
    /// Make the project's environment a Jupyter kernel.
    ///
    /// Installs `ipykernel` into `.venv` (from the package index) and
    /// registers a kernel named after the project.
    Notebook,
    /// Keep Lab's settings: the S3 remotes `lab push` and `lab pull` use.
    Config(ConfigArgs),
    /// Send the whole project, code and runs, to an S3-compatible bucket.
    ///
    /// Sends every file of the project but those `.labignore` lists
    /// (gitignore syntax) and the index (rebuilt by `lab pull`), as
    /// `s3://BUCKET/NAME/`, NAME being the project folder's name. Only files
    /// whose bytes are not in the bucket yet are sent; an interrupted push
    /// sends what is missing when run again. Files deleted here stay in the
    /// bucket unless `--force` is given. The folders of runs still logging
    /// are left out, with a warning. Without `--tag` and `--bucket`, uses the
    /// remote and bucket of the last push or pull.
    #[command(after_long_help = PUSH_EXAMPLES)]
    Push(PushArgs),
    /// Make a folder from a project pushed to an S3-compatible bucket.
    ///
    /// Makes the folder NAME in the current folder, fetches the project's
    /// files into it (each checked against its SHA-256; an interrupted pull
    /// goes on where it stopped when run again), and rebuilds its index from
    /// the journals. Without options, uses the remote, bucket and project of
    /// the last push or pull.
    #[command(after_long_help = PULL_EXAMPLES)]
    Pull(PullArgs),
    /// Bring runs recorded by MLflow, W&B or TensorBoard into this project.
    ///
    /// Each run becomes an ordinary Lab run with the source's experiment,
    /// times, parameters, tags, every metric point, status and artifacts,
    /// and an `imported_from` attribute naming where it came from. Importing
    /// again skips the runs already here (a run imported while the source had
    /// not ended it is imported again once it has). Each run is written
    /// whole or not at all; one that cannot be read is reported and the
    /// others are imported. Imports into the current project, made here if
    /// there is none. See docs/import.md for what maps to what.
    #[command(after_long_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Send runs to a team server (`lab server`) from now on.
    ///
    /// Asks for the token without showing it (or reads it from stdin with
    /// `--token-stdin`), checks it with the server, and keeps the URL and
    /// token in `server.json` in the user's configuration folder
    /// (`$XDG_CONFIG_HOME/lab`, else `~/.config/lab`), readable by the user
    /// only. From then on every run streams to the server while it trains.
    /// `LAB_SERVER` and `LAB_TOKEN` override the file.
    Login(LoginArgs),
    /// Stop sending runs to the team server: forget its URL and token.
    Logout,
    /// Send to the team server every run, and every run's edits, not yet there.
    ///
    /// Sends each journal from where the server's acknowledgement stopped,
    /// then the run's edits (`lab rename`, `lab tag`, `lab untag`, `lab
    /// note`: its `meta.lab`), then its artifacts and models. A run already
    /// on the server that was edited since is sent again: only its edits go.
    /// Says how many runs were sent, how many runs' edits, and how many were
    /// all there already. Safe to run at any time and to interrupt: the next
    /// `lab sync` goes on where this one stopped. Runs still logging are sent
    /// as far as they go.
    Sync,
}

/// `lab import`.
#[derive(Debug, Parser)]
pub struct ImportArgs {
    /// Where the runs come from.
    #[command(subcommand)]
    pub from: ImportCommand,
}

/// The trackers `lab import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Runs of MLflow: a SQLite database, an `mlruns` folder or a tracking server.
    Mlflow(ImportMlflowArgs),
    /// Runs of W&B, from run folders written offline or synced (`.wandb` files).
    Wandb(ImportWandbArgs),
    /// Runs of a TensorBoard log folder (the `--logdir` of `tensorboard`).
    ///
    /// Each folder directly under DIR that holds event files
    /// (`events.out.tfevents.*`, at any depth) becomes one finished run; the
    /// event files directly in DIR make one more. Every scalar becomes a
    /// metric point with its step and wall time, the metric named after the
    /// tag, prefixed by the subfolder it was found in below the run's folder:
    /// `logs/run1/train/` with tag `epoch_loss` gives run `run1` the metric
    /// `train/epoch_loss`. The run starts and ends at its first and last
    /// scalar's wall time. Images, histograms, text and graphs are not
    /// imported. A damaged event file gives what was read before the damage,
    /// with a warning. A run folder whose files changed since it was imported
    /// is imported again, as a new run.
    #[command(after_long_help = IMPORT_TENSORBOARD_EXAMPLES)]
    Tensorboard(ImportTensorboardArgs),
}

/// `lab import mlflow`.
#[derive(Debug, Parser)]
pub struct ImportMlflowArgs {
    /// The MLflow store: `sqlite:///mlflow.db` (relative to the current
    /// folder; `sqlite:////abs/mlflow.db` absolute), an `mlruns` folder (a
    /// path or `file:///path`), or a tracking server's `http://host:port`.
    #[arg(value_name = "URI")]
    pub uri: String,
    /// Import only the experiment of this name.
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// Read and check every run, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `lab import wandb`.
#[derive(Debug, Parser)]
pub struct ImportWandbArgs {
    /// A `wandb` folder (with `offline-run-*` and `run-*` folders), the
    /// folder holding it, or one run folder.
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
    /// Read and check every run, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `lab import tensorboard`.
#[derive(Debug, Parser)]
pub struct ImportTensorboardArgs {
    /// The log folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The experiment the runs go to. By default the log folder's name.
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// Read and check every run, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const IMPORT_TENSORBOARD_EXAMPLES: &str = "\
Examples:
  lab import tensorboard logs                      every run of ./logs, experiment `logs`
  lab import tensorboard logs --experiment mnist   into experiment `mnist`
  lab import tensorboard logs                      again: adds only what is new";

const IMPORT_EXAMPLES: &str = "Examples:
  lab import mlflow sqlite:///mlflow.db
  lab import mlflow sqlite:////home/me/mlflow.db
  lab import mlflow ./mlruns --experiment baseline
  lab import mlflow http://127.0.0.1:5000
  lab import wandb ./wandb
  lab import wandb ./wandb/offline-run-20260101_120000-abc123 --dry-run";

/// `lab login`.
#[derive(Debug, Parser)]
pub struct LoginArgs {
    /// The server's URL, like `https://lab.example:8080`.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Read the token from the first line of stdin instead of asking for it.
    #[arg(long)]
    pub token_stdin: bool,
}

/// `lab config`.
#[derive(Debug, Parser)]
pub struct ConfigArgs {
    /// What to configure.
    #[command(subcommand)]
    pub what: ConfigCommand,
}

/// What `lab config` sets.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Add (or replace) an S3-compatible remote: MinIO, AWS S3, or any other.
    ///
    /// Stored under its tag in the user's configuration folder
    /// (`$XDG_CONFIG_HOME/lab/remotes.json`, else
    /// `~/.config/lab/remotes.json`), readable by the user alone (mode
    /// 0600), never in a project.
    #[command(after_long_help = CONFIG_EXAMPLES)]
    Minio(MinioArgs),
}

/// `lab config minio`.
#[derive(Debug, Parser)]
pub struct MinioArgs {
    /// The name to use the remote by (`lab push --tag TAG`).
    #[arg(long, value_name = "TAG")]
    pub tag: String,
    /// The server: HOST:PORT for plain HTTP, or a URL such as
    /// `https://HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT")]
    pub endpoint: String,
    /// The access key id.
    #[arg(long, value_name = "KEY")]
    pub accesskey: String,
    /// The secret access key.
    #[arg(long, value_name = "SECRET")]
    pub secretkey: String,
}

const CONFIG_EXAMPLES: &str = "Examples:
  lab config minio --tag minio --endpoint 127.0.0.1:9000 --accesskey KEY --secretkey SECRET
  lab config minio --tag aws --endpoint https://s3.eu-west-1.amazonaws.com --accesskey KEY --secretkey SECRET";

/// `lab push`.
#[derive(Debug, Parser)]
pub struct PushArgs {
    /// The remote, as `lab config minio --tag` named it. By default the
    /// last one used.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// The bucket (it must exist). By default the last one used.
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// Also delete from the bucket the project's files that are gone here
    /// (they are listed first, as a warning).
    #[arg(long)]
    pub force: bool,
    /// Only list what would be sent and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The project to push: the one holding this folder (the folder with
    /// `.lab/` in it, or one above). By default the current project, as for
    /// every command.
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

const PUSH_EXAMPLES: &str = "Examples:
  lab push --tag minio --bucket lab-runs .   send the project in the current folder
  lab push                                   again, to the same remote and bucket
  lab push --dry-run                         what would be sent
  lab push --force                           also delete from the bucket what is gone here";

/// `lab pull`.
#[derive(Debug, Parser)]
pub struct PullArgs {
    /// The remote, as `lab config minio --tag` named it. By default the
    /// last one used.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// The bucket. By default the last one used.
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// The project's name in the bucket, which is also the name of the
    /// folder made for it here. By default the last one pushed or pulled.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
}

const PULL_EXAMPLES: &str = "Examples:
  lab pull --tag minio --bucket lab-runs --project iris   makes ./iris
  lab pull --project iris                                  from the last remote and bucket";

/// `lab init`.
#[derive(Debug, Parser)]
pub struct InitArgs {
    /// The new project's folder, made in the current folder (a plain name,
    /// not a path; it must not exist yet).
    #[arg(long, value_name = "NAME")]
    pub name: PathBuf,
    /// Make the project without a virtual environment (no `requirements.txt` needed).
    #[arg(long)]
    pub no_venv: bool,
}

/// `lab run`.
#[derive(Debug, Parser)]
pub struct RunArgs {
    /// The Python script to run.
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
    /// Arguments for the script, passed through as they are.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<std::ffi::OsString>,
}

/// `lab watch`.
#[derive(Debug, Parser)]
pub struct WatchArgs {
    /// The run to follow: its id or a unique prefix. By default the newest
    /// running run.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECONDS", default_value = "0.5")]
    pub interval: f64,
}

/// `lab logs`.
#[derive(Debug, Parser)]
pub struct LogsArgs {
    /// The run: its id or a unique prefix.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Keep showing lines as the run prints them, until it ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines that hold TEXT (compared without colours, case-sensitive).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Only what the run printed on standard error.
    #[arg(long)]
    pub stderr: bool,
    /// Start each line with when it was printed (UTC).
    #[arg(short = 't', long)]
    pub timestamps: bool,
}

/// `lab server`.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServerArgs {
    /// Manage the server's tokens.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// The PostgreSQL database, as `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`.
    /// Its schemas are made, or brought up to date, on start.
    #[arg(long, value_name = "URL", env = "LAB_DATABASE", required = true)]
    pub database: Option<String>,
    /// The object store: `s3://BUCKET/PREFIX` (S3 or any S3-compatible
    /// store, set up by the `AWS_*` variables: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`), or
    /// `file:///PATH` for a folder on this machine.
    #[arg(long, value_name = "URL", env = "LAB_ARTIFACTS", required = true)]
    pub artifacts: Option<String>,
    /// The address and port to listen on.
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Requests each token may make per second on this server, on average
    /// (twice as many in a burst); beyond that the server answers 429 with
    /// `Retry-After`. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub rate_limit: u32,
    /// How often, in seconds, to look for projects pushed to the store with
    /// `lab push` (the bucket named by `--artifacts`, without a prefix) and
    /// take their runs in; also once at start. 0: never.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub scan_pushed: u64,
    /// Speak TLS (HTTPS) with this PEM file of certificates: the server's,
    /// then any intermediates. Needs `--tls-key`. Without them the server
    /// speaks plain HTTP: put it behind a proxy that terminates TLS.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM file of the private key of `--tls-cert`'s certificate.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// `lab server token`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Make, list and revoke the tokens clients use.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make the index in PostgreSQL again from the object store alone.
    ///
    /// Clears each project's runs from the index and folds every journal in
    /// the object store again. Tokens, heartbeats and file lists stay. Stop
    /// the servers first.
    Reindex(ReindexArgs),
}

/// `lab server reindex`.
#[derive(Debug, Parser)]
pub struct ReindexArgs {
    /// The server's PostgreSQL database (as for `lab server`).
    #[arg(long, value_name = "URL", env = "LAB_DATABASE")]
    pub database: String,
    /// The server's object store (as for `lab server`).
    #[arg(long, value_name = "URL", env = "LAB_ARTIFACTS")]
    pub artifacts: String,
    /// Only this project.
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
}

/// `lab server token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it, once, alone on the last line: only its
    /// hash is kept.
    Create(TokenCreateArgs),
    /// List the tokens: name, role, project, when made, when revoked.
    List(TokenDbArgs),
    /// Revoke a token: every request with it is refused from now on.
    Revoke(TokenRevokeArgs),
}

/// The database the tokens are kept in.
#[derive(Debug, Parser)]
pub struct TokenDbArgs {
    /// The server's PostgreSQL database (as for `lab server`).
    #[arg(long, value_name = "URL", env = "LAB_DATABASE")]
    pub database: String,
}

/// `lab server token create`.
#[derive(Debug, Parser)]
pub struct TokenCreateArgs {
    /// A name for the token, to list and revoke it by (unique).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// What it may do: `reader` reads runs and files; `writer` also sends
    /// them; `admin` also sees every project.
    #[arg(long, value_name = "ROLE", value_parser = ["reader", "writer", "admin"])]
    pub role: String,
    /// The one project it may read and write; without it, every project.
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
    #[command(flatten)]
    pub db: TokenDbArgs,
}

/// `lab server token revoke`.
#[derive(Debug, Parser)]
pub struct TokenRevokeArgs {
    /// The token's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub db: TokenDbArgs,
}

/// `lab ui`.
#[derive(Debug, Parser)]
pub struct UiArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 5050)]
    pub port: u16,
    /// The address to listen on: an IP address, or `localhost` for
    /// 127.0.0.1. Anything but a loopback address needs `--token` or
    /// `--no-auth`. Without a token, only requests addressed to `localhost`,
    /// `127.x.y.z` or `[::1]` are answered (a web page cannot reach the
    /// server under its own name).
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub host: String,
    /// Require this token on every API request (`Authorization: Bearer
    /// TOKEN`): at least 16 characters, ASCII without spaces (`openssl rand
    /// -hex 16` makes one). The printed address carries it for the browser.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LAB_UI_TOKEN",
        conflicts_with = "no_auth"
    )]
    pub token: Option<String>,
    /// Serve a non-loopback address without a token: anyone who can reach
    /// it, and any web page a browser that can reach it opens, can read and
    /// delete runs.
    #[arg(long)]
    pub no_auth: bool,
}

/// `lab ls`.
#[derive(Debug, Parser)]
#[command(after_long_help = LS_EXAMPLES)]
pub struct LsArgs {
    /// Sort by this metric, largest first, as the original Lab did (a leading
    /// `-` sorts smallest first). `--sort` is the general form.
    #[arg(value_name = "SORT_BY", allow_hyphen_values = true)]
    pub sort_by: Option<String>,
    /// Only runs for which this query holds, e.g. "accuracy > 0.9 and
    /// `params.max_depth` <= 4" (see docs/query.md).
    #[arg(long, short = 'w', value_name = "QUERY")]
    pub r#where: Option<String>,
    /// Sort by a metric, parameter, tag or run field: smallest first, or
    /// largest first with a leading `-` (e.g. `--sort -accuracy`). Repeat for
    /// ties; runs lacking the key go last.
    #[arg(long, short = 's', value_name = "[-]KEY", allow_hyphen_values = true)]
    pub sort: Vec<String>,
    /// Only runs of this experiment.
    #[arg(long, short = 'e', value_name = "NAME")]
    pub experiment: Option<String>,
    /// Only runs with this status (repeat, or separate with commas).
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    /// Also show a column per parameter.
    #[arg(long)]
    pub params: bool,
    /// Show exactly these columns after the run's own (metrics, parameters,
    /// tags or run fields), separated by commas.
    #[arg(long, short = 'c', value_name = "A,B,C", value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Show at most this many runs. When more follow, a line on stderr
    /// gives the `--after` cursor of the next page.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Only the runs after this cursor, in the listing's order: the one a
    /// limited listing with the same sort printed for its next page.
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Print this format instead of a table.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// List the team server's copy of this project (the server `lab login`
    /// names, or `LAB_SERVER` and `LAB_TOKEN`) instead of the runs here.
    #[arg(long)]
    pub remote: bool,
}

const LS_EXAMPLES: &str = "Examples:
  lab ls accuracy_score                      largest accuracy first
  lab ls --where \"accuracy_score > 0.9\" --sort -accuracy_score --limit 10
  lab ls --status failed,crashed             runs that went wrong
  lab ls --params --format csv > runs.csv";

/// A run status, as the command line takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    /// Still logging.
    Running,
    /// Ended normally.
    Finished,
    /// Ended with an exception.
    Failed,
    /// Its process died without ending it.
    Crashed,
    /// Stopped with Ctrl-C.
    Interrupted,
    /// Its journal is damaged where it would tell how the run went.
    Damaged,
}

impl From<StatusArg> for lab_types::Status {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Running => Self::Running,
            StatusArg::Finished => Self::Finished,
            StatusArg::Failed => Self::Failed,
            StatusArg::Crashed => Self::Crashed,
            StatusArg::Interrupted => Self::Interrupted,
            StatusArg::Damaged => Self::Damaged,
        }
    }
}

/// Output formats of `lab ls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One row per run with a header, for spreadsheets.
    Csv,
    /// One JSON object per run, in an array.
    Json,
}

/// `lab show`.
#[derive(Debug, Parser)]
#[command(after_long_help = SHOW_EXAMPLES)]
pub struct ShowArgs {
    /// The run: its id or any unique prefix of it (as `lab ls` shows). With
    /// `--graph` and no run, the graph draws every run of the project.
    #[arg(value_name = "RUN", required_unless_present = "graph")]
    pub run: Option<String>,
    /// Write the run's diagram (dataset -> script -> hyperparameters ->
    /// metrics) to this file instead of printing the report, or to standard
    /// output with `-`. The format follows the extension: `.svg`, `.png` or
    /// `.dot` (Graphviz source); `--graph-format` wins over it, and `-` is
    /// SVG by default. A symbolic link to a file is written through;
    /// folders, FIFOs, sockets and devices are refused.
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,
    /// The diagram's format, whatever the extension of the `--graph` file.
    #[arg(long, value_enum, value_name = "FORMAT", requires = "graph")]
    pub graph_format: Option<GraphFormat>,
    /// Show the team server's copy of the run (the server `lab login` names,
    /// or `LAB_SERVER` and `LAB_TOKEN`) instead of the one here.
    #[arg(long, conflicts_with = "graph")]
    pub remote: bool,
}

/// Formats of `lab show --graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A standalone SVG drawing.
    Svg,
    /// The same drawing as a PNG picture (binary: not to a terminal).
    Png,
    /// Graphviz source.
    Dot,
}

const SHOW_EXAMPLES: &str = "Examples:
  lab show 0e52f0da                          everything about one run
  lab show 0e52f0da --graph run.svg          its diagram, as SVG
  lab show --graph project.dot               every run of the project, as Graphviz source
  lab show 0e52f0da --graph - > run.svg      SVG on standard output
  lab show 0e52f0da --graph - --graph-format dot | dot -Tpdf -o run.pdf";

/// Where a command should look for the project.
#[must_use]
pub fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// `lab compare`.
#[derive(Debug, Parser)]
#[command(after_long_help = COMPARE_EXAMPLES)]
pub struct CompareArgs {
    /// The runs: ids or unique prefixes of them, at least two. The first is
    /// the one the others are compared with.
    #[arg(value_name = "RUN", num_args = 2.., required = true)]
    pub runs: Vec<String>,
}

const COMPARE_EXAMPLES: &str = "Examples:
  lab compare 0e52f0da 0e52f0be              two runs side by side
  lab compare 0e52f0da 0e52f0be 0e52f0a1     the last two against the first";

/// `lab rm`.
#[derive(Debug, Parser)]
#[command(after_long_help = RM_EXAMPLES)]
pub struct RmArgs {
    /// The runs to delete: ids or unique prefixes of them.
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<String>,
    /// Delete without asking for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also delete runs that are still running.
    #[arg(long)]
    pub force: bool,
}

const RM_EXAMPLES: &str = "Examples:
  lab rm 0e52f0da                            asks, then deletes one run
  lab rm 0e52f0da 0e52f0be --yes             deletes two runs without asking";

/// `lab rename`.
#[derive(Debug, Parser)]
#[command(after_long_help = RENAME_EXAMPLES)]
pub struct RenameArgs {
    /// The run: an id prefix or its name.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Its new name: not blank, at most 200 characters.
    #[arg(value_name = "NAME")]
    pub name: String,
}

const RENAME_EXAMPLES: &str = "Examples:
  lab rename 0e52f0da baseline               names a run by its id prefix
  lab rename brisk-otter-4821 baseline       or by its current name";

/// `lab tag`.
#[derive(Debug, Parser)]
#[command(after_long_help = TAG_EXAMPLES)]
pub struct TagArgs {
    /// The run: an id prefix or its name.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The tags, each `KEY=VALUE` (the value may be empty, and may hold `=`).
    #[arg(value_name = "KEY=VALUE", required = true)]
    pub tags: Vec<String>,
}

const TAG_EXAMPLES: &str = "Examples:
  lab tag baseline stage=candidate           sets one tag
  lab tag 0e52f0da stage=final owner=ana     sets two";

/// `lab untag`.
#[derive(Debug, Parser)]
pub struct UntagArgs {
    /// The run: an id prefix or its name.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The tags' keys (a key the run lacks is no error).
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,
}

/// `lab note`.
#[derive(Debug, Parser)]
#[command(after_long_help = NOTE_EXAMPLES)]
pub struct NoteArgs {
    /// The run: an id prefix or its name.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The note, Markdown; `-` reads it from standard input.
    #[arg(value_name = "TEXT", required_unless_present = "edit")]
    pub text: Option<String>,
    /// Write the note in an editor (`$VISUAL`, else `$EDITOR`, else `vi`),
    /// starting from the run's note; saved when the editor exits with
    /// success and the text changed.
    #[arg(short, long, conflicts_with = "text")]
    pub edit: bool,
}

const NOTE_EXAMPLES: &str = "Examples:
  lab note baseline 'First run with the new tokenizer'
  lab note 0e52f0da - < notes.md             reads the note from a file
  lab note baseline --edit                   edits the note in $EDITOR
  lab note baseline ''                       removes the note";

/// `lab doctor`.
#[derive(Debug, Parser)]
pub struct DoctorArgs {
    /// Put the good records of the pieces cut off journals back into them
    /// and index those runs again (a piece is kept, renamed `….salvaged`).
    #[arg(long)]
    pub salvage: bool,
}

/// `lab gc`.
#[derive(Debug, Parser)]
pub struct GcArgs {
    /// Only report what would be removed, and which series files written.
    #[arg(long)]
    pub dry_run: bool,
}

/// `lab export`.
#[derive(Debug, Parser)]
#[command(after_long_help = EXPORT_EXAMPLES)]
pub struct ExportArgs {
    /// Only runs for which this query holds (see docs/query.md).
    #[arg(long, short = 'w', value_name = "QUERY")]
    pub r#where: Option<String>,
    /// Sort by a metric, parameter, tag or run field: smallest first, or
    /// largest first with a leading `-`. Repeat for ties.
    #[arg(long, short = 's', value_name = "[-]KEY", allow_hyphen_values = true)]
    pub sort: Vec<String>,
    /// Only runs of this experiment.
    #[arg(long, short = 'e', value_name = "NAME")]
    pub experiment: Option<String>,
    /// The file format. By default it follows the extension of `--output`:
    /// `.csv`, `.json`, `.parquet` or `.pq`; this option wins over it.
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// The file to write, or `-` for standard output (which needs
    /// `--format`). The file is replaced whole, or left as it was on
    /// failure; a symbolic link to a file is written through. Folders,
    /// FIFOs, sockets and devices are refused.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

const EXPORT_EXAMPLES: &str = "Examples:
  lab export -o runs.csv                     every run, as CSV
  lab export -e iris --where \"accuracy > 0.9\" --sort -accuracy -o best.json
  lab export --format parquet -o - | python read.py";

/// File formats of `lab export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A header row, then one row per run, as `lab ls --format csv` prints.
    Csv,
    /// A JSON array of one object per run, as `lab ls --format json` prints.
    Json,
    /// Apache Parquet (Snappy-compressed): the same columns as CSV, typed:
    /// times as UTC timestamps, metrics as doubles, a parameter as integers,
    /// booleans or doubles when every value is one, and as text otherwise.
    Parquet,
}
