//! `lab ui`: serve the project's web page and API until Ctrl-C.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use lab_server::{AppState, Options};
use lab_store::Project;

use crate::ExitStatus;
use crate::args::{UiArgs, current_dir};
use crate::output::UserError;

pub fn run(args: &UiArgs) -> Result<ExitStatus> {
    let ip: IpAddr = if args.host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        args.host.parse().map_err(|_| {
            UserError(format!(
                "`--host` must be an IP address such as `127.0.0.1` or `0.0.0.0`, or `localhost`: got `{}`",
                args.host
            ))
        })?
    };
    let token = args.token.clone().filter(|t| !t.is_empty());
    if let Some(t) = &token {
        check_token(t)?;
    }
    if !ip.is_loopback() && token.is_none() && !args.no_auth {
        return Err(UserError(format!(
            "`--host {}` makes the page reachable from other machines, so it needs a token\n\nhint: add `--token TOKEN` (every request must then carry it), or `--no-auth` to serve without one",
            args.host
        ))
        .into());
    }
    let project = Project::discover(&current_dir())?;
    let mut options = Options::new(project);
    options.token.clone_from(&token);
    // Reached from other machines, the server cannot know the names it is
    // reached by (a token, or `--no-auth`, was required above).
    options.any_host = !ip.is_loopback();
    options.team = team_source(&options.project);
    let state = AppState::new(options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lab-ui")
        .build()
        .context("cannot start the server's threads")?;
    runtime.block_on(async {
        let addr = SocketAddr::new(ip, args.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            UserError(format!(
                "cannot listen on {addr}: {e}\n\nhint: another program may use port {}; pick another with `--port`",
                args.port
            ))
        })?;
        let bound = listener.local_addr()?;
        // Before saying Ctrl-C stops it: from then on, it does.
        let shutdown = lab_server::shutdown_signal().context("cannot listen for Ctrl-C")?;
        let shown_host = if ip.is_unspecified() { "127.0.0.1".to_owned() } else { bound.ip().to_string() };
        let shown_host = if shown_host.contains(':') { format!("[{shown_host}]") } else { shown_host };
        let fragment = token.as_ref().map(|t| format!("#token={t}")).unwrap_or_default();
        // A closed stdout (`lab ui | head -1`) must not stop the server.
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "Lab is serving {} at http://{shown_host}:{}/{fragment}",
            state.project().root().display(),
            bound.port()
        );
        if let Some(team) = state.team() {
            let _ = writeln!(
                out,
                "The team's runs ({}) are at http://{shown_host}:{}/team/{fragment}",
                team.url,
                bound.port()
            );
        }
        let _ = writeln!(out, "Press Ctrl-C to stop.");
        let _ = out.flush();
        lab_server::serve(listener, state, shutdown)
            .await
            .context("the server stopped")?;
        anyhow::Ok(())
    })?;
    Ok(ExitStatus::Success)
}

/// Refuses a token that is short enough to guess, or that a browser cannot
/// send in a header. The token itself is not shown: it is a secret.
fn check_token(token: &str) -> Result<(), UserError> {
    let chars = token.chars().count();
    let hint = "hint: make one with `openssl rand -hex 16`";
    if chars < lab_server::MIN_TOKEN_CHARS {
        return Err(UserError(format!(
            "the token (`--token` or `LAB_UI_TOKEN`) must have at least {} characters: it has {chars}\n\n{hint}",
            lab_server::MIN_TOKEN_CHARS
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UserError(format!(
            "the token (`--token` or `LAB_UI_TOKEN`) must be ASCII letters, digits and punctuation, without spaces\n\n{hint}"
        )));
    }
    Ok(())
}

/// The team server `lab login` (or `LAB_SERVER` and `LAB_TOKEN`) names,
/// whose copy of the project the page shows at `/team/`; none without a
/// login, or with settings that do not read (said once, and the page shows
/// the local runs).
fn team_source(project: &Project) -> Option<lab_server::TeamSource> {
    let server = match lab_sdk::team::config::current() {
        Ok(server) => server?,
        Err(e) => {
            eprintln!(
                "warning: the team server's settings do not read, so the page shows this machine's runs only: {e}"
            );
            return None;
        }
    };
    let name = lab_sdk::team::upload::project_name(project.root()).ok()?;
    Some(lab_server::TeamSource {
        url: server.url,
        token: server.token,
        project: name,
    })
}
