//! `regex`: named capture groups of a regular expression become extracted values.
//! A line that does not match is passed on unchanged.

use crate::config::stages::RegexStage as Config;
use crate::pipeline::{Processing, Stage, Verdict};

pub struct RegexStage {
    regex: regex::Regex,
    source: Option<String>,
    names: Vec<(usize, std::sync::Arc<str>)>,
}

impl RegexStage {
    pub fn new(config: &Config) -> Self {
        let regex = config.expression.0.clone();
        let names = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, std::sync::Arc::from(n))))
            .collect();
        Self {
            regex,
            source: config.source.clone(),
            names,
        }
    }
}

impl Stage for RegexStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let Some(input) = entry.input(self.source.as_deref()) else {
            return Verdict::Keep;
        };
        let Some(caps) = self.regex.captures(input) else {
            return Verdict::Keep;
        };
        let values: Vec<(usize, String)> = self
            .names
            .iter()
            .enumerate()
            .filter_map(|(k, (i, _))| caps.get(*i).map(|m| (k, m.as_str().to_string())))
            .collect();
        for (k, value) in values {
            entry.extracted.set(&self.names[k].1, value);
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn named_groups_become_extracted_values() {
        let stages = r#"- regex: {expression: '^(?P<host>\S+) (?P<app>[^\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$'}"#;
        let (e, _) = run(stages, "node-1 sshd[42]: Accepted publickey");
        assert_eq!(e.extracted.get("host"), Some("node-1"));
        assert_eq!(e.extracted.get("app"), Some("sshd"));
        assert_eq!(e.extracted.get("pid"), Some("42"));
        assert_eq!(e.extracted.get("msg"), Some("Accepted publickey"));
        let (e, _) = run(stages, "no match here");
        assert!(e.extracted.is_empty());
    }
}
