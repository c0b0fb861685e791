//! Micro-benchmarks of the per-line hot path, on gen-logs audit lines: line splitting (the tailer),
//! the json stage alone on one event, the whole audit pipeline (json → labels → structured metadata
//! → timestamp), the regex stage on syslog lines, label-set hashing and formatting, and the push encoding (protobuf + snappy) of a
//! 1 MiB batch. In CI they are compiled, not run (`cargo bench --no-run`).
//!
//!     cargo bench --bench pipeline
//!
//! Throughput is reported in bytes of log lines, so `1 / (GiB/s)` is CPU-s per GiB for that step.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lokiship::client::batch::Batch;
use lokiship::config::stages::StageConfig;
use lokiship::entry::{Entry, Labels};
use lokiship::pipeline::{Pipeline, Processing};
use lokiship::source::file::tailer::lines::LineReader;
use lokiship::source::file::tailer::{LineEvent, READ_CHUNK};
use std::hash::BuildHasher;
use std::path::Path;
use std::process::Command;

const AUDIT_STAGES: &str = r#"
- json: {expressions: {user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}}
- labels: {user: "", verb: "", code: ""}
- structured_metadata: {audit_id: ""}
- timestamp: {source: ts, format: RFC3339Nano}
"#;

const SYSLOG_REGEX: &str = r"^(?P<ts>\w{3} +\d+ \d\d:\d\d:\d\d) (?P<host>\S+) (?P<app>[^\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$";

fn audit_lines() -> Vec<String> {
    generated("k8s-audit")
}

fn generated(kind: &str) -> Vec<String> {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/gen-logs"))
        .args([kind, "--lines", "5000", "--seed", "3", "--out", "-"])
        .output()
        .expect("running gen-logs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn processed(pipeline: &Pipeline, lines: &[String], base: &Labels) -> Vec<Entry> {
    lines
        .iter()
        .flat_map(|l| {
            let mut out = Vec::with_capacity(1);
            pipeline.run(Processing::new(base.clone(), l.clone(), 0), &mut out);
            out.into_iter().map(Processing::into_entry)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let lines = audit_lines();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let configs: Vec<StageConfig> = serde_yaml_ng::from_str(AUDIT_STAGES).unwrap();
    let pipeline = Pipeline::build(&configs, "bench").unwrap();
    let base: Labels = [
        ("job", "kube-audit"),
        ("filename", "/var/log/kubernetes/audit/audit.log"),
    ]
    .into_iter()
    .collect();

    // Line splitting: the line reader reading a file of audit lines in READ_CHUNK reads.
    let dir = tempfile::tempdir().unwrap();
    let file_path = dir.path().join("audit.log");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&file_path, &text).unwrap();
    let mut split = c.benchmark_group("tailer");
    split.throughput(Throughput::Bytes(text.len() as u64));
    split.sample_size(20);
    split.bench_function("split_lines", |b| {
        let mut buf = vec![0; READ_CHUNK];
        b.iter(|| {
            let file = std::fs::File::open(&file_path).unwrap();
            let mut t = LineReader::new(file, 0).unwrap();
            let mut count = 0usize;
            while t
                .read(&mut buf, 256 * 1024, false, |ev| {
                    if let LineEvent::Line { bytes, .. } = ev {
                        count += bytes.len();
                    }
                })
                .unwrap()
                > 0
            {}
            count
        });
    });
    split.finish();

    // The json stage alone, on one event.
    let json_only: Vec<StageConfig> = serde_yaml_ng::from_str(
        "- json: {expressions: {user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}}",
    )
    .unwrap();
    let json = Pipeline::build(&json_only, "bench").unwrap();
    let one = lines[0].clone();
    let mut single = c.benchmark_group("json_stage");
    single.throughput(Throughput::Bytes(one.len() as u64));
    single.bench_function("one_audit_event", |b| {
        let mut out = Vec::with_capacity(1);
        b.iter(|| {
            out.clear();
            json.run(Processing::new(base.clone(), one.clone(), 0), &mut out);
            out.len()
        });
    });
    single.finish();

    // Label sets: hashing (the batch's stream key) and formatting (the push's stream labels).
    let entries = processed(&pipeline, &lines, &base);
    let mut labels_group = c.benchmark_group("labels");
    labels_group.throughput(Throughput::Elements(entries.len() as u64));
    let hasher = rustc_hash::FxBuildHasher;
    labels_group.bench_function("hash", |b| {
        b.iter(|| {
            entries
                .iter()
                .map(|e| hasher.hash_one(&e.labels))
                .fold(0u64, |a, h| a ^ h)
        });
    });
    labels_group.bench_function("render", |b| {
        b.iter(|| {
            entries
                .iter()
                .map(|e| e.labels.render().len())
                .sum::<usize>()
        });
    });
    labels_group.finish();

    // The regex stage on syslog lines: as configured (Go's ASCII classes, what lokiship compiles)
    // and, for comparison, the same text compiled with Rust's Unicode classes.
    let syslog = generated("syslog");
    let syslog_bytes: usize = syslog.iter().map(|l| l.len()).sum();
    let stage: Vec<StageConfig> =
        serde_yaml_ng::from_str(&format!("- regex: {{expression: '{SYSLOG_REGEX}'}}")).unwrap();
    let regex_pipeline = Pipeline::build(&stage, "bench").unwrap();
    let unicode = regex::Regex::new(SYSLOG_REGEX).unwrap();
    let mut group = c.benchmark_group("syslog_regex");
    group.throughput(Throughput::Bytes(syslog_bytes as u64));
    group.sample_size(20);
    group.bench_function("stage", |b| {
        b.iter(|| processed(&regex_pipeline, &syslog, &base));
    });
    group.bench_function("unicode_classes_captures_only", |b| {
        b.iter(|| {
            syslog
                .iter()
                .filter_map(|l| unicode.captures(l).map(|c| c.len()))
                .sum::<usize>()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("pipeline", |b| {
        b.iter(|| processed(&pipeline, &lines, &base));
    });
    group.finish();

    // Protobuf + snappy of a 1 MiB batch (Promtail's default batchsize).
    let mut mib = Vec::new();
    let mut mib_bytes = 0;
    for e in entries.iter().cycle() {
        if mib_bytes >= 1 << 20 {
            break;
        }
        mib_bytes += e.line.len();
        mib.push(e.clone());
    }
    let mut group = c.benchmark_group("push");
    group.throughput(Throughput::Bytes(mib_bytes as u64));
    group.sample_size(20);
    group.bench_function("encode_snappy_1mib_batch", |b| {
        b.iter_batched(
            || mib.clone(),
            |entries| {
                let mut batch = Batch::new();
                for mut e in entries {
                    let labels = std::mem::take(&mut e.labels);
                    batch.add(labels, e);
                }
                batch.into_body()
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
