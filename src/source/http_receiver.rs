//! The HTTP server of the receivers that accept data (`loki_push_api`, `k8s_audit_webhook`), with
//! the limits every such listener needs against slow and abusive clients:
//!
//! - at most `max_connections` at once; the others wait in the kernel's backlog, so a flood of
//!   idle connections cannot exhaust the node's descriptors or memory;
//! - a request's headers must arrive within `read_timeout` (hyper closes the connection), and its
//!   body within `read_timeout` of the request's start, as Go's `ReadTimeout` that Promtail's
//!   `server.http_server_read_timeout` sets: a client trickling a byte a second holds its
//!   connection that long, no longer;
//! - a TLS handshake within [`HANDSHAKE_TIMEOUT`].
//!
//! A connection the limits end is counted in `lokiship_receiver_refused_total{job,reason}` by the
//! caller's `refused` callback.

use axum::body::Body;
use axum::extract::Extension;
use axum::Router;
use http_body::Frame;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A TLS handshake that takes longer is given up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a receiver's listener is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub read_timeout: Duration,
}

impl Default for Limits {
    /// 256 connections; 30 s to read a request (Promtail's `http_server_read_timeout`).
    fn default() -> Self {
        Self {
            max_connections: 256,
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// What a request's connection showed, for the handlers (an [`Extension`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer {
    /// The TLS handshake verified a client certificate against the client CA.
    pub verified_certificate: bool,
}

/// Why a connection was ended by the limits.
pub type Refused = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Accepts connections on `listener` and serves `app` on each (over TLS with `tls`) until `stop`
/// fires; then waits (up to `drain`) for the requests in progress to be answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    stop: crate::shutdown::StopSignal,
    drain: Duration,
    refused: Refused,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let app = app.layer(axum::middleware::map_request(move |request| async move {
        with_body_deadline(request, limits.read_timeout)
    }));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            _ = stop.stopped() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most often: wait rather than spin.
                tracing::warn!(error = %e, "receiver: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (app, tls, watcher, refused) = (
            app.clone(),
            tls.clone(),
            graceful.watcher(),
            refused.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, Peer::default(), app, watcher, limits).await,
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
                    else {
                        refused("tls_handshake_failed");
                        return;
                    };
                    let peer = Peer {
                        verified_certificate: stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .is_some_and(|c| !c.is_empty()),
                    };
                    serve_connection(stream, peer, app, watcher, limits).await;
                }
            }
        });
    }
    let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
}

async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
    limits: Limits,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app.layer(Extension(peer)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let _ = watcher.watch(connection).await;
}

/// The request with a body that fails once `timeout` has passed since now (the headers' end).
fn with_body_deadline(
    request: axum::extract::Request,
    timeout: Duration,
) -> axum::extract::Request {
    request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        })
    })
}

/// A body that errors when its deadline passes before its end.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the request body did not arrive within the read timeout (server.http_server_read_timeout)"
)]
struct ReadTimeout;

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(ReadTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
