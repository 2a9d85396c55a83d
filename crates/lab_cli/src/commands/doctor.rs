//! `lab doctor`: look the project over for damage; `--salvage` puts back
//! what the pieces cut off journals still hold.

use std::io::Write as _;

use anyhow::Result;
use lab_types::Status;

use crate::ExitStatus;
use crate::args::DoctorArgs;
use crate::output;

use super::disk;

pub fn run(args: &DoctorArgs) -> Result<ExitStatus> {
    let mut store = super::open_fresh()?;
    let root = store.project().root().to_owned();
    let mut out = std::io::stdout().lock();
    let mut problems = 0usize;

    let index = store.check_index()?;
    match (store.in_memory(), index.is_empty()) {
        (Some(why), _) => {
            problems += 1;
            writeln!(out, "Index: cannot be used as it is ({why})")?;
        }
        (None, true) => writeln!(out, "Index: sound")?,
        (None, false) => {
            problems += 1;
            writeln!(out, "Index: damaged: {}", index.join("; "))?;
            writeln!(
                out,
                "  `lab reindex` rebuilds it from the journals, keeping the damaged file aside"
            )?;
        }
    }

    let health = store.examine()?;
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
    for h in &health {
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
                disk::shown(&p.path, &root),
                output::bytes(p.bytes),
                p.records
            )?;
        }
        if !h.pieces.is_empty() && !h.live {
            to_salvage.push(short.clone());
        }
    }
    problems += damaged;

    let listed_damaged: Vec<String> = store
        .runs(None)?
        .into_iter()
        .filter(|r| r.status == Status::Damaged)
        .map(|r| r.short_id)
        .collect();
    if !listed_damaged.is_empty() {
        writeln!(
            out,
            "Runs listed as damaged (how they went cannot be told from their journals): {}",
            listed_damaged.join(", ")
        )?;
    }

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
