//! `docker` and `cri`: container runtime log formats.
//!
//! `docker`: `{"log":"…","stream":"stderr","time":"…"}` → line = log, label `stream`, timestamp.
//! `cri`: `2019-04-30T02:12:41.8443515Z stdout F message` → line = message, label `stream`,
//! timestamp; partial lines (flag `P`) of one stream are joined until its `F` line, at most
//! `max_partial_lines` (100) of them or, lokiship's own safety, 5 s of waiting.
//! A line not in the format passes unchanged and is counted in `lokiship_pipeline_errors_total`.

use crate::config::stages::CriStage as Config;
use crate::entry::Labels;
use crate::pipeline::{Processing, Stage, Verdict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "stream";

fn set_time(entry: &mut Processing, time: &str) -> bool {
    match chrono::DateTime::parse_from_rfc3339(time) {
        Ok(t) => {
            if let Some(ns) = t.timestamp_nanos_opt() {
                entry.timestamp_ns = ns;
            }
            true
        }
        Err(_) => false,
    }
}

pub struct DockerStage;

#[derive(serde::Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    time: String,
}

impl Stage for DockerStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let Ok(d) = serde_json::from_str::<DockerLine>(&entry.line) else {
            crate::metrics::pipeline_error("docker", "malformed");
            return Verdict::Keep;
        };
        if !d.stream.is_empty() {
            entry.labels.insert(STREAM, d.stream.as_str());
            entry.extracted.set(&Arc::from(STREAM), d.stream);
        }
        if !set_time(entry, &d.time) {
            crate::metrics::pipeline_error("docker", "timestamp");
        }
        entry.extracted.set(&Arc::from("output"), d.log.clone());
        entry.line = d.log;
        Verdict::Keep
    }
}

/// One CRI line: (time, stream, flags, content).
fn parse_cri(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (flags, content) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((time, stream, flags, content))
}

/// How long a partial line waits for the rest of it.
const PARTIAL_WAIT: Duration = Duration::from_secs(5);

pub struct CriStage {
    max_partial_lines: usize,
    max_partial_line_size: usize,
    truncate: bool,
    partial: Mutex<HashMap<(Labels, String), Partial>>,
}

struct Partial {
    entry: Processing,
    lines: usize,
    since: Instant,
}

impl CriStage {
    pub fn new(config: &Config) -> Self {
        Self {
            max_partial_lines: config.max_partial_lines.unwrap_or(100).max(1),
            max_partial_line_size: config.max_partial_line_size.map_or(0, |s| s.0 as usize),
            truncate: config.max_partial_line_size_truncate,
            partial: Mutex::new(HashMap::new()),
        }
    }

    /// Parses the line in place; `Some(partial?)`, or `None` when it is not a CRI line.
    fn parse(&self, entry: &mut Processing) -> Option<bool> {
        let (time, stream, flags, content) = parse_cri(&entry.line)?;
        let (time, stream, flags, content) = (
            time.to_string(),
            stream.to_string(),
            flags.to_string(),
            content.to_string(),
        );
        if !set_time(entry, &time) {
            crate::metrics::pipeline_error("cri", "timestamp");
        }
        entry.labels.insert(STREAM, stream.as_str());
        entry.extracted.set(&Arc::from(STREAM), stream);
        entry.extracted.set(&Arc::from("flags"), flags.clone());
        entry.extracted.set(&Arc::from("time"), time);
        entry.line = self.limit(content);
        Some(flags.split(':').any(|f| f == "P"))
    }

