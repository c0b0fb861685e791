//! Pushes identical to Promtail's: each case of `tests/data/differential/cases.yaml` (a pipeline
//! and the lines of one file) is read by lokiship and compared with what Promtail 3.6.15 pushed
//! for the same config and input, recorded in `promtail-3.6.15.jsonl`: the streams (labels
//! without `filename`, which names a temporary file), lines, structured metadata and, where a
//! timestamp stage sets it, the timestamp.
//!
//! The record is made and checked by `promtail_pushes_what_was_recorded` when the real Promtail is
//! in `../shared/peers`; `LOKISHIP_RECORD=1 cargo test --test differential` writes it again.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{FakeLoki, Received, Shipper};

const RECORDED: &str = "tests/data/differential/promtail-3.6.15.jsonl";
const CASES: &str = "tests/data/differential/cases.yaml";

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    /// `compared`, or `read` (the entries carry the time they were read).
    timestamps: String,
    stages: String,
    lines: Vec<String>,
}

/// One pushed entry, comparable between runs: case, labels, line, timestamp (if compared),
/// structured metadata.
type Pushed = (String, String, String, Option<i64>, Vec<(String, String)>);

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES);
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The config both shippers run: one job per case, each on its own file in `dir`.
fn write_config(dir: &Path, cases: &[Case], url: &str, http: u16) -> PathBuf {
    let mut text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {http}, grpc_listen_port: 0}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 100ms}}]
scrape_configs:
",
        d = dir.display()
    );
    for case in cases {
        let stages: String = case
            .stages
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect();
        text.push_str(&format!(
            "  - job_name: {name}
    static_configs:
      - targets: [localhost]
        labels: {{case: {name}, __path__: '{d}/{name}.log'}}
    pipeline_stages:
{stages}",
            name = case.name,
            d = dir.display()
        ));
        let mut lines = case.lines.join("\n");
        lines.push('\n');
        std::fs::write(dir.join(format!("{}.log", case.name)), lines).unwrap();
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `binary` on every case and returns what it pushed once `done` says it is complete.
fn pushed_by(binary: &Path, done: impl Fn(&[Received]) -> bool) -> Vec<Pushed> {
    let cases = cases();
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let http = support::free_port();
    let config = write_config(dir.path(), &cases, &loki.url(), http);
    let _shipper = Shipper(
        Command::new(binary)
            .arg(format!("-config.file={}", config.display()))
            // `location: Local` is this zone for both.
            .env("TZ", "Europe/Berlin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Not a panic when the count is not reached: the comparison then says what is missing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done(&loki.accepted()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    comparable(&cases, &loki.accepted())
}

fn comparable(cases: &[Case], got: &[Received]) -> Vec<Pushed> {
    let filename = regex::Regex::new(r#"filename="[^"]*""#).unwrap();
    let case_label = regex::Regex::new(r#"case="([^"]*)""#).unwrap();
    let mut out: Vec<Pushed> = got
        .iter()
        .map(|r| {
            let labels = filename
                .replace(&r.labels, "")
                .replace(", , ", ", ")
                .replace("{, ", "{")
                .replace(", }", "}");
            let case = case_label
                .captures(&r.labels)
                .map_or_else(String::new, |c| c[1].to_string());
            let compared = cases
                .iter()
                .any(|c| c.name == case && c.timestamps == "compared");
            let mut metadata = r.structured_metadata.clone();
            metadata.sort();
            (
                case,
                labels,
                r.line.clone(),
                compared.then_some(r.ts_ns),
                metadata,
            )
        })
        .collect();
    out.sort();
    out
}

fn recorded() -> Vec<Pushed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDED);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The entry as Loki stores it: a label whose value is empty is no label (Loki files
/// `{case="a", level=""}` under the series `{case="a"}`). Promtail sends such labels, lokiship
/// leaves them out (README, "Differences from Promtail").
fn as_stored(pushed: &Pushed) -> Pushed {
    let empty = regex::Regex::new(r#"(, )?[A-Za-z_][A-Za-z0-9_]*="""#).unwrap();
    let labels = empty.replace_all(&pushed.1, "").replace("{, ", "{");
    let mut stored = pushed.clone();
    stored.1 = labels;
    stored
}

/// Every case differs from Promtail's record in nothing: each difference is listed by case.
fn assert_same(theirs: &[Pushed], ours: &[Pushed]) {
    let mut differences = Vec::new();
    for case in cases() {
        let select = |all: &[Pushed]| -> Vec<Pushed> {
            let mut v: Vec<_> = all
                .iter()
                .filter(|p| p.0 == case.name)
                .map(as_stored)
                .collect();
            v.sort();
            v
        };
        let (t, o) = (select(theirs), select(ours));
        if t != o {
            differences.push(format!(
                "case {}:\n  Promtail: {t:?}\n  lokiship: {o:?}",
                case.name
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn lokiship_pushes_what_promtail_pushed_for_every_case() {
    let theirs = recorded();
    let ours = pushed_by(Path::new(env!("CARGO_BIN_EXE_lokiship")), |got| {
        got.len() >= theirs.len()
    });
    assert_same(&theirs, &ours);
}

#[test]
fn promtail_pushes_what_was_recorded() {
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let recording = std::env::var("LOKISHIP_RECORD").is_ok_and(|v| v == "1");
    let expected = if recording { None } else { Some(recorded()) };
    // Recording, the count is not known: Promtail is done once nothing more came for 3 s (the
    // longest wait of a case is 1 s).
    let last = std::sync::Mutex::new((0usize, std::time::Instant::now()));
    let theirs = pushed_by(&promtail, |got| match &expected {
        Some(e) => got.len() >= e.len(),
        None => {
            let mut last = last.lock().unwrap();
            if got.len() != last.0 {
                *last = (got.len(), std::time::Instant::now());
            }
            last.0 > 0 && last.1.elapsed() > Duration::from_secs(3)
        }
    });
    match expected {
        Some(e) => assert_same(&e, &theirs),
        None => {
            let text: String = theirs
                .iter()
                .map(|e| serde_json::to_string(e).unwrap() + "\n")
                .collect();
            std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDED), text).unwrap();
        }
    }
}
