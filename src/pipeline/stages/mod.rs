//! One file per Promtail stage; [`build`] turns a stage's options into the stage.

mod drop;
mod json;
mod json_paths;
mod labels;
mod match_stage;
mod output;
mod regex;
pub mod time_format;
mod timestamp;

use super::{BuildError, Stage};
use crate::config::stages::StageConfig;

pub use json_paths::JsonPaths;

/// Compiles one stage; `job` names its scrape config in messages.
pub fn build(config: &StageConfig, job: &str) -> Result<Box<dyn Stage>, BuildError> {
    Ok(match config {
        StageConfig::Json(c) => Box::new(json::JsonStage::new(c)?),
        StageConfig::Regex(c) => Box::new(regex::RegexStage::new(c)),
        StageConfig::Labels(c) => Box::new(labels::LabelsStage::labels(c)),
        StageConfig::StaticLabels(c) => Box::new(labels::StaticLabelsStage::new(c)),
        StageConfig::LabelDrop(names) => Box::new(labels::LabelDropStage::new(names)),
        StageConfig::LabelAllow(names) => Box::new(labels::LabelAllowStage::new(names)),
        StageConfig::StructuredMetadata(c) => Box::new(labels::LabelsStage::structured_metadata(c)),
        StageConfig::Timestamp(c) => Box::new(timestamp::TimestampStage::new(c)?),
        StageConfig::Output(c) => Box::new(output::OutputStage::new(c)),
        StageConfig::Drop(c) => Box::new(drop::DropStage::new(c)?),
        StageConfig::Match(c) => Box::new(match_stage::MatchStage::new(c, job)?),
    })
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::config::stages::StageConfig;
    use crate::pipeline::{Pipeline, Processing, Verdict};

    /// Builds a pipeline from a YAML list of stages, as written in `pipeline_stages`.
    pub fn pipeline(yaml: &str) -> Pipeline {
        let configs: Vec<StageConfig> = serde_yaml_ng::from_str(yaml).expect("stage YAML");
        Pipeline::build(&configs, "test").expect("pipeline builds")
    }

    /// Runs `yaml`'s stages on `line` and returns the entry and verdict.
    pub fn run(yaml: &str, line: &str) -> (Processing, Verdict) {
        let mut p = Processing::new(Default::default(), line.to_string(), 1_000);
        let v = pipeline(yaml).process(&mut p);
        (p, v)
    }
}
