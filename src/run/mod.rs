//! Wiring: builds the sources, pipelines and clients from a loaded configuration and runs them until
//! a stop signal (or, with `exit_at_eof`, until every file was read).
//!
//! Drain order on a stop (SIGTERM or SIGINT; or, with `exit_at_eof`, every file read), written
//! here and nowhere else; each step stops a [`Part`] of the one stop token ([`Shutdown`]):
//!
//! 1. `/ready` answers 503, and the clients learn of the stop: from now on a push is tried for at
//!    most the client `timeout`, and what a client with a disk queue cannot deliver goes to the
//!    front of its disk queue, acknowledged.
//! 2. The push receivers stop taking requests (those in progress are answered) and the file
//!    source stops reading; both let go of the sink, so each client's queue ends.
//! 3. The clients push what they hold, and from the disk queue for at most their `timeout`; the
//!    rest waits on disk (or, without one, is read again from the files) at the next start. So a
//!    stop takes about two client timeouts (10 s each by default), within Kubernetes' default
//!    `terminationGracePeriodSeconds` of 30. A run that read every file (`exit_at_eof`, no
//!    signal) waits for the clients to deliver everything instead.
//! 4. The positions saver, which ran all along so that a SIGKILL during step 3 loses nothing it
//!    had acknowledged, stops; the positions are written a last time.
//! 5. The HTTP server stops, after a last scrape could see the final counts.
//!
//! A reload (SIGHUP, `POST /reload`) whose new config is valid and changed only scrape configs
//! is applied while the run goes on (`in_place.rs`): only the jobs that changed stop and start.
//! One that changed more (clients, server, positions, limits) ends the run the same way as a
//! stop, and the command runs again with the new config: positions are saved at step 4 and read
//! again, what the clients held is delivered or on their disk queues, which the new clients send
//! first.

pub mod backfill;
mod clients;
mod files;
mod in_place;
mod jobs;
mod receivers;
mod stdout;
mod systemd;

use crate::config::compile::Compiled;
use crate::config::schema::Config;
use crate::server::Readiness;
use crate::shutdown::{Part, Shutdown};
use crate::source::file::positions::Positions;
use crate::summary::Summary;
use anyhow::{bail, Context};
use clients::{start_clients, Clients};
pub use files::max_line;
use files::{load_positions, start_files, Files};
use jobs::JobTasks;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Run-time choices that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print entries to stdout instead of sending them; positions are not written.
    pub dry_run: bool,
    /// Stop once every file was read to its end and everything read was delivered.
    pub exit_at_eof: bool,
    /// Standard input is the only source (`-stdin`): no positions are read or written.
    pub stdin: bool,
    /// A one-off run beside the node's lokiship (`-stdin`, `backfill`): the HTTP server is
    /// left out if its port is taken.
    pub server_optional: bool,
    /// Send disk queues left by clients whose URL or name changed through the client now at
    /// their place (`-wal.adopt-orphaned-queues`).
    pub adopt_orphaned_queues: bool,
    /// Where `POST /reload` sends its requests (served with `server.enable_runtime_reload`).
    pub reload_requests: Option<crate::reload::Requests>,
}

/// Why a run is told to end.
pub enum Ending {
    /// SIGTERM or SIGINT.
    Stop,
    /// A reload with this (valid, compiled) config.
    Reload(Box<Compiled>),
}

/// Where a run learns why to end, and says which config it runs.
pub struct Endings {
    pub receive: tokio::sync::mpsc::Receiver<Ending>,
    /// The text of the config running, which the next reload is compared with: set by whoever
    /// sends a reload, emptied by the run when it could not apply one entirely (a job that
    /// could not start), so that the next reload restarts everything.
    pub running: Arc<Mutex<String>>,
}

impl Endings {
    async fn next(&mut self) -> Ending {
        // No sender left: nothing can ask for a reload or a stop but the end of the sources.
        match self.receive.recv().await {
            Some(ending) => ending,
            None => std::future::pending().await,
        }
    }
}

/// What a run did, and the config to run next when it ended for a reload.
pub struct RunEnd {
    pub summary: Summary,
    /// Ended by SIGTERM/SIGINT (or for a reload), not by itself.
    pub signalled: bool,
    pub next: Option<Box<Compiled>>,
}

