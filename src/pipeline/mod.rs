//! The processing pipeline: Promtail's stages, run in order on each entry.
//!
//! An entry enters as [`Processing`] (labels of its target, the raw line, the read time) and each
//! [`Stage`] may extract values into the per-entry map, set labels, structured metadata or the
//! timestamp, rewrite the line, or drop the entry. Stages never fail an entry: a stage that cannot do its
//! work (broken JSON, a timestamp that does not parse) counts it in a metric and leaves the entry as it
//! is, unless its options say to drop it.

pub mod cardinality;
pub mod extracted;
#[cfg(test)]
mod fuzz_target;
pub mod go_json;
pub mod inspect;
pub mod selector;
pub mod stages;
pub mod template;

pub use extracted::Extracted;

use crate::config::stages::StageConfig;
use crate::entry::ack::Ack;
use crate::entry::{Entry, Labels};
use std::fmt;

/// An entry while it goes through the pipeline.
#[derive(Debug, Default)]
pub struct Processing {
    pub labels: Labels,
    pub extracted: Extracted,
    pub line: String,
    /// Nanoseconds since the Unix epoch; the read time until a `timestamp` stage sets it.
    pub timestamp_ns: i64,
    pub structured_metadata: Vec<(String, String)>,
    /// Moves the source's position once the entry is delivered; a dropped entry is acknowledged at
    /// once, and an entry joined into another (multiline, partial lines) leaves the first one's.
    pub ack: Option<Ack>,
}

impl Processing {
    pub fn new(labels: Labels, line: String, timestamp_ns: i64) -> Self {
        Self {
            labels,
            extracted: Extracted::default(),
            line,
            timestamp_ns,
            structured_metadata: Vec::new(),
            ack: None,
        }
    }

