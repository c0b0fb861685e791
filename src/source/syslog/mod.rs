//! `syslog`: a receiver for syslog senders (rsyslog, syslog-ng, network gear), as Promtail's.
//!
//! A job listens on one address, over TCP (plain or TLS, RFC 6587 octet counting or LF framing,
//! see [`framing`]) or UDP (one or more LF-separated messages per datagram). Each message is read
//! as RFC 5424 or RFC 3164 ([`message`]) into a line, its timestamp and Promtail's meta labels —
//! `__syslog_connection_ip_address`, `__syslog_connection_hostname` ([`peer`]),
//! `__syslog_message_{severity,facility,hostname,app_name,proc_id,msg_id}` and, with
//! `label_structured_data`, `__syslog_message_sd_<id>_<name>` — for `relabel_configs`; then the
//! job's pipeline, and the clients ([`ship`]).
//!
//! Syslog has no acknowledgement: a TCP sender forgets a message once written. So what arrives
//! goes to every client's disk queue at once (fsync'd; memory for a client with `wal.enabled:
//! false`), as a push receiver's entries do. When the clients have no room, the receiver stops
//! reading: TCP senders queue on their side (rsyslog's action queue); UDP datagrams wait in the
//! kernel's socket buffer and are dropped there when it is full — UDP cannot do better.

pub mod framing;
mod listen;
pub mod message;
pub mod peer;
mod rfc3164;
mod ship;

use crate::entry::sink::EntrySink;
use crate::pipeline::Pipeline;
use crate::shutdown::StopSignal;
use crate::source::relabel::Relabel;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Promtail's default `idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Promtail's default `max_message_length`.
pub const DEFAULT_MAX_MESSAGE_LENGTH: usize = 8192;
/// lokiship's default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `tls_config` of a TCP receiver: its certificate, and the CA that client certificates need.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
    /// Clients must present a certificate this CA signed; any client when empty.
    pub ca_file: String,
}

/// One `syslog` scrape config, compiled.
pub struct SyslogJob {
    pub job: String,
    pub listen_address: SocketAddr,
    pub protocol: Protocol,
    pub idle_timeout: Duration,
    pub max_message_length: usize,
    pub max_connections: usize,
    pub options: message::Options,
    pub use_incoming_timestamp: bool,
    pub labels: Vec<(String, String)>,
    pub relabel: Vec<Relabel>,
    pub pipeline: Arc<Pipeline>,
    pub tls: Option<TlsFiles>,
}

/// A running receiver: its address, and a task that ends once it stopped and handed over all it
/// received.
pub struct Running {
    pub address: SocketAddr,
    pub done: tokio::task::JoinHandle<()>,
}

/// Starts `job`'s listener; it stops when `stop` fires.
pub async fn serve(
    job: SyslogJob,
    sink: Arc<dyn EntrySink>,
    stop: StopSignal,
) -> anyhow::Result<Running> {
    let job = Arc::new(job);
    let (tx, rx) = tokio::sync::mpsc::channel(ship::QUEUE_BATCHES);
    let shipper = tokio::spawn(ship::run(job.clone(), rx, sink, stop.clone()));
    let (address, listener) = match job.protocol {
        Protocol::Tcp => listen::tcp(job.clone(), tx, stop).await?,
        Protocol::Udp => listen::udp(job.clone(), tx, stop).await?,
    };
    let done = tokio::spawn(async move {
        let _ = listener.await;
        let _ = shipper.await;
    });
    Ok(Running { address, done })
}
