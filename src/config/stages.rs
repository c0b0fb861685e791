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
}

/// Stages of Promtail 3.6 that lokiship does not implement yet.
const UNSUPPORTED_STAGES: &[&str] = &[
    "docker",
    "cri",
    "logfmt",
    "replace",
    "multiline",
    "decolorize",
    "template",
    "pack",
    "sampling",
    "tenant",
    "metrics",
    "limit",
    "eventlogmessage",
    "geoip",
    "luhn",
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
];

#[derive(Debug, Clone, Deserialize)]
pub struct JsonStage {
    #[serde(default)]
    pub expressions: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
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
    pub action_on_failure: Option<String>,
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
    pub action: Option<String>,
    #[serde(default)]
    pub drop_counter_reason: Option<String>,
    #[serde(default)]
    pub stages: Vec<StageConfig>,
}

impl<'de> serde::Deserialize<'de> for StageConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StageVisitor)
    }
}

struct StageVisitor;

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
            "json" => StageConfig::Json(map.next_value()?),
            "regex" => StageConfig::Regex(map.next_value()?),
            "labels" => StageConfig::Labels(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "static_labels" => {
                StageConfig::StaticLabels(map.next_value::<Option<_>>()?.unwrap_or_default())
            }
            "labeldrop" => StageConfig::LabelDrop(map.next_value()?),
            "labelallow" => StageConfig::LabelAllow(map.next_value()?),
            "structured_metadata" | "non_indexed_labels" => {
                StageConfig::StructuredMetadata(map.next_value::<Option<_>>()?.unwrap_or_default())
            }
            "timestamp" => StageConfig::Timestamp(map.next_value()?),
            "output" => StageConfig::Output(map.next_value()?),
            "drop" => StageConfig::Drop(map.next_value()?),
            "match" => StageConfig::Match(map.next_value()?),
            other if UNSUPPORTED_STAGES.contains(&other) => {
                return Err(de::Error::custom(format!(
                    "stage \"{other}\" is not supported yet"
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
