//! Pipeline stage options as written in `pipeline_stages`: a list of one-key maps (`- json: {...}`).
//!
//! Promtail ignores unknown keys inside a stage's options, and real configs carry such leftovers, so
//! these structs accept them; `config::load` reports each with its line as a warning (an error under
//! `-config.strict`). Values that can be checked while reading (regexes, label names, durations) are.

use super::values::{ByteSize, GoDuration, LabelName, Regex};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// One entry of `pipeline_stages`.
#[derive(Debug, Clone)]
pub enum StageConfig {
    Json(JsonStage),
    Regex(RegexStage),
    Labels(BTreeMap<LabelName, Option<String>>),
    StaticLabels(BTreeMap<LabelName, Option<String>>),
    LabelDrop(Vec<String>),
    LabelAllow(Vec<String>),
    StructuredMetadata(BTreeMap<String, Option<String>>),
    Timestamp(TimestampStage),
    Output(OutputStage),
    Drop(DropStage),
    Match(MatchStage),
    Logfmt(LogfmtStage),
    Replace(ReplaceStage),
    Multiline(MultilineStage),
    Decolorize,
    Docker,
    Cri(CriStage),
    Template(TemplateStage),
    Pack(PackStage),
    Sampling(SamplingStage),
    Tenant(TenantStage),
    Limit(LimitStage),
    Metrics(BTreeMap<String, MetricStage>),
}

impl StageConfig {
    /// The stage's name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            StageConfig::Json(_) => "json",
            StageConfig::Regex(_) => "regex",
            StageConfig::Labels(_) => "labels",
            StageConfig::StaticLabels(_) => "static_labels",
            StageConfig::LabelDrop(_) => "labeldrop",
            StageConfig::LabelAllow(_) => "labelallow",
            StageConfig::StructuredMetadata(_) => "structured_metadata",
            StageConfig::Timestamp(_) => "timestamp",
            StageConfig::Output(_) => "output",
            StageConfig::Drop(_) => "drop",
            StageConfig::Match(_) => "match",
            StageConfig::Logfmt(_) => "logfmt",
            StageConfig::Replace(_) => "replace",
            StageConfig::Multiline(_) => "multiline",
            StageConfig::Decolorize => "decolorize",
            StageConfig::Docker => "docker",
            StageConfig::Cri(_) => "cri",
            StageConfig::Template(_) => "template",
            StageConfig::Pack(_) => "pack",
            StageConfig::Sampling(_) => "sampling",
            StageConfig::Tenant(_) => "tenant",
            StageConfig::Limit(_) => "limit",
            StageConfig::Metrics(_) => "metrics",
        }
    }
}

/// The options a stage knows (for a did-you-mean on a misspelt one); `None` for stages whose
/// options are free-form maps or lists (`labels`, `metrics`, …).
pub fn stage_fields(stage: &str) -> Option<&'static [&'static str]> {
    use super::introspect::fields_of;
    Some(match stage {
        "json" => fields_of::<JsonStage>(),
        "regex" => fields_of::<RegexStage>(),
        "timestamp" => fields_of::<TimestampStage>(),
        "output" => fields_of::<OutputStage>(),
        "drop" => fields_of::<DropStage>(),
        "match" => fields_of::<MatchStage>(),
        "logfmt" => fields_of::<LogfmtStage>(),
        "replace" => fields_of::<ReplaceStage>(),
        "multiline" => fields_of::<MultilineStage>(),
        "cri" => fields_of::<CriStage>(),
        "template" => fields_of::<TemplateStage>(),
        "pack" => fields_of::<PackStage>(),
        "sampling" => fields_of::<SamplingStage>(),
        "tenant" => fields_of::<TenantStage>(),
        "limit" => fields_of::<LimitStage>(),
        _ => return None,
    })
}

/// Stages of Promtail that lokiship does not implement, and why.
const UNSUPPORTED_STAGES: &[(&str, &str)] = &[
    (
        "eventlogmessage",
        "it parses Windows event log messages; lokiship runs on Linux",
    ),
    (
        "geoip",
        "it needs a MaxMind database reader; use a match/regex on the IP instead",
    ),
    (
        "luhn",
        "credit-card number redaction is not implemented; use a replace stage",
    ),
];

