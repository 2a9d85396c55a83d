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
    let mut run_arg = args.run.clone();
    let text = match args.text.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .read_to_string(&mut text)
                .context("reading the note from standard input (it must be UTF-8 text)")?;
            text
        }
        Some(text) => text.to_owned(),
        None => {
            let before = super::open_fresh()?.run(&args.run)?;
            let text = match edit_in_editor(&before.short_id, before.note())? {
                Edited::Saved(text) => text,
                Edited::Unchanged => {
                    writeln!(
                        std::io::stdout().lock(),
                        "The note of run `{}` ({}) is unchanged",
                        before.short_id,
                        visible::text(&before.name())
                    )?;
                    return Ok(ExitStatus::Success);
                }
                Edited::Failed(e) => {
                    output::error(&e);
                    return Ok(ExitStatus::Failure);
                }
            };
            // The run found before the editor opened, whatever its name
            // became meanwhile.
            run_arg = before.id.to_string();
            text
        }
    };
    let run = apply(
        &run_arg,
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

/// The editor a note is written in: `$VISUAL`, else `$EDITOR`, else `vi`.
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// What came of editing a note.
enum Edited {
    /// The text saved, different from the note.
    Saved(String),
    /// Saved as it was, or not saved.
    Unchanged,
    /// The editor failed or left no text: the note stays as it was.
    Failed(anyhow::Error),
}

/// Opens `note` in the user's editor. The editor's setting may hold
/// arguments (`code --wait`), so a shell runs it, as git does.
fn edit_in_editor(short_id: &str, note: &str) -> Result<Edited> {
    let path = std::env::temp_dir().join(format!("lab-note-{short_id}-{}.md", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create the note's file {}", path.display()))?;
    file.write_all(note.as_bytes())?;
    drop(file);
    let editor = editor();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status();
    let saved = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    let failed = |what: String| {
        Ok(Edited::Failed(anyhow!(
            "{what}; the note was not changed\n\nhint: set `EDITOR` to the editor to use"
        )))
    };
    match status {
        Err(e) => return failed(format!("cannot start the editor `{editor}`: {e}")),
        Ok(status) if !status.success() => {
            return failed(format!("the editor `{editor}` failed ({status})"));
        }
        Ok(_) => {}
    }
    let Ok(saved) = saved else {
        return failed(format!("the editor `{editor}` removed the note's file"));
    };
    let Ok(saved) = String::from_utf8(saved) else {
        return failed("the note saved in the editor is not UTF-8 text".to_owned());
    };
    Ok(if saved == note {
        Edited::Unchanged
    } else {
        Edited::Saved(saved)
    })
}
