//! `match`: runs nested stages on entries that match a LogQL selector (`action: keep`, the default),
//! or drops matching entries (`action: drop`).

use crate::config::stages::{MatchStage as Config, StageConfig};
use crate::config::values::MatchAction;
use crate::pipeline::selector::Selector;
use crate::pipeline::{BuildError, Pipeline, Processing, Stage, Verdict};

pub struct MatchStage {
    selector: Selector,
    action: Action,
    stages: Pipeline,
}

enum Action {
    Keep,
    Drop(String),
}

impl MatchStage {
    pub fn new(config: &Config, job: &str) -> Result<Self, BuildError> {
        let selector = Selector::parse(&config.selector)
            .map_err(|e| BuildError::new("match", format!("selector: {e}")))?;
        let action = match config.action.unwrap_or(MatchAction::Keep) {
            MatchAction::Keep => {
                if config.stages.is_empty() {
                    return Err(BuildError::new("match", "action keep needs nested stages"));
                }
                Action::Keep
            }
            MatchAction::Drop => {
                if !config.stages.is_empty() {
                    return Err(BuildError::new(
                        "match",
                        "action drop takes no nested stages",
                    ));
                }
                Action::Drop(
                    config
                        .drop_counter_reason
                        .clone()
                        .unwrap_or_else(|| "match_stage".into()),
                )
            }
        };
        let stages = config
            .stages
            .iter()
            .map(|c| super::build(c, job))
            .collect::<Result<Vec<_>, _>>()?;
        let names = config.stages.iter().map(StageConfig::name).collect();
        let stages = Pipeline::from_stages(stages, names);
        Ok(Self {
            selector,
            action,
            stages,
        })
    }
}

impl Stage for MatchStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        if !self.selector.matches(&entry.labels, &entry.line) {
            return Verdict::Keep;
        }
        match &self.action {
            Action::Drop(reason) => Verdict::Drop(reason.clone()),
            Action::Keep => self.stages.process(entry),
        }
    }

    fn holds_entries(&self) -> bool {
        self.stages.holds_entries()
    }

    fn take(&self, entry: Processing, out: &mut Vec<Processing>) {
        if !self.selector.matches(&entry.labels, &entry.line) {
            out.push(entry);
            return;
        }
        match &self.action {
            Action::Drop(reason) => entry.drop_with(reason),
            Action::Keep => self.stages.run(entry, out),
        }
    }

    fn next_deadline(&self) -> Option<std::time::Instant> {
        self.stages.next_deadline()
    }

    fn flush(&self, all: bool, out: &mut Vec<Processing>) {
        self.stages.flush(all, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;
    use crate::pipeline::Verdict;

    const STAGES: &str = r#"
- json: {expressions: {verb: verb}}
- labels: {verb: }
- match:
    selector: '{verb="get"}'
    stages:
      - static_labels: {read: "yes"}
- match:
    selector: '{verb="watch"} |= "kube-system"'
    action: drop
    drop_counter_reason: noisy_watch
"#;

    #[test]
    fn nested_stages_run_on_matches_only() {
        let (e, v) = run(STAGES, r#"{"verb":"get"}"#);
        assert_eq!(v, Verdict::Keep);
        assert_eq!(e.labels.get("read"), Some("yes"));
        let (e, _) = run(STAGES, r#"{"verb":"list"}"#);
        assert_eq!(e.labels.get("read"), None);
    }

    #[test]
    fn drop_action_drops_with_its_reason() {
        let (_, v) = run(STAGES, r#"{"verb":"watch","ns":"kube-system"}"#);
        assert_eq!(v, Verdict::Drop("noisy_watch".into()));
        let (_, v) = run(STAGES, r#"{"verb":"watch","ns":"default"}"#);
        assert_eq!(v, Verdict::Keep);
    }
}
