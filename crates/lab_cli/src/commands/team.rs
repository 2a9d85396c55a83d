//! `lab login`, `lab logout` and `lab sync`: the team server runs go to.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};
use lab_sdk::team::{self, Client, ServerConfig, config};
use lab_store::Project;

use crate::ExitStatus;
use crate::args::{LoginArgs, current_dir};
use crate::output::UserError;

/// A team client error as the CLI reports it: the user's to fix (exit 1)
/// unless a local file failed.
fn user(e: team::Error) -> anyhow::Error {
    match e {
        team::Error::Io(e) => e.into(),
        e => UserError(e.to_string()).into(),
    }
}

pub fn login(args: &LoginArgs) -> Result<ExitStatus> {
    let url = config::parse_url("URL", &args.url).map_err(user)?;
    let token = if args.token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the token from stdin")?;
        line
    } else {
        prompt_hidden(&format!("Token for {url}: "))?
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(UserError(
            "the token is empty\n\nhint: `lab server token create` prints one".into(),
        )
        .into());
    }
    let server = ServerConfig { url, token };
    let who = Client::new(&server).whoami().map_err(|e| match e {
        team::Error::Status { status: 401, .. } => UserError(format!(
            "the server does not know this token (it may have been revoked): {}",
            server.url
        ))
        .into(),
        e => user(e),
    })?;
    let path = config::server_file().map_err(user)?;
    config::save_to(&server, &path).map_err(user)?;
    let scope = who
        .project
        .as_deref()
        .map_or_else(|| "every project".to_owned(), |p| format!("project `{p}`"));
    let streams = if who.role == "reader" {
        ""
    } else {
        "; runs now stream there"
    };
    println!(
        "Logged in to {} as `{}` ({}, {scope}){streams}",
        server.url, who.name, who.role
    );
    eprintln!("The token is kept in {}", path.display());
    if who.role == "reader" {
        eprintln!(
            "note: a reader's token cannot send runs: they stay on this machine\n\nhint: `lab login {}` with a writer's token to send them",
            server.url
        );
    }
    Ok(ExitStatus::Success)
}

pub fn logout() -> Result<ExitStatus> {
    let path = config::server_file().map_err(user)?;
    if config::remove(&path).map_err(user)? {
        println!("Logged out: runs stay on this machine only");
    } else {
        println!("Not logged in to a server");
    }
    if std::env::var_os(config::SERVER_VAR).is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "note: `{}` is set, so runs still go to the server it names",
            config::SERVER_VAR
        );
    }
    Ok(ExitStatus::Success)
}

pub fn sync() -> Result<ExitStatus> {
    let server = config::current().map_err(user)?.ok_or_else(|| {
        UserError("no team server to send runs to\n\nhint: `lab login URL` names one".into())
    })?;
    let project = Project::discover(&current_dir())?;
    let client = Client::new(&server);
    let mut say = |short: &str, edits_only: bool| {
        if edits_only {
            eprintln!("sending the edits of run {short}");
        } else {
            eprintln!("sending run {short}");
        }
    };
    let report = team::sync(&project, &client, &mut say).map_err(|e| {
        if e.is_refusal() {
            UserError(format!(
                "{e}\n\nhint: `lab login {}` with a valid token",
                server.url
            ))
            .into()
        } else {
            user(e)
        }
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} sent, edits of {} sent, {} already on the server",
        runs(report.sent.len()),
        runs(report.edited.len()),
        runs(report.already)
    )?;
    for short in &report.live {
        writeln!(
            out,
            "run {short} is still logging: sent as far as it goes, its process sends the rest"
        )?;
    }
    for short in &report.busy {
        writeln!(out, "run {short} is being sent by another process")?;
    }
    for message in &report.refused {
        crate::output::warn(message);
    }
    Ok(if report.refused.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn runs(n: usize) -> String {
    if n == 1 {
        "1 run".into()
    } else {
        format!("{n} runs")
    }
}

/// Asks for a secret on the terminal without echoing it.
fn prompt_hidden(prompt: &str) -> Result<String> {
    let tty = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
        .filter(|t| t.file().is_terminal());
    let Some(mut tty) = tty else {
        return Err(UserError(
            "no terminal to ask for the token on\n\nhint: pipe it in with `--token-stdin`".into(),
        )
        .into());
    };
    write!(tty, "{prompt}")?;
    tty.flush()?;
    let fd = tty.file();
    let saved = rustix::termios::tcgetattr(fd).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    quiet
        .local_modes
        .insert(rustix::termios::LocalModes::ECHONL);
    rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Flush, &quiet)
        .context("cannot turn the terminal's echo off")?;
    let mut line = String::new();
    let read = std::io::BufReader::new(tty.file()).read_line(&mut line);
    let restored = rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Flush, &saved);
    read.context("cannot read the token")?;
    restored.context("cannot turn the terminal's echo back on")?;
    Ok(line)
}
