//! `lab server`: a team's server. Clients send each run's journal and meta
//! journal (its edits; both as byte ranges from an offset), heartbeats,
//! artifacts and models (as blobs named by their SHA-256) and file lists;
//! the server keeps the bytes in an object
//! store (the truth: S3 or any S3-compatible store, or a folder) and folds
//! the journals into PostgreSQL (the index, `lab_pg`) with the same fold as
//! a project's SQLite index, and answers the runs API of `lab ui` for each
//! project. The protocol is `docs/team.md`'s.
//!
//! The server keeps no state of its own outside the database and the
//! object store: any number of them may serve the same two. Each request
//! that changes a run's journal holds a PostgreSQL advisory lock on that run
//! while it compares, stores and folds, so replicas take turns per run.
//!
//! The web page is `lab ui`'s: the project list at `/projects/`, each
//! project's runs at `/projects/{project}/` (`/` leads to the list).
//!
//! [`router`] builds the application from an [`AppState`], so tests call it
//! without a socket; [`serve`] runs it on a listener until shutdown.

mod auth;
mod blobs;
mod compact;
mod db;
mod error;
mod events;
mod indexes;
mod ingest;
mod listen;
mod pushed;
mod read;
mod reindex;
mod runfiles;
mod sessions;
mod store;
mod tls;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{get, post, put};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use reindex::{Reindexed, reindex};
pub use store::BadStoreUrl;
pub use tls::{BadTls, Tls};
pub use tokens::{
    Role, TokenInfo, create as create_token, list as list_tokens, revoke as revoke_token,
};

/// The largest journal stretch one request may send: clients send 8 MiB
/// at a time, and a frame larger than that alone (the journal's header
/// and one frame's header and 64 MiB of record).
pub const MAX_JOURNAL_BODY: usize = (64 << 20) + 64;
/// The largest blob part one request may send.
pub const MAX_PART_BODY: usize = 64 << 20;
/// The largest JSON body (a file list).
pub const MAX_JSON_BODY: usize = 8 << 20;

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// The PostgreSQL database: `postgresql://user@host:port/db`.
    pub database: String,
    /// The object store: `s3://bucket/prefix` or `file:///path`.
    pub artifacts: String,
    /// A run without an End record whose client was last heard from longer
    /// ago than this is shown `unreachable` rather than `running`.
    pub heartbeat_timeout: Duration,
    /// The size of a blob upload's parts (but the last).
    pub part_size: u64,
    /// Requests a token may make per second, on average, on this server
    /// (twice as many in a burst); 0: no limit.
    pub rate_per_sec: u32,
    /// How long a web page's session lasts after its login.
    pub session_ttl: Duration,
    /// The server speaks TLS itself: session cookies are `Secure`.
    pub tls: bool,
    /// How often the server looks for projects pushed to its store with
    /// `lab push` (and once at start); `None`: never.
    pub scan_pushed: Option<Duration>,
    /// An upload of a blob not completed within this long is dropped, its
    /// parts deleted (its client starts again if it ever comes back).
    pub upload_ttl: Duration,
    /// A run's journal stretches (one per request taken) are merged into
    /// larger objects every this many; 0: never.
    pub compact_every: u32,
}

impl Options {
    /// Defaults: a run is unreachable after 60 s of silence; 8 MiB parts;
    /// 500 requests a second per token; sessions of 12 hours; no TLS;
    /// pushed projects looked for every 30 s; uploads dropped after 2 days;
    /// journal stretches merged every 256.
    #[must_use]
    pub fn new(database: String, artifacts: String) -> Self {
        Self {
            database,
            artifacts,
            heartbeat_timeout: Duration::from_mins(1),
            part_size: 8 << 20,
            rate_per_sec: 500,
            session_ttl: Duration::from_hours(12),
            tls: false,
            scan_pushed: Some(Duration::from_secs(30)),
            upload_ttl: Duration::from_hours(48),
            compact_every: 256,
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The object store URL.
    #[error(transparent)]
    Store(#[from] BadStoreUrl),
    /// The database.
    #[error("{0}")]
    Database(String),
}

/// What every handler shares: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    db: db::Db,
    indexes: indexes::Indexes,
    bucket: store::Bucket,
    limits: auth::Limits,
    /// The watchers of live events, woken by the database's notifications.
    hub: events::Hub,
    /// Cancelled when the server stops: ends live event streams, so a
    /// graceful shutdown does not wait for them.
    shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Connects to the database (applying the schemas' migrations) and opens
    /// the object store. Blocks: call it before the runtime serves requests,
    /// or on a blocking thread.
    pub fn open(options: Options) -> Result<Self, StartError> {
        let bucket = store::Bucket::open(&options.artifacts)?;
        let db = db::Db::open(&options.database).map_err(|e| StartError::Database(detail(&e)))?;
        let indexes = indexes::Indexes::new(&options.database);
        // Applies the index's migrations now rather than at the first request.
        indexes
            .migrate()
            .map_err(|e| StartError::Database(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                db,
                indexes,
                bucket,
                limits: auth::Limits::default(),
                hub: events::Hub::default(),
                shutdown: tokio_util::sync::CancellationToken::new(),
            }),
        })
    }

    /// Runs `f` on a blocking thread (where PostgreSQL is called).
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| ApiError::Internal(format!("a request's task failed: {e}")))?
    }
}

