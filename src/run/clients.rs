//! The clients' side of a run: one task per client with its memory queue and disk queue, behind
//! one [`Fanout`] that the sources hand their entries to; disk queues no client uses any more.

use super::stdout::StdoutSink;
use super::{check_runnable, RunOptions};
use crate::client::fanout::{Fanout, Outlet};
use crate::client::queue::{queue, QUEUE_BYTES};
use crate::client::settings::Settings;
use crate::client::wal::orphans;
use crate::client::Client;
use crate::config::schema::Config;
use crate::entry::sink::EntrySink;
use crate::server::Readiness;
use crate::shutdown::{Part, Shutdown};
use anyhow::Context;
use std::sync::Arc;

/// The clients' side of the sources' sink, and the client tasks behind it.
pub(super) struct Clients {
    pub sink: Arc<dyn EntrySink>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// `(host, tenant)` of each client, for what the sources count on the clients' behalf.
    pub labels: Vec<(String, String)>,
}

/// One task per client, each with its queue and (unless `wal.enabled: false`) its disk queue,
/// behind one [`Fanout`]; in a dry run, standard output instead.
pub(super) fn start_clients(
    config: &Config,
    settings: &[Settings],
    opts: &RunOptions,
    ready: &Readiness,
    shutdown: &Arc<Shutdown>,
) -> anyhow::Result<Clients> {
    if opts.dry_run {
        return Ok(Clients {
            sink: Arc::new(StdoutSink),
            tasks: Vec::new(),
            labels: vec![("stdout".to_string(), String::new())],
        });
    }
    check_runnable(config, opts)?;
    let mut tasks = Vec::new();
    let mut labels = Vec::new();
    let mut outlets = Vec::new();
    let mut outlets_dirs = Vec::new();
    let disk_queue = config
        .wal
        .disk_queue(&config.positions.filename, config.clients.len());
    if let Some(q) = disk_queue.as_ref().filter(|q| q.automatic) {
        tracing::info!(dir = %q.dir.display(), max_size_per_client = q.max_bytes,
            "disk queue on: while a Loki fails its lines wait on disk, not only in memory (wal.enabled: false turns this off)");
    }
    for (i, c) in settings.iter().enumerate() {
        let client = Client::new(c)?;
        labels.push((client.host().to_string(), c.tenant.to_string()));
        ready.watch_client(client.health());
        let (tx, rx) = queue(QUEUE_BYTES, client.host());
        let spill = match &disk_queue {
            Some(q) => {
                let dir = orphans::queue_dir(&q.dir, i, client.host());
                let spill = open_spill(config, q, &dir, client.host())?;
                outlets_dirs.push(dir);
                Some(Arc::new(spill))
            }
            None => None,
        };
        outlets.push(Outlet {
            overflow: disk_queue.as_ref().is_some_and(|q| q.overflow),
            queue: tx,
            spill: spill.clone(),
        });
        let run = client.run(rx, spill, shutdown.signal(Part::Deliveries));
        tasks.push(tokio::spawn(run));
    }
    if let Some(q) = &disk_queue {
        let spills: Vec<_> = outlets.iter().map(|o| o.spill.clone()).collect();
        handle_orphaned_queues(&q.dir, &outlets_dirs, &spills, opts.adopt_orphaned_queues)?;
    }
    Ok(Clients {
        sink: Arc::new(Fanout::with_outlets(outlets)),
        tasks,
        labels,
    })
}

/// Reports each disk queue no client uses; with `adopt`, moves each into the queue of the client
/// now at its place in `clients` (or the first), to be sent there.
fn handle_orphaned_queues(
    dir: &std::path::Path,
    used: &[std::path::PathBuf],
    spills: &[Option<Arc<crate::client::wal::Spill>>],
    adopt: bool,
) -> anyhow::Result<()> {
    for orphan in orphans::find(dir, used) {
        let has_queue = |i: &usize| spills.get(*i).is_some_and(Option::is_some);
        let target = orphan
            .index
            .filter(has_queue)
            .or_else(|| (0..spills.len()).find(has_queue));
        match target.and_then(|i| Some((i, spills[i].as_ref()?))) {
            Some((i, spill)) if adopt => {
                let moved = orphan.adopt_into(&mut spill.lock()).with_context(|| {
                    format!("adopting the disk queue in {}", orphan.path.display())
                })?;
                spill.notify.notify_one();
                tracing::info!(path = %orphan.path.display(), entries = moved, into = %used[i].display(),
                    "orphaned disk queue adopted: its lines are sent by the client now at its place");
            }
            _ => orphan.warn(),
        }
    }
    Ok(())
}

/// Opens a client's disk queue in `dir`.
fn open_spill(
    config: &Config,
    queue: &crate::config::schema::DiskQueue,
    dir: &std::path::Path,
    host: &str,
) -> anyhow::Result<crate::client::wal::Spill> {
    use crate::client::wal::{Spill, Wal, WhenFull};
    let when_full = if queue.drop_oldest {
        WhenFull::DropOldest
    } else {
        WhenFull::Backpressure
    };
    let wal = Wal::open(dir, queue.max_bytes, when_full, host)
        .and_then(|wal| orphans::record_client(dir, host).map(|()| wal))
        .with_context(|| format!("cannot open the disk queue in {}", dir.display()))?
        .with_max_age(config.wal.clean_segments_older_than.map(|d| d.0));
    Ok(Spill::new(wal))
}
