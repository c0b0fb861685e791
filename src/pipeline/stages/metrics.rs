//! `metrics`: Prometheus metrics from log lines, exposed on `/metrics` next to lokiship's own.
//!
//! Each metric is named `prefix + name` (prefix `promtail_custom_` by default) and has one series
//! per label set of the entries that update it. A series not updated for `max_idle_duration` (5 m)
//! disappears, so that label sets that come and go do not pile up.
//! Counter: `inc` (default) or `add` the value; with `match_all` every entry counts (and with
//! `count_entry_bytes`, its line length is added). Otherwise the extracted `source` (default: the
//! metric's name) must be present and, when `value` is set, equal to it.
//! Gauge: `set`, `inc`, `dec`, `add`, `sub`. Histogram: observes the value, `buckets` required.
//! lokiship's own option `labels: [names]` gives a metric only those labels (from the entry's labels
//! or extracted values) instead of all of the entry's labels.

use crate::config::stages::MetricStage as Config;
use crate::config::values::{MetricAction as Configured, MetricKind};
use crate::metrics::custom::{Declaration, Family, Kind, Update};
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Action {
    Inc,
    Add,
    Set,
    Dec,
    Sub,
    Observe,
}

struct Metric {
    kind: Kind,
    source: String,
    value: Option<String>,
    match_all: bool,
    count_bytes: bool,
    action: Action,
    /// The names of the series' labels; `None`: all the entry's labels.
    labels: Option<Vec<String>>,
    family: Arc<Family>,
}

pub struct MetricsStage {
    metrics: Vec<Metric>,
}

impl MetricsStage {
    pub fn new(config: &BTreeMap<String, Config>) -> Result<Self, BuildError> {
        let mut metrics = Vec::new();
        for (key, c) in config {
            let err = |m: String| BuildError::new("metrics", format!("{key}: {m}"));
            let kind = match c.kind {
                MetricKind::Counter => Kind::Counter,
                MetricKind::Gauge => Kind::Gauge,
                MetricKind::Histogram => Kind::Histogram,
            };
            let action = match (kind, c.config.action) {
                (Kind::Histogram, _) => Action::Observe,
                (Kind::Counter, None | Some(Configured::Inc)) => Action::Inc,
                (Kind::Counter, Some(Configured::Add)) => Action::Add,
                (Kind::Gauge, Some(Configured::Set)) => Action::Set,
                (Kind::Gauge, Some(Configured::Inc)) => Action::Inc,
                (Kind::Gauge, Some(Configured::Dec)) => Action::Dec,
                (Kind::Gauge, Some(Configured::Add)) => Action::Add,
                (Kind::Gauge, Some(Configured::Sub)) => Action::Sub,
                (Kind::Gauge, None) => {
                    return Err(err(
                        "a gauge needs an action: set, inc, dec, add or sub".into()
                    ))
                }
                (Kind::Counter, Some(other)) => {
                    return Err(err(format!(
                        "action {:?} does not apply to a Counter (inc or add)",
                        other.as_str()
                    )))
                }
            };
            let buckets = match kind {
                Kind::Histogram => {
                    let mut b = c.config.buckets.clone().unwrap_or_default();
                    if b.is_empty() {
                        return Err(err("a histogram needs buckets".into()));
                    }
                    b.sort_by(f64::total_cmp);
                    b
                }
                _ => Vec::new(),
            };
            let match_all = c.config.match_all.unwrap_or(false);
            let count_bytes = c.config.count_entry_bytes.unwrap_or(false);
            if count_bytes && !(match_all && kind == Kind::Counter && action == Action::Add) {
                return Err(err(
                    "count_entry_bytes needs a Counter with match_all: true and action: add".into(),
                ));
            }
            let prefix = c
                .prefix
                .clone()
                .unwrap_or_else(|| "promtail_custom_".into());
            let name = format!("{prefix}{key}");
            if !name.chars().enumerate().all(|(i, ch)| {
                ch.is_ascii_alphabetic() || ch == '_' || ch == ':' || (i > 0 && ch.is_ascii_digit())
            }) {
                return Err(err(format!("{name:?} is not a valid metric name")));
            }
            let family = crate::metrics::metrics().custom.declare(Declaration {
                name: &name,
                help: c.description.as_deref().unwrap_or_default(),
                kind,
                buckets,
                max_idle: c
                    .max_idle_duration
                    .map_or(Duration::from_secs(300), |d| d.0),
            });
            if family.kind() != kind {
                return Err(err(format!(
                    "{name} is already declared as a {:?}",
                    family.kind()
                )));
            }
            metrics.push(Metric {
                source: c
                    .source
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| key.clone()),
                kind,
                value: c.config.value.clone(),
                match_all,
                count_bytes,
                action,
                labels: c.labels.clone(),
                family,
            });
        }
        Ok(Self { metrics })
    }
}

