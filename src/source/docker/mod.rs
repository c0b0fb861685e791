//! `docker_sd_configs`: the containers of a Docker daemon, read as Promtail reads them — through the
//! Docker API's log stream (`GET /containers/<id>/logs?follow=1&timestamps=1`, demultiplexed),
//! not the json-file logs on disk, so any logging driver that keeps logs readable works.
//!
//! Each entry of `docker_sd_configs` runs on a thread of its own (a small tokio runtime): every
//! `refresh_interval` it lists the running containers (with the config's `filters`) and the
//! networks ([`discover`]), starts following each new container ([`follow`]), starts again one
//! whose stream ended (stopped and started), and stops following one no longer listed.
//!
//! Each line gets the container's meta labels and `__meta_docker_container_log_stream`
//! (`stdout`/`stderr`) and goes through the job's `relabel_configs` (a rule may drop a stream) and
//! pipeline. A container's position is the time of its last line every client has, stored under
//! Promtail's key `cursor-<container id>`; a restart asks the daemon for the logs since then.
//! Promtail stores whole seconds and so sends the lines of that second again; lokiship stores
//! nanoseconds and skips what it already sent.

pub mod api;
pub mod discover;
mod follow;
pub mod frames;

use crate::entry::sink::EntrySink;
use crate::pipeline::Pipeline;
use crate::shutdown::StopSignal;
use crate::source::cursor::CursorLedger;
use crate::source::relabel::Relabel;
use api::{Api, Daemon};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Promtail's default `refresh_interval`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// A line Docker cut into pieces is joined up to this many bytes (Loki's default line limit).
pub const MAX_JOINED_LINE: usize = 256 << 10;

/// One `docker_sd_configs` entry, compiled.
#[derive(Clone)]
pub struct DockerJob {
    pub job: String,
    pub daemon: Daemon,
    /// The `Authorization` header, from `basic_auth`, `authorization` or `bearer_token`.
    pub authorization: Option<String>,
    /// Docker's `filters` query value (JSON), empty for none.
    pub filters: String,
    pub port: u16,
    pub host_networking_host: String,
    pub refresh: Duration,
    pub relabel: Vec<Relabel>,
    pub pipeline: Arc<Pipeline>,
}

impl DockerJob {
    /// The filters as Docker's API takes them: `{"label":{"a=b":true},"name":{"web":true}}`.
    pub fn encode_filters(filters: &[crate::config::schema::DockerFilter]) -> String {
        if filters.is_empty() {
            return String::new();
        }
        let mut by_name: std::collections::BTreeMap<
            &str,
            serde_json::Map<String, serde_json::Value>,
        > = std::collections::BTreeMap::new();
        for f in filters {
            let values = by_name.entry(f.name.as_str()).or_default();
            for v in &f.values {
                values.insert(v.clone(), serde_json::Value::Bool(true));
            }
        }
        serde_json::to_string(&by_name).unwrap_or_default()
    }
}

/// What the source needs of the positions: a ledger per container.
pub trait Ledgers: Send + Sync {
    /// The ledger of the position stored under `key`.
    fn ledger(&self, key: &str) -> Arc<CursorLedger>;
}

impl Ledgers for crate::source::file::positions::Positions {
    fn ledger(&self, key: &str) -> Arc<CursorLedger> {
        self.cursor_ledger(key)
    }
}

/// A Docker discovery job, ready to run on its thread.
pub struct DockerSource {
    pub job: DockerJob,
    /// Keep following; or read each container's logs to their end and stop (a dry run,
    /// `-exit-at-eof`).
    pub follow: bool,
    pub ledgers: Arc<dyn Ledgers>,
    pub sink: Arc<dyn EntrySink>,
    pub stop: StopSignal,
}

