//! `json`: extracts values from a JSON line (or an extracted value) with JMESPath expressions.
//!
//! Plain paths, which is what nearly every config uses, are extracted in one streaming pass
//! ([`super::json_paths`]); any other JMESPath expression is evaluated on a parsed document.
//! A line that is not a JSON object is counted in `lokiship_pipeline_errors_total{stage="json"}` and
//! passed on unchanged, or dropped with `drop_malformed: true`.

use super::json_paths::{parse_simple_path, raw_to_string, JsonPaths};
use crate::config::stages::JsonStage as Config;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use std::sync::Arc;

pub struct JsonStage {
    source: Option<String>,
    drop_malformed: bool,
    /// Names of the values extracted by `paths`, by slot.
    path_names: Vec<Arc<str>>,
    paths: JsonPaths,
    /// Expressions that need a full JMESPath evaluation.
    complex: Vec<(Arc<str>, jmespath::Expression<'static>)>,
}

impl JsonStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        if config.expressions.is_empty() {
            return Err(BuildError::new(
                "json",
                "expressions must name at least one value to extract",
            ));
        }
        let mut paths = JsonPaths::new();
        let mut path_names = Vec::new();
        let mut complex = Vec::new();
        for (name, expr) in &config.expressions {
            let expr = expr.as_deref().filter(|e| !e.is_empty()).unwrap_or(name);
            let compiled = jmespath::compile(expr).map_err(|e| {
                BuildError::new(
                    "json",
                    format!("invalid JMESPath expression {expr:?} for {name:?}: {e}"),
                )
            })?;
            match parse_simple_path(expr) {
                Some(path) => {
                    paths.add(&path);
                    path_names.push(Arc::from(name.as_str()));
                }
                None => complex.push((Arc::from(name.as_str()), compiled)),
            }
        }
        Ok(Self {
            source: config.source.clone(),
            drop_malformed: config.drop_malformed,
            path_names,
            paths,
            complex,
        })
    }

    fn malformed(&self) -> Verdict {
        crate::metrics::pipeline_error("json", "malformed_json");
        if self.drop_malformed {
            Verdict::Drop("malformed_json".into())
        } else {
            Verdict::Keep
        }
    }
}

impl Stage for JsonStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let Some(input) = entry.input(self.source.as_deref()) else {
            return Verdict::Keep;
        };
        let mut found: Vec<(usize, String)> = Vec::with_capacity(self.path_names.len());
        if !self.path_names.is_empty() {
            let mut raws = Vec::new();
            if self.paths.extract(input, &mut raws).is_err() {
                return self.malformed();
            }
            found.extend(
                raws.iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.and_then(raw_to_string).map(|v| (i, v))),
            );
        }
        let mut complex_found = Vec::new();
        if !self.complex.is_empty() {
            let Ok(doc) = jmespath::Variable::from_json(input) else {
                return self.malformed();
            };
            if !doc.is_object() {
                return self.malformed();
            }
            let doc = Arc::new(doc);
            for (name, expr) in &self.complex {
                match expr.search(doc.clone()) {
                    Ok(v) => {
                        if let Some(s) = variable_to_string(&v) {
                            complex_found.push((name, s));
                        }
                    }
                    Err(_) => crate::metrics::pipeline_error("json", "jmespath"),
                }
            }
        }
        for (slot, value) in found {
            entry.extracted.set(&self.path_names[slot], value);
        }
        for (name, value) in complex_found {
            entry.extracted.set(name, value);
        }
        Verdict::Keep
    }
}

/// Promtail's string form of a JMESPath result; `None` for null.
fn variable_to_string(v: &jmespath::Variable) -> Option<String> {
    match v {
        jmespath::Variable::Null => None,
        jmespath::Variable::String(s) => Some(s.clone()),
        jmespath::Variable::Bool(b) => Some(b.to_string()),
        jmespath::Variable::Number(n) => Some(match n.as_f64() {
            Some(f) => format!("{f}"),
            None => n.to_string(),
        }),
        other => {
            let value = serde_json::to_value(other).ok()?;
            let mut out = String::new();
            crate::pipeline::go_json::write_value(&value, &mut out);
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;
    use crate::pipeline::Verdict;

    const STAGES: &str = r#"
- json:
    expressions:
      user: user.username
      verb:
      code: responseStatus.code
      first_group: user.groups[0]
      n_groups: length(user.groups)
"#;

    #[test]
    fn extracts_paths_and_jmespath_expressions() {
        let line = r#"{"verb":"list","user":{"username":"alice","groups":["dev","ops"]},"responseStatus":{"code":200}}"#;
        let (e, v) = run(STAGES, line);
        assert_eq!(v, Verdict::Keep);
        assert_eq!(e.extracted.get("user"), Some("alice"));
        assert_eq!(e.extracted.get("verb"), Some("list"));
        assert_eq!(e.extracted.get("code"), Some("200"));
        assert_eq!(e.extracted.get("first_group"), Some("dev"));
        assert_eq!(e.extracted.get("n_groups"), Some("2"));
        assert_eq!(e.line, line, "the line is unchanged");
    }

    #[test]
    fn malformed_json_is_kept_unchanged_or_dropped() {
        let (e, v) = run(STAGES, "{broken");
        assert_eq!(v, Verdict::Keep);
        assert_eq!(e.line, "{broken");
        assert!(e.extracted.is_empty());
        let (_, v) = run(
            "- json: {expressions: {a: a}, drop_malformed: true}",
            "[1,2]",
        );
        assert_eq!(v, Verdict::Drop("malformed_json".into()));
    }

    #[test]
    fn reads_from_an_extracted_source() {
        let stages = r#"
- json: {expressions: {inner: inner}}
- json: {expressions: {x: x}, source: inner}
"#;
        let (e, _) = run(stages, r#"{"inner":{"x":"y"}}"#);
        assert_eq!(e.extracted.get("x"), Some("y"));
    }
}
