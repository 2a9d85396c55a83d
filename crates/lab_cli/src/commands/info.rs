//! `lab info`: versions, the project, the machine.

use std::io::Write as _;

use anyhow::Result;
use lab_store::Store;
use lab_types::Status;

use crate::ExitStatus;
use crate::args::current_dir;
use crate::output;

use super::disk;

pub fn run() -> Result<ExitStatus> {
    let mut lines: Vec<(&str, String)> = vec![("Lab", env!("CARGO_PKG_VERSION").to_owned())];
    match Store::discover(&current_dir()) {
        Ok(mut store) => {
            for issue in store.refresh()? {
                output::warn(&issue.to_string());
            }
            let store_dir = store.project().store_dir();
            lines.push((
                "Project",
                format!(
                    "{} ({} in {})",
                    store.project().root().display(),
                    output::bytes(disk::size(&store_dir)),
                    lab_store::STORE_DIR
                ),
            ));
            let counts = store.status_counts()?;
            let total: i64 = counts.values().sum();
            let by_status: Vec<String> = Status::ALL
                .iter()
                .filter_map(|s| {
                    counts
                        .get(s.as_str())
                        .filter(|&&n| n > 0)
                        .map(|n| format!("{n} {s}"))
                })
                .collect();
            lines.push((
                "Runs",
                if by_status.is_empty() {
                    total.to_string()
                } else {
                    format!("{total} ({})", by_status.join(", "))
                },
            ));
        }
        Err(lab_store::Error::NotAProject { .. }) => {
            lines.push(("Project", "none (not inside a Lab project)".to_owned()));
        }
        Err(e) => return Err(e.into()),
    }
    lines.push(("Python", python()));
    let uname = rustix::system::uname();
    lines.push((
        "OS",
        format!(
            "{} {} {}",
            uname.sysname().to_string_lossy(),
            uname.release().to_string_lossy(),
            uname.machine().to_string_lossy()
        ),
    ));
    lines.push((
        "CPUs",
        std::thread::available_parallelism()
            .map_or_else(|_| "unknown".to_owned(), |n| n.to_string()),
    ));
    let mut out = std::io::stdout().lock();
    for (key, value) in lines {
        // Paths and what `python3` printed, made safe.
        writeln!(
            out,
            "{:<9}{}",
            format!("{key}:"),
            crate::visible::text(&value)
        )?;
    }
    Ok(ExitStatus::Success)
}

/// `python3 --version` of the `python3` on `PATH`.
fn python() -> String {
    match std::process::Command::new("python3")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            // Python 2 printed its version on stderr.
            let text = [out.stdout, out.stderr].concat();
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            if text.is_empty() {
                "unknown (`python3 --version` printed nothing)".to_owned()
            } else {
                text
            }
        }
        Ok(out) => format!("unknown (`python3 --version` failed with {})", out.status),
        Err(_) => "not found".to_owned(),
    }
}
