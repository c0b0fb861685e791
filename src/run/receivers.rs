//! The receivers that take data over HTTP (`loki_push_api`, `k8s_audit_webhook`): their listener,
//! limits, TLS and credentials, from their config blocks.

use super::jobs::{hand_over, Context};
use super::listen_addr;
use crate::config::compile::Job;
use crate::metrics::status::{board, ReceiverStatus};
use crate::shutdown::{Part, Shutdown};
use crate::source::receiver_auth::Credentials;
use crate::source::tls_server::ClientCerts;
use anyhow::Context as _;
use std::sync::Arc;

/// A `loki_push_api` receiver for scrape config `index`.
pub(super) async fn start_push(
    ctx: &Context<'_>,
    index: usize,
    job: &Job,
    stop: &Arc<Shutdown>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use crate::config::schema::ClientAuth;
    let sc = &ctx.config.scrape_configs[index];
    let Some(api) = &sc.loki_push_api else {
        anyhow::bail!("job {:?} has no loki_push_api", sc.job_name);
    };
    let context = || format!("job {:?}: loki_push_api", sc.job_name);
    let tls = api.server.http_tls_config.as_ref().filter(|t| t.is_set());
    let tls = tls
        .map(|t| {
            let auth = t.client_auth().map_err(anyhow::Error::msg)?;
            let clients = match auth {
                ClientAuth::None => ClientCerts::NotAsked,
                ClientAuth::IfGiven => ClientCerts::Optional(&t.client_ca_file),
                ClientAuth::Required => ClientCerts::Required(&t.client_ca_file),
            };
            let acceptor = crate::source::tls_server::acceptor(&t.cert_file, &t.key_file, clients)?;
            anyhow::Ok((acceptor, auth != ClientAuth::None))
        })
        .transpose()
        .with_context(|| format!("{}: server.http_tls_config", context()))?;
    let credentials = credentials(
        &api.auth.bearer_token_file,
        tls.as_ref().is_some_and(|(_, verified)| *verified),
        &context,
    )?;
    if credentials.none_required() {
        tracing::info!(job = %sc.job_name, "loki_push_api takes pushes from anyone who can connect (as Promtail's): set auth.bearer_token_file or server.http_tls_config's client certificates to require credentials");
    }
    let receiver = Arc::new(crate::source::push::PushReceiver {
        labels: api
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        use_incoming_timestamp: api.use_incoming_timestamp,
        hand_over: hand_over(ctx, job),
        credentials,
    });
    let addr = listen_addr(&api.server)?;
    let limits = receiver_limits(
        api.server.http_server_read_timeout,
        api.server.http_listen_conn_limit,
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    let acceptor = tls.map(|(acceptor, _)| acceptor);
    let (bound, handle) =
        crate::source::push::serve(receiver, addr, acceptor, limits, stop.signal(Part::Sources))
            .await
            .with_context(|| format!("{}: cannot listen on {addr}", context()))?;
    tracing::info!(job = %sc.job_name, address = %bound, "push receiver listening ({scheme})");
    board().add_receiver(ReceiverStatus {
        job: sc.job_name.clone(),
        kind: "loki_push_api".into(),
        // As before HTTPS existed here: the bare address for plain HTTP.
        address: if scheme == "https" {
            format!("https://{bound}")
        } else {
            bound.to_string()
        },
    });
    Ok(handle)
}

/// The credentials a receiver asks for: the token of `token_file` (checked readable now, re-read
/// at each request), or a client certificate when the TLS handshake verifies them.
fn credentials(
    token_file: &str,
    client_certificates: bool,
    context: &dyn Fn() -> String,
) -> anyhow::Result<Credentials> {
    if !token_file.is_empty() {
        std::fs::metadata(token_file).with_context(|| {
            format!(
                "{}: cannot read bearer_token_file {token_file:?}",
                context()
            )
        })?;
    }
    Ok(Credentials {
        bearer_token_file: (!token_file.is_empty()).then(|| token_file.to_string()),
        client_certificates,
    })
}

/// A `k8s_audit_webhook` receiver for scrape config `index`.
pub(super) async fn start_audit_webhook(
    ctx: &Context<'_>,
    index: usize,
    job: &Job,
    stop: &Arc<Shutdown>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use crate::source::audit_webhook::{self as webhook, AuditWebhook};
    let sc = &ctx.config.scrape_configs[index];
    let Some(config) = &sc.k8s_audit_webhook else {
        anyhow::bail!("job {:?} has no k8s_audit_webhook", sc.job_name);
    };
    let context = || format!("job {:?}: k8s_audit_webhook", sc.job_name);
    let tls = config.server.tls_config.as_ref();
    let acceptor = tls
        .map(|t| {
            let clients = if t.client_ca_file.is_empty() {
                ClientCerts::NotAsked
            } else {
                ClientCerts::Optional(&t.client_ca_file)
            };
            crate::source::tls_server::acceptor(&t.cert_file, &t.key_file, clients)
        })
        .transpose()
        .with_context(|| format!("{}: tls_config", context()))?;
    let credentials = credentials(
        &config.auth.bearer_token_file,
        tls.is_some_and(|t| !t.client_ca_file.is_empty()),
        &context,
    )?;
    if credentials.none_required() {
        tracing::warn!(job = %sc.job_name, "k8s_audit_webhook takes events from anyone who can connect: set auth.bearer_token_file or server.tls_config.client_ca_file");
    }
    let hook = Arc::new(AuditWebhook {
        job: sc.job_name.clone(),
        labels: config
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        max_request_bytes: config
            .max_request_bytes
            .map_or(64 << 20, |b| usize::try_from(b.0).unwrap_or(usize::MAX)),
        credentials,
        hand_over: hand_over(ctx, job),
        limits: receiver_limits(
            config.server.http_server_read_timeout,
            config.server.http_listen_conn_limit,
        ),
    });
    let host = config.server.http_listen_address.as_str();
    let port = config
        .server
        .http_listen_port
        .unwrap_or(crate::config::schema::DEFAULT_WEBHOOK_PORT);
    let addr = super::parse_listen_addr(host, port)?;
    let (bound, handle) = webhook::serve(hook, addr, acceptor, stop.signal(Part::Sources))
        .await
        .with_context(|| format!("{}: cannot listen on {addr}", context()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(job = %sc.job_name, address = %bound, "audit webhook receiver listening ({scheme})");
    board().add_receiver(ReceiverStatus {
        job: sc.job_name.clone(),
        kind: "k8s_audit_webhook".into(),
        address: format!("{scheme}://{bound}"),
    });
    Ok(handle)
}

/// A receiver's limits from Promtail's server keys; unset ones keep the safe defaults.
fn receiver_limits(
    read_timeout: Option<crate::config::values::GoDuration>,
    conn_limit: Option<usize>,
) -> crate::source::http_receiver::Limits {
    let defaults = crate::source::http_receiver::Limits::default();
    crate::source::http_receiver::Limits {
        // 0 is Promtail's "no limit".
        max_connections: match conn_limit {
            Some(0) => tokio::sync::Semaphore::MAX_PERMITS,
            Some(n) => n,
            None => defaults.max_connections,
        },
        read_timeout: read_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(defaults.read_timeout),
    }
}