/// Runs lokiship until `endings` says stop or restart (or the files are read, with
/// `exit_at_eof`), applying in place the reloads that allow it; returns what the run did (also
/// logged at the end of a dry run, an `exit_at_eof` run or a stop by signal) and, when it ended
/// for a reload, the config to run next.
pub async fn run(
    compiled: Compiled,
    opts: RunOptions,
    endings: &mut Endings,
) -> anyhow::Result<RunEnd> {
    let Compiled {
        config,
        clients,
        mut jobs,
        text: config_text,
        stdin,
        ..
    } = compiled;
    crate::pipeline::cardinality::set_budget(
        config.limits_config.max_label_values,
        config.limits_config.max_streams,
    );
    // A run after a reload: acknowledgements dropped from now on are bugs again, and the status
    // page lists this run's parts.
    crate::entry::ack::running();
    crate::metrics::status::board().clear();
    // The one stop token: each part below stops when this function says, in the order above.
    let shutdown = Shutdown::new();
    let ready = Arc::new(Readiness::default());
    let reload = opts
        .reload_requests
        .clone()
        .filter(|_| config.server.enable_runtime_reload);
    let config_page = crate::server::ConfigPage::default();
    config_page.set(&config_text);
    config_page.allow_remote(config.server.config_page_remote);
    let server = start_server(&config, config_page.clone(), reload, &ready, &shutdown).await;
    let server = match server {
        Err(e) if opts.server_optional => {
            tracing::warn!(error = %format!("{e:#}"), "no HTTP server (/metrics) for this run");
            None
        }
        server => server?,
    };
    // Clients (none in a dry run: entries go to stdout).
    let Clients {
        sink,
        tasks: client_tasks,
        labels: client_labels,
    } = start_clients(&config, &clients, &opts, &ready, &shutdown)?;
    let positions = if opts.stdin {
        Arc::new(Positions::none(config.clients.len().max(1) as u32))
    } else {
        load_positions(&config)?
    };
    let mut running = in_place::Running::new(&config_text, &jobs);
    // Receivers (`loki_push_api`, `syslog`) and journal readers, each job on its own.
    let mut job_tasks = JobTasks::default();
    let context = jobs::Context {
        config: &config,
        sink: &sink,
        positions: &positions,
        opts: &opts,
    };
    job_tasks
        .start(&context, &mut jobs, |_| true, false)
        .await?;
    let stdin = stdin
        .map(|job| jobs::start_stdin(&context, job, &shutdown, client_labels.clone()))
        .transpose()?;
    let Files {
        source_thread,
        reconfigurer,
        saver,
    } = start_files(
        &config,
        jobs,
        &opts,
        client_labels,
        sink.clone(),
        &positions,
        &shutdown,
    );
    ready.set(true);

    // Run until a stop signal, or until the sources finished by themselves (exit_at_eof).
    let mut readers = if opts.exit_at_eof {
        job_tasks.take_threads()
    } else {
        Vec::new()
    };
    let stdin = stdin.map(|(thread, tracker)| {
        readers.push(thread);
        tracker
    });
    let source_done = tokio::task::spawn_blocking(move || {
        let _ = source_thread.join();
        for t in readers {
            let _ = t.join();
        }
    });
    tokio::pin!(source_done);
    systemd::ready();
    let ending = loop {
        let ending = run_until_stop(endings, &mut source_done).await;
        let Some(Ending::Reload(next)) = ending else {
            break ending;
        };
        let Some(plan) = in_place::plan(&running, &next) else {
            break Some(Ending::Reload(next));
        };
        let applied = in_place::InPlace {
            jobs: &mut job_tasks,
            files: &reconfigurer,
            sink: &sink,
            positions: &positions,
            opts: &opts,
        }
        .apply(*next, plan)
        .await;
        config_page.set(&applied.running.text);
        running = applied.running;
        if !applied.complete {
            // The next reload, even of the same file, restarts everything.
            running.text.clear();
            *endings.running.lock().unwrap_or_else(|e| e.into_inner()) = String::new();
        }
    };
    let signalled = ending.is_some();
    ready.set(false);
    match &ending {
        Some(Ending::Reload(_)) => {
            systemd::reloading();
            tracing::info!("reloading: stopping the sources and clients to start them with the new config (positions and disk queues are kept)");
        }
        Some(Ending::Stop) => {
            systemd::stopping();
            tracing::info!("stopping: no more reading");
        }
        None => systemd::stopping(),
    }
    if signalled {
        stop_deliveries(&shutdown);
    }
    // Push receivers stop taking requests (those in progress are answered), the file source and
    // the journal readers stop reading; all let go of the sink.
    shutdown.stop(Part::Sources);
    job_tasks.stop_all().await;
    if signalled {
        let _ = source_done.await;
    }
    drop(sink);
    // The sources have ended and dropped their sinks: the client queues end after their last entries.
    finish_clients(client_tasks, signalled, endings, &shutdown).await;
    if let Some(tracker) = stdin {
        count_undelivered_stdin(&tracker);
    }
    shutdown.stop(Part::Saver);
    if let Some(saver) = saver {
        let _ = tokio::task::spawn_blocking(move || saver.join()).await;
        save_positions_at_exit(&positions);
    }
    shutdown.stop(Part::Server);
    if let Some(server) = server {
        let _ = server.await;
    }
    let summary = Summary::now();
    let next = match ending {
        Some(Ending::Reload(next)) => Some(next),
        _ => None,
    };
    if next.is_some() {
        tracing::info!("stopped for the reload");
    } else {
        tracing::info!("stopped");
        if signalled || opts.dry_run || opts.exit_at_eof {
            summary.log();
        }
    }
    Ok(RunEnd {
        summary,
        signalled,
        next,
    })
}

