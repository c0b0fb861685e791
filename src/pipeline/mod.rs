//! The processing pipeline: Promtail's stages, run in order on each entry.
//!
//! An entry enters as [`Processing`] (labels of its target, the raw line, the read time) and each
//! [`Stage`] may extract values into the per-entry map, set labels, structured metadata or the
//! timestamp, rewrite the line, or drop the entry. Stages never fail an entry: a stage that cannot do its
//! work (broken JSON, a timestamp that does not parse) counts it in a metric and leaves the entry as it
//! is, unless its options say to drop it.

pub mod extracted;
pub mod selector;
pub mod stages;

pub use extracted::Extracted;

use crate::config::stages::StageConfig;
use crate::entry::Labels;
use std::fmt;

/// An entry while it goes through the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Processing {
    pub labels: Labels,
    pub extracted: Extracted,
    pub line: String,
    /// Nanoseconds since the Unix epoch; the read time until a `timestamp` stage sets it.
    pub timestamp_ns: i64,
    pub structured_metadata: Vec<(String, String)>,
}

impl Processing {
    pub fn new(labels: Labels, line: String, timestamp_ns: i64) -> Self {
        Self {
            labels,
            extracted: Extracted::default(),
            line,
            timestamp_ns,
            structured_metadata: Vec::new(),
        }
    }

    /// The value a stage reads: the extracted value `source`, or the line when no source is set.
    /// `None` when the source is set but was not extracted.
    pub fn input<'a>(&'a self, source: Option<&str>) -> Option<&'a str> {
        match source {
            Some(name) => self.extracted.get(name),
            None => Some(&self.line),
        }
    }
}

/// What a stage decided about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Drop the entry; counted in `logentry_dropped_lines_total{reason}`.
    Drop(String),
}

/// One pipeline stage.
pub trait Stage: Send + Sync {
    fn process(&self, entry: &mut Processing) -> Verdict;
}

/// A stage's options are wrong in a way the YAML reader could not see.
#[derive(Debug)]
pub struct BuildError {
    /// The stage's name, to find its line in the config file.
    pub stage: &'static str,
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "stage {}: {}", self.stage, self.message)
    }
}

impl std::error::Error for BuildError {}

impl BuildError {
    pub fn new(stage: &'static str, message: impl Into<String>) -> Self {
        Self {
            stage,
            message: message.into(),
        }
    }
}

/// The compiled stages of one scrape config.
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl Pipeline {
    /// Compiles `configs`; `job` names the scrape config in messages.
    pub fn build(configs: &[StageConfig], job: &str) -> Result<Self, BuildError> {
        let stages = configs
            .iter()
            .map(|c| stages::build(c, job))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { stages })
    }

    /// An empty pipeline: entries pass unchanged.
    pub fn empty() -> Self {
        Self { stages: Vec::new() }
    }

    /// Runs every stage on `entry`, stopping at the first that drops it.
    pub fn process(&self, entry: &mut Processing) -> Verdict {
        run_stages(&self.stages, entry)
    }
}

/// Runs `stages` in order; also used by the `match` stage for its nested stages.
pub(crate) fn run_stages(stages: &[Box<dyn Stage>], entry: &mut Processing) -> Verdict {
    for stage in stages {
        if let Verdict::Drop(reason) = stage.process(entry) {
            crate::metrics::pipeline_dropped(&reason);
            return Verdict::Drop(reason);
        }
    }
    Verdict::Keep
}
