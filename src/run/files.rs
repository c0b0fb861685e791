//! The file source of a run: its settings from the config, its thread, and the positions it
//! resumes from and the saver that writes them.

use super::RunOptions;
use crate::config::compile::Job;
use crate::config::schema::Config;
use crate::entry::sink::EntrySink;
use crate::shutdown::{Part, Shutdown};
use crate::source::file::positions::{self, Positions};
use crate::source::file::{FileSource, FileSourceConfig, ReadlineLimit, Target, DEFAULT_MAX_LINE};
use std::sync::Arc;

/// The file source and what keeps its positions.
pub(super) struct Files {
    pub source_thread: std::thread::JoinHandle<()>,
    /// Hands the file source the jobs of a reload applied in place.
    pub reconfigurer: crate::source::file::reconfigure::Reconfigurer,
    /// None in a dry run: positions are not written.
    pub saver: Option<std::thread::JoinHandle<()>>,
}

/// The positions file, read.
pub(super) fn load_positions(config: &Config) -> anyhow::Result<Arc<Positions>> {
    let positions_path = std::path::PathBuf::from(&config.positions.filename);
    Ok(Arc::new(Positions::load(
        &positions_path,
        config.positions.ignore_invalid_yaml,
        config.clients.len().max(1) as u32,
    )?))
}

/// Starts the file source on its thread and the positions saver on its own. The saver runs
/// until the clients have finished, so that what they deliver while a stop drains them is on
/// disk even if a SIGKILL cuts the drain short.
pub(super) fn start_files(
    config: &Config,
    jobs: Vec<Job>,
    opts: &RunOptions,
    client_labels: Vec<(String, String)>,
    sink: Arc<dyn EntrySink>,
    positions: &Arc<Positions>,
    shutdown: &Arc<Shutdown>,
) -> Files {
    let source_config = file_source_config(config, jobs, opts, client_labels);
    let mut source = FileSource::new(
        source_config,
        positions.clone(),
        sink,
        shutdown.signal(Part::Sources),
    );
    let reconfigurer = source.reconfigurer();
    let source_thread = source.spawn();
    let saver = (!opts.dry_run && !opts.stdin).then(|| {
        positions::spawn_saver(
            positions.clone(),
            config.positions.sync_period.0,
            shutdown.signal(Part::Saver),
        )
    });
    Files {
        source_thread,
        reconfigurer,
        saver,
    }
}

/// `limits_config.max_line_size`, or lokiship's bound when it is 0 (no limit in Promtail).
pub fn max_line(limits: &crate::config::schema::LimitsConfig) -> usize {
    if limits.max_line_size.0 == 0 {
        DEFAULT_MAX_LINE
    } else {
        limits.max_line_size.0 as usize
    }
}

fn file_source_config(
    config: &Config,
    jobs: Vec<Job>,
    opts: &RunOptions,
    client_labels: Vec<(String, String)>,
) -> FileSourceConfig {
    let (pipelines, mut scrapes): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|j| (j.pipeline, j.targets)).unzip();
    for st in &mut scrapes {
        st.refresh();
    }
    let targets: Vec<Target> = scrapes.iter().flat_map(|s| s.targets()).collect();
    crate::metrics::metrics()
        .targets_active
        .set(targets.len() as i64);
    let limits = &config.limits_config;
    FileSourceConfig {
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
        max_line: max_line(limits),
        truncate_long_lines: limits.max_line_size_truncate,
        readline: limits.readline_rate_enabled.then_some(ReadlineLimit {
            rate: limits.readline_rate,
            burst: limits.readline_burst,
            drop: limits.readline_rate_drop,
        }),
        exit_at_eof: opts.exit_at_eof,
        max_open_rotated: config.limits_config.max_open_rotated_files,
        client_labels,
    }
}
