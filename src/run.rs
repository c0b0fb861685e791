//! Wiring: builds the sources, pipelines and clients from a loaded configuration and runs them until
//! a stop signal (or, with `exit_at_eof`, until every file was read).
//!
//! Drain order on shutdown: the file source stops reading → the clients push what they hold (bounded
//! by their `timeout` once a stop signal came) → the positions are written a last time → the HTTP
//! server stops.

use crate::client::queue::{queue, QUEUE_BYTES};
use crate::client::Client;
use crate::config::schema::Config;
use crate::config::Loaded;
use crate::entry::{Entry, Labels};
use crate::server::Readiness;
use crate::source::file::discover::PathGlob;
use crate::source::file::positions::{self, Positions};
use crate::source::file::{FileSource, FileSourceConfig, ReadlineLimit, Target, DEFAULT_MAX_LINE};
use crate::source::targets::ScrapeTargets;
use crate::source::{EntrySink, Fanout, Stop, TrySendError};
use anyhow::{bail, Context};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Run-time choices that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print entries to stdout instead of sending them; positions are not written.
    pub dry_run: bool,
    /// Stop once every file was read to its end and everything read was delivered.
    pub exit_at_eof: bool,
}

/// Runs lokiship until `stop_signal` resolves (or the files are read, with `exit_at_eof`).
pub async fn run(
    loaded: Loaded,
    opts: RunOptions,
    stop_signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Loaded {
        config, pipelines, ..
    } = loaded;
    let pipelines: Vec<_> = pipelines.into_iter().map(Arc::new).collect();
    crate::pipeline::cardinality::set_budget(
        config.limits_config.max_label_values,
        config.limits_config.max_streams,
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ready = Arc::new(Readiness::default());

    let (server_stop_tx, server_stop_rx) = watch::channel(false);
    let server = if config.server.disable {
        None
    } else {
        let addr = listen_addr(&config)?;
        let (bound, handle) = crate::server::serve(addr, ready.clone(), server_stop_rx)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(address = %bound, "HTTP server listening");
        Some(handle)
    };

    // Clients (none in a dry run: entries go to stdout).
    let mut client_tasks = Vec::new();
    let sink: Arc<dyn EntrySink> = if opts.dry_run {
        Arc::new(StdoutSink)
    } else {
        if config.clients.is_empty() {
            bail!(
                "no clients configured: add clients[].url to the config file or pass -client.url"
            );
        }
        let mut outlets = Vec::new();
        let disk_queue = config
            .wal
            .disk_queue(&config.positions.filename, config.clients.len());
        if let Some(q) = disk_queue.as_ref().filter(|q| q.automatic) {
            tracing::info!(dir = %q.dir.display(), max_size_per_client = q.max_bytes,
                "several clients: one that falls behind queues its lines on disk instead of holding back the others (wal.enabled: false turns this off)");
        }
        for (i, c) in config.clients.iter().enumerate() {
            let client = Client::new(c)?;
            ready.watch_client(client.health());
            let (tx, rx) = queue(QUEUE_BYTES, client.host());
            let spill = match &disk_queue {
                Some(q) => Some(Arc::new(open_spill(&config, q, i, client.host())?)),
                None => None,
            };
            outlets.push(crate::source::Outlet {
                queue: tx,
                spill: spill.clone(),
            });
            client_tasks.push(tokio::spawn(client.run(rx, spill, shutdown_rx.clone())));
        }
        Arc::new(Fanout::with_outlets(outlets))
    };

    let positions_path = std::path::PathBuf::from(&config.positions.filename);
    let positions = Arc::new(Positions::load(
        &positions_path,
        config.positions.ignore_invalid_yaml,
        config.clients.len().max(1) as u32,
    )?);
    let stop = Arc::new(Stop::new());
    let source_config = file_source_config(&config, pipelines, &opts)?;
    let source = FileSource::new(source_config, positions.clone(), sink, stop.clone());
    let source_thread = source.spawn();
    let saver = (!opts.dry_run).then(|| {
        positions::spawn_saver(
            positions.clone(),
            config.positions.sync_period.0,
            stop.clone(),
        )
    });
    ready.set(true);

    // Run until a stop signal, or until the source finished by itself (exit_at_eof).
    let source_done = tokio::task::spawn_blocking(move || source_thread.join());
    tokio::pin!(source_done);
    tokio::pin!(stop_signal);
    let signalled = tokio::select! {
        _ = &mut stop_signal => true,
        _ = &mut source_done => false,
    };
    ready.set(false);
    if signalled {
        tracing::info!("stopping: no more reading; flushing what is batched");
        let _ = shutdown_tx.send(true);
    }
    stop.stop();
    if signalled {
        let _ = source_done.await;
    }
    // The source thread has ended and dropped its sink: the client queues end after their last entries.
    let clients = futures_join(client_tasks);
    tokio::pin!(clients);
    if signalled {
        clients.await;
    } else {
        tokio::select! {
            _ = &mut clients => {}
            _ = &mut stop_signal => {
                let _ = shutdown_tx.send(true);
                clients.await;
            }
        }
    }
    if let Some(saver) = saver {
        let _ = tokio::task::spawn_blocking(move || saver.join()).await;
        if let Err(e) = positions.save() {
            crate::metrics::metrics().positions_write_errors.inc();
            tracing::error!(error = %e, "cannot write the positions file at shutdown");
        }
    }
    let _ = server_stop_tx.send(true);
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

fn listen_addr(config: &Config) -> anyhow::Result<SocketAddr> {
    let host = if config.server.http_listen_address.is_empty() {
        "0.0.0.0"
    } else {
        config.server.http_listen_address.as_str()
    };
    let text = if host.contains(':') {
        format!("[{host}]:{}", config.server.http_listen_port)
    } else {
        format!("{host}:{}", config.server.http_listen_port)
    };
    text.parse()
        .with_context(|| format!("server.http_listen_address {host:?} is not an IP address"))
}

/// Client `index`'s disk queue, in a directory of its own under the queue's directory.
fn open_spill(
    config: &Config,
    queue: &crate::config::schema::DiskQueue,
    index: usize,
    host: &str,
) -> anyhow::Result<crate::client::wal::Spill> {
    use crate::client::wal::{Spill, Wal, WhenFull};
    let name: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = queue.dir.join(format!("client-{index}-{name}"));
    let when_full = if queue.drop_oldest {
        WhenFull::DropOldest
    } else {
        WhenFull::Backpressure
    };
    let wal = Wal::open(&dir, queue.max_bytes, when_full, host)
        .with_context(|| format!("cannot open the disk queue in {}", dir.display()))?
        .with_max_age(config.wal.clean_segments_older_than.map(|d| d.0));
    Ok(Spill::new(wal))
}

fn file_source_config(
    config: &Config,
    pipelines: Vec<Arc<crate::pipeline::Pipeline>>,
    opts: &RunOptions,
) -> anyhow::Result<FileSourceConfig> {
    let mut scrapes = Vec::new();
    for (scrape, sc) in config.scrape_configs.iter().enumerate() {
        for st in &sc.static_configs {
            if let Some(pattern) = st.labels.get("__path__") {
                // A static glob that cannot work is a config error, not a warning at run time.
                PathGlob::new(
                    pattern,
                    st.labels.get("__path_exclude__").map(String::as_str),
                )
                .with_context(|| {
                    format!("job {:?}: invalid __path__ glob {pattern:?}", sc.job_name)
                })?;
            }
        }
        let decompression = sc
            .decompression
            .enabled
            .then(|| -> anyhow::Result<_> {
                Ok(crate::source::file::compressed::Decompression {
                    format: crate::source::file::compressed::Format::parse(
                        &sc.decompression.format,
                    )
                    .map_err(anyhow::Error::msg)?,
                    initial_delay: sc
                        .decompression
                        .initial_delay
                        .map(|d| d.0)
                        .unwrap_or_default(),
                })
            })
            .transpose()?;
        let mut st = ScrapeTargets::new(scrape, sc, decompression)
            .map_err(|e| anyhow::anyhow!("job {:?}: {e}", sc.job_name))?;
        st.refresh();
        scrapes.push(st);
    }
    let targets: Vec<Target> = scrapes.iter().flat_map(|s| s.targets()).collect();
    crate::metrics::metrics()
        .targets_active
        .set(targets.len() as i64);
    let limits = &config.limits_config;
    Ok(FileSourceConfig {
        targets,
        scrapes,
        pipelines,
        sync_period: config
            .target_config
            .sync_period
            .0
            .max(std::time::Duration::from_millis(10)),
        poll_period: config
            .global
            .file_watch_config
            .min_poll_frequency
            .0
            .max(std::time::Duration::from_millis(10)),
        max_line: if limits.max_line_size.0 == 0 {
            DEFAULT_MAX_LINE
        } else {
            limits.max_line_size.0 as usize
        },
        truncate_long_lines: limits.max_line_size_truncate,
        readline: limits.readline_rate_enabled.then_some(ReadlineLimit {
            rate: limits.readline_rate,
            burst: limits.readline_burst,
            drop: limits.readline_rate_drop,
        }),
        exit_at_eof: opts.exit_at_eof,
        max_open_rotated: config.limits_config.max_open_rotated_files,
    })
}

/// `-dry-run`: prints each entry as `timestamp<TAB>labels<TAB>structured metadata<TAB>line`.
struct StdoutSink;

impl EntrySink for StdoutSink {
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        self.print(entries).map_err(|_| TrySendError::Closed)
    }

    fn wait_for_room(&self, _timeout: std::time::Duration) {}
}

impl StdoutSink {
    fn print(&self, entries: Vec<Entry>) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for entry in entries {
            let ts = chrono::DateTime::from_timestamp_nanos(entry.timestamp_ns)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let mut visible = entry.labels.clone();
            visible.retain(|n, _| !n.starts_with("__"));
            let sm: Labels = entry
                .structured_metadata
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            writeln!(
                out,
                "{ts}\t{}\t{}\t{}",
                visible.render(),
                sm.render(),
                entry.line
            )?;
        }
        out.flush()
    }
}