    /// The value a stage reads: the extracted value `source`, or the line when no source is set.
    /// As in Promtail, where the extracted map starts with the entry's labels, a name not extracted
    /// falls back to the label of that name. `None` when there is neither.
    pub fn input<'a>(&'a self, source: Option<&str>) -> Option<&'a str> {
        match source {
            Some(name) => self.value(name),
            None => Some(&self.line),
        }
    }

    /// The extracted value `name`, else the label `name`.
    pub fn value<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.extracted.get(name).or_else(|| self.labels.get(name))
    }

    /// The entry that leaves the pipeline.
    pub fn into_entry(self) -> Entry {
        Entry {
            labels: self.labels,
            timestamp_ns: self.timestamp_ns,
            line: self.line,
            structured_metadata: self.structured_metadata,
            ack: self.ack,
        }
    }

    /// Drops the entry: counted by reason, and acknowledged so that the position moves past it.
    pub(crate) fn drop_with(mut self, reason: &str) {
        crate::metrics::pipeline_dropped(reason);
        if let Some(ack) = self.ack.take() {
            ack.done_all();
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
///
/// Most stages look at one entry at a time ([`Stage::process`]). A stage that joins entries
/// (`multiline`, `cri` partial lines) holds them back: it says so with [`Stage::holds_entries`], and
/// the pipeline then hands it each entry with [`Stage::take`] and asks for what is complete or waited
/// long enough with [`Stage::flush`].
pub trait Stage: Send + Sync {
    fn process(&self, entry: &mut Processing) -> Verdict;

    fn holds_entries(&self) -> bool {
        false
    }

    /// Takes `entry`; pushes to `out` the entries that are complete, in order.
    fn take(&self, entry: Processing, out: &mut Vec<Processing>) {
        out.push(entry);
    }

    /// Pushes to `out` the entries held longer than the stage's wait, or all of them.
    fn flush(&self, _all: bool, _out: &mut Vec<Processing>) {}

    /// When the first held entry's wait ends; `None` while nothing is held, so that the source
    /// sleeps until a line comes instead of waking up to look.
    fn next_deadline(&self) -> Option<std::time::Instant> {
        None
    }
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
    /// Each stage's name, for `-inspect`.
    names: Vec<&'static str>,
    holds_entries: bool,
}

impl Pipeline {
    /// Compiles `configs`; `job` names the scrape config in messages.
    pub fn build(configs: &[StageConfig], job: &str) -> Result<Self, BuildError> {
        let stages = configs
            .iter()
            .map(|c| stages::build(c, job))
            .collect::<Result<Vec<_>, _>>()?;
        let names = configs.iter().map(StageConfig::name).collect();
        Ok(Self::from_stages(stages, names))
    }

    pub(crate) fn from_stages(stages: Vec<Box<dyn Stage>>, names: Vec<&'static str>) -> Self {
        let holds_entries = stages.iter().any(|s| s.holds_entries());
        Self {
            stages,
            names,
            holds_entries,
        }
    }

    /// This pipeline with `stage` (named `name`) after its last stage.
    pub fn then(mut self, stage: Box<dyn Stage>, name: &'static str) -> Self {
        self.holds_entries |= stage.holds_entries();
        self.stages.push(stage);
        self.names.push(name);
        self
    }

    /// An empty pipeline: entries pass unchanged.
    pub fn empty() -> Self {
        Self::from_stages(Vec::new(), Vec::new())
    }

    /// Some stage may hold entries back: [`Pipeline::flush`] must be called now and then.
    pub fn holds_entries(&self) -> bool {
        self.holds_entries
    }

    /// When [`Pipeline::flush`] next has something to release; `None` while nothing is held.
    pub fn next_deadline(&self) -> Option<std::time::Instant> {
        if !self.holds_entries {
            return None;
        }
        self.stages
            .iter()
            .filter(|s| s.holds_entries())
            .filter_map(|s| s.next_deadline())
            .min()
    }

    /// Runs `entry` through the stages; what comes out (nothing if it was dropped or is held, or
    /// several entries when it completed held ones) is pushed to `out`.
    pub fn run(&self, entry: Processing, out: &mut Vec<Processing>) {
        self.run_from(0, entry, out);
    }

    /// Entries held longer than their stage's wait (or all, when stopping), through the rest of the
    /// stages, into `out`.
    pub fn flush(&self, all: bool, out: &mut Vec<Processing>) {
        if !self.holds_entries {
            return;
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.holds_entries() {
                let mut released = Vec::new();
                stage.flush(all, &mut released);
                for entry in released {
                    self.run_from(i + 1, entry, out);
                }
            }
        }
    }

    fn run_from(&self, start: usize, mut entry: Processing, out: &mut Vec<Processing>) {
        let inspect = inspect::enabled();
        for (i, stage) in self.stages.iter().enumerate().skip(start) {
            let name = self.names.get(i).copied().unwrap_or("nested");
            if stage.holds_entries() {
                let mut released = Vec::new();
                stage.take(entry, &mut released);
                if inspect {
                    inspect::held(name, released.len());
                }
                for entry in released {
                    self.run_from(i + 1, entry, out);
                }
                return;
            }
            let before = inspect.then(|| inspect::Before::of(&entry));
            let verdict = stage.process(&mut entry);
            if let Some(before) = before {
                let reason = match &verdict {
                    Verdict::Drop(r) => Some(r.as_str()),
                    Verdict::Keep => None,
                };
                before.report(name, &entry, reason);
            }
            if let Verdict::Drop(reason) = verdict {
                entry.drop_with(&reason);
                return;
            }
        }
        out.push(entry);
    }

    /// Runs stages that hold nothing back on `entry` in place; for the `match` stage and tests.
    pub(crate) fn process(&self, entry: &mut Processing) -> Verdict {
        for stage in &self.stages {
            if let Verdict::Drop(reason) = stage.process(entry) {
                return Verdict::Drop(reason);
            }
        }
        Verdict::Keep
    }
}
