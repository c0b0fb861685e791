//! `timestamp`: sets the entry's timestamp from an extracted value.
//!
//! On failure (`action_on_failure`): `fudge` (the default) uses the last timestamp this stage parsed
//! plus one nanosecond, which keeps the order of lines; `skip` keeps the read time. Failures count in
//! `lokiship_pipeline_errors_total{stage="timestamp"}`.

use super::time_format::TimeFormat;
use crate::config::stages::TimestampStage as Config;
use crate::config::values::OnTimestampFailure;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use chrono_tz::Tz;
use std::sync::atomic::{AtomicI64, Ordering};

pub struct TimestampStage {
    source: String,
    formats: Vec<TimeFormat>,
    location: Option<Tz>,
    fudge: bool,
    last: AtomicI64,
}

impl TimestampStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let mut formats =
            vec![TimeFormat::new(&config.format).map_err(|e| BuildError::new("timestamp", e))?];
        for f in &config.fallback_formats {
            formats.push(TimeFormat::new(f).map_err(|e| BuildError::new("timestamp", e))?);
        }
        let location = match config.location.as_deref() {
            None | Some("") => None,
            Some("Local") => Some(local_zone()),
            Some(name) => Some(name.parse::<Tz>().map_err(|_| {
                BuildError::new(
                    "timestamp",
                    format!("unknown location {name:?}: use an IANA zone such as Europe/Berlin"),
                )
            })?),
        };
        let fudge = config.action_on_failure != Some(OnTimestampFailure::Skip);
        Ok(Self {
            source: config.source.clone(),
            formats,
            location,
            fudge,
            last: AtomicI64::new(i64::MIN),
        })
    }
}

/// The system's zone, for `location: Local`, found as Go finds it: `TZ` (a zone name, `:` before
/// it allowed; empty is UTC), else the zone `/etc/localtime` links to, else `/etc/timezone`, else
/// UTC.
fn local_zone() -> Tz {
    let from_env = std::env::var("TZ").ok();
    let named = match from_env.as_deref() {
        Some(tz) => Some(tz.trim_start_matches(':').to_string()),
        None => std::fs::read_link("/etc/localtime")
            .ok()
            .and_then(|target| {
                let target = target.to_string_lossy().into_owned();
                target
                    .split_once("zoneinfo/")
                    .map(|(_, zone)| zone.to_string())
            })
            .or_else(|| {
                std::fs::read_to_string("/etc/timezone")
                    .ok()
                    .map(|s| s.trim().to_string())
            }),
    };
    named
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

impl Stage for TimestampStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let Some(text) = entry.extracted.get(&self.source) else {
            // Promtail does not fudge when the source is simply absent.
            return Verdict::Keep;
        };
        let now = chrono::Utc::now();
        match self
            .formats
            .iter()
            .find_map(|f| f.parse(text, self.location, now))
        {
            Some(ts) => {
                entry.timestamp_ns = ts;
                self.last.store(ts, Ordering::Relaxed);
            }
            None => {
                crate::metrics::pipeline_error("timestamp", "parse_failed");
                let last = self.last.load(Ordering::Relaxed);
                if self.fudge && last != i64::MIN {
                    let fudged = last + 1;
                    self.last.store(fudged, Ordering::Relaxed);
                    entry.timestamp_ns = fudged;
                }
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::{pipeline, run};
    use crate::pipeline::Processing;

    #[test]
    fn sets_the_timestamp_from_an_extracted_value() {
        let stages = "- json: {expressions: {ts: stageTimestamp}}\n- timestamp: {source: ts, format: RFC3339Nano}";
        let (e, _) = run(stages, r#"{"stageTimestamp":"2026-11-24T10:00:01.5Z"}"#);
        assert_eq!(e.timestamp_ns, 1795514401500000000);
    }

    #[test]
    fn fudges_or_skips_on_failure() {
        let p =
            pipeline("- json: {expressions: {ts: t}}\n- timestamp: {source: ts, format: UnixMs}");
        let mut good = Processing::new(Default::default(), r#"{"t":"1000"}"#.into(), 5);
        p.process(&mut good);
        assert_eq!(good.timestamp_ns, 1_000_000_000);
        let mut bad = Processing::new(Default::default(), r#"{"t":"soon"}"#.into(), 5);
        p.process(&mut bad);
        assert_eq!(
            bad.timestamp_ns, 1_000_000_001,
            "fudge: last timestamp + 1ns"
        );

        let skip = pipeline("- json: {expressions: {ts: t}}\n- timestamp: {source: ts, format: UnixMs, action_on_failure: skip}");
        let mut bad = Processing::new(Default::default(), r#"{"t":"soon"}"#.into(), 5);
        skip.process(&mut bad);
        assert_eq!(bad.timestamp_ns, 5, "skip keeps the read time");
    }

    #[test]
    fn fallback_formats_are_tried_in_order() {
        let stages = "- regex: {expression: '^(?P<ts>\\S+)'}\n- timestamp: {source: ts, format: RFC3339, fallback_formats: [UnixMs]}";
        assert_eq!(run(stages, "1500 x").0.timestamp_ns, 1_500_000_000);
    }
}