/// Waits for a stop signal or a reload (its [`Ending`]) or for the sources to finish (`None`),
/// pinging systemd's watchdog meanwhile when it has one.
async fn run_until_stop(
    endings: &mut Endings,
    source_done: &mut (impl std::future::Future + Unpin),
) -> Option<Ending> {
    let every = systemd::watchdog_every();
    let mut ticks = tokio::time::interval(every.unwrap_or(std::time::Duration::from_secs(3600)));
    loop {
        tokio::select! {
            ending = endings.next() => return Some(ending),
            _ = &mut *source_done => return None,
            _ = ticks.tick() => {
                if every.is_some() {
                    systemd::watchdog();
                }
            }
        }
    }
}

/// Step 3 of a stop: waits for the clients to push what they hold. After a signal they are
/// bounded by their timeout already; a run that read every file waits for full delivery, unless a
/// signal comes meanwhile.
async fn finish_clients(
    tasks: Vec<tokio::task::JoinHandle<()>>,
    signalled: bool,
    endings: &mut Endings,
    shutdown: &Shutdown,
) {
    let clients = futures_join(tasks);
    tokio::pin!(clients);
    if signalled {
        clients.await;
        return;
    }
    tokio::select! {
        _ = &mut clients => {}
        _ = endings.next() => {
            tracing::info!("stopping: every file was read; not waiting for Loki longer than the client timeout");
            stop_deliveries(shutdown);
            clients.await;
        }
    }
}

/// Says how many lines of standard input were read but are not delivered (a stop by signal
/// before Loki had them): they cannot be read again, and the exit code says so.
fn count_undelivered_stdin(tracker: &crate::entry::ack::AckTracker) {
    let undelivered = tracker.in_flight() as u64;
    if undelivered > 0 {
        crate::metrics::metrics()
            .os
            .stdin_undelivered
            .inc_by(undelivered);
        tracing::error!(
            lines = undelivered,
            "lines read from standard input were not delivered"
        );
    }
}

/// Step 4: the last write of the positions, once the clients have finished.
fn save_positions_at_exit(positions: &Positions) {
    if let Err(e) = positions.save() {
        crate::metrics::metrics().positions_write_errors.inc();
        tracing::error!(error = %e, "cannot write the positions file at shutdown");
    }
}

/// Says, when a stop begins, what the clients still hold: it is pushed within their `timeout`, or
/// goes to their disk queues.
fn log_flushing() {
    let held = Summary::now();
    tracing::info!(
        entries = held.queued_entries,
        bytes = held.queued_bytes,
        "flushing what the clients hold (within each client's timeout; the rest waits on disk)"
    );
}

/// What a config needs beyond being valid to run: a client to send to (unless it is a dry run).
/// `-check-syntax` asks the same, so that it fails where running would.
pub fn check_runnable(config: &Config, opts: &RunOptions) -> anyhow::Result<()> {
    if config.clients.is_empty() && !opts.dry_run {
        bail!("no clients configured: add clients[].url to the config file or pass -client.url");
    }
    Ok(())
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Step 1 of a stop: the clients push for at most their timeout from now on, and what is not
/// delivered by the end is let go on purpose (read again at the next start, or on disk).
fn stop_deliveries(shutdown: &Shutdown) {
    log_flushing();
    crate::entry::ack::stopping();
    shutdown.stop(Part::Deliveries);
}

/// `/metrics`, `/ready`, the status pages and `/reload`, unless `server.disable`.
async fn start_server(
    config: &Config,
    config_page: crate::server::ConfigPage,
    reload: Option<crate::reload::Requests>,
    ready: &Arc<Readiness>,
    shutdown: &Arc<Shutdown>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if config.server.disable {
        return Ok(None);
    }
    let addr = listen_addr(&config.server)?;
    let (bound, handle) = crate::server::serve(
        addr,
        ready.clone(),
        config_page,
        reload,
        shutdown.signal(Part::Server),
    )
    .await
    .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(address = %bound, "HTTP server listening");
    Ok(Some(handle))
}

fn listen_addr(server: &crate::config::schema::ServerConfig) -> anyhow::Result<SocketAddr> {
    parse_listen_addr(&server.http_listen_address, server.http_listen_port)
}

/// `host:port` to listen on; all interfaces when `host` is empty.
fn parse_listen_addr(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    crate::source::join_host_port(host, port)
        .parse()
        .with_context(|| format!("http_listen_address {host:?} is not an IP address"))
}