/// The whole text of an error, as logged.
fn detail(e: &ApiError) -> String {
    e.to_string()
}

/// The whole application, under `/api/v1`.
pub fn router(state: AppState) -> Router {
    let open = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/session",
            post(sessions::login)
                .get(sessions::current)
                .delete(sessions::logout),
        );
    let api = Router::new()
        .route("/whoami", get(auth::whoami))
        .route("/projects", get(read::projects))
        .route("/projects/{project}/runs", get(read::runs))
        .route("/projects/{project}/runs/{run}", get(read::run))
        .route("/projects/{project}/names", get(read::names))
        .route("/projects/{project}/events", get(events::stream))
        .route(
            "/projects/{project}/runs/{run}/metrics/{name}",
            get(read::metric),
        )
        .route("/projects/{project}/runs/{run}/logs", get(read::logs))
        .route(
            "/projects/{project}/runs/{run}/artifacts",
            get(runfiles::artifacts),
        )
        .route(
            "/projects/{project}/runs/{run}/artifacts/{*path}",
            get(runfiles::artifact_file),
        )
        .route("/projects/{project}/runs/{run}/media", get(runfiles::media))
        .route(
            "/projects/{project}/runs/{run}/models/{name}",
            get(runfiles::model_file),
        )
        .route(
            "/projects/{project}/runs/{run}/journal",
            put(ingest::put_journal).get(ingest::get_journal),
        )
        .route(
            "/projects/{project}/runs/{run}/journal/length",
            get(ingest::length),
        )
        .route(
            "/projects/{project}/runs/{run}/meta",
            put(ingest::put_meta).get(ingest::get_meta),
        )
        .route(
            "/projects/{project}/runs/{run}/meta/length",
            get(ingest::meta_length),
        )
        .route(
            "/projects/{project}/runs/{run}/heartbeat",
            post(ingest::heartbeat),
        )
        .route(
            "/projects/{project}/runs/{run}/crashed",
            post(ingest::crashed),
        )
        .route(
            "/projects/{project}/runs/{run}/files",
            put(blobs::put_files).get(blobs::get_files),
        )
        .route("/blobs/{sha}", get(blobs::get_blob).head(blobs::head_blob))
        .route("/blobs/{sha}/uploads", post(blobs::start_upload))
        .route("/blobs/{sha}/uploads/{id}", get(blobs::upload_parts))
        .route("/blobs/{sha}/uploads/{id}/parts/{n}", put(blobs::put_part))
        .route(
            "/blobs/{sha}/uploads/{id}/complete",
            post(blobs::complete_upload),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ));
    let v1 = open
        .merge(api)
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed(method.to_string())
        })
        .fallback(|| async { ApiError::NotFound("no such API route".into()) });
    Router::new()
        .nest("/api/v1", v1)
        // The page lists the projects at `/projects/` and shows one at
        // `/projects/{project}/`, reading the API under its own address.
        .route("/", get(|| async { Redirect::to("/projects/") }))
        .merge(lab_server::assets::routes())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(lab_server::CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Bodies are read with limits of their own (413 in the API's shape).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_mins(5),
        ))
        .with_state(state)
}

/// Drops forgotten uploads, at start and then every quarter of their time
/// to live (at most hourly), until the server stops.
async fn expire_uploads(state: AppState) {
    let every = (state.inner.options.upload_ttl / 4).min(Duration::from_hours(1));
    let stop = state.inner.shutdown.clone();
    loop {
        match blobs::expire_uploads(&state).await {
            Ok(0) => {}
            Ok(n) => eprintln!("lab server: dropped {n} upload(s) not completed in time"),
            Err(e) => eprintln!("lab server: dropping forgotten uploads failed: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Serves `state` on `listener` until `shutdown` completes: over TLS with
/// `tls` (then the state's options should say `tls`, for `Secure`
/// cookies), else plain HTTP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopper = state.inner.shutdown.clone();
    if let Some(every) = state.inner.options.scan_pushed {
        tokio::spawn(pushed::keep_looking(state.clone(), every));
    }
    tokio::spawn(expire_uploads(state.clone()));
    let shutdown = async move {
        shutdown.await;
        stopper.cancel();
    };
    // Hears every server's changes, for live events; ends with the server.
    let listening = tokio::spawn(listen::listen(state.clone()));
    let served = match tls {
        Some(tls) => {
            let listener = match tls::TlsListener::new(listener, &tls) {
                Ok(l) => l,
                Err(e) => {
                    state.inner.shutdown.cancel();
                    let _ = listening.await;
                    return Err(e);
                }
            };
            axum::serve(listener, router(state.clone()))
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, router(state.clone()))
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    state.inner.shutdown.cancel();
    let _ = listening.await;
    served
}
