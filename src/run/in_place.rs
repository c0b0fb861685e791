//! A reload that changed only scrape configs, applied without stopping the run: the clients
//! (their queues, retries and disk queues), the HTTP server and the positions go on; each job
//! that was removed or changed stops, each added or changed one starts, and the file source
//! takes the new jobs in place (`source::file::reconfigure`). Anything else — clients, server,
//! positions, limits, a file the config names (a certificate) — restarts the run (see the
//! module doc of `run`).

use super::jobs::{Context, JobTasks};
use super::RunOptions;
use crate::config::compile::{Compiled, Job};
use crate::config::diff;
use crate::entry::sink::EntrySink;
use crate::source::file::positions::Positions;
use crate::source::file::reconfigure::{Reconfigure, Reconfigurer};
use std::collections::HashSet;
use std::sync::Arc;

/// What one in-place reload does, by job name.
pub(super) struct Plan {
    /// Jobs of the new config that are new or changed: started.
    pub started: HashSet<String>,
    /// Jobs of the running config that were removed or changed: stopped.
    pub stopped: HashSet<String>,
    /// For each job of the running config, its index in the new one.
    pub moved: Vec<Option<usize>>,
    /// For each job of the new config: new or changed.
    pub changed: Vec<bool>,
    /// What changed, for the log.
    pub summary: String,
}

/// The config a run started with, or took in place since.
pub(super) struct Running {
    pub text: String,
    /// The contents of the files it names ([`diff::named_files`]) when it started.
    pub files: Vec<u8>,
    pub jobs: Vec<String>,
}

impl Running {
    pub fn new(text: &str, jobs: &[Job]) -> Self {
        Self {
            text: text.to_string(),
            files: diff::named_files(text),
            jobs: jobs.iter().map(|j| j.name.clone()).collect(),
        }
    }
}

/// What an in-place reload changes: the run's jobs and its file source.
pub(super) struct InPlace<'a> {
    pub jobs: &'a mut JobTasks,
    pub files: &'a Reconfigurer,
    pub sink: &'a Arc<dyn EntrySink>,
    pub positions: &'a Arc<Positions>,
    pub opts: &'a RunOptions,
}

/// A reload applied in place.
pub(super) struct Applied {
    /// The config that runs now.
    pub running: Running,
    /// Every job that was to start started.
    pub complete: bool,
}

impl InPlace<'_> {
    /// Stops the jobs `plan` stops, starts those it starts and hands the file source the new
    /// jobs. A job that cannot start (its port is taken) is logged and left out: the others
    /// run, and `lokiship_config_last_reload_successful` is 0.
    pub async fn apply(self, next: Compiled, plan: Plan) -> Applied {
        super::systemd::reloading();
        tracing::info!(changed = %plan.summary, "reloading in place: only the jobs that changed restart; the clients, the server and the positions go on");
        self.jobs.stop(|job| plan.stopped.contains(job)).await;
        let Compiled {
            config,
            mut jobs,
            text,
            ..
        } = next;
        let running = Running::new(&text, &jobs);
        let context = Context {
            config: &config,
            sink: self.sink,
            positions: self.positions,
            opts: self.opts,
        };
        let mut complete = true;
        for (index, job) in jobs.iter_mut().enumerate() {
            if !plan.started.contains(&job.name) {
                continue;
            }
            if let Err(e) = self.jobs.start_one(&context, index, job, true).await {
                tracing::error!(job = %job.name, error = %format!("{e:#}"), "the reloaded job cannot start; the other jobs run");
                crate::metrics::metrics()
                    .config_last_reload_successful
                    .set(0);
                complete = false;
            }
        }
        let (pipelines, scrapes) = jobs.into_iter().map(|j| (j.pipeline, j.targets)).unzip();
        let sent = self.files.send(Reconfigure {
            pipelines,
            scrapes,
            moved: plan.moved,
            changed: plan.changed,
        });
        if !sent {
            tracing::warn!("the file source has ended; the reloaded file jobs do not run");
        }
        super::systemd::ready();
        tracing::info!("reload applied");
        Applied { running, complete }
    }
}