impl Stage for MetricsStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        for m in &self.metrics {
            let amount = if m.match_all {
                if m.count_bytes {
                    Some(entry.line.len() as f64)
                } else {
                    match m.action {
                        Action::Inc | Action::Dec => Some(1.0),
                        _ => entry.value(&m.source).and_then(|v| v.trim().parse().ok()),
                    }
                }
            } else {
                let Some(v) = entry.value(&m.source) else {
                    continue;
                };
                if m.value.as_deref().is_some_and(|want| want != v) {
                    continue;
                }
                match m.action {
                    Action::Inc | Action::Dec => Some(1.0),
                    _ => match v.trim().parse::<f64>() {
                        Ok(n) => Some(n),
                        Err(_) => {
                            crate::metrics::pipeline_error("metrics", "not_a_number");
                            None
                        }
                    },
                }
            };
            let Some(amount) = amount else { continue };
            if m.kind == Kind::Counter && amount < 0.0 {
                continue; // a counter never goes down
            }
            let labels = match &m.labels {
                Some(names) => names
                    .iter()
                    .filter_map(|n| entry.value(n).map(|v| (n.as_str(), v)))
                    .collect(),
                None => {
                    let mut all = entry.labels.clone();
                    all.retain(|name, _| !name.starts_with("__"));
                    all
                }
            };
            let update = match m.action {
                Action::Inc => Update::Add(1.0),
                Action::Dec => Update::Add(-1.0),
                Action::Add => Update::Add(amount),
                Action::Sub => Update::Add(-amount),
                Action::Set => Update::Set(amount),
                Action::Observe => Update::Observe(amount),
            };
            m.family.update(labels, update);
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
    }

    #[test]
    fn counters_gauges_histograms() {
        let stages = r#"
- json: {expressions: {verb: verb, code: code, took: took}}
- labels: {verb: }
- metrics:
    t1_lines_total: {type: Counter, description: all lines, config: {match_all: true, action: inc}}
    t1_bytes_total: {type: Counter, config: {match_all: true, count_entry_bytes: true, action: add}}
    t1_forbidden: {type: Counter, source: code, config: {value: "403", action: inc}}
    t1_last_took: {type: Gauge, source: took, config: {action: set}}
    t1_took: {type: Histogram, source: took, config: {buckets: [0.1, 1, 10]}}
    t1_by_code: {type: Counter, labels: [code], config: {match_all: true, action: inc}}
"#;
        let lines = [
            r#"{"verb":"get","code":"200","took":"0.05"}"#,
            r#"{"verb":"get","code":"403","took":"2"}"#,
            r#"{"verb":"list","code":"403","took":"20"}"#,
            r#"{"verb":"list","code":"500","took":"oops"}"#,
        ];
        for line in lines {
            run(stages, line);
        }
        let text = crate::metrics::render();
        assert_eq!(
            sample(&text, r#"promtail_custom_t1_lines_total{verb="get"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"promtail_custom_t1_lines_total{verb="list"}"#),
            Some(2.0)
        );
        assert!(text.contains("# TYPE promtail_custom_t1_lines counter"));
        assert!(text.contains("# HELP promtail_custom_t1_lines all lines"));
        assert_eq!(
            sample(&text, r#"promtail_custom_t1_forbidden_total{verb="list"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"promtail_custom_t1_last_took{verb="list"}"#),
            Some(20.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"promtail_custom_t1_took_bucket{verb="get",le="1"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"promtail_custom_t1_took_bucket{verb="get",le="10"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"promtail_custom_t1_took_count{verb="list"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"promtail_custom_t1_bytes_total{verb="get"}"#),
            Some((lines[0].len() + lines[1].len()) as f64)
        );
    }

    #[test]
    fn idle_series_disappear_after_max_idle_duration() {
        let stages = "- metrics: {t2_idle_total: {type: Counter, max_idle_duration: 50ms, config: {match_all: true, action: inc}}}";
        run(stages, "x");
        assert!(crate::metrics::render().contains("promtail_custom_t2_idle_total 1"));
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert!(!crate::metrics::render().contains("promtail_custom_t2_idle_total"));
        run(stages, "y");
        assert!(
            crate::metrics::render().contains("promtail_custom_t2_idle_total 1"),
            "a new series starts at zero"
        );
    }

    #[test]
    fn invalid_metric_configs_are_refused() {
        for bad in [
            "- metrics: {m: {type: Summary}}",
            "- metrics: {m: {type: Gauge}}",
            "- metrics: {m: {type: Histogram}}",
            "- metrics: {m: {type: Counter, config: {action: set}}}",
            "- metrics: {m: {type: Counter, config: {count_entry_bytes: true}}}",
            "- metrics: {m-x: {type: Counter}}",
        ] {
            // Refused when read (a type or action that is no keyword) or when built.
            let refused = serde_yaml_ng::from_str::<Vec<crate::config::stages::StageConfig>>(bad)
                .map_or(true, |configs| {
                    crate::pipeline::Pipeline::build(&configs, "t").is_err()
                });
            assert!(refused, "{bad}");
        }
    }
}
