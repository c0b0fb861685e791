//! The sockets of a syslog job: a TCP (or TLS) listener with a task per connection, or a UDP
//! socket. Both cut what arrives into messages, read them, and send them to the job's shipper in
//! batches; a full shipper queue stops the reading (backpressure onto the senders).

use super::framing::Framer;
use super::message::{self, Outcome};
use super::peer::{Lookup, Peer};
use super::{SyslogJob, TlsFiles};
use crate::shutdown::StopSignal;
use crate::source::tls_server::ClientCerts;
use anyhow::Context as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

/// One message on its way to the shipper.
pub struct Received {
    pub peer: Arc<Peer>,
    pub outcome: Outcome,
    pub received_ns: i64,
}

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;
/// A TLS client gets this long for its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams taken in one go before the batch goes to the shipper.
const DATAGRAMS_PER_BATCH: usize = 256;

/// Listens on TCP; the task ends when `stop` fired and every connection handed over its messages.
pub async fn tcp(
    job: Arc<SyslogJob>,
    tx: Sender<Vec<Received>>,
    stop: StopSignal,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let tls = match &job.tls {
        Some(files) => {
            Some(tls_acceptor(files).with_context(|| format!("job {:?}: tls_config", job.job))?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(job.listen_address)
        .await
        .with_context(|| {
            format!(
                "job {:?}: syslog cannot listen on {}",
                job.job, job.listen_address
            )
        })?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let lookup = Arc::new(Lookup::default());
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.stopped() => break,
            };
            let (stream, from) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: give the open ones time to close.
                    tracing::warn!(job = %job.job, error = %e, "syslog: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            if connections.len() >= job.max_connections {
                refused("limit");
                tracing::warn!(job = %job.job, peer = %from, limit = job.max_connections,
                    "syslog: too many connections, refusing one (max_connections)");
                continue;
            }
            let conn = Connection {
                job: job.clone(),
                tx: tx.clone(),
                stop: stop.clone(),
                _open: OpenGuard::new(),
            };
            connections.spawn(conn.serve(stream, from.ip(), tls.clone(), lookup.clone()));
        }
        while connections.join_next().await.is_some() {}
    });
    Ok((address, task))
}

/// An open connection in the `lokiship_syslog_connections` gauge.
struct OpenGuard;

impl OpenGuard {
    fn new() -> Self {
        crate::metrics::metrics().os.syslog_connections.inc();
        Self
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        crate::metrics::metrics().os.syslog_connections.dec();
    }
}

struct Connection {
    job: Arc<SyslogJob>,
    tx: Sender<Vec<Received>>,
    stop: StopSignal,
    _open: OpenGuard,
}

impl Connection {
    async fn serve(
        self,
        stream: tokio::net::TcpStream,
        ip: IpAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        lookup: Arc<Lookup>,
    ) {
        let _ = stream.set_nodelay(true);
        let peer = match lookup.cached(ip) {
            Some(peer) => peer,
            None => match tokio::task::spawn_blocking(move || lookup.peer(ip)).await {
                Ok(peer) => peer,
                Err(_) => return,
            },
        };
        match tls {
            None => self.read(stream, peer).await,
            Some(acceptor) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => self.read(stream, peer).await,
                    Ok(Err(e)) => {
                        refused("tls");
                        tracing::warn!(job = %self.job.job, peer = %peer.ip, error = %e, "syslog: TLS handshake failed");
                    }
                    Err(_) => {
                        refused("tls");
                        tracing::warn!(job = %self.job.job, peer = %peer.ip, "syslog: TLS handshake timed out");
                    }
                }
            }
        }
    }

    /// Reads messages until the peer closes, goes idle for `idle_timeout`, or the receiver stops.
    async fn read(self, mut stream: impl AsyncRead + Unpin, peer: Arc<Peer>) {
        let job = &self.job;
        let mut framer = Framer::new(job.max_message_length);
        loop {
            let buf = framer.buffer();
            buf.reserve(READ_SIZE);
            let read = tokio::select! {
                r = tokio::time::timeout(job.idle_timeout, stream.read_buf(buf)) => r,
                _ = self.stop.stopped() => Ok(Ok(0)),
            };
            let eof = match read {
                Ok(Ok(0)) => true,
                Ok(Ok(n)) => {
                    crate::metrics::metrics().os.syslog_bytes.inc_by(n as u64);
                    false
                }
                Ok(Err(e)) => {
                    tracing::debug!(job = %job.job, peer = %peer.ip, error = %e, "syslog: read failed");
                    true
                }
                Err(_) => {
                    refused("idle_timeout");
                    tracing::debug!(job = %job.job, peer = %peer.ip, "syslog: closing an idle connection");
                    true
                }
            };
            let batch = messages(&mut framer, eof, &peer, job);
            if !batch.is_empty() && self.tx.send(batch).await.is_err() {
                return;
            }
            if eof {
                return;
            }
        }
    }
}

