//! `lab config minio`, `lab push`, `lab pull`: a project to and from an
//! S3-compatible bucket (the work is `lab_remote`'s; this is the talking).

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use lab_remote::config::{self, Config, Remote};
use lab_remote::{Bucket, Error, PushOptions, PushReport};
use lab_store::{MARKER_FILE, Project, STORE_DIR};

use crate::ExitStatus;
use crate::args::{ConfigArgs, ConfigCommand, PullArgs, PushArgs, current_dir};
use crate::output::{self, bytes};
use crate::progress::Bars;

pub fn config(args: &ConfigArgs) -> Result<ExitStatus> {
    let ConfigCommand::Minio(m) = &args.what;
    config::check_tag(&m.tag)?;
    let endpoint = config::parse_endpoint(&m.endpoint)?;
    for (option, value) in [("--accesskey", &m.accesskey), ("--secretkey", &m.secretkey)] {
        if value.trim().is_empty() {
            return Err(Error::Invalid(format!("`{option}` must not be empty")).into());
        }
    }
    let mut cfg = Config::load()?;
    let replaced = cfg
        .remotes
        .insert(
            m.tag.clone(),
            Remote {
                endpoint: endpoint.clone(),
                access_key: m.accesskey.clone(),
                secret_key: m.secretkey.clone(),
            },
        )
        .is_some();
    let path = cfg.save()?;
    writeln!(
        std::io::stdout().lock(),
        "{} the remote `{}` ({endpoint}) in {}",
        if replaced { "Replaced" } else { "Saved" },
        m.tag,
        path.display()
    )?;
    Ok(ExitStatus::Success)
}

/// The option given, else the one remembered from the last push or pull.
fn given_or_last(
    given: Option<&String>,
    last: Option<&String>,
    option: &'static str,
    hint: &str,
) -> Result<String, Error> {
    given
        .or(last)
        .cloned()
        .ok_or_else(|| Error::NothingRemembered {
            option,
            hint: hint.to_owned(),
        })
}

/// The remote and bucket a push or pull uses, and the configuration they
/// came from.
fn target(tag: Option<&String>, bucket: Option<&String>) -> Result<(Config, Bucket)> {
    let cfg = Config::load()?;
    let tag = given_or_last(
        tag,
        cfg.last.tag.as_ref(),
        "--tag",
        "name a remote added with `lab config minio --tag TAG ...`",
    )?;
    config::check_tag(&tag)?;
    let name = given_or_last(
        bucket,
        cfg.last.bucket.as_ref(),
        "--bucket",
        "name the bucket with `--bucket BUCKET`",
    )?;
    config::check_bucket(&name)?;
    let remote = cfg.remote(&tag)?;
    let bucket = Bucket::new(&tag, remote, &name)?;
    Ok((cfg, bucket))
}

/// Progress bars that remember the remote, bucket and project once the
/// bucket has answered: an interrupted push goes on with a bare `lab push`.
fn remembering(cfg: Config, bucket: &Bucket, project: &str) -> Bars {
    let (bucket, project) = (bucket.clone(), project.to_owned());
    Bars::new().on_answer(move || remember(cfg, &bucket, &project))
}

/// Remembers what a push or pull used; failing to is only worth a warning.
fn remember(mut cfg: Config, bucket: &Bucket, project: &str) {
    cfg.last = config::Last {
        tag: Some(bucket.tag.clone()),
        bucket: Some(bucket.name.clone()),
        project: Some(project.to_owned()),
    };
    if let Err(e) = cfg.save() {
        output::warn(&format!(
            "could not remember the remote for the next push or pull: {e}"
        ));
    }
}

pub fn push(args: &PushArgs) -> Result<ExitStatus> {
    let (cfg, bucket) = target(args.tag.as_ref(), args.bucket.as_ref())?;
    let project = match &args.path {
        None => Project::discover(&current_dir())?,
        Some(path) => {
            let start = std::path::absolute(current_dir().join(path))?;
            let root = start
                .ancestors()
                .find(|d| d.join(STORE_DIR).join(MARKER_FILE).is_file())
                .unwrap_or(&start)
                .to_owned();
            Project::at(&root)?
        }
    };
    let name = project
        .root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = lab_remote::block_on(lab_remote::push(
        &project,
        &bucket,
        &name,
        PushOptions {
            force: args.force,
            dry_run: args.dry_run,
        },
        &remembering(cfg, &bucket, &name),
    ))?;
    warn_left_out(&report);
    let mut out = std::io::stdout().lock();
    let at = format!("{} (remote `{}`)", report.manifest, bucket.tag);
    let sent_bytes: u64 = report.sent.iter().map(|(_, n)| n).sum();
    if args.dry_run {
        for (path, size) in &report.sent {
            writeln!(out, "send    {path} ({})", bytes(*size))?;
        }
        for path in &report.deleted {
            writeln!(out, "delete  {path}")?;
        }
        writeln!(
            out,
            "Would send {} file(s) ({}) to {at}, {} unchanged, {} deleted; nothing was sent",
            report.sent.len(),
            bytes(sent_bytes),
            report.unchanged,
            report.deleted.len()
        )?;
        return Ok(ExitStatus::Success);
    }
    let mut line = format!(
        "Pushed `{name}` to {at}: {} file(s) sent ({}), {} unchanged, {} deleted",
        report.sent.len(),
        bytes(report.sent_bytes),
        report.unchanged,
        report.deleted.len()
    );
    if report.kept_remote > 0 {
        let _ = write!(
            line,
            "; {} file(s) gone here stay in the bucket (`--force` deletes them)",
            report.kept_remote
        );
    }
    writeln!(out, "{line}")?;
    Ok(ExitStatus::Success)
}

fn warn_left_out(report: &PushReport) {
    for warning in &report.warnings {
        output::warn(warning);
    }
    for run in &report.live_runs {
        let short = run.rsplit('/').next().unwrap_or(run);
        output::warn(&format!(
            "run `{short}` is still running, so its folder `{run}` was left out\n\nhint: push again once it has ended"
        ));
    }
    if !report.unsendable.is_empty() {
        let shown: Vec<String> = report
            .unsendable
            .iter()
            .take(5)
            .map(|p| format!("`{p}`"))
            .collect();
        let more = report.unsendable.len().saturating_sub(shown.len());
        output::warn(&format!(
            "left out {} path(s) a bucket cannot hold (symbolic links, sockets, devices, names that are not UTF-8): {}{}",
            report.unsendable.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
}

pub fn pull(args: &PullArgs) -> Result<ExitStatus> {
    let (cfg, bucket) = target(args.tag.as_ref(), args.bucket.as_ref())?;
    let name = given_or_last(
        args.project.as_ref(),
        cfg.last.project.as_ref(),
        "--project",
        "name the project with `--project NAME`",
    )?;
    let report = lab_remote::block_on(lab_remote::pull(
        &current_dir(),
        &bucket,
        &name,
        &remembering(cfg, &bucket, &name),
    ))?;
    for issue in &report.issues {
        output::warn(issue);
    }
    let resumed = if report.resumed > 0 {
        format!(
            " ({} fetched by an interrupted pull before)",
            report.resumed
        )
    } else {
        String::new()
    };
    writeln!(
        std::io::stdout().lock(),
        "Pulled `{name}` from {} (remote `{}`): {} file(s) ({}){resumed}, {} run(s) indexed, in {}",
        report.manifest,
        bucket.tag,
        report.files,
        bytes(report.bytes),
        report.runs,
        report.root.display()
    )?;
    Ok(ExitStatus::Success)
}
