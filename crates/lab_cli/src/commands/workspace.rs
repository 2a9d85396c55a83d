//! Projects with their own Python environment, as the original Lab made
//! them: `lab init`, `lab run`, `lab update`, `lab notebook`.
//!
//! The environment is a virtual environment in the project's `.venv`, made
//! from the project's `requirements.txt`. Lab itself is put into it from this
//! machine (a link to the Lab package the running Lab belongs to), never
//! downloaded.

use lab_types::fields::attr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use lab_store::{Project, Store};

use crate::ExitStatus;
use crate::args::{InitArgs, RunArgs, current_dir};
use crate::output::UserError;

/// The Python Lab runs in: `LAB_PYTHON` when set (`python -m lab.cli` sets
/// it to its own interpreter); else the `python3` or `python` in the folder
/// of the running `lab`, which is the environment's `bin` when the `lab` a
/// `pip install` puts there runs; else `python3` from `PATH`.
fn host_python() -> Result<PathBuf> {
    if let Some(python) = std::env::var_os("LAB_PYTHON").filter(|p| !p.is_empty()) {
        let python = PathBuf::from(python);
        // A bare name is looked up on `PATH`; a path must lead to a file.
        if python.components().count() > 1 && !python.is_file() {
            return Err(UserError(format!(
                "`LAB_PYTHON` names no file: `{}`\n\nhint: set it to the Python Lab is installed in, or unset it to use the `python3` beside `lab`",
                python.display()
            ))
            .into());
        }
        return Ok(python);
    }
    Ok(std::env::current_exe()
        .ok()
        .and_then(|exe| python_beside(&exe))
        .unwrap_or_else(|| PathBuf::from("python3")))
}

/// The `python3` or `python` in the folder of `exe`, if there is one. The
/// path is not resolved further: a virtual environment's `python` is a link
/// to the base interpreter, and only called through the link is it the
/// environment's.
fn python_beside(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    ["python3", "python"]
        .into_iter()
        .map(|name| bin.join(name))
        .find(|python| python.is_file())
}

fn venv_python(root: &Path) -> PathBuf {
    root.join(".venv").join("bin").join("python")
}

/// Runs a command, its output going to the user; fails with `what` named.
fn step(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        let code = status
            .code()
            .map_or_else(|| "a signal".to_owned(), |c| format!("status {c}"));
        return Err(UserError(format!("{what} failed (exit {code})")).into());
    }
    Ok(())
}