const STAGES: &[&str] = &[
    "json",
    "regex",
    "labels",
    "static_labels",
    "labeldrop",
    "labelallow",
    "structured_metadata",
    "non_indexed_labels",
    "timestamp",
    "output",
    "drop",
    "match",
    "logfmt",
    "replace",
    "multiline",
    "decolorize",
    "docker",
    "cri",
    "template",
    "pack",
    "sampling",
    "tenant",
    "limit",
    "metrics",
];

#[derive(Debug, Clone, Deserialize)]
pub struct JsonStage {
    #[serde(default)]
    pub expressions: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, deserialize_with = "super::values::yaml11_bool")]
    pub drop_malformed: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegexStage {
    pub expression: Regex,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimestampStage {
    pub source: String,
    pub format: String,
    #[serde(default)]
    pub fallback_formats: Vec<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub action_on_failure: Option<super::values::OnTimestampFailure>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputStage {
    pub source: String,
}

/// `source` of the drop stage: one name or a list joined by `separator`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct DropStage {
    #[serde(default)]
    pub source: Option<OneOrMany>,
    #[serde(default)]
    pub separator: Option<String>,
    #[serde(default)]
    pub expression: Option<Regex>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub older_than: Option<GoDuration>,
    #[serde(default)]
    pub longer_than: Option<ByteSize>,
    #[serde(default)]
    pub drop_counter_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MatchStage {
    pub selector: String,
    #[serde(default)]
    pub pipeline_name: Option<String>,
    #[serde(default)]
    pub action: Option<super::values::MatchAction>,
    #[serde(default)]
    pub drop_counter_reason: Option<String>,
    #[serde(default)]
    pub stages: Vec<StageConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogfmtStage {
    #[serde(default)]
    pub mapping: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplaceStage {
    pub expression: Regex,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub replace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MultilineStage {
    pub firstline: Regex,
    #[serde(default)]
    pub max_wait_time: Option<GoDuration>,
    #[serde(default)]
    pub max_lines: Option<u64>,
}

/// The options of a stage that has none (`docker`, `decolorize`): an empty mapping or nothing.
#[derive(Debug, Clone, Default, Deserialize)]
struct NoOptions {}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CriStage {
    #[serde(default)]
    pub max_partial_lines: Option<usize>,
    #[serde(default)]
    pub max_partial_line_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "super::values::yaml11_bool")]
    pub max_partial_line_size_truncate: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateStage {
    pub source: String,
    #[serde(default)]
    pub template: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PackStage {
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default, deserialize_with = "super::values::yaml11_opt_bool")]
    pub ingest_timestamp: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SamplingStage {
    pub rate: f64,
    #[serde(default)]
    pub drop_counter_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TenantStage {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitStage {
    pub rate: f64,
    pub burst: u32,
    #[serde(default)]
    pub by_label_name: Option<String>,
    #[serde(default)]
    pub max_distinct_labels: Option<usize>,
    #[serde(default, deserialize_with = "super::values::yaml11_bool")]
    pub drop: bool,
}

/// One metric of the `metrics` stage.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricStage {
    #[serde(rename = "type")]
    pub kind: super::values::MetricKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub max_idle_duration: Option<GoDuration>,
    /// lokiship's own: the metric's labels, by name (labels or extracted values), instead of all
    /// of the entry's labels — `audit_events_total{verb,code}` without one series per user.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    #[serde(default)]
    pub config: MetricAction,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricAction {
    #[serde(default)]
    pub action: Option<super::values::MetricAction>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "super::values::yaml11_opt_bool")]
    pub match_all: Option<bool>,
    #[serde(default, deserialize_with = "super::values::yaml11_opt_bool")]
    pub count_entry_bytes: Option<bool>,
    #[serde(default)]
    pub buckets: Option<Vec<f64>>,
}

impl<'de> serde::Deserialize<'de> for StageConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StageVisitor)
    }
}

struct StageVisitor;

/// A stage's options. `- regex:` with nothing under it (its options mis-indented to the depth of
/// `regex:`, or missing) is named as such, not as a "missing field" of the stage.
fn options<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    map: &mut A,
    stage: &str,
) -> Result<T, A::Error> {
    if let Some(options) = map.next_value::<Option<T>>()? {
        return Ok(options);
    }
    Err(de::Error::custom(match map.next_key::<String>()? {
        Some(key) => format!(
            "stage \"{stage}\" has no options under it, and \"{key}\" is at the depth of \"{stage}:\": indent \"{key}\" (and the options after it) under \"{stage}:\""
        ),
        None => format!("stage \"{stage}\" needs options: write them indented under \"{stage}:\""),
    }))
}

