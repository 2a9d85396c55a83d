//! The server's one listening connection: `LISTEN` on the channel on which
//! the index announces every committed change of a project's runs
//! ([`lab_pg::CHANNEL`]), whichever server made it; each notification
//! wakes that project's watcher (`events`).
//!
//! The connection is tokio-postgres's own (asynchronous: it waits on the
//! socket, not on a thread). When it breaks (the database restarted, the
//! network cut) the server connects again, waiting 0.5 s doubling to 5 s
//! (with jitter) between tries, and says so once each way. While it is
//! down, the watchers look every second on their own; once it listens
//! again, every watcher looks at once, so what changed meanwhile is sent.

use std::future::poll_fn;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::AppState;
use lab_pg::redact;

/// The first wait before connecting again, doubled after each failure.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait: one connection per server, so trying often costs the
/// database little, and live events come back soon after it does.
const LONGEST_WAIT: Duration = Duration::from_secs(5);
/// How often the connection is asked whether it still answers (a database
/// gone without closing it, as behind a cut network, is found so).
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long connecting, listening or a ping may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// Listens until the server stops.
pub(crate) async fn listen(state: AppState) {
    let stop = state.inner.shutdown.clone();
    let url = state.inner.options.database.clone();
    let mut wait = FIRST_WAIT;
    let mut lost = false;
    loop {
        let why = tokio::select! {
            () = stop.cancelled() => return,
            why = listen_once(&state, &url, &mut lost, &mut wait) => why,
        };
        if state.inner.hub.listening() {
            state.inner.hub.set_listening(false);
        }
        if !lost {
            eprintln!(
                "lab server: not listening for changes at `{}` ({why}); live events come from looking every second until it is back",
                redact(&url)
            );
            lost = true;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(jitter(wait)) => {}
        }
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

/// Connects, listens and wakes watchers until the connection breaks;
/// returns why it did.
async fn listen_once(state: &AppState, url: &str, lost: &mut bool, wait: &mut Duration) -> String {
    let mut config: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(e) => return format!("the database URL: {e}"),
    };
    config
        .application_name("lab server (listening)")
        .connect_timeout(PATIENCE)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    let (client, mut connection) = match tokio::time::timeout(PATIENCE, config.connect(NoTls)).await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return said(&e),
        Err(_) => return "connecting took too long".into(),
    };
    // The connection's messages (answers, notifications) are read by a
    // task of its own; notifications come here, and the channel closes
    // when the connection ends.
    let (tx, mut rx) = mpsc::channel(1024);
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).await.is_err() {
                        return String::new();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return said(&e),
                None => return "the database closed the connection".into(),
            }
        }
    });
    let why = async {
        let listen = format!("LISTEN {}", lab_pg::CHANNEL);
        match tokio::time::timeout(PATIENCE, client.batch_execute(&listen)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return said(&e),
            Err(_) => return "`LISTEN` took too long".into(),
        }
        // From here on every commit is heard; what was committed before
        // is found by the watchers' next look, which this asks for.
        state.inner.hub.set_listening(true);
        *wait = FIRST_WAIT;
        if std::mem::take(lost) {
            eprintln!("lab server: listening for changes again");
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.reset();
        loop {
            tokio::select! {
                payload = rx.recv() => match payload {
                    Some(p) => wake(state, &p),
                    None => return "the connection ended".into(),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(PATIENCE, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return said(&e),
                        Err(_) => return "the database stopped answering".into(),
                    }
                }
            }
        }
    }
    .await;
    drop(client);
    driver.abort();
    match driver.await {
        Ok(ended) if !ended.is_empty() => ended,
        _ => why,
    }
}

/// What PostgreSQL or the connection said, in full (the database's own
/// message, not only "db error").
fn said(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Wakes the watcher of the project a notification names (every watcher
/// when it names none, or cannot be read).
fn wake(state: &AppState, payload: &str) {
    let project = serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("project")?.as_str().map(str::to_owned));
    match project {
        Some(p) => state.inner.hub.wake(&p),
        None => state.inner.hub.wake_all(),
    }
}

/// `wait` drawn between half and all of it, so that servers cut off
/// together do not come back together.
fn jitter(wait: Duration) -> Duration {
    let mut random = [0u8; 8];
    let fraction = if getrandom::fill(&mut random).is_ok() {
        (u64::from_le_bytes(random) >> 11) as f64 / (1u64 << 53) as f64
    } else {
        1.0
    };
    wait.mul_f64(0.5 + fraction / 2.0)
}
