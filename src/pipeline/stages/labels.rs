//! The label stages: `labels`, `structured_metadata`, `static_labels`, `labeldrop`, `labelallow`.
//!
//! `labels` and `structured_metadata` copy extracted values (the source defaults to the name);
//! a value that was not extracted, or is empty, sets nothing.

use crate::config::values::LabelName;
use crate::pipeline::{Processing, Stage, Verdict};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Copy)]
enum Target {
    Labels,
    StructuredMetadata,
}

/// `labels` and `structured_metadata`.
pub struct LabelsStage {
    /// (name, source)
    mapping: Vec<(Arc<str>, String)>,
    target: Target,
    /// Distinct values of the labels set (labels only).
    cardinality: Option<crate::pipeline::cardinality::Cardinality>,
}

impl LabelsStage {
    pub fn labels(config: &BTreeMap<LabelName, Option<String>>, job: &str) -> Self {
        let mut stage = Self::new(
            config.iter().map(|(k, v)| (k.0.clone(), v.clone())),
            Target::Labels,
        );
        stage.cardinality = Some(crate::pipeline::cardinality::Cardinality::new(job));
        stage
    }

    pub fn structured_metadata(config: &BTreeMap<String, Option<String>>) -> Self {
        Self::new(
            config.iter().map(|(k, v)| (k.clone(), v.clone())),
            Target::StructuredMetadata,
        )
    }

    fn new(config: impl Iterator<Item = (String, Option<String>)>, target: Target) -> Self {
        let mapping = config
            .map(|(name, source)| {
                let source = source
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| name.clone());
                (Arc::from(name), source)
            })
            .collect();
        Self {
            mapping,
            target,
            cardinality: None,
        }
    }
}

impl Stage for LabelsStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let mut counted = self.cardinality.as_ref().map(|c| c.lock());
        for (name, source) in &self.mapping {
            // Promtail's extracted map starts with the labels: a label is a valid source too.
            let value: Arc<str> = match entry.value(source) {
                Some(v) if !v.is_empty() => Arc::from(v),
                _ => continue,
            };
            match self.target {
                Target::Labels => {
                    if let Some(c) = counted.as_mut() {
                        c.observe(name, &value);
                    }
                    entry.labels.insert_shared(name, value)
                }
                Target::StructuredMetadata => {
                    let value = value.to_string();
                    match entry
                        .structured_metadata
                        .iter_mut()
                        .find(|(n, _)| **n == **name)
                    {
                        Some(slot) => slot.1 = value,
                        None => entry.structured_metadata.push((name.to_string(), value)),
                    }
                }
            }
        }
        Verdict::Keep
    }
}

/// `static_labels`: fixed labels.
pub struct StaticLabelsStage {
    labels: Vec<(Arc<str>, Arc<str>)>,
}

impl StaticLabelsStage {
    pub fn new(config: &BTreeMap<LabelName, Option<String>>) -> Self {
        Self {
            labels: config
                .iter()
                .filter_map(|(k, v)| {
                    v.as_deref()
                        .filter(|v| !v.is_empty())
                        .map(|v| (Arc::from(k.0.as_str()), Arc::from(v)))
                })
                .collect(),
        }
    }
}

impl Stage for StaticLabelsStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        for (name, value) in &self.labels {
            entry.labels.insert_shared(name, value.clone());
        }
        Verdict::Keep
    }
}

/// `labeldrop`: removes the named labels.
pub struct LabelDropStage {
    names: Vec<String>,
}

impl LabelDropStage {
    pub fn new(names: &[String]) -> Self {
        Self {
            names: names.to_vec(),
        }
    }
}

impl Stage for LabelDropStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        for name in &self.names {
            entry.labels.remove(name);
        }
        Verdict::Keep
    }
}

/// `labelallow`: keeps only the named labels.
pub struct LabelAllowStage {
    names: Vec<String>,
}

impl LabelAllowStage {
    pub fn new(names: &[String]) -> Self {
        Self {
            names: names.to_vec(),
        }
    }
}

impl Stage for LabelAllowStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        entry
            .labels
            .retain(|name, _| self.names.iter().any(|n| n == name));
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn labels_and_metadata_come_from_extracted_values() {
        let stages = r#"
- json: {expressions: {user: user.username, verb: verb, id: auditID, empty: e}}
- labels: {user: "", action: verb, empty: , missing: }
- structured_metadata: {audit_id: id}
"#;
        let (e, _) = run(
            stages,
            r#"{"user":{"username":"alice"},"verb":"get","auditID":"a-1","e":""}"#,
        );
        assert_eq!(e.labels.render(), r#"{action="get", user="alice"}"#);
        assert_eq!(
            e.structured_metadata,
            vec![("audit_id".to_string(), "a-1".to_string())]
        );
    }

    #[test]
    fn static_drop_and_allow() {
        let stages = r#"
- static_labels: {env: prod, team: infra, region: eu}
- labeldrop: [team]
- labelallow: [env, region, absent]
"#;
        let (e, _) = run(stages, "x");
        assert_eq!(e.labels.render(), r#"{env="prod", region="eu"}"#);
    }
}
