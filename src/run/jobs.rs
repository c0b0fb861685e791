//! The jobs that run on their own: each `loki_push_api` and `syslog` receiver and each journal
//! reader, each with its own stop token, so that a reload can stop and start one job while the
//! other jobs, the file source and the clients go on (the files of every job are one source,
//! reconfigured in place: `source::file::reconfigure`). Each is named on the status page.

use super::RunOptions;
use crate::config::compile::Job;
use crate::config::schema::Config;
use crate::entry::sink::EntrySink;
use crate::metrics::status::{board, ReceiverStatus};
use crate::shutdown::{Part, Shutdown};
use crate::source::file::positions::Positions;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// How long a reload waits for what a replaced journal reader read to be acknowledged, so that
/// its successor starts after it instead of reading it again.
const JOURNAL_DRAIN: Duration = Duration::from_secs(10);

/// What jobs start with.
pub(super) struct Context<'a> {
    pub config: &'a Config,
    pub sink: &'a Arc<dyn EntrySink>,
    pub positions: &'a Arc<Positions>,
    pub opts: &'a RunOptions,
}

/// The running receivers and readers, by job.
#[derive(Default)]
pub(super) struct JobTasks {
    tasks: Vec<JobTask>,
}

struct JobTask {
    job: String,
    stop: Arc<Shutdown>,
    done: Done,
}

enum Done {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
    /// Taken by the run, which waits for it to end by itself (`exit_at_eof`).
    Taken,
}

impl JobTasks {
    /// Starts the receiver or reader of each job `wanted` names (by `job_name`), taking its
    /// `syslog` and `journal` parts. `jobs` are `ctx.config`'s, in order. With `replacing`, a
    /// journal job takes over from a reader of the same name stopped just before.
    pub async fn start(
        &mut self,
        ctx: &Context<'_>,
        jobs: &mut [Job],
        wanted: impl Fn(&str) -> bool,
        replacing: bool,
    ) -> anyhow::Result<()> {
        for (index, job) in jobs.iter_mut().enumerate() {
            if wanted(&job.name) {
                self.start_one(ctx, index, job, replacing).await?;
            }
        }
        Ok(())
    }

    /// Starts job `index` of `ctx.config` (see [`JobTasks::start`]).
    pub async fn start_one(
        &mut self,
        ctx: &Context<'_>,
        index: usize,
        job: &mut Job,
        replacing: bool,
    ) -> anyhow::Result<()> {
        let stop = Shutdown::new();
        let sc = &ctx.config.scrape_configs[index];
        let mut done = Vec::new();
        if sc.loki_push_api.is_some() {
            done.push(Done::Task(
                super::receivers::start_push(ctx, index, job, &stop).await?,
            ));
        }
        if sc.k8s_audit_webhook.is_some() {
            done.push(Done::Task(
                super::receivers::start_audit_webhook(ctx, index, job, &stop).await?,
            ));
        }
        if let Some(syslog) = job.syslog.take() {
            let (name, protocol) = (syslog.job.clone(), syslog.protocol);
            let running =
                crate::source::syslog::serve(syslog, ctx.sink.clone(), stop.signal(Part::Sources))
                    .await?;
            tracing::info!(job = %name, address = %running.address, protocol = ?protocol, "syslog receiver listening");
            board().add_receiver(ReceiverStatus {
                job: name,
                kind: format!("syslog/{protocol:?}").to_lowercase(),
                address: running.address.to_string(),
            });
            done.push(Done::Task(running.done));
        }
        if let Some(journal) = job.journal.take() {
            done.push(Done::Thread(
                start_journal(ctx, journal, &stop, replacing).await?,
            ));
        }
        for docker in std::mem::take(&mut job.docker) {
            done.push(Done::Thread(start_docker(ctx, docker, &stop)?));
        }
        self.tasks.extend(done.into_iter().map(|done| JobTask {
            job: job.name.clone(),
            stop: stop.clone(),
            done,
        }));
        Ok(())
    }

    /// Stops the jobs `which` names and waits for each to end: a receiver answers the requests
    /// in progress, a reader hands over what it read.
    pub async fn stop(&mut self, which: impl Fn(&str) -> bool) {
        let (stopping, kept) = std::mem::take(&mut self.tasks)
            .into_iter()
            .partition(|t| which(&t.job));
        self.tasks = kept;
        stop_tasks(stopping).await;
    }

    /// Stops every job.
    pub async fn stop_all(&mut self) {
        stop_tasks(std::mem::take(&mut self.tasks)).await;
    }

