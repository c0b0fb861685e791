//! `template`: sets the extracted value `source` to a Go template's output. The template sees
//! `.Value` (the current value of `source`), `.Entry` (the line) and every extracted value.

use crate::config::stages::TemplateStage as Config;
use crate::pipeline::template::{Data, Template};
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use std::sync::Arc;

pub struct TemplateStage {
    source: Arc<str>,
    template: Template,
}

impl TemplateStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        if config.source.is_empty() {
            return Err(BuildError::new("template", "source is required"));
        }
        let template = Template::parse(&config.template)
            .map_err(|e| BuildError::new("template", e.to_string()))?;
        Ok(Self {
            source: Arc::from(config.source.as_str()),
            template,
        })
    }
}

/// The data a template sees: `.Value`, `.Entry`, the labels and extracted values (extracted win).
pub(super) fn data(entry: &Processing, value: Option<String>) -> Data {
    let mut data = Data::new(value, entry.line.clone());
    for (name, v) in entry.labels.iter() {
        data.insert(name, v.to_string());
    }
    for (name, v) in entry.extracted.iter() {
        data.insert(name, v.to_string());
    }
    data
}

impl Stage for TemplateStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let current = entry.value(&self.source).map(str::to_string);
        let existed = current.is_some();
        match self.template.render(&data(entry, current)) {
            // An empty result does not create the value (Promtail adds no empty keys).
            Ok(out) if out.is_empty() && !existed => {}
            Ok(out) => entry.extracted.set(&self.source, out),
            Err(e) => {
                crate::metrics::pipeline_error("template", "render");
                tracing::debug!(error = %e, "template stage");
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn promtail_documented_examples() {
        let (e, _) = run(
            "- template: {source: new_key, template: 'hello world!'}",
            "x",
        );
        assert_eq!(e.extracted.get("new_key"), Some("hello world!"));
        let stages = r#"
- json: {expressions: {app: app, level: level}}
- template: {source: app, template: '{{ .Value }}_some_suffix'}
- template: {source: level, template: '{{ if eq .Value "WARN" }}{{ Replace .Value "WARN" "OK" -1 }}{{ else }}{{ .Value }}{{ end }}'}
- template: {source: msg, template: '{{ .app }} says {{ .Entry }}'}
- labels: {app: , level: }
"#;
        let (e, _) = run(stages, r#"{"app":"loki","level":"WARN"}"#);
        assert_eq!(e.labels.get("app"), Some("loki_some_suffix"));
        assert_eq!(e.labels.get("level"), Some("OK"));
        assert_eq!(
            e.extracted.get("msg"),
            Some(r#"loki_some_suffix says {"app":"loki","level":"WARN"}"#)
        );
    }

    #[test]
    fn labels_are_visible_and_errors_leave_the_value() {
        let (e, _) = run(
            "- static_labels: {env: prod}\n- template: {source: env, template: '{{ ToUpper .Value }}'}",
            "x",
        );
        assert_eq!(e.extracted.get("env"), Some("PROD"));
        let (e, _) = run(
            "- template: {source: a, template: 'set'}\n- template: {source: a, template: '{{ Replace .Value }}'}",
            "x",
        );
        assert_eq!(e.extracted.get("a"), Some("set"));
        let (e, _) = run("- template: {source: empty, template: ''}", "x");
        assert_eq!(e.extracted.get("empty"), None);
    }

    #[test]
    fn a_missing_key_prints_as_go_prints_it() {
        let (e, _) = run(
            "- template: {source: out, template: '[{{ .absent }}] [{{ print .absent }}] [{{ if .absent }}yes{{ else }}no{{ end }}]'}",
            "x",
        );
        assert_eq!(e.extracted.get("out"), Some("[<no value>] [<nil>] [no]"));
        let (e, _) = run(
            "- template: {source: out, template: kept}\n- template: {source: out, template: '{{ ToUpper .absent }}'}",
            "x",
        );
        assert_eq!(
            e.extracted.get("out"),
            Some("kept"),
            "a function wanting a string refuses a missing key; the value stays"
        );
    }

    #[test]
    fn a_bad_template_is_a_config_error() {
        let configs: Vec<crate::config::stages::StageConfig> =
            serde_yaml_ng::from_str("- template: {source: a, template: '{{ if .Value }}'}")
                .unwrap();
        let err = crate::pipeline::Pipeline::build(&configs, "t")
            .err()
            .unwrap();
        assert!(err.to_string().contains("template"), "{err}");
    }
}
