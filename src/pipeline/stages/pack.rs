//! `pack`: the line becomes a JSON object holding the listed labels or extracted values and the
//! original line under `_entry`; packed labels leave the label set (fewer streams). With
//! `ingest_timestamp` (default) the timestamp becomes the time of packing, so that lines of the
//! streams merged into one stay in order for Loki.

use crate::config::stages::PackStage as Config;
use crate::pipeline::go_json::write_string as go_json_string;
use crate::pipeline::{Processing, Stage, Verdict};

pub struct PackStage {
    names: Vec<String>,
    ingest_timestamp: bool,
}

impl PackStage {
    pub fn new(config: &Config) -> Self {
        let mut names = config.labels.clone();
        names.sort();
        names.dedup();
        Self {
            names,
            ingest_timestamp: config.ingest_timestamp.unwrap_or(true),
        }
    }
}

impl Stage for PackStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        // As Promtail writes it: the values by name, then `_entry`, each string escaped as Go's
        // encoding/json escapes it.
        let mut line = String::with_capacity(entry.line.len() + 16);
        line.push('{');
        for name in &self.names {
            let value = match entry.labels.remove(name) {
                Some(v) => Some(v.to_string()),
                None => entry.extracted.get(name).map(str::to_string),
            };
            if let Some(v) = value {
                go_json_string(name, &mut line);
                line.push(':');
                go_json_string(&v, &mut line);
                line.push(',');
            }
        }
        line.push_str("\"_entry\":");
        go_json_string(&entry.line, &mut line);
        line.push('}');
        entry.line = line;
        if self.ingest_timestamp {
            entry.timestamp_ns = crate::entry::now_ns();
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn labels_and_values_are_packed_into_the_line() {
        let (e, _) = run(
            "- static_labels: {container: myapp, pod: p1}\n- json: {expressions: {level: level}}\n- pack: {labels: [pod, container, level, absent], ingest_timestamp: false}",
            r#"{"level":"warn","msg":"x \"q\""}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&e.line).unwrap();
        assert_eq!(v["container"], "myapp");
        assert_eq!(v["pod"], "p1");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["_entry"], r#"{"level":"warn","msg":"x \"q\""}"#);
        assert!(v.get("absent").is_none());
        assert_eq!(
            e.labels.get("container"),
            None,
            "packed labels leave the stream"
        );
        assert_eq!(
            e.timestamp_ns, 1_000,
            "ingest_timestamp false keeps the time"
        );
        let (e, _) = run("- pack: {labels: []}", "x");
        assert!(e.timestamp_ns > 1_000, "ingest_timestamp defaults to true");
    }

    #[test]
    fn the_line_is_laid_out_and_escaped_as_promtail_writes_it() {
        let (e, _) = run(
            "- static_labels: {b: '2', a: '<1>'}\n- pack: {labels: [b, a], ingest_timestamp: false}",
            "x & \u{8}\t\u{2028}\"",
        );
        assert_eq!(
            e.line, r#"{"a":"\u003c1\u003e","b":"2","_entry":"x \u0026 \u0008\t\u2028\""}"#,
            "names sorted, `_entry` last, HTML and control characters as \\u00XX"
        );
    }
}