    /// The reader threads, for a run that waits for them to end by themselves (`exit_at_eof`).
    pub fn take_threads(&mut self) -> Vec<std::thread::JoinHandle<()>> {
        let mut threads = Vec::new();
        for t in &mut self.tasks {
            if let Done::Thread(_) = t.done {
                if let Done::Thread(handle) = std::mem::replace(&mut t.done, Done::Taken) {
                    threads.push(handle);
                }
            }
        }
        threads
    }
}

async fn stop_tasks(tasks: Vec<JobTask>) {
    for t in &tasks {
        t.stop.stop(Part::Sources);
    }
    for t in tasks {
        match t.done {
            Done::Task(handle) => {
                let _ = handle.await;
            }
            Done::Thread(handle) => {
                let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            }
            Done::Taken => {}
        }
        board().remove_receivers(&t.job);
    }
}

/// The hand-over of a receiver whose senders cannot send again once answered.
pub(super) fn hand_over(
    ctx: &Context<'_>,
    job: &Job,
) -> Arc<crate::source::hand_over::DurableHandOver> {
    Arc::new(crate::source::hand_over::DurableHandOver {
        pipeline: job.pipeline.clone(),
        sink: ctx.sink.clone(),
        clients: ctx.config.clients.len().max(1) as u32,
    })
}

/// A Docker discovery job, each container resuming from its position. With `exit_at_eof` (and in
/// a dry run) it reads the logs of the containers running now to their end and ends.
fn start_docker(
    ctx: &Context<'_>,
    job: crate::source::docker::DockerJob,
    stop: &Arc<Shutdown>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let name = job.job.clone();
    board().add_receiver(ReceiverStatus {
        job: name.clone(),
        kind: "docker".into(),
        address: match &job.daemon {
            crate::source::docker::api::Daemon::Unix(p) => format!("unix://{}", p.display()),
            crate::source::docker::api::Daemon::Tcp(a) => format!("tcp://{a}"),
        },
    });
    crate::source::docker::DockerSource {
        job,
        follow: !ctx.opts.exit_at_eof,
        ledgers: ctx.positions.clone(),
        sink: ctx.sink.clone(),
        stop: stop.signal(Part::Sources),
    }
    .spawn()
    .with_context(|| format!("job {name:?}: cannot start the docker discovery"))
}

/// A journal reader, resuming from its cursor in the positions. With `exit_at_eof` (and in a
/// dry run) it reads to the end of the journal and ends. Replacing a reader stopped just before,
/// it waits (up to [`JOURNAL_DRAIN`]) for what that one read to be acknowledged and starts after
/// it; what is still unacknowledged then is read again.
async fn start_journal(
    ctx: &Context<'_>,
    job: crate::source::journal::JournalJob,
    stop: &Arc<Shutdown>,
    replacing: bool,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let key = job.positions_key();
    let ledger = if replacing {
        let before = ctx.positions.cursor_ledger(&key);
        let deadline = tokio::time::Instant::now() + JOURNAL_DRAIN;
        while before.tracker().in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ctx.positions.renew_cursor_ledger(&key)
    } else {
        ctx.positions.cursor_ledger(&key)
    };
    let name = job.job.clone();
    board().add_receiver(ReceiverStatus {
        job: name.clone(),
        kind: "journal".into(),
        address: if job.path.is_empty() {
            "the system journal".into()
        } else {
            job.path.clone()
        },
    });
    crate::source::journal::JournalSource::new(
        job,
        !ctx.opts.exit_at_eof,
        ledger,
        ctx.sink.clone(),
        stop.signal(Part::Sources),
    )
    .spawn()
    .with_context(|| format!("job {name:?}: cannot start the journal reader"))
}

/// Standard input's reader (`-stdin`), and the tracker of its lines' delivery.
pub(super) fn start_stdin(
    ctx: &Context<'_>,
    job: crate::source::stdin::StdinJob,
    shutdown: &Arc<Shutdown>,
    client_labels: Vec<(String, String)>,
) -> anyhow::Result<(
    std::thread::JoinHandle<()>,
    Arc<crate::entry::ack::AckTracker>,
)> {
    use std::os::fd::AsFd;
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("-stdin: cannot read standard input")?;
    let limits = &ctx.config.limits_config;
    board().add_receiver(ReceiverStatus {
        job: job.job.clone(),
        kind: "stdin".into(),
        address: "standard input".into(),
    });
    crate::source::stdin::StdinSource {
        job,
        input: std::fs::File::from(input),
        max_line: super::max_line(limits),
        truncate_long_lines: limits.max_line_size_truncate,
        client_labels,
        sink: ctx.sink.clone(),
        stop: shutdown.signal(Part::Sources),
    }
    .spawn(ctx.config.clients.len().max(1) as u32)
    .context("-stdin: cannot start reading standard input")
}