impl<'de> Visitor<'de> for StageVisitor {
    type Value = StageConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a stage: a map with one key naming the stage, such as `json: {expressions: ...}`",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StageConfig, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "empty stage: name one stage such as `json:`",
            ));
        };
        let stage = match name.as_str() {
            "json" => StageConfig::Json(options(&mut map, &name)?),
            "regex" => StageConfig::Regex(options(&mut map, &name)?),
            "labels" => StageConfig::Labels(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "static_labels" => {
                StageConfig::StaticLabels(map.next_value::<Option<_>>()?.unwrap_or_default())
            }
            "labeldrop" => StageConfig::LabelDrop(options(&mut map, &name)?),
            "labelallow" => StageConfig::LabelAllow(options(&mut map, &name)?),
            "structured_metadata" | "non_indexed_labels" => {
                StageConfig::StructuredMetadata(map.next_value::<Option<_>>()?.unwrap_or_default())
            }
            "timestamp" => StageConfig::Timestamp(options(&mut map, &name)?),
            "output" => StageConfig::Output(options(&mut map, &name)?),
            "drop" => StageConfig::Drop(options(&mut map, &name)?),
            "match" => StageConfig::Match(options(&mut map, &name)?),
            "logfmt" => StageConfig::Logfmt(options(&mut map, &name)?),
            "replace" => StageConfig::Replace(options(&mut map, &name)?),
            "multiline" => StageConfig::Multiline(options(&mut map, &name)?),
            // Read as a struct without fields, not skipped: a skipped value is what the
            // unknown-option warning reports, and `docker: {}` is how Promtail's docs write it.
            "decolorize" => {
                map.next_value::<Option<NoOptions>>()?;
                StageConfig::Decolorize
            }
            "docker" => {
                map.next_value::<Option<NoOptions>>()?;
                StageConfig::Docker
            }
            "cri" => StageConfig::Cri(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "template" => StageConfig::Template(options(&mut map, &name)?),
            "pack" => StageConfig::Pack(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "sampling" => StageConfig::Sampling(options(&mut map, &name)?),
            "tenant" => StageConfig::Tenant(options(&mut map, &name)?),
            "limit" => StageConfig::Limit(options(&mut map, &name)?),
            "metrics" => StageConfig::Metrics(options(&mut map, &name)?),
            other if UNSUPPORTED_STAGES.iter().any(|(n, _)| *n == other) => {
                let why = UNSUPPORTED_STAGES
                    .iter()
                    .find(|(n, _)| *n == other)
                    .map_or("", |(_, why)| why);
                return Err(de::Error::custom(format!(
                    "stage \"{other}\" is not supported: {why}"
                )));
            }
            other => {
                let hint = super::error::suggest(other, STAGES.iter().copied())
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default();
                return Err(de::Error::custom(format!(
                    "unknown pipeline stage \"{other}\"{hint}"
                )));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a stage is a map with one key, but \"{name}\" is followed by \"{extra}\": \
                 start each stage with its own `- `"
            )));
        }
        Ok(stage)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{load_str, LoadOptions};

    fn warnings(stages: &str) -> Vec<String> {
        let text = format!(
            "clients: [{{url: 'http://127.0.0.1:3100/loki/api/v1/push'}}]
scrape_configs:
  - job_name: pods
    static_configs: [{{targets: [localhost], labels: {{__path__: /var/log/pods/*/*/*.log}}}}]
    pipeline_stages:
{stages}"
        );
        load_str("test.yaml", &text, &LoadOptions::default())
            .unwrap()
            .warnings
    }

    #[test]
    fn stages_without_options_written_as_promtails_docs_write_them_get_no_warning() {
        let none = warnings("      - docker: {}\n      - cri: {}\n      - decolorize: {}\n      - docker:\n      - decolorize:\n");
        assert!(none.is_empty(), "{none:?}");
        let one = warnings("      - docker: {format: json}\n");
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(one[0].contains("\"format\""), "{one:?}");
    }
}
