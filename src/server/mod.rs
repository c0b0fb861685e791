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
///
/// Masked or not, a config says which files are read, where Loki is and who may push: the page is
/// shown to requests from the node itself (loopback) only, unless `server.config_page_remote`.
#[derive(Clone, Default)]
pub struct ConfigPage {
    page: Arc<std::sync::RwLock<Arc<str>>>,
    remote: Arc<AtomicBool>,
}

impl ConfigPage {
    /// Shows `config_text` (the config file as read) with its secrets masked.
    pub fn set(&self, config_text: &str) {
        let page = status::config_page(&crate::config::expand::mask_secrets(config_text));
        *self.page.write().unwrap_or_else(|e| e.into_inner()) = page.into();
    }

    /// Whether requests from other hosts see the page too (`server.config_page_remote`).
    pub fn allow_remote(&self, yes: bool) {
        self.remote.store(yes, Ordering::Relaxed);
    }

    /// The page for a request from `peer`, or why not.
    fn for_peer(&self, peer: std::net::IpAddr) -> Result<Arc<str>, &'static str> {
        if !peer.is_loopback() && !self.remote.load(Ordering::Relaxed) {
            return Err("/config is shown to requests from this host only; set server.config_page_remote: true to show it to others\n");
        }
        Ok(self.page.read().unwrap_or_else(|e| e.into_inner()).clone())
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
    let app = router(ready, config_page, reload);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let stop = async move { shutdown.stopped().await };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok((bound, handle))
}

/// The server's routes.
fn router(
    ready: Arc<Readiness>,
    config_page: ConfigPage,
    reload: Option<crate::reload::Requests>,
) -> Router {
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
            get(
                move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| {
                    let page = config_page.for_peer(peer.ip());
                    async move {
                        match page {
                            Ok(page) => Html(page.to_string()).into_response(),
                            Err(why) => (StatusCode::FORBIDDEN, why).into_response(),
                        }
                    }
                },
            ),
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
    app
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// `/config` as a request from `peer` gets it: status and body.
    async fn config_from(page: &ConfigPage, peer: &str) -> (StatusCode, String) {
        let app = router(Arc::new(Readiness::default()), page.clone(), None);
        let mut request = axum::http::Request::get("/config")
            .body(axum::body::Body::empty())
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_config_page_is_for_this_host_unless_allowed_for_others() {
        let page = ConfigPage::default();
        page.set("clients:\n  - url: http://loki:3100/loki/api/v1/push\n");
        for local in ["127.0.0.1:5000", "[::1]:5000"] {
            let (status, body) = config_from(&page, local).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains("loki:3100"), "{body}");
        }
        let (status, body) = config_from(&page, "10.1.2.3:5000").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("config_page_remote") && !body.contains("loki:3100"));
        page.allow_remote(true);
        assert_eq!(config_from(&page, "10.1.2.3:5000").await.0, StatusCode::OK);
    }
}
