//! The HTTP server: `/metrics` (Prometheus text format), `/ready`, the status pages `/targets`
//! and `/config` ([`status`]), and `POST /reload` when `server.enable_runtime_reload` is on.
//!
//! It runs on the main tokio runtime and stops with the `shutdown` signal, after the sources stopped
//! and the clients flushed, so that a final scrape still sees the last counts.

mod status;

use crate::client::health::ClientHealth;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether lokiship is ready: sources started, and no client failing for longer than its
/// `unhealthy_after`.
#[derive(Default)]
pub struct Readiness {
    started: AtomicBool,
    clients: std::sync::Mutex<Vec<Arc<ClientHealth>>>,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.started.store(ready, Ordering::SeqCst);
    }

    /// Counts `client` in readiness.
    pub fn watch_client(&self, client: Arc<ClientHealth>) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
    }

    /// The clients counted in readiness.
    pub fn clients(&self) -> Vec<Arc<ClientHealth>> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self) -> bool {
        self.why_not().is_none()
    }

    /// `None` when ready; else why not.
    pub fn why_not(&self) -> Option<String> {
        if !self.started.load(Ordering::SeqCst) {
            return Some("not started".into());
        }
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.iter().find_map(|c| {
            let failing = c.failing_for()?;
            (failing > c.unhealthy_after).then(|| {
                format!(
                    "client {} has failed to push for {}s",
                    c.host,
                    failing.as_secs()
                )
            })
        })
    }
}

/// The `/config` page of the config running now: a reload applied in place replaces it.
#[derive(Clone, Default)]
pub struct ConfigPage(Arc<std::sync::RwLock<Arc<str>>>);

impl ConfigPage {
    /// Shows `config_text` (the config file as read) with its secrets masked.
    pub fn set(&self, config_text: &str) {
        let page = status::config_page(&crate::config::expand::mask_secrets(config_text));
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = page.into();
    }

    fn get(&self) -> Arc<str> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Binds `addr` and serves until `shutdown` fires. Returns the bound address. `config_page` is
/// what `/config` shows; `reload`, where `POST /reload` sends its requests (none: `/reload` is
/// not served).
pub async fn serve(
    addr: SocketAddr,
    ready: Arc<Readiness>,
    config_page: ConfigPage,
    reload: Option<crate::reload::Requests>,
    shutdown: crate::shutdown::StopSignal,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let targets_ready = ready.clone();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/targets",
            get(move || {
                let ready = targets_ready.clone();
                async move { Html(status::targets_page(&ready)) }
            }),
        )
        .route(
            "/config",
            get(move || {
                let page = config_page.get();
                async move { Html(page.to_string()) }
            }),
        )
        .route(
            "/ready",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready.why_not() {
                        None => (StatusCode::OK, "ready\n".to_string()),
                        Some(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        ),
                    }
                }
            }),
        )
        .route(
            "/",
            get(|| async { "lokiship: see /targets, /config, /metrics and /ready\n" }),
        );
    let app = match reload {
        Some(requests) => app.route(
            "/reload",
            post(move || {
                let requests = requests.clone();
                async move { reload_answer(crate::reload::request(&requests).await) }
            }),
        ),
        None => app,
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let stop = async move { shutdown.stopped().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok((bound, handle))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

/// `POST /reload`'s answer: 200 once the new config is applied (the parts restart with it), 400
/// with the reason when it is refused (the running config is kept).
fn reload_answer(result: Result<(), String>) -> (StatusCode, String) {
    match result {
        Ok(()) => (StatusCode::OK, "config reloaded\n".into()),
        Err(why) => (
            StatusCode::BAD_REQUEST,
            format!("config not reloaded (the running config is kept): {why}\n"),
        ),
    }
}
