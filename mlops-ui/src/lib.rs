//! The mlops web UI: what a data scientist opens every day, over any store.
//!
//! [`Ui`] holds a [`Tracker`], a [`Registry`], the store's [`Datasets`] and its policy
//! [`DecisionLog`](mlops_policy::DecisionLog); [`Ui::router`] is an axum [`Router`] with
//!
//! - **pages** (server-rendered HTML, no JavaScript framework, no CDN: the stylesheet is compiled
//!   in): experiments → runs table (columns, server-side sort, MLflow's filter grammar, cursor
//!   paging, group by a param), run (params, metrics, tags, dataset inputs, parent and child
//!   runs, artifact browser with previews, the model versions it produced), metric charts
//!   (several runs, step or time, log scale, smoothing; histories downsampled on the server),
//!   compare (diff table, overlaid charts, parallel coordinates), models → versions → lineage
//!   graph, signature and policy decisions with the chain's verification, datasets → versions,
//!   statistics and schema diffs, and pipelines (steps, cache hits, durations, cost);
//! - **a JSON API** under `/api/` that returns the same data ([`api`] documents each endpoint).
//!
//! The UI is **read-only**: every mutation of a registry goes through the CLI, the SDK or a
//! `Governed` registry, whose decisions the UI shows.
//!
//! ## Security
//!
//! With [`Ui::with_token`], every page and API call needs the token: `Authorization: Bearer`
//! for the API, or the cookie the login page sets. Every string a user controls is escaped (the
//! templates are [`maud`]'s, which escape by construction), and the artifact browser reads only
//! paths that [`ArtifactPath`](mlops_core::ArtifactPath) accepts, which has no `..` or absolute
//! form. A malformed filter or a missing object is a readable page (400 or 404), never a 500.
//!
//! ## Example: mount the UI in an axum app
//!
//! ```no_run
//! # async fn demo() -> mlops_core::Result<()> {
//! use std::sync::Arc;
//! use mlops_storage::{MemoryStore, StoreRegistry, StoreTracker};
//!
//! let store: Arc<dyn mlops_core::Store> = Arc::new(MemoryStore::new());
//! let tracker = Arc::new(StoreTracker::open(store.clone(), Default::default()).await?);
//! let registry = Arc::new(StoreRegistry::new(store.clone()));
//! let ui = mlops_ui::Ui::new(tracker, registry).with_store(store).with_base_path("/mlops")?;
//! let app = axum::Router::new().nest("/mlops", ui.router());
//! # let _ = app; Ok(()) }
//! ```

pub mod api;
mod auth;
mod chart;
mod error;
mod pages;
mod view;

use std::sync::Arc;

use axum::Router;
use mlops_core::secret::SecretString;
use mlops_core::{Registry, Store, Tracker};
use mlops_storage::dataset::Datasets;

pub use chart::{Point, downsample};
pub use error::UiError;

/// Points a metric chart keeps after downsampling unless `points=` says otherwise.
pub const DEFAULT_CHART_POINTS: usize = 1000;

/// The web UI over one tracker, registry and (optionally) store.
#[derive(Clone)]
pub struct Ui {
    state: Arc<State>,
}

#[derive(Clone)]
pub(crate) struct State {
    pub(crate) tracker: Arc<dyn Tracker>,
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) datasets: Option<Datasets>,
    pub(crate) token: Option<SecretString>,
    pub(crate) max_preview_bytes: usize,
    /// Where the router is mounted (`""` or `/prefix`), put in front of every link.
    pub(crate) base: String,
    /// Host names (without port) the UI answers to; empty: all.
    pub(crate) allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("tracker", &self.state.tracker)
            .field("registry", &self.state.registry)
            .field("has_store", &self.state.store.is_some())
            .field("token", &self.state.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Ui {
    /// A UI over `tracker` and `registry`; datasets and the decision log need
    /// [`with_store`](Self::with_store).
    pub fn new(tracker: Arc<dyn Tracker>, registry: Arc<dyn Registry>) -> Self {
        Self {
            state: Arc::new(State {
                tracker,
                registry,
                store: None,
                datasets: None,
                token: None,
                max_preview_bytes: 256 * 1024,
                base: String::new(),
                allowed_hosts: Vec::new(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut State)) -> Self {
        f(Arc::make_mut(&mut self.state));
        self
    }

    /// Shows the store's datasets and its policy decision log.
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        self.edit(|s| {
            s.datasets = Some(Datasets::new(store.clone()));
            s.store = Some(store);
        })
    }

    /// Requires `token` on every page and API call (bearer header or the login cookie).
    pub fn with_token(self, token: SecretString) -> Self {
        self.edit(|s| s.token = Some(token))
    }

    /// Answers only requests whose `Host` header names one of `hosts` (any port), and `421
    /// Misdirected Request` to others: without it, a web page elsewhere can re-point its own
    /// domain at 127.0.0.1 (DNS rebinding) and read the UI of a user who visits it. `mlops ui`
    /// sets `localhost`, `127.0.0.1` and `[::1]` plus its `--host`.
    pub fn with_allowed_hosts(self, hosts: impl IntoIterator<Item = String>) -> Self {
        let hosts: Vec<String> = hosts.into_iter().collect();
        self.edit(|s| s.allowed_hosts = hosts)
    }

    /// Largest artifact shown inline in the artifact browser (default 256 KiB; larger ones
    /// are offered for download).
    pub fn with_max_preview_bytes(self, bytes: usize) -> Self {
        self.edit(|s| s.max_preview_bytes = bytes)
    }

    /// Where the router is mounted in a larger app (`/mlops`): every link and redirect starts
    /// with it. A path that is not `/segment[/segment…]` of URL-safe characters is
    /// `InvalidArgument`.
    pub fn with_base_path(self, base: &str) -> mlops_core::Result<Self> {
        let base = base.trim_end_matches('/');
        let valid = base.is_empty()
            || (base.starts_with('/')
                && base[1..].split('/').all(|seg| {
                    !seg.is_empty()
                        && seg != ".."
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                }));
        if !valid {
            return Err(mlops_core::Error::invalid(
                "base path",
                format!("{base:?} is not a URL path like /mlops"),
            ));
        }
        let base = base.to_string();
        Ok(self.edit(|s| s.base = base))
    }

    /// The router: pages at `/`, the JSON API under `/api/`, the stylesheet at
    /// `/static/mlops.css`. To mount it under a prefix, `nest` it there and name the prefix
    /// with [`with_base_path`](Self::with_base_path).
    pub fn router(&self) -> Router {
        let routes = pages::routes().merge(api::routes());
        auth::guard(routes, self.state.clone()).with_state(self.state.clone())
    }
}
