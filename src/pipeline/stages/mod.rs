//! One file per Promtail stage; [`build`] turns a stage's options into the stage.

mod container;
mod decolorize;
mod drop;
mod json;
mod json_paths;
mod labels;
mod limit;
mod logfmt;
mod match_stage;
pub mod metrics;
mod multiline;
mod output;
mod pack;
mod regex;
mod replace;
pub mod restamp;
mod sampling;
mod template;
mod tenant;
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
        StageConfig::Labels(c) => Box::new(labels::LabelsStage::labels(c, job)),
        StageConfig::StaticLabels(c) => Box::new(labels::StaticLabelsStage::new(c)),
        StageConfig::LabelDrop(names) => Box::new(labels::LabelDropStage::new(names)),
        StageConfig::LabelAllow(names) => Box::new(labels::LabelAllowStage::new(names)),
        StageConfig::StructuredMetadata(c) => Box::new(labels::LabelsStage::structured_metadata(c)),
        StageConfig::Timestamp(c) => Box::new(timestamp::TimestampStage::new(c)?),
        StageConfig::Output(c) => Box::new(output::OutputStage::new(c)),
        StageConfig::Drop(c) => Box::new(drop::DropStage::new(c)?),
        StageConfig::Match(c) => Box::new(match_stage::MatchStage::new(c, job)?),
        StageConfig::Logfmt(c) => Box::new(logfmt::LogfmtStage::new(c)?),
        StageConfig::Replace(c) => Box::new(replace::ReplaceStage::new(c)?),
        StageConfig::Multiline(c) => Box::new(multiline::MultilineStage::new(c)?),
        StageConfig::Decolorize => Box::new(decolorize::DecolorizeStage),
        StageConfig::Docker => Box::new(container::DockerStage),
        StageConfig::Cri(c) => Box::new(container::CriStage::new(c)),
        StageConfig::Template(c) => Box::new(template::TemplateStage::new(c)?),
        StageConfig::Pack(c) => Box::new(pack::PackStage::new(c)),
        StageConfig::Sampling(c) => Box::new(sampling::SamplingStage::new(c)?),
        StageConfig::Tenant(c) => Box::new(tenant::TenantStage::new(c)?),
        StageConfig::Limit(c) => Box::new(limit::LimitStage::new(c)?),
        StageConfig::Metrics(c) => Box::new(metrics::MetricsStage::new(c)?),
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

    /// `lokiship_pipeline_errors_total{stage, reason}` now (tests compare before and after).
    pub fn errors(stage: &str, reason: &str) -> u64 {
        crate::metrics::metrics()
            .pipeline_errors
            .get_or_create(&crate::metrics::StageLabels {
                stage: stage.into(),
                reason: reason.into(),
            })
            .get()
    }

    /// Runs `lines` through one pipeline built from `yaml`, then flushes everything it holds:
    /// the entries that come out, in order.
    pub fn run_all(yaml: &str, lines: &[&str]) -> Vec<Processing> {
        let p = pipeline(yaml);
        let mut out = Vec::new();
        for line in lines {
            p.run(
                Processing::new(Default::default(), line.to_string(), 1_000),
                &mut out,
            );
        }
        p.flush(true, &mut out);
        out
    }
}