impl DockerSource {
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("docker-{}", self.job.job))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(self.run()),
                    Err(e) => {
                        tracing::error!(job = %self.job.job, error = %e, "cannot start docker discovery")
                    }
                }
            })
    }

    async fn run(self) {
        let shared = Arc::new(follow::Shared {
            job: self.job.clone(),
            api: tokio::sync::OnceCell::new(),
            sink: self.sink.clone(),
            stop: self.stop.clone(),
            follow: self.follow,
        });
        let mut followed: HashMap<String, follow::Followed> = HashMap::new();
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = match self.refresh_once(&shared, &mut followed).await {
                Ok(()) if !self.follow => break,
                Ok(()) => {
                    backoff = Duration::from_secs(1);
                    self.job.refresh
                }
                Err((reason, e)) => {
                    count_error(&self.job.job, reason);
                    tracing::warn!(job = %self.job.job, error = %e, retry_in = ?backoff, "docker discovery failed");
                    if !self.follow {
                        break;
                    }
                    let now = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    now.min(self.job.refresh)
                }
            };
            tokio::select! {
                _ = self.stop.stopped() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Stopping, or (not following) every container read to its end.
        for f in followed.into_values() {
            f.finish(!self.follow).await;
        }
    }

    /// One listing: new containers followed, ended ones started again, gone ones let go.
    async fn refresh_once(
        &self,
        shared: &Arc<follow::Shared>,
        followed: &mut HashMap<String, follow::Followed>,
    ) -> Result<(), (&'static str, String)> {
        let api = match shared.api.get() {
            Some(api) => api,
            None => {
                let mut api = Api::new(self.job.daemon.clone(), self.job.authorization.clone());
                api.negotiate().await.map_err(|e| ("connect", e))?;
                let _ = shared.api.set(api);
                shared
                    .api
                    .get()
                    .ok_or(("connect", String::from("no client")))?
            }
        };
        let list = if self.job.filters.is_empty() {
            "/containers/json".to_string()
        } else {
            format!("/containers/json?filters={}", url_escape(&self.job.filters))
        };
        let containers: Vec<discover::Container> =
            api.get_json(&list).await.map_err(|e| ("list", e))?;
        let networks: Vec<discover::Network> =
            api.get_json("/networks").await.map_err(|e| ("list", e))?;
        let targets = discover::targets(
            &containers,
            &networks,
            &discover::Addressing {
                port: self.job.port,
                host_networking_host: &self.job.host_networking_host,
            },
        );
        let listed: std::collections::HashSet<&str> =
            targets.iter().map(|t| t.id.as_str()).collect();
        let gone: Vec<String> = followed
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(f) = followed.remove(&id) {
                tracing::info!(job = %self.job.job, container = %id, "container gone; no longer followed");
                f.finish(false).await;
            }
        }
        for target in targets {
            match followed.get_mut(&target.id) {
                // Promtail keeps the labels a container had when first seen; so does this.
                Some(f) if self.follow => f.restart_if_ended(shared),
                Some(_) => {}
                None => {
                    let key = format!(
                        "{}{}",
                        crate::source::file::positions::DOCKER_CURSOR_PREFIX,
                        target.id
                    );
                    let ledger = self.ledgers.ledger(&key);
                    let f = follow::Followed::start(shared, target, ledger);
                    followed.insert(f.id().to_string(), f);
                }
            }
        }
        Ok(())
    }
}

/// Percent-escapes a query value.
fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `lokiship_docker_errors_total{job,reason}`.
pub(crate) fn count_error(job: &str, reason: &str) {
    crate::metrics::metrics()
        .os
        .docker_errors
        .get_or_create(&crate::metrics::os::JobReasonLabels {
            job: job.to_string(),
            reason: reason.to_string(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::DockerFilter;

    #[test]
    fn filters_are_sent_as_promtail_sends_them() {
        let filters = [
            DockerFilter {
                name: "label".into(),
                values: vec!["com.docker.compose.service=web".into(), "x".into()],
            },
            DockerFilter {
                name: "name".into(),
                values: vec!["web".into()],
            },
        ];
        let encoded = DockerJob::encode_filters(&filters);
        // What Promtail 3.6.15 asked the daemon for, recorded.
        assert_eq!(
            format!("/containers/json?filters={}", url_escape(&encoded)),
            "/containers/json?filters=%7B%22label%22%3A%7B%22com.docker.compose.service%3Dweb%22%3Atrue%2C%22x%22%3Atrue%7D%2C%22name%22%3A%7B%22web%22%3Atrue%7D%7D"
        );
    }
}
