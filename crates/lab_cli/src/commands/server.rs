//! `lab server`: run a team's server until Ctrl-C or SIGTERM; `lab server
//! token create|list|revoke`.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use lab_team::{ApiError, AppState, Options, Role};

use crate::ExitStatus;
use crate::args::{ServerArgs, ServerCommand, TokenCommand};
use crate::output::UserError;

pub fn run(args: &ServerArgs) -> Result<ExitStatus> {
    match &args.command {
        Some(ServerCommand::Token(command)) => token(command),
        Some(ServerCommand::Reindex(a)) => {
            let done = lab_team::reindex(&a.database, &a.artifacts, a.project.as_deref())
                .map_err(failed)?;
            eprintln!(
                "Indexed {} runs of {} projects from {} bytes of journals",
                done.runs, done.projects, done.bytes
            );
            Ok(ExitStatus::Success)
        }
        None => serve(args),
    }
}

/// A server-side error as the user's or the machine's.
fn failed(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Internal(detail) => anyhow::anyhow!(detail),
        other => UserError(other.to_string()).into(),
    }
}

fn token(command: &TokenCommand) -> Result<ExitStatus> {
    match command {
        TokenCommand::Create(a) => {
            let role = Role::parse(&a.role).ok_or_else(|| {
                UserError(format!(
                    "`--role` must be reader, writer or admin: got `{}`",
                    a.role
                ))
            })?;
            let token = lab_team::create_token(&a.db.database, &a.name, role, a.project.as_deref())
                .map_err(failed)?;
            let scope = a
                .project
                .as_deref()
                .map_or_else(|| "every project".to_owned(), |p| format!("project `{p}`"));
            eprintln!(
                "Made {} token `{}` for {scope}. It is shown once, below; only its hash is kept.",
                role.as_str(),
                a.name
            );
            println!("{token}");
        }
        TokenCommand::List(a) => {
            let tokens = lab_team::list_tokens(&a.database).map_err(failed)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "NAME\tROLE\tPROJECT\tCREATED\tREVOKED")?;
            for t in tokens {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    t.name,
                    t.role,
                    t.project.as_deref().unwrap_or("*"),
                    lab_types::time::iso(t.created_nanos),
                    t.revoked_nanos
                        .map_or_else(|| "-".to_owned(), lab_types::time::iso),
                )?;
            }
        }
        TokenCommand::Revoke(a) => {
            if lab_team::revoke_token(&a.db.database, &a.name).map_err(failed)? {
                eprintln!("Revoked token `{}`", a.name);
            } else {
                eprintln!("Token `{}` was revoked already", a.name);
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn serve(args: &ServerArgs) -> Result<ExitStatus> {
    let (Some(database), Some(artifacts)) = (&args.database, &args.artifacts) else {
        return Err(
            UserError("`lab server` needs `--database URL` and `--artifacts URL`".into()).into(),
        );
    };
    let addr: SocketAddr = args.listen.parse().map_err(|_| {
        UserError(format!(
            "`--listen` must be an address and a port such as `0.0.0.0:8080`: got `{}`",
            args.listen
        ))
    })?;
    let mut options = Options::new(database.clone(), artifacts.clone());
    options.rate_per_sec = args.rate_limit;
    options.scan_pushed =
        (args.scan_pushed > 0).then(|| std::time::Duration::from_secs(args.scan_pushed));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(lab_team::Tls::load(cert, key).map_err(|e| UserError(e.to_string()))?)
        }
        _ => None,
    };
    options.tls = tls.is_some();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = AppState::open(options).map_err(|e| UserError(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lab-server")
        .build()
        .context("cannot start the server's threads")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            UserError(format!(
                "cannot listen on {addr}: {e}\n\nhint: another program may use the port; pick another with `--listen`"
            ))
        })?;
        let bound = listener.local_addr()?;
        let shutdown = lab_server::shutdown_signal().context("cannot listen for Ctrl-C")?;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "Lab's team server is listening on {scheme}://{bound}/\nPress Ctrl-C to stop.");
        let _ = out.flush();
        lab_team::serve(listener, state, tls, shutdown)
            .await
            .context("the server stopped")?;
        anyhow::Ok(())
    })?;
    Ok(ExitStatus::Success)
}
