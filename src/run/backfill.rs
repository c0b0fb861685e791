//! `lokiship backfill`: what runs around the file source reading the given files once
//! (`config::backfill` makes the config): the check of the entries' timestamps before anything
//! is sent, and the progress while it runs.
//!
//! The check reads every file through the job's pipeline (without its `metrics`, `limit` and
//! `sampling` stages, which would count, wait or drop twice) and counts the entries Loki would
//! refuse: older than the client's `reject_old_samples_max_age`, or behind the newest entry of
//! their stream by more than Loki's ordering window. Nothing is sent then; `-restamp` or
//! `-force` says what to do with them. It also finds whether files share streams: only files
//! that do not are read together.

use crate::config::compile::Job;
use crate::config::schema::ScrapeConfig;
use crate::config::stages::StageConfig;
use crate::pipeline::{Pipeline, Processing};
use crate::source::file::compressed;
use crate::source::file::tailer::lines::{LineEvent, LineReader, READ_CHUNK};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Loki's out-of-order window: half its `max_chunk_age` (2h by default). An entry further behind
/// the newest of its stream is refused (`entry too far behind`).
pub const ORDERING_WINDOW: Duration = Duration::from_secs(3600);

/// What the check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Check {
    pub entries: u64,
    /// Older than `reject_old_samples_max_age`.
    pub too_old: u64,
    /// Behind the newest entry of their stream by more than [`ORDERING_WINDOW`].
    pub behind: u64,
    /// The oldest entry's time.
    pub oldest_ns: Option<i64>,
    /// Some stream has entries of two files: those must be sent one file after the other.
    pub files_share_streams: bool,
}

impl Check {
    pub fn refused(&self) -> u64 {
        self.too_old + self.behind
    }
}

/// Reads the backfill's files through `sc`'s pipeline and counts what Loki would refuse;
/// `max_age` is the client's `reject_old_samples_max_age`.
pub fn check(
    sc: &ScrapeConfig,
    job: &Job,
    max_age: Duration,
    max_line: usize,
) -> anyhow::Result<Check> {
    let stages: Vec<StageConfig> = sc
        .pipeline_stages
        .iter()
        .filter(|s| !matches!(s.name(), "metrics" | "limit" | "sampling"))
        .cloned()
        .collect();
    let pipeline = Pipeline::build(&stages, &sc.job_name)?;
    let now = crate::entry::now_ns();
    let mut counts = Counter {
        oldest_allowed: now.saturating_sub(i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX)),
        window: ORDERING_WINDOW.as_nanos() as i64,
        newest: HashMap::new(),
        file: 0,
        check: Check::default(),
    };
    let _muted = crate::metrics::mute_pipeline_counts();
    for target in job.targets.targets() {
        for path in target.glob.matches() {
            counts.file += 1;
            let labels = crate::source::file::labels_for(&target, &path.display().to_string());
            read_file(&path, max_line, |line| {
                let mut out = Vec::new();
                pipeline.run(Processing::new(labels.clone(), line, now), &mut out);
                out.iter().for_each(|p| counts.add(p));
            })?;
            let mut out = Vec::new();
            pipeline.flush(true, &mut out);
            out.iter().for_each(|p| counts.add(p));
        }
    }
    Ok(counts.check)
}

struct Counter {
    oldest_allowed: i64,
    window: i64,
    /// The newest entry of each stream so far, and the file it came from first.
    newest: HashMap<String, (i64, usize)>,
    /// The file being read (counted from 1).
    file: usize,
    check: Check,
}

impl Counter {
    fn add(&mut self, p: &Processing) {
        let ts = p.timestamp_ns;
        let c = &mut self.check;
        c.entries += 1;
        c.oldest_ns = Some(c.oldest_ns.map_or(ts, |o| o.min(ts)));
        let (newest, first_file) = self
            .newest
            .entry(p.labels.render())
            .or_insert((ts, self.file));
        c.files_share_streams |= *first_file != self.file;
        if ts < self.oldest_allowed {
            c.too_old += 1;
        } else if ts < *newest - self.window {
            c.behind += 1;
        } else {
            *newest = (*newest).max(ts);
        }
    }
}

