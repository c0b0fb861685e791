//! The fuzzing target of the parsing stages (see `crate::fuzz`).

/// The stages that parse what a line says, as the audit, syslog and app presets use them.
const PARSING_STAGES: &str = r#"
- json: {expressions: {user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, first: 'items[0].name', all: '*'}}
- logfmt: {mapping: {level: , msg: , time: }}
- regex: {expression: '^(?P<host>\S+) (?P<app>[a-z]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$'}
- template: {source: t, template: '{{ if .level }}{{ ToLower .level | ToUpper }}{{ else }}{{ TrimSpace .Entry | trunc 10 }}{{ end }}-{{ .verb | default "none" }}'}
- timestamp: {source: ts, format: RFC3339Nano, action_on_failure: skip}
- timestamp: {source: time, format: 'Jan 02 15:04:05', location: Europe/Berlin, action_on_failure: fudge}
- timestamp: {source: pid, format: UnixMs}
- labels: {user: , verb: , code: , level: , app: }
- structured_metadata: {msg: , t: }
- output: {source: msg}
"#;

fn seeds_of_lines() -> Vec<Vec<u8>> {
    let audit = include_str!("../../config/sample/audit.log");
    let mut seeds: Vec<Vec<u8>> = audit
        .lines()
        .take(3)
        .map(|l| l.as_bytes().to_vec())
        .collect();
    seeds.push(b"level=WARN msg=\"disk \\\"full\\\"\" time=\"Nov 26 10:00:01\" verb=get".to_vec());
    seeds.push(b"node-1 sshd[4242]: Accepted publickey for root from 10.0.0.1".to_vec());
    seeds
}

#[test]
fn fuzz_parsing_stages() {
    use crate::pipeline::{Pipeline, Processing};
    let configs: Vec<crate::config::stages::StageConfig> =
        serde_yaml_ng::from_str(PARSING_STAGES).unwrap();
    let pipeline = Pipeline::build(&configs, "fuzz").unwrap();
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        "\\u0000",
        "\\ud800",
        "1e999",
        "=",
        "=\"",
        " ",
        "\"verb\":",
        "\"user\":{\"username\":",
        "2026-11-26T10:00:00.123456789Z",
        "\u{1b}[31m",
    ];
    let mut out = Vec::new();
    crate::fuzz::run("parsing_stages", &seeds_of_lines(), &tokens, |input| {
        let line = String::from_utf8_lossy(input).into_owned();
        out.clear();
        pipeline.run(Processing::new(Default::default(), line, 0), &mut out);
        pipeline.flush(true, &mut out);
        assert!(out.len() <= 1, "a line is never multiplied");
    });
}
