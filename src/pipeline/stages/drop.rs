//! `drop`: drops entries by extracted value, regex, age or length. Every condition given must hold.
//!
//! With `source` alone, an entry is dropped when the source was extracted; with `value`, when it equals
//! it; with `expression`, when it matches (the line when there is no source). Several sources are
//! joined with `separator` (default `;`) and must all be present.

use crate::config::stages::{DropStage as Config, OneOrMany};
use crate::pipeline::{BuildError, Processing, Stage, Verdict};

pub struct DropStage {
    sources: Vec<String>,
    separator: String,
    expression: Option<regex::Regex>,
    value: Option<String>,
    older_than_ns: Option<i64>,
    longer_than: Option<usize>,
    reason: String,
}

impl DropStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let sources = match &config.source {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s.clone()],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        if config.expression.is_some() && config.value.is_some() {
            return Err(BuildError::new("drop", "set expression or value, not both"));
        }
        if config.value.is_some() && sources.is_empty() {
            return Err(BuildError::new("drop", "value needs a source"));
        }
        if sources.is_empty()
            && config.expression.is_none()
            && config.older_than.is_none()
            && config.longer_than.is_none()
        {
            return Err(BuildError::new(
                "drop",
                "needs at least one of source, expression, older_than, longer_than",
            ));
        }
        Ok(Self {
            sources,
            separator: config.separator.clone().unwrap_or_else(|| ";".into()),
            expression: config.expression.as_ref().map(|r| r.0.clone()),
            value: config.value.clone(),
            older_than_ns: config.older_than.map(|d| d.0.as_nanos() as i64),
            longer_than: config.longer_than.map(|s| s.0 as usize),
            reason: config
                .drop_counter_reason
                .clone()
                .unwrap_or_else(|| "drop_stage".into()),
        })
    }
}

impl Stage for DropStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        if let Some(age) = self.older_than_ns {
            if entry.timestamp_ns >= crate::entry::now_ns() - age {
                return Verdict::Keep;
            }
        }
        if let Some(max) = self.longer_than {
            if entry.line.len() <= max {
                return Verdict::Keep;
            }
        }
        if !self.sources.is_empty() {
            let mut parts = Vec::with_capacity(self.sources.len());
            for s in &self.sources {
                match entry.extracted.get(s) {
                    Some(v) => parts.push(v),
                    None => return Verdict::Keep,
                }
            }
            let joined = parts.join(&self.separator);
            if let Some(v) = &self.value {
                if &joined != v {
                    return Verdict::Keep;
                }
            }
            if let Some(re) = &self.expression {
                if !re.is_match(&joined) {
                    return Verdict::Keep;
                }
            }
        } else if let Some(re) = &self.expression {
            if !re.is_match(&entry.line) {
                return Verdict::Keep;
            }
        }
        Verdict::Drop(self.reason.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;
    use crate::pipeline::Verdict;

    #[test]
    fn drops_by_value_expression_and_length() {
        let by_value = "- json: {expressions: {stage: stage}}\n- drop: {source: stage, value: RequestReceived}";
        assert_eq!(
            run(by_value, r#"{"stage":"RequestReceived"}"#).1,
            Verdict::Drop("drop_stage".into())
        );
        assert_eq!(
            run(by_value, r#"{"stage":"ResponseComplete"}"#).1,
            Verdict::Keep
        );
        assert_eq!(run(by_value, r#"{"other":1}"#).1, Verdict::Keep);

        let by_line = "- drop: {expression: 'healthz', drop_counter_reason: health}";
        assert_eq!(
            run(by_line, "GET /healthz").1,
            Verdict::Drop("health".into())
        );
        assert_eq!(run(by_line, "GET /api").1, Verdict::Keep);

        let by_len = "- drop: {longer_than: 5}";
        assert_eq!(run(by_len, "123456").1, Verdict::Drop("drop_stage".into()));
        assert_eq!(run(by_len, "12345").1, Verdict::Keep);
    }

    #[test]
    fn drops_old_entries() {
        // The test entries carry a timestamp of 1µs after the epoch.
        assert_eq!(
            run("- drop: {older_than: 24h}", "x").1,
            Verdict::Drop("drop_stage".into())
        );
    }

    #[test]
    fn joins_several_sources() {
        let stages = "- regex: {expression: '(?P<a>\\w+) (?P<b>\\w+)'}\n- drop: {source: [a, b], separator: '-', value: 'x-y'}";
        assert_eq!(run(stages, "x y").1, Verdict::Drop("drop_stage".into()));
        assert_eq!(run(stages, "x z").1, Verdict::Keep);
    }
}