/// Listens on UDP; the task ends when `stop` fired and what was received was handed over.
pub async fn udp(
    job: Arc<SyslogJob>,
    tx: Sender<Vec<Received>>,
    stop: StopSignal,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = tokio::net::UdpSocket::bind(job.listen_address)
        .await
        .with_context(|| {
            format!(
                "job {:?}: syslog cannot listen on {} (udp)",
                job.job, job.listen_address
            )
        })?;
    let address = socket.local_addr()?;
    let task = tokio::spawn(async move {
        let lookup = Arc::new(Lookup::default());
        let mut buf = vec![0u8; 65_536];
        loop {
            let first = tokio::select! {
                r = socket.recv_from(&mut buf) => r,
                _ = stop.stopped() => break,
            };
            let mut batch = Vec::new();
            let mut next = first;
            for _ in 0..DATAGRAMS_PER_BATCH {
                let Ok((n, from)) = next else { break };
                crate::metrics::metrics().os.syslog_bytes.inc_by(n as u64);
                let peer = peer_of(&lookup, from.ip()).await;
                let mut framer = Framer::for_datagram(job.max_message_length);
                framer.buffer().extend_from_slice(&buf[..n]);
                batch.extend(messages(&mut framer, true, &peer, &job));
                next = socket.try_recv_from(&mut buf);
            }
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    Ok((address, task))
}

/// The connection labels of a UDP sender: from the cache, or looked up off the async workers.
async fn peer_of(lookup: &Arc<Lookup>, ip: IpAddr) -> Arc<Peer> {
    if let Some(peer) = lookup.cached(ip) {
        return peer;
    }
    let l = lookup.clone();
    tokio::task::spawn_blocking(move || l.peer(ip))
        .await
        .unwrap_or_else(|_| {
            Arc::new(Peer {
                ip: ip.to_string(),
                hostname: None,
            })
        })
}

/// The messages complete in `framer`, read and counted.
fn messages(framer: &mut Framer, eof: bool, peer: &Arc<Peer>, job: &SyslogJob) -> Vec<Received> {
    let m = &crate::metrics::metrics().os;
    let received_ns = crate::entry::now_ns();
    let now = chrono::Local::now();
    let bad_lengths = framer.bad_lengths;
    let mut out = Vec::new();
    framer.frames(eof, |frame| {
        m.syslog_entries.inc();
        let mut bytes = frame.bytes;
        if frame.truncated {
            m.syslog_truncated.inc();
            // A cut through a character is the cut's doing, not the sender's.
            if let Err(e) = std::str::from_utf8(bytes) {
                if e.error_len().is_none() {
                    bytes = &bytes[..e.valid_up_to()];
                }
            }
        }
        let text = String::from_utf8_lossy(bytes);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            m.syslog_invalid_utf8.inc();
        }
        let outcome = message::parse(&text, &job.options, now);
        match &outcome {
            Outcome::Empty => {
                m.syslog_empty_messages.inc();
                return;
            }
            Outcome::Unparsed(_) => {
                m.syslog_parse_errors.inc();
                note_unparsed(job, peer);
            }
            Outcome::Message(_) => {}
        }
        out.push(Received {
            peer: peer.clone(),
            outcome,
            received_ns,
        });
    });
    if framer.bad_lengths > bad_lengths {
        m.syslog_parse_errors
            .inc_by(framer.bad_lengths - bad_lengths);
        tracing::warn!(job = %job.job, peer = %peer.ip,
            "syslog: an octet-counting length is not a number; reading the rest of the connection as lines");
    }
    out
}

/// Logs an unparsed message at most once a minute, for all jobs together (a broken sender sends thousands).
fn note_unparsed(job: &SyslogJob, peer: &Peer) {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let Ok(mut last) = LAST.lock() else { return };
    if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(Instant::now());
    tracing::warn!(job = %job.job, peer = %peer.ip,
        "syslog: a message is neither RFC 5424 nor RFC 3164; shipped as it came, without message labels (counted in promtail_syslog_target_parsing_errors_total; logged once a minute)");
}

fn refused(reason: &str) {
    crate::metrics::metrics()
        .os
        .syslog_refused
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: reason.into(),
        })
        .inc();
}

fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let clients = if files.ca_file.is_empty() {
        ClientCerts::NotAsked
    } else {
        ClientCerts::Required(&files.ca_file)
    };
    crate::source::tls_server::acceptor(&files.cert_file, &files.key_file, clients)
}
