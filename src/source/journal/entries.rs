//! A journal record made into what the pipeline takes, as Promtail makes it: the line (`MESSAGE`,
//! or every field as JSON), the record's time, and the labels the job's `labels` and
//! `relabel_configs` give it from the `__journal_<field>` meta labels.

use super::record::{self, Record};
use super::JournalJob;
use crate::pipeline::Processing;
use crate::source::relabel;
use std::collections::BTreeMap;

/// Why a record is not shipped (Promtail's `promtail_journal_target_parsing_errors` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No `MESSAGE` field (and `json: false`).
    NoMessage,
    /// No label is left once the meta labels are gone: Loki takes no stream without one.
    EmptyLabels,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::NoMessage => "no_message",
            Skip::EmptyLabels => "empty_labels",
        }
    }
}

/// The record as the pipeline's input; `now` is its time if journalctl printed none.
pub fn to_processing(job: &JournalJob, r: &Record, now: i64) -> Result<Processing, Skip> {
    let line = if job.json {
        r.to_json_line()
    } else {
        r.field("MESSAGE").ok_or(Skip::NoMessage)?.to_string()
    };
    let labels = relabel::entry_labels(&job.labels, &job.relabel, || meta_labels(r))
        .ok_or(Skip::EmptyLabels)?;
    Ok(Processing::new(labels, line, r.timestamp_ns(now)))
}

/// `__journal_<field>` for every field, and `__journal_priority_keyword`.
fn meta_labels(r: &Record) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for (name, value) in &r.fields {
        if name == "PRIORITY" {
            all.insert(
                "__journal_priority_keyword".to_string(),
                record::priority_keyword(value).to_string(),
            );
        }
        all.insert(record::label_name(name), value.clone());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::RelabelConfig;
    use crate::source::relabel::Relabel;

    fn job(json: bool, rules: &[(&str, &str)]) -> JournalJob {
        let relabel = rules
            .iter()
            .map(|(source, target)| {
                Relabel::new(&RelabelConfig {
                    source_labels: vec![source.to_string()],
                    target_label: Some(target.to_string()),
                    ..RelabelConfig::default()
                })
                .unwrap()
            })
            .collect();
        JournalJob {
            job: "journal".into(),
            json,
            labels: vec![("job".into(), "systemd-journal".into())],
            relabel,
            ..JournalJob::for_tests()
        }
    }

    fn record() -> Record {
        Record {
            cursor: Some("c".into()),
            realtime_us: Some(1_700_000_000_000_001),
            fields: vec![
                ("MESSAGE".into(), "Accepted publickey".into()),
                ("PRIORITY".into(), "3".into()),
                ("_SYSTEMD_UNIT".into(), "ssh.service".into()),
                ("_HOSTNAME".into(), "node-1".into()),
            ],
        }
    }

    #[test]
    fn meta_labels_reach_the_relabel_rules_and_only_their_targets_remain() {
        let j = job(
            false,
            &[
                ("__journal__systemd_unit", "unit"),
                ("__journal_priority_keyword", "level"),
                ("__journal__hostname", "host"),
            ],
        );
        let p = to_processing(&j, &record(), 0).unwrap();
        assert_eq!(
            p.labels.render(),
            r#"{host="node-1", job="systemd-journal", level="error", unit="ssh.service"}"#
        );
        assert_eq!(p.line, "Accepted publickey");
        assert_eq!(p.timestamp_ns, 1_700_000_000_000_001_000);
    }

    #[test]
    fn json_lines_carry_every_field_and_records_without_message_or_labels_are_skipped() {
        let p = to_processing(&job(true, &[]), &record(), 0).unwrap();
        assert!(p
            .line
            .starts_with(r#"{"MESSAGE":"Accepted publickey","PRIORITY":"3""#));
        let mut no_message = record();
        no_message.fields.remove(0);
        assert_eq!(
            to_processing(&job(false, &[]), &no_message, 0).unwrap_err(),
            Skip::NoMessage
        );
        let mut bare = job(false, &[]);
        bare.labels.clear();
        assert_eq!(
            to_processing(&bare, &record(), 0).unwrap_err(),
            Skip::EmptyLabels
        );
    }
}
