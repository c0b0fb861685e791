//! `tenant`: the entry's tenant (`X-Scope-OrgID`) from a label, an extracted value or a fixed
//! value; carried as the `__tenant_id__` label, which the client reads and removes.

use crate::config::stages::TenantStage as Config;
use crate::entry::TENANT_LABEL;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};

pub enum TenantStage {
    Label(String),
    Source(String),
    Value(String),
}

impl TenantStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let set = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
        match (set(&config.label), set(&config.source), set(&config.value)) {
            (Some(l), None, None) => Ok(Self::Label(l)),
            (None, Some(s), None) => Ok(Self::Source(s)),
            (None, None, Some(v)) => Ok(Self::Value(v)),
            _ => Err(BuildError::new(
                "tenant",
                "set exactly one of label, source and value",
            )),
        }
    }
}

impl Stage for TenantStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let tenant = match self {
            Self::Label(name) => entry.labels.get(name).map(str::to_string),
            Self::Source(name) => entry.extracted.get(name).map(str::to_string),
            Self::Value(v) => Some(v.clone()),
        };
        if let Some(t) = tenant.filter(|t| !t.is_empty()) {
            entry.labels.insert(TENANT_LABEL, t);
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn tenant_from_source_label_or_value() {
        let (e, _) = run(
            "- json: {expressions: {customer_id: customer_id}}\n- tenant: {source: customer_id}",
            r#"{"customer_id":"team-a"}"#,
        );
        assert_eq!(e.labels.get("__tenant_id__"), Some("team-a"));
        let (e, _) = run("- tenant: {value: fixed}", "x");
        assert_eq!(e.labels.get("__tenant_id__"), Some("fixed"));
        let (e, _) = run("- static_labels: {ns: prod}\n- tenant: {label: ns}", "x");
        assert_eq!(e.labels.get("__tenant_id__"), Some("prod"));
        let (e, _) = run("- tenant: {source: missing}", "x");
        assert_eq!(
            e.labels.get("__tenant_id__"),
            None,
            "no value: the client's tenant"
        );
    }

    #[test]
    fn exactly_one_option() {
        let configs: Vec<crate::config::stages::StageConfig> =
            serde_yaml_ng::from_str("- tenant: {value: a, source: b}").unwrap();
        assert!(crate::pipeline::Pipeline::build(&configs, "t").is_err());
    }
}
