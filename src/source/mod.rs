//! Sources of log lines. Each emits [`crate::entry::Entry`]s whose [`ack::Ack`] moves the source's
//! position once the clients delivered them.

pub mod audit_webhook;
pub mod cursor;
pub mod docker;
pub mod file;
pub mod hand_over;
pub mod http_receiver;
pub mod journal;
pub mod kubernetes;
pub mod push;
pub mod receiver_auth;
pub mod relabel;
pub mod stdin;
pub mod syslog;
pub mod targets;
pub mod tls_server;

/// This host's name as Promtail takes it for `__host__` and the pods of its node: `HOSTNAME`, else the kernel's.
pub fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A valid label name from any text: every character but `[a-zA-Z0-9_]` becomes `_` (Prometheus'
/// `strutil.SanitizeLabelName`, which Kubernetes meta labels use; syslog structured-data ids get
/// it too, where Promtail replaces only `@` and makes names Loki refuses).
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `host:port`, an IPv6 host in brackets (Go's `net.JoinHostPort`): the `__address__` of
/// discovered targets.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
