//! `lab doctor`: look the project over for damage; `--salvage` puts back
//! what the pieces cut off journals still hold.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use lab_store::{Health, Store};
use lab_types::Status;

use crate::ExitStatus;
use crate::args::DoctorArgs;
use crate::output;

use super::disk;

pub fn run(args: &DoctorArgs) -> Result<ExitStatus> {
    let mut store = super::open_fresh()?;
    let root = store.project().root().to_owned();
    let mut out = std::io::stdout().lock();
    let index_sound = index(&store, &mut out)?;
    let health = store.examine()?;
    let problems = usize::from(!index_sound) + health.iter().filter(|h| !h.is_sound()).count();
    let to_salvage = journals(&health, &root, &mut out)?;
    listed_damaged(&store, &mut out)?;
    if args.salvage {
        for short in &to_salvage {
            // One journal that cannot be salvaged now (busy, read-only)
            // leaves the others to be.
            match store.salvage(short) {
                Ok(n) => writeln!(
                    out,
                    "Put back {n} record(s) into the journal of run `{short}`"
                )?,
                Err(e) => writeln!(out, "Could not put back the records of run `{short}`: {e}")?,
            }
        }
    } else if !to_salvage.is_empty() {
        writeln!(
            out,
            "\nhint: `lab doctor --salvage` puts the good records of the pieces back into {} journal(s)",
            to_salvage.len()
        )?;
    }
    Ok(if problems == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Reports on the index; whether it is sound.
fn index(store: &Store, out: &mut impl Write) -> Result<bool> {
    let index = store.check_index()?;
    match (store.in_memory(), index.is_empty()) {
        (Some(why), _) => {
            writeln!(out, "Index: cannot be used as it is ({why})")?;
            Ok(false)
        }
        (None, true) => {
            writeln!(out, "Index: sound")?;
            Ok(true)
        }
        (None, false) => {
            writeln!(out, "Index: damaged: {}", index.join("; "))?;
            writeln!(
                out,
                "  `lab reindex` rebuilds it from the journals, keeping the damaged file aside"
            )?;
            Ok(false)
        }
    }
}

/// Reports on each journal: what cannot be read, what is damaged, and the
/// pieces cut off it. Returns the runs whose pieces can be put back: those
/// no writer holds.
fn journals(health: &[Health], root: &Path, out: &mut impl Write) -> Result<Vec<String>> {
    let damaged = health.iter().filter(|h| !h.is_sound()).count();
    writeln!(
        out,
        "Journals: {} read, {}",
        health.len(),
        if damaged == 0 {
            "none damaged".to_owned()
        } else {
            format!("{damaged} with damage")
        }
    )?;
    let mut to_salvage = Vec::new();
    for h in health {
        let short = &h.short_id;
        if let Some(why) = &h.unreadable {
            writeln!(out, "  {short}  cannot be read: {why}")?;
        }
        for d in &h.damage {
            writeln!(
                out,
                "  {short}  damaged at byte {}: {} ({} bytes {})",
                d.offset,
                d.reason,
                d.dropped_bytes,
                if d.tail {
                    "to the end"
                } else {
                    "skipped, the records after them read"
                }
            )?;
        }
        for p in &h.pieces {
            writeln!(
                out,
                "  {short}  piece cut off the journal: {} ({}, {} good record(s) to put back)",
                disk::shown(&p.path, root),
                output::bytes(p.bytes),
                p.records
            )?;
        }
        if !h.pieces.is_empty() && !h.live {
            to_salvage.push(short.clone());
        }
    }
    Ok(to_salvage)
}

/// Names the runs the index lists as damaged, if any.
fn listed_damaged(store: &Store, out: &mut impl Write) -> Result<()> {
    let listed: Vec<String> = store
        .runs(None)?
        .into_iter()
        .filter(|r| r.status == Status::Damaged)
        .map(|r| r.short_id)
        .collect();
    if !listed.is_empty() {
        writeln!(
            out,
            "Runs listed as damaged (how they went cannot be told from their journals): {}",
            listed.join(", ")
        )?;
    }
    Ok(())
}
