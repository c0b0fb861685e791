//! `k8s_audit_webhook`: a receiver for kube-apiserver's audit webhook backend
//! (`--audit-webhook-config-file`). The API server POSTs an `audit.k8s.io/v1` `EventList` to the
//! kubeconfig's server URL (any path is taken); each event runs through the job's pipeline as one
//! JSON line, exactly as the same event read from an audit log file.
//!
//! The API server forgets a batch once it got a 2xx, so the answer is 200 only when every event
//! of the request is safe on every client's disk queue or delivered ([`super::hand_over`]);
//! otherwise 503, and the API server retries with its backoff. 400 says why a body is not an
//! EventList, 413 refuses one over `max_request_bytes`, 401 a request without credentials.

mod events;

use super::receiver_auth as auth;
pub use auth::{Credentials, Peer};

use super::hand_over::DurableHandOver;
use crate::entry::Labels;
use crate::pipeline::Processing;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One `k8s_audit_webhook` scrape config, compiled.
pub struct AuditWebhook {
    pub job: String,
    /// Set on every event, before the pipeline.
    pub labels: Labels,
    pub max_request_bytes: usize,
    pub credentials: Credentials,
    pub hand_over: Arc<DurableHandOver>,
    /// Connections and read timeout of its listener.
    pub limits: super::http_receiver::Limits,
}

/// Serves `hook` on `addr` (HTTPS with `tls`) until `stop` fires; returns the bound address and
/// a task that ends once the requests in progress are answered.
pub async fn serve(
    hook: Arc<AuditWebhook>,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: crate::shutdown::StopSignal,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new().fallback(receive).with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let job = hook.job.clone();
    let refused: super::http_receiver::Refused = Arc::new(move |why| count_request(&job, why));
    // Requests in progress are answered (their hand-over ends within its timeout).
    let drain = super::hand_over::STORE_TIMEOUT + Duration::from_secs(5);
    let handle = tokio::spawn(super::http_receiver::serve(
        listener,
        app,
        tls,
        hook.limits,
        stop,
        drain,
        refused,
    ));
    Ok((bound, handle))
}

async fn receive(
    State(hook): State<Arc<AuditWebhook>>,
    Extension(peer): Extension<Peer>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (code, message) = hook.answer(peer, method, &headers, body).await;
    count_request(&hook.job, code.as_str());
    if code.is_success() {
        return (code, "{}\n").into_response();
    }
    tracing::warn!(job = %hook.job, status = code.as_u16(), error = %message, "audit webhook: refused a request");
    let mut response = (code, message + "\n").into_response();
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

impl AuditWebhook {
    /// The status of the answer to a request, and what is wrong when it is not a success.
    async fn answer(
        self: &Arc<Self>,
        peer: Peer,
        method: Method,
        headers: &HeaderMap,
        body: Body,
    ) -> (StatusCode, String) {
        if method != Method::POST {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                "audit events are POSTed".into(),
            );
        }
        match self.credentials.check(peer, headers) {
            Ok(()) => {}
            Err(auth::Refusal::Unauthorized(why)) => return (StatusCode::UNAUTHORIZED, why.into()),
            Err(auth::Refusal::TokenUnreadable(why)) => {
                return (StatusCode::SERVICE_UNAVAILABLE, why)
            }
        }
        let body = match self.read_body(headers, body).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        let lines = match events::event_lines(&body) {
            Ok(lines) => lines,
            Err(why) => return (StatusCode::BAD_REQUEST, why),
        };
        drop(body);
        let count = lines.len() as u64;
        let now = crate::entry::now_ns();
        let entries = lines
            .into_iter()
            .map(|line| Processing::new(self.labels.clone(), line, now))
            .collect();
        match self.hand_over.store(entries).await {
            Ok(()) => {
                crate::metrics::metrics()
                    .os
                    .audit_webhook_events
                    .get_or_create(&crate::metrics::os::JobLabels {
                        job: self.job.clone(),
                    })
                    .inc_by(count);
                (StatusCode::OK, String::new())
            }
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.reason().into()),
        }
    }

    /// The whole body, or 413 when it is over `max_request_bytes` (known from its length before
    /// anything is read when the sender gives one).
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<axum::body::Bytes, (StatusCode, String)> {
        let too_large = || {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is over max_request_bytes ({} bytes)",
                    self.max_request_bytes
                ),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_request_bytes as u64) {
            return Err(too_large());
        }
        match http_body_util::Limited::new(body, self.max_request_bytes)
            .collect()
            .await
        {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err((
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            )),
        }
    }
}

fn count_request(job: &str, code: &str) {
    crate::metrics::metrics()
        .os
        .audit_webhook_requests
        .get_or_create(&crate::metrics::os::JobCodeLabels {
            job: job.into(),
            code: code.into(),
        })
        .inc();
}
