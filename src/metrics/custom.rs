//! The series the `metrics` pipeline stages declare, kept beside lokiship's own metrics and
//! exported with them by [`super::render`].
//!
//! Their names and label sets come from the configuration, so they cannot be typed
//! prometheus-client families; and they are rendered as Promtail does (a counter of 2 is `2`, not
//! `2.0`). A series not updated for its family's `max_idle` disappears at the next render.

use crate::entry::Labels;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A change to one series.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Update {
    /// Adds to a counter or gauge (a negative amount for `dec`/`sub`).
    Add(f64),
    /// Sets a gauge.
    Set(f64),
    /// Observes a value in a histogram.
    Observe(f64),
}

/// The series of one metric name, shared by every stage that declares it.
#[derive(Debug)]
pub struct Family {
    help: String,
    kind: Kind,
    buckets: Vec<f64>,
    max_idle: Duration,
    series: Mutex<HashMap<Labels, Series>>,
}

#[derive(Debug)]
struct Series {
    value: f64,
    /// Histogram: cumulative counts per bucket, and the sum.
    counts: Vec<u64>,
    sum: f64,
    updated: Instant,
}

impl Family {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Applies `update` to the series of `labels`, creating it.
    pub fn update(&self, labels: Labels, update: Update) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.entry(labels).or_insert_with(|| Series {
            value: 0.0,
            counts: vec![0; self.buckets.len()],
            sum: 0.0,
            updated: Instant::now(),
        });
        s.updated = Instant::now();
        match update {
            Update::Add(n) => s.value += n,
            Update::Set(n) => s.value = n,
            Update::Observe(n) => {
                s.value += 1.0;
                s.sum += n;
                for (count, upper) in s.counts.iter_mut().zip(&self.buckets) {
                    if n <= *upper {
                        *count += 1;
                    }
                }
            }
        }
    }
}

/// What a stage declares of a metric.
pub struct Declaration<'a> {
    pub name: &'a str,
    pub help: &'a str,
    pub kind: Kind,
    /// Histogram bucket upper bounds, sorted.
    pub buckets: Vec<f64>,
    pub max_idle: Duration,
}

/// Every declared family, by name.
#[derive(Debug, Default)]
pub struct CustomMetrics {
    families: Mutex<BTreeMap<String, Arc<Family>>>,
}

impl CustomMetrics {
    /// The family named `d.name`: the one already declared (by another stage, or before a
    /// reload), or a new one. The caller checks that its kind is the one it wants.
    pub fn declare(&self, d: Declaration<'_>) -> Arc<Family> {
        self.families
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(d.name.to_string())
            .or_insert_with(|| {
                Arc::new(Family {
                    help: d.help.to_string(),
                    kind: d.kind,
                    buckets: d.buckets,
                    max_idle: d.max_idle,
                    series: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// Appends the families in the text format; idle series are removed first.
    pub fn render(&self, out: &mut String) {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        for (name, family) in families.iter() {
            render_family(name, family, out);
        }
    }
}

fn render_family(name: &str, family: &Family, out: &mut String) {
    let mut series = family.series.lock().unwrap_or_else(|e| e.into_inner());
    series.retain(|_, s| s.updated.elapsed() < family.max_idle);
    let base = match family.kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    let kind = match family.kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    let _ = writeln!(out, "# HELP {base} {}", family.help.replace('\n', " "));
    let _ = writeln!(out, "# TYPE {base} {kind}");
    let mut sorted: Vec<_> = series.iter().collect();
    sorted.sort_by_key(|(labels, _)| labels.render());
    for (labels, s) in sorted {
        match family.kind {
            Kind::Counter => {
                let _ = writeln!(out, "{base}_total{} {}", label_text(labels, None), s.value);
            }
            Kind::Gauge => {
                let _ = writeln!(out, "{base}{} {}", label_text(labels, None), s.value);
            }
            Kind::Histogram => {
                for (upper, count) in family.buckets.iter().zip(&s.counts) {
                    let le = upper.to_string();
                    let _ = writeln!(
                        out,
                        "{base}_bucket{} {count}",
                        label_text(labels, Some(&le))
                    );
                }
                let _ = writeln!(
                    out,
                    "{base}_bucket{} {}",
                    label_text(labels, Some("+Inf")),
                    s.value
                );
                let _ = writeln!(out, "{base}_sum{} {}", label_text(labels, None), s.sum);
                let _ = writeln!(out, "{base}_count{} {}", label_text(labels, None), s.value);
            }
        }
    }
}

fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
