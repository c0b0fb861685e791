//! The few calls of the Docker Engine API the discovery makes, over the daemon's unix socket or
//! TCP (plain HTTP/1.1, by hyper): a ping to agree on the API version (the daemon's, when older
//! than the 1.43 Promtail asks for), the container and network lists, a container's inspection
//! (whether it has a TTY) and its log stream.

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::time::Duration;

/// The API version asked for when the daemon speaks it (what Promtail 3.6 asks for).
const NEWEST: (u32, u32) = (1, 43);
/// A list or an inspection larger than this is refused, not held.
const MAX_JSON: usize = 64 << 20;
/// A request that has no answer in this time fails (the log stream's body excepted).
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Daemon {
    Unix(PathBuf),
    Tcp(String),
}

impl Daemon {
    /// `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub fn parse(host: &str) -> Result<Self, String> {
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("host {host:?}: no socket path"));
            }
            return Ok(Daemon::Unix(PathBuf::from(path)));
        }
        let rest = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("host {host:?}: expected unix:///path/to/docker.sock, tcp://host:port or http://host:port")
            })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("host {host:?}: expected tcp://host:port"));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:2375")
        };
        Ok(Daemon::Tcp(with_port))
    }
}

/// A client of one daemon.
pub struct Api {
    daemon: Daemon,
    /// `Authorization` header value, from the config's basic auth or bearer token.
    authorization: Option<String>,
    version: String,
}

impl Api {
    pub fn new(daemon: Daemon, authorization: Option<String>) -> Self {
        Self {
            daemon,
            authorization,
            version: format!("{}.{}", NEWEST.0, NEWEST.1),
        }
    }

    /// Pings the daemon and takes its API version if older than ours.
    pub async fn negotiate(&mut self) -> Result<(), String> {
        let response = self.request(hyper::Method::HEAD, "/_ping").await?;
        if !response.status().is_success() {
            return Err(format!("ping answered {}", response.status()));
        }
        let theirs = response
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_version);
        if let Some(theirs) = theirs.filter(|v| *v < NEWEST) {
            self.version = format!("{}.{}", theirs.0, theirs.1);
        }
        Ok(())
    }

    /// `GET /v<version><path>` answered with JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let response = tokio::time::timeout(TIMEOUT, self.versioned(path))
            .await
            .map_err(|_| format!("GET {path}: no answer in {TIMEOUT:?}"))??;
        let status = response.status();
        let body = tokio::time::timeout(TIMEOUT, read_limited(response.into_body(), MAX_JSON))
            .await
            .map_err(|_| format!("GET {path}: the answer did not end in {TIMEOUT:?}"))??;
        if !status.is_success() {
            return Err(format!(
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)]).trim()
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not the JSON expected: {e}"))
    }

    /// A container's logs from `since` (Unix seconds, with a fraction), `follow`ed or to their
    /// end: the body streams.
    pub async fn logs(&self, id: &str, since: &str, follow: bool) -> Result<Incoming, String> {
        let follow = u8::from(follow);
        let path = format!(
            "/containers/{id}/logs?follow={follow}&since={since}&stderr=1&stdout=1&tail=&timestamps=1"
        );
        let response = tokio::time::timeout(TIMEOUT, self.versioned(&path))
            .await
            .map_err(|_| format!("logs of {id}: no answer in {TIMEOUT:?}"))??;
        if !response.status().is_success() {
            let status = response.status();
            let body = read_limited(response.into_body(), 4096)
                .await
                .unwrap_or_default();
            return Err(format!(
                "logs of {id}: {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(response.into_body())
    }

    async fn versioned(&self, path: &str) -> Result<hyper::Response<Incoming>, String> {
        let full = format!("/v{}{path}", self.version);
        self.request(hyper::Method::GET, &full).await
    }

    async fn request(
        &self,
        method: hyper::Method,
        path: &str,
    ) -> Result<hyper::Response<Incoming>, String> {
        let (host, mut sender) = match &self.daemon {
            Daemon::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
                ("docker".to_string(), handshake(stream).await?)
            }
            Daemon::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(|e| format!("cannot connect to {address}: {e}"))?;
                (address.clone(), handshake(stream).await?)
            }
        };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(
                hyper::header::USER_AGENT,
                concat!("lokiship/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(auth) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("{path}: {e}"))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| format!("{path}: {e}"))
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// An HTTP/1.1 connection over `stream`, driven by a task of its own until the answer is read.
async fn handshake<S>(stream: S) -> Result<Sender, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A body read whole, refused past `limit` bytes.
async fn read_limited(mut body: Incoming, limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the answer: {e}"))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(format!("an answer over {limit} bytes"));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_as_docker_names_them() {
        assert_eq!(
            Daemon::parse("unix:///var/run/docker.sock").unwrap(),
            Daemon::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Daemon::parse("tcp://10.0.0.1:2376").unwrap(),
            Daemon::Tcp("10.0.0.1:2376".into())
        );
        assert_eq!(
            Daemon::parse("http://docker").unwrap(),
            Daemon::Tcp("docker:2375".into())
        );
        assert!(Daemon::parse("/var/run/docker.sock").is_err());
        assert!(Daemon::parse("unix://").is_err());
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert!(parse_version("x").is_none());
    }
}