    fn limit(&self, mut content: String) -> String {
        if self.truncate
            && self.max_partial_line_size > 0
            && content.len() > self.max_partial_line_size
        {
            let mut end = self.max_partial_line_size;
            while !content.is_char_boundary(end) {
                end -= 1;
            }
            content.truncate(end);
        }
        content
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Labels, String), Partial>> {
        self.partial.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Stage for CriStage {
    fn process(&self, _entry: &mut Processing) -> Verdict {
        Verdict::Keep
    }

    fn holds_entries(&self) -> bool {
        true
    }

    fn take(&self, mut entry: Processing, out: &mut Vec<Processing>) {
        let Some(is_partial) = self.parse(&mut entry) else {
            crate::metrics::pipeline_error("cri", "malformed");
            out.push(entry);
            return;
        };
        let stream = entry.labels.get(STREAM).unwrap_or_default().to_string();
        let mut key_labels = entry.labels.clone();
        key_labels.remove(STREAM);
        let key = (key_labels, stream);
        let mut partials = self.lock();
        let done = match partials.remove(&key) {
            Some(mut p) => {
                p.entry.line.push_str(&entry.line);
                // The joined line has the time of its last part, as Promtail gives it.
                p.entry.timestamp_ns = entry.timestamp_ns;
                p.entry.line = self.limit(std::mem::take(&mut p.entry.line));
                if let (Some(first), Some(ack)) = (p.entry.ack.as_mut(), entry.ack.take()) {
                    first.absorb(ack);
                }
                p.lines += 1;
                if is_partial && p.lines < self.max_partial_lines {
                    partials.insert(key, p);
                    return;
                }
                p.entry
            }
            None if is_partial => {
                partials.insert(
                    key,
                    Partial {
                        entry,
                        lines: 1,
                        since: Instant::now(),
                    },
                );
                return;
            }
            None => entry,
        };
        out.push(done);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock().values().map(|p| p.since + PARTIAL_WAIT).min()
    }

    fn flush(&self, all: bool, out: &mut Vec<Processing>) {
        let mut partials = self.lock();
        let due: Vec<_> = partials
            .iter()
            .filter(|(_, p)| all || p.since.elapsed() >= PARTIAL_WAIT)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(p) = partials.remove(&key) {
                out.push(p.entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::{run, run_all};

    #[test]
    fn docker_lines() {
        let (e, _) = run(
            "- docker: {}",
            r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
        );
        assert_eq!(e.line, "log message\n");
        assert_eq!(e.labels.get("stream"), Some("stderr"));
        assert_eq!(e.timestamp_ns, 1_556_590_361_844_351_500);
        let before = crate::pipeline::stages::test_util::errors("docker", "malformed");
        let (e, _) = run("- docker: {}", "not json");
        assert!(crate::pipeline::stages::test_util::errors("docker", "malformed") > before);
        assert_eq!(e.line, "not json");
        assert_eq!(e.labels.get("stream"), None);
    }

    #[test]
    fn cri_lines_and_partials() {
        let before = crate::pipeline::stages::test_util::errors("cri", "malformed");
        let out = run_all(
            "- cri: {}",
            &[
                "2019-04-30T02:12:41.8443515Z stdout F full line",
                "2019-04-30T02:12:42.0000000Z stderr P part one, ",
                "2019-04-30T02:12:42.1000000Z stdout F between",
                "2019-04-30T02:12:42.2000000Z stderr P part two, ",
                "2019-04-30T02:12:42.3000000Z stderr F end",
                "not a cri line",
            ],
        );
        let lines: Vec<(&str, Option<&str>)> = out
            .iter()
            .map(|e| (e.line.as_str(), e.labels.get("stream")))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("full line", Some("stdout")),
                ("between", Some("stdout")),
                ("part one, part two, end", Some("stderr")),
                ("not a cri line", None),
            ]
        );
        assert!(crate::pipeline::stages::test_util::errors("cri", "malformed") > before);
        assert_eq!(out[0].timestamp_ns, 1_556_590_361_844_351_500);
        assert_eq!(
            out[2].timestamp_ns, 1_556_590_362_300_000_000,
            "the last part's time"
        );
    }

    #[test]
    fn cri_partial_limits() {
        let out = run_all(
            "- cri: {max_partial_lines: 2}",
            &[
                "t stdout P a",
                "t stdout P b",
                "t stdout P c",
                "t stdout F d",
            ],
        );
        let lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, vec!["ab", "cd"]);
        let out = run_all(
            "- cri: {max_partial_line_size: 3, max_partial_line_size_truncate: true}",
            &["t stdout P abcdef", "t stdout F gh"],
        );
        assert_eq!(out[0].line, "abc");
    }
}
