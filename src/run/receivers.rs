//! The receivers a run starts: `loki_push_api` servers and `syslog` listeners, each named on the
//! status page.

use super::listen_addr;
use crate::config::compile::Job;
use crate::config::schema::Config;
use crate::entry::sink::EntrySink;
use crate::metrics::status::{board, ReceiverStatus};
use crate::shutdown::StopSignal;
use anyhow::Context;
use std::sync::Arc;

/// Starts a `loki_push_api` receiver for each scrape config that has one.
pub(super) async fn start_push_receivers(
    config: &Config,
    jobs: &[Job],
    sink: &Arc<dyn EntrySink>,
    stop: StopSignal,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut servers = Vec::new();
    for (sc, job) in config.scrape_configs.iter().zip(jobs) {
        let Some(api) = &sc.loki_push_api else {
            continue;
        };
        let receiver = Arc::new(crate::source::push::PushReceiver {
            labels: api
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            use_incoming_timestamp: api.use_incoming_timestamp,
            pipeline: job.pipeline.clone(),
            sink: sink.clone(),
            clients: config.clients.len().max(1) as u32,
        });
        let addr = listen_addr(&api.server)?;
        let (bound, handle) = crate::source::push::serve(receiver, addr, stop.clone())
            .await
            .with_context(|| {
                format!(
                    "job {:?}: loki_push_api cannot listen on {addr}",
                    sc.job_name
                )
            })?;
        tracing::info!(job = %sc.job_name, address = %bound, "push receiver listening");
        board().add_receiver(ReceiverStatus {
            job: sc.job_name.clone(),
            kind: "loki_push_api".into(),
            address: bound.to_string(),
        });
        servers.push(handle);
    }
    Ok(servers)
}

/// Starts each `syslog` receiver; each task ends once its receiver stopped and handed over all.
pub(super) async fn start_syslog_receivers(
    syslogs: Vec<crate::source::syslog::SyslogJob>,
    sink: &Arc<dyn EntrySink>,
    stop: StopSignal,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut receivers = Vec::new();
    for job in syslogs {
        let (name, protocol) = (job.job.clone(), job.protocol);
        let running = crate::source::syslog::serve(job, sink.clone(), stop.clone()).await?;
        tracing::info!(job = %name, address = %running.address, protocol = ?protocol, "syslog receiver listening");
        board().add_receiver(ReceiverStatus {
            job: name,
            kind: format!("syslog/{protocol:?}").to_lowercase(),
            address: running.address.to_string(),
        });
        receivers.push(running.done);
    }
    Ok(receivers)
}
