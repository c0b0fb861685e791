//! No stage panics, whatever the line: every parsing stage on arbitrary text, JSON-ish text and
//! container-log-ish text; malformed input is counted, never fatal.

use lokiship::config::stages::StageConfig;
use lokiship::pipeline::{Pipeline, Processing};
use proptest::prelude::*;

const EVERY_STAGE: &str = r#"
- docker: {}
- cri: {max_partial_lines: 3, max_partial_line_size: 64, max_partial_line_size_truncate: true}
- decolorize: {}
- json: {expressions: {a: a, b: 'b.c', d: 'd[0]', verb: verb}}
- logfmt: {mapping: {level: , msg: }}
- regex: {expression: '^(?P<first>\S+)\s*(?P<rest>.*)$'}
- replace: {expression: '(\d+)', replace: '{{ .Value | ToUpper }}'}
- multiline: {firstline: '^\S', max_lines: 4, max_wait_time: 1s}
- template: {source: t, template: '{{ if .level }}{{ ToLower .level }}{{ else }}{{ TrimSpace .Entry }}{{ end }}'}
- timestamp: {source: first, format: RFC3339Nano, action_on_failure: skip}
- labels: {level: , first: }
- structured_metadata: {rest: }
- tenant: {source: a}
- pack: {labels: [level], ingest_timestamp: false}
- metrics:
    prop_lines_total: {type: Counter, config: {match_all: true, count_entry_bytes: true, action: add}}
    prop_value: {type: Histogram, source: b, config: {buckets: [1, 10]}}
- drop: {source: msg, expression: 'x{3}'}
- output: {source: rest}
"#;

fn pipeline() -> Pipeline {
    let configs: Vec<StageConfig> = serde_yaml_ng::from_str(EVERY_STAGE).unwrap();
    Pipeline::build(&configs, "prop").unwrap()
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,a-d0-9 .\\\\]{0,80}",
        "(2026-11-26T10:00:00Z )?(stdout|stderr|x) [PF:]{0,3} [ -~\u{1b}]{0,60}",
        "([a-z]{1,5}=(\"[^\"]{0,10}\"?|[a-z0-9=]{0,5}) ?){0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn no_stage_panics_on_any_line(lines in proptest::collection::vec(line(), 1..8)) {
        let p = pipeline();
        let mut out = Vec::new();
        let n = lines.len();
        for l in lines {
            p.run(Processing::new(Default::default(), l, 0), &mut out);
        }
        p.flush(true, &mut out);
        // Lines are only ever joined or dropped, never multiplied.
        prop_assert!(out.len() <= n);
    }
}
