//! The HTTP server behind `lab ui`: a JSON API under `/api/v1` (described by
//! `/api/v1/openapi.json` and `docs/http-api.md`) and the web page built from
//! `ui/`, embedded in the binary.
//!
//! [`router`] builds the whole application from an [`AppState`], so tests
//! call it without a socket; [`serve`] runs it on a listener until shutdown.

mod api;
pub mod assets;
mod error;
mod events;
mod extract;
pub mod files;
mod guard;
pub mod logs;
pub mod openapi;
pub mod params;
mod pool;
pub mod series;
mod team;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use lab_store::{Project, Store};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use team::TeamSource;

/// The page's Content-Security-Policy: scripts only from the server itself.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The fewest characters a token may have: 16 random ones take long enough
/// to guess over HTTP.
pub const MIN_TOKEN_CHARS: usize = 16;

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// The project served.
    pub project: Project,
    /// When set, every API request must carry this token (`lab ui` wants
    /// at least [`MIN_TOKEN_CHARS`] characters), and any `Host` is answered.
    pub token: Option<String>,
    /// Answer requests for any `Host`, not only loopback names and addresses:
    /// for a server that listens on an address other machines reach, whose
    /// names it cannot know. Without a token this lets any web page a browser
    /// opens read and delete runs through DNS rebinding.
    pub any_host: bool,
    /// How often the project is looked at for live events.
    pub poll_interval: Duration,
    /// At most this many metric points are kept in memory for charts.
    pub cache_points: usize,
    /// The team server whose copy of the project the page also shows, at
    /// `/team/` (`lab login`'s); `None`: the local runs only.
    pub team: Option<TeamSource>,
}

impl Options {
    /// Defaults for `project`: no token, loopback names only, a look every
    /// 250 ms, 20 million cached points (24 bytes each: about 480 MB at most).
    #[must_use]
    pub fn new(project: Project) -> Self {
        Self {
            project,
            token: None,
            any_host: false,
            poll_interval: Duration::from_millis(250),
            cache_points: 20_000_000,
            team: None,
        }
    }
}

/// Which index answered: the epoch of its file (see the `pool` module) and
/// its generation. Equal stamps mean equal answers to any query.
pub(crate) type Stamp = (u64, i64);

/// How many runs a query matched, with the stamp of the index it was
/// counted in.
type Matched = (Stamp, usize);

/// What every handler shares: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    /// The index connections.
    pool: pool::Pool,
    series: series::Cache,
    /// How many runs a runs query matched, by query, with the stamp of the
    /// index they were counted in: paging through a long table counts once.
    selections: Mutex<HashMap<String, Matched>>,
    events: broadcast::Sender<events::Event>,
    shutdown: CancellationToken,
    /// The client of the team server, for `/api/v1/team/`.
    team_client: reqwest::Client,
}

impl AppState {
    /// The state for `options`. Opens the index once, so a project that
    /// cannot be opened fails here rather than on the first request.
    pub fn new(options: Options) -> Result<Self, lab_store::Error> {
        let before = pool::Pool::file_now(&options.project);
        let mut store = Store::open(options.project.clone())?;
        store.refresh()?;
        let pool = pool::Pool::new(options.project.clone(), store, before);
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Inner {
                series: series::Cache::new(options.cache_points),
                selections: Mutex::new(HashMap::new()),
                options,
                pool,
                events,
                shutdown: CancellationToken::new(),
                team_client: reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default(),
            }),
        })
    }

    /// The project served.
    #[must_use]
    pub fn project(&self) -> &Project {
        &self.inner.options.project
    }

    /// The team server whose copy of the project the page shows.
    #[must_use]
    pub fn team(&self) -> Option<&TeamSource> {
        self.inner.options.team.as_ref()
    }

    /// Ends live event streams, so a graceful shutdown does not wait for them.
    pub fn shut_down(&self) {
        self.inner.shutdown.cancel();
    }

    /// How many runs a runs query matched at `stamp`, if kept.
    pub(crate) fn cached_total(&self, key: &str, stamp: Stamp) -> Option<usize> {
        let map = self
            .inner
            .selections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, total)| *total)
    }

    /// Keeps how many runs a runs query matched (a few dozen queries at most).
    pub(crate) fn keep_total(&self, key: String, stamp: Stamp, total: usize) {
        let mut map = self
            .inner
            .selections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (s, _)| *s == stamp);
        if map.len() >= 64 {
            map.clear();
        }
        map.insert(key, (stamp, total));
    }

    /// Runs `f` with an index connection on a blocking thread.
    pub(crate) async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    {
        self.with_store_at(|store, _| f(store)).await
    }

    /// Runs `f` with an index connection on a blocking thread, and the epoch
    /// of the index file it has open (for caching what it reads).
    pub(crate) async fn with_store_at<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store, u64) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut lease = state.inner.pool.take(|| state.forget_answers())?;
            let epoch = lease.epoch();
            f(lease.store(), epoch)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("a request's task failed: {e}")))?
    }

    /// Drops what was read from an index file no longer in use.
    fn forget_answers(&self) {
        self.inner.series.clear();
        self.inner
            .selections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// The whole application: `/api/v1/...`, then the page.
pub fn router(state: AppState) -> Router {
    let api = api::routes()
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn(server_timing))
        .fallback(|| async { ApiError::NotFound("no such API route".into()) });
    Router::new()
        .nest("/api/v1", api)
        .merge(assets::routes())
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_mins(1),
        ))
        .with_state(state)
}

/// Refuses API requests without the token, when one is set. The token comes
/// in `Authorization: Bearer …` or as `?token=…` (for links and event streams,
/// which cannot set headers).
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.inner.options.token.as_deref() else {
        return next.run(request).await;
    };
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // Decoded as the page encodes it, so a token with `+`, `/` or `=` works.
    let from_query = request
        .uri()
        .query()
        .and_then(|q| extract::parse_query(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token"))
        .map(|(_, v)| v);
    let given = from_header.map(str::to_owned).or(from_query);
    if given.is_some_and(|g| same(g.as_bytes(), expected.as_bytes())) {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// Says how long the server took to answer, in a `Server-Timing` header
/// (`app;dur=` milliseconds until the response's head was ready), so clients
/// and benchmarks can tell the server's time from the network's.
async fn server_timing(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

/// Compares in time that does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves `state` on `listener` until `shutdown` completes, with the live
/// event watcher running alongside.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let watcher = tokio::spawn(events::watch(state.clone()));
    let stopper = state.clone();
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopper.shut_down();
        })
        .await;
    watcher.abort();
    result
}

/// Listens for Ctrl-C and SIGTERM from the moment it is called (inside the
/// runtime), so a Ctrl-C right after the server says it may be pressed
/// stops the server rather than killing the process; the future completes on
/// the first of them.
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}