/// The output of a Python one-liner.
fn python_says(python: &Path, code: &str) -> Result<String> {
    let out = Command::new(python)
        .args(["-c", code])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        return Err(UserError(format!(
            "{} could not run `{code}`: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Puts the running Lab's Python package and `lab` command into the
/// environment at `root/.venv` by linking them: nothing is downloaded.
fn link_lab(root: &Path) -> Result<()> {
    let package = python_says(&host_python()?, "import lab, os; print(os.path.dirname(os.path.abspath(lab.__file__)))")
        .map_err(|e| UserError(format!("cannot find this Lab's Python package to put into the environment: {e}\n\nhint: run `lab` from the environment Lab is installed in")))?;
    let python = venv_python(root);
    let site = PathBuf::from(python_says(
        &python,
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
    )?);
    let link = site.join("lab");
    if link.symlink_metadata().is_ok() {
        if link.is_dir() && !link.is_symlink() {
            std::fs::remove_dir_all(&link)?;
        } else {
            std::fs::remove_file(&link)?;
        }
    }
    std::os::unix::fs::symlink(&package, &link)
        .with_context(|| format!("cannot link Lab into {}", site.display()))?;
    // The environment's `lab` is this command, linked: it finds the Python
    // Lab is installed in beside the file the link leads to.
    let command = std::env::current_exe().context("cannot tell where this `lab` command is")?;
    let script = root.join(".venv").join("bin").join("lab");
    if script.symlink_metadata().is_ok() {
        std::fs::remove_file(&script)?;
    }
    std::os::unix::fs::symlink(&command, &script)
        .with_context(|| format!("cannot link the `lab` command into {}", script.display()))?;
    python_says(&python, "import lab")?;
    Ok(())
}

fn pip_install(root: &Path, args: &[&str], from: &Path, what: &str) -> Result<()> {
    step(
        Command::new(venv_python(root))
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(args)
            .current_dir(from),
        what,
    )
}

/// Removes a half-made project folder unless told it is finished.
struct Rollback(Option<PathBuf>);

impl Drop for Rollback {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            // Best effort: the error being returned matters more.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `--name` must name one new folder right in the current one: no path, so
/// a project is never made somewhere the user did not look.
fn check_project_name(name: &Path) -> Result<()> {
    let text = name.to_string_lossy();
    let plain = matches!(
        name.components().collect::<Vec<_>>().as_slice(),
        [std::path::Component::Normal(_)]
    ) && !text.contains('/');
    if plain {
        return Ok(());
    }
    Err(UserError(format!(
        "`--name` must be the name of a new folder in the current folder, not a path: got `{text}`\n\nhint: change to the folder the project should be made in, then run `lab init --name NAME` there"
    ))
    .into())
}

pub fn init(args: &InitArgs) -> Result<ExitStatus> {
    check_project_name(&args.name)?;
    let cwd = current_dir();
    let requirements = cwd.join("requirements.txt");
    if !args.no_venv && !requirements.is_file() {
        return Err(UserError(format!(
            "`lab init` needs a `requirements.txt` in the current folder: {}\n\nhint: list the packages the project needs in it, or make a project without an environment with `lab init --name {} --no-venv`",
            cwd.display(),
            args.name.display()
        ))
        .into());
    }
    let root = cwd.join(&args.name);
    if root.symlink_metadata().is_ok() {
        return Err(UserError(format!(
            "`--name` names something that exists already: {}",
            root.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut rollback = Rollback(Some(root.clone()));
    Project::create(&root)?;
    std::fs::write(root.join(".labignore"), ".venv\n")?;
    std::fs::create_dir(root.join("notebooks"))?;
    if requirements.is_file() {
        std::fs::copy(&requirements, root.join("requirements.txt"))?;
    }
    if !args.no_venv {
        eprintln!("Making the environment in {}", root.join(".venv").display());
        step(
            Command::new(host_python()?)
                .args(["-m", "venv"])
                .arg(root.join(".venv")),
            "making the virtual environment",
        )?;
        // Paths in requirements.txt are relative to where it was written.
        pip_install(
            &root,
            &["-r", &root.join("requirements.txt").to_string_lossy()],
            &cwd,
            "installing requirements.txt",
        )?;
        link_lab(&root)?;
    }
    rollback.0 = None;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Made the Lab project {}", root.display())?;
    if !args.no_venv {
        writeln!(
            out,
            "Its environment is {}; run scripts in it with `lab run SCRIPT`",
            root.join(".venv").display()
        )?;
    }
    Ok(ExitStatus::Success)
}

fn project_with_env() -> Result<Project> {
    let project = Project::discover(&current_dir())?;
    if !venv_python(project.root()).exists() {
        return Err(UserError(format!(
            "this project has no environment (no `.venv`): {}\n\nhint: `lab init --name NAME` makes a project with one",
            project.root().display()
        ))
        .into());
    }
    Ok(project)
}

pub fn update() -> Result<ExitStatus> {
    let project = project_with_env()?;
    let root = project.root();
    let requirements = root.join("requirements.txt");
    if !requirements.is_file() {
        return Err(UserError(format!(
            "the project has no `requirements.txt`: {}",
            root.display()
        ))
        .into());
    }
    pip_install(
        root,
        &["-r", &requirements.to_string_lossy()],
        root,
        "installing requirements.txt",
    )?;
    link_lab(root)?;
    writeln!(
        std::io::stdout().lock(),
        "Updated the environment of {}",
        root.display()
    )?;
    Ok(ExitStatus::Success)
}

pub fn notebook() -> Result<ExitStatus> {
    let project = project_with_env()?;
    let root = project.root();
    let name = root
        .file_name()
        .map_or_else(|| "lab".to_owned(), |n| n.to_string_lossy().into_owned());
    let kernel: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    pip_install(root, &["ipykernel"], root, "installing ipykernel")?;
    step(
        Command::new(venv_python(root))
            .args([
                "-m",
                "ipykernel",
                "install",
                "--user",
                "--name",
                &kernel,
                "--display-name",
            ])
            .arg(format!("Lab: {name}")),
        "registering the Jupyter kernel",
    )?;
    writeln!(
        std::io::stdout().lock(),
        "Registered the Jupyter kernel `{kernel}`: in Jupyter, choose \"Lab: {name}\" (Kernel > Change kernel) to run notebooks in this project's environment"
    )?;
    Ok(ExitStatus::Success)
}

/// Runs the script and returns its exit status as Lab's own.
pub fn run(args: &RunArgs) -> Result<i32> {
    let project = Project::discover(&current_dir())?;
    let script = std::path::absolute(&args.script)?;
    if !script.is_file() {
        return Err(UserError(format!("no script to run at {}", script.display())).into());
    }
    let python = if venv_python(project.root()).exists() {
        venv_python(project.root())
    } else {
        host_python()?
    };
    // Runs the script starts carry this, so they can be listed at the end.
    let launch = lab_types::RunId::new(lab_types::now_nanos(), 0).to_string();
    // Ctrl-C reaches the whole foreground group: the script decides what it
    // means (Python ends its run as interrupted), and this process lives on
    // to list the runs and exit with the script's status. A handler, not an
    // ignored signal, which the script would inherit.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal handler")?;
    let _entered = signals.enter();
    let _interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot listen for Ctrl-C")?;
    let status = Command::new(&python)
        .arg(&script)
        .args(&args.args)
        .env("LAB_PROJECT", project.root())
        .env("LAB_LAUNCH", &launch)
        .status()
        .with_context(|| format!("cannot start {}", python.display()))?;
    let mut store = Store::open(project)?;
    store.refresh()?;
    let mut made: Vec<_> = store
        .runs(None)?
        .into_iter()
        .filter(|r| r.attr_str(attr::LAUNCH) == Some(launch.as_str()))
        .collect();
    made.reverse();
    let mut err = std::io::stderr().lock();
    if made.is_empty() {
        writeln!(err, "lab: the script made no run")?;
    }
    for r in &made {
        writeln!(err, "lab: run {} {}", r.short_id, r.status)?;
    }
    Ok(status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    }))
}

#[cfg(test)]
mod tests {
    use super::python_beside;

    #[test]
    fn the_python_beside_the_command_is_found_python3_first() {
        let bin = tempfile::tempdir().unwrap();
        let lab = bin.path().join("lab");
        std::fs::write(&lab, "").unwrap();
        assert_eq!(python_beside(&lab), None, "no Python in the folder");
        std::fs::write(bin.path().join("python"), "").unwrap();
        assert_eq!(python_beside(&lab), Some(bin.path().join("python")));
        std::fs::write(bin.path().join("python3"), "").unwrap();
        assert_eq!(python_beside(&lab), Some(bin.path().join("python3")));
    }

    #[test]
    fn a_folder_named_python3_is_no_python() {
        let bin = tempfile::tempdir().unwrap();
        std::fs::create_dir(bin.path().join("python3")).unwrap();
        assert_eq!(python_beside(&bin.path().join("lab")), None);
    }
}