/// How `next` can be applied in place to what runs; `None` when the run must restart: more than
/// scrape configs changed, or jobs are not told apart by name (an empty or repeated `job_name`).
pub(super) fn plan(running: &Running, next: &Compiled) -> Option<Plan> {
    let changes = diff::changes(&running.text, &next.text)?;
    if changes.clients || !changes.sections.is_empty() {
        return None;
    }
    if diff::named_files(&next.text) != running.files {
        return None;
    }
    let next_jobs: Vec<&str> = next.jobs.iter().map(|j| j.name.as_str()).collect();
    let old_jobs: Vec<&str> = running.jobs.iter().map(String::as_str).collect();
    if !distinct(&next_jobs) || !distinct(&old_jobs) {
        return None;
    }
    let changed_names: HashSet<&str> = changes
        .jobs_changed
        .iter()
        .chain(&changes.jobs_added)
        .map(String::as_str)
        .collect();
    let changed: Vec<bool> = next_jobs
        .iter()
        .map(|name| changed_names.contains(name) || !old_jobs.contains(name))
        .collect();
    let moved = old_jobs
        .iter()
        .map(|name| next_jobs.iter().position(|n| n == name))
        .collect::<Vec<_>>();
    let started = next_jobs
        .iter()
        .zip(&changed)
        .filter(|(_, c)| **c)
        .map(|(n, _)| n.to_string())
        .collect();
    let stopped = old_jobs
        .iter()
        .zip(&moved)
        .filter(|(_, m)| m.is_none_or(|n| changed[n]))
        .map(|(n, _)| n.to_string())
        .collect();
    Some(Plan {
        started,
        stopped,
        moved,
        changed,
        summary: changes.to_string(),
    })
}

fn distinct(names: &[&str]) -> bool {
    let set: HashSet<&&str> = names.iter().collect();
    set.len() == names.len() && !names.contains(&"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile::compile;
    use crate::config::load::{load_str, LoadOptions};

    const BASE: &str = "clients: [{url: 'http://127.0.0.1:3100/loki/api/v1/push'}]
scrape_configs:
  - job_name: audit
    static_configs: [{targets: [localhost], labels: {job: audit, __path__: /a/*.log}}]
  - job_name: auth
    static_configs: [{targets: [localhost], labels: {job: auth, __path__: /b/*.log}}]
";

    fn compiled(text: &str) -> Compiled {
        compile(load_str("test.yaml", text, &LoadOptions::default()).unwrap()).unwrap()
    }

    #[test]
    fn only_scrape_configs_changed_is_applied_in_place_by_job_name() {
        let running = compiled(BASE);
        let running = Running::new(&running.text, &running.jobs);
        // audit changed, auth unchanged but moved to the end, journal added before it.
        let next = BASE.replace("/a/*.log", "/c/*.log").replace(
            "  - job_name: auth\n",
            "  - job_name: journal\n    journal: {}\n  - job_name: auth\n",
        );
        let p = plan(&running, &compiled(&next)).expect("in place");
        assert_eq!(p.moved, [Some(0), Some(2)]);
        assert_eq!(p.changed, [true, true, false]);
        assert_eq!(p.stopped, HashSet::from(["audit".to_string()]));
        assert_eq!(
            p.started,
            HashSet::from(["audit".to_string(), "journal".to_string()])
        );
    }

    #[test]
    fn clients_or_other_sections_restart_the_run() {
        let running = compiled(BASE);
        let running = Running::new(&running.text, &running.jobs);
        let other_url = BASE.replace("3100", "3101");
        assert!(plan(&running, &compiled(&other_url)).is_none());
        let server = format!("server: {{http_listen_port: 9081}}\n{BASE}");
        assert!(plan(&running, &compiled(&server)).is_none());
    }
}
