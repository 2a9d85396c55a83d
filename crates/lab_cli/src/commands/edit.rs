//! `lab rename`, `lab tag`, `lab untag`, `lab note`: edits of a run in any
//! state, appended to its meta journal (see `lab_store::Edit`).

use std::io::{Read as _, Write as _};

use anyhow::{Context as _, Result, anyhow};
use lab_store::{Edit, RunInfo};

use crate::ExitStatus;
use crate::args::{NoteArgs, RenameArgs, TagArgs, UntagArgs};
use crate::{output, visible};

/// Applies `edit` to `run` and returns the run as edited.
fn apply(run: &str, edit: &Edit) -> Result<RunInfo> {
    let mut store = super::open_fresh()?;
    Ok(store.edit(run, edit)?)
}

pub fn rename(args: &RenameArgs) -> Result<ExitStatus> {
    let before = super::open_fresh()?.run(&args.run)?;
    let run = apply(
        &before.id.to_string(),
        &Edit {
            name: Some(args.name.clone()),
            ..Edit::default()
        },
    )?;
    writeln!(
        std::io::stdout().lock(),
        "Renamed run `{}` from `{}` to `{}`",
        run.short_id,
        visible::text(&before.name()),
        visible::text(&run.name())
    )?;
    Ok(ExitStatus::Success)
}

pub fn tag(args: &TagArgs) -> Result<ExitStatus> {
    let mut tags = Vec::with_capacity(args.tags.len());
    for arg in &args.tags {
        // `KEY=VALUE`, split at the first `=`.
        let Some((key, value)) = arg.split_once('=') else {
            output::error(&anyhow!(
                "`{}` is not a tag: expected KEY=VALUE\n\nhint: `lab tag RUN stage=final` sets tag `stage` to `final`",
                visible::text(arg)
            ));
            return Ok(ExitStatus::Failure);
        };
        tags.push((key.to_owned(), value.to_owned()));
    }
    let run = apply(
        &args.run,
        &Edit {
            tags: tags.clone(),
            ..Edit::default()
        },
    )?;
    let shown: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("`{}={}`", visible::text(k), visible::text(v)))
        .collect();
    writeln!(
        std::io::stdout().lock(),
        "Tagged run `{}` ({}): {}",
        run.short_id,
        visible::text(&run.name()),
        shown.join(", ")
    )?;
    Ok(ExitStatus::Success)
}

pub fn untag(args: &UntagArgs) -> Result<ExitStatus> {
    let before = super::open_fresh()?.run(&args.run)?;
    let run = apply(
        &before.id.to_string(),
        &Edit {
            untag: args.keys.clone(),
            ..Edit::default()
        },
    )?;
    let mut out = std::io::stdout().lock();
    for key in &args.keys {
        if before.tags.iter().any(|(k, _)| k == key) {
            writeln!(
                out,
                "Removed tag `{}` from run `{}` ({})",
                visible::text(key),
                run.short_id,
                visible::text(&run.name())
            )?;
        } else {
            writeln!(
                out,
                "Run `{}` ({}) had no tag `{}`",
                run.short_id,
                visible::text(&run.name()),
                visible::text(key)
            )?;
        }
    }
    Ok(ExitStatus::Success)
}

pub fn note(args: &NoteArgs) -> Result<ExitStatus> {
    let text = if args.text == "-" {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .context("reading the note from standard input (it must be UTF-8 text)")?;
        text
    } else {
        args.text.clone()
    };
    let run = apply(
        &args.run,
        &Edit {
            note: Some(text.clone()),
            ..Edit::default()
        },
    )?;
    let said = if text.is_empty() {
        "Removed the note of".to_owned()
    } else {
        format!("Wrote a note of {} characters on", text.chars().count())
    };
    writeln!(
        std::io::stdout().lock(),
        "{said} run `{}` ({})",
        run.short_id,
        visible::text(&run.name())
    )?;
    Ok(ExitStatus::Success)
}