/// Each line of `path` (decompressed by what its first bytes say) to `on_line`.
fn read_file(
    path: &PathBuf,
    max_line: usize,
    mut on_line: impl FnMut(String),
) -> anyhow::Result<()> {
    use anyhow::Context;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let format = compressed::format_of(&file, None);
    let mut reader = LineReader::new(file, 0)?;
    if let Some(format) = format {
        reader.decompress(format)?;
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut emit = |e: LineEvent| {
        if let LineEvent::Line { bytes, .. } = e {
            on_line(String::from_utf8_lossy(bytes).into_owned());
        }
    };
    while reader
        .read(&mut buf, max_line, true, &mut emit)
        .with_context(|| format!("cannot read {}", path.display()))?
        > 0
    {}
    reader.take_partial(&mut emit);
    Ok(())
}

/// Says how the backfill goes: a progress bar on a terminal, else a log line every 10 s.
pub struct Progress {
    files: Arc<Files>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What progress is measured against: the files and their sizes.
struct Files {
    paths: Vec<String>,
    total_bytes: u64,
}

impl Progress {
    pub fn start(paths: Vec<String>) -> Self {
        // As the file source names them in its metrics.
        let paths: Vec<String> = paths
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).map_or(p, |c| c.display().to_string()))
            .collect();
        let total_bytes = paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let files = Arc::new(Files { paths, total_bytes });
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stopping, reported) = (stop.clone(), files.clone());
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let thread = std::thread::Builder::new()
            .name("backfill-progress".into())
            .spawn(move || report(&reported, &stopping, terminal))
            .ok();
        Self {
            files,
            stop,
            thread,
        }
    }

    /// Stops the reports and says what the backfill did in `took`.
    pub fn finish(mut self, took: Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let (lines, bytes) = read_so_far(&self.files);
        let summary = crate::summary::Summary::now();
        tracing::info!(
            files = self.files.paths.len(),
            lines,
            bytes,
            sent = summary.sent,
            not_sent = summary.dropped_total(),
            seconds = format!("{:.1}", took.as_secs_f64()),
            lines_per_second = (lines as f64 / took.as_secs_f64().max(0.001)) as u64,
            "backfill done"
        );
    }
}

/// Lines and bytes read so far (bytes of plain files, and of compressed files as decompressed).
fn read_so_far(files: &Files) -> (u64, u64) {
    let text = crate::metrics::render();
    let (mut lines, mut bytes) = (0, 0);
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as u64;
        if !files
            .paths
            .iter()
            .any(|p| series.contains(&format!("path=\"{p}\"")))
        {
            continue;
        }
        if series.starts_with("promtail_read_lines_total{") {
            lines += value;
        } else if series.starts_with("promtail_read_bytes_total{") {
            bytes += value;
        }
    }
    (lines, bytes)
}

fn report(files: &Files, stop: &std::sync::atomic::AtomicBool, terminal: bool) {
    let started = Instant::now();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(files.total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut last_log = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let (lines, bytes) = read_so_far(files);
        let rate = lines as f64 / started.elapsed().as_secs_f64().max(0.001);
        match &bar {
            Some(bar) => {
                bar.set_position(bytes.min(files.total_bytes));
                bar.set_message(format!("{lines} lines, {rate:.0} lines/s"));
            }
            None if last_log.elapsed() >= Duration::from_secs(10) => {
                last_log = Instant::now();
                tracing::info!(
                    files = files.paths.len(),
                    lines,
                    bytes,
                    input_bytes = files.total_bytes,
                    lines_per_second = rate as u64,
                    "backfill progress"
                );
            }
            None => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
