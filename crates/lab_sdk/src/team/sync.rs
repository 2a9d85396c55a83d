//! `lab sync`: sends every run of a project that is not all on the server,
//! from where the server's acknowledgement stopped, and the edits of runs
//! all there made since they were sent.

use std::time::Instant;

use lab_store::Project;

use super::Error;
use super::backoff::Backoff;
use super::http::Client;
use super::stream::pending_runs;
use super::upload::{self, RunUpload, Step, Stop};

/// How many failures in a row `lab sync` takes before it gives up.
const MAX_FAILURES: u32 = 4;

/// What `lab sync` did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Runs now all on the server that were not before.
    pub sent: Vec<String>,
    /// Runs whose edits (`lab rename`, `lab tag`, ...: their `meta.lab`)
    /// went to the server, whether the rest of the run went too or was
    /// there already.
    pub edited: Vec<String>,
    /// Runs that were all there already, their edits too.
    pub already: usize,
    /// Runs still logging: sent as far as they go; their process (or a
    /// later `lab sync`) sends the rest.
    pub live: Vec<String>,
    /// Runs another process is sending.
    pub busy: Vec<String>,
    /// Runs the server would not take, and why.
    pub refused: Vec<String>,
}

/// Sends every pending run of `local` through `client`, telling `progress`
/// the short id of each run as it starts on it, and whether only its edits
/// are left to send. Stops with the error when
/// the server refuses the token or stays unreachable through
/// [`MAX_FAILURES`] backed-off attempts.
pub fn sync(
    local: &Project,
    client: &Client,
    progress: &mut dyn FnMut(&str, bool),
) -> Result<SyncReport, Error> {
    let project = upload::project_name(local.root())?;
    let all = std::fs::read_dir(local.runs_dir()).map_or(0, |d| d.filter_map(Result::ok).count());
    let mut pending = pending_runs(local, client.base(), &project);
    pending.reverse();
    let mut report = SyncReport {
        already: all.saturating_sub(pending.len()),
        ..SyncReport::default()
    };
    let mut backoff = Backoff::default();
    for short in pending {
        let paths = local.run_paths(&short);
        let mut run = match RunUpload::open(&short, &paths, client.base(), &project) {
            Ok(Ok(run)) => run,
            Ok(Err(Stop::Done)) => {
                report.already += 1;
                continue;
            }
            Ok(Err(Stop::Busy)) => {
                report.busy.push(short);
                continue;
            }
            Ok(Err(Stop::Refused(message))) => {
                report.refused.push(message);
                continue;
            }
            Err(e) => {
                report.refused.push(format!("run `{short}`: {e}"));
                continue;
            }
        };
        let was_there = run.state().done;
        progress(&short, was_there);
        loop {
            match run.step(client) {
                Ok(Step::Sent) => backoff.succeed(),
                Ok(Step::Waiting) => {
                    report.live.push(short.clone());
                    break;
                }
                Ok(Step::Stopped(Stop::Done)) => {
                    if !was_there || run.sent_again() {
                        report.sent.push(short.clone());
                    } else if !run.edits_sent() {
                        // The server had them already (another client).
                        report.already += 1;
                    }
                    break;
                }
                Ok(Step::Stopped(Stop::Busy)) => {
                    report.busy.push(short.clone());
                    break;
                }
                Ok(Step::Stopped(Stop::Refused(message))) => {
                    report.refused.push(message);
                    break;
                }
                Err(e) if e.is_transient() && backoff.failures() < MAX_FAILURES => {
                    let until = Instant::now() + backoff.fail(e.retry_after());
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                }
                Err(e) => return Err(e),
            }
        }
        if run.edits_sent() {
            report.edited.push(short);
        }
    }
    Ok(report)
}
