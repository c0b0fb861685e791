//! Micro-benchmarks of the per-line hot path: the audit pipeline (json → labels → structured metadata
//! → timestamp) and the push encoding (protobuf + snappy), on gen-logs audit lines.
//!
//!     cargo bench --bench pipeline
//!
//! Throughput is reported in bytes of log lines, so `1 / (GiB/s)` is CPU-s per GiB for that step.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lokiship::client::batch::Batch;
use lokiship::config::stages::StageConfig;
use lokiship::entry::{Entry, Labels};
use lokiship::pipeline::{Pipeline, Processing};
use std::path::Path;
use std::process::Command;

const AUDIT_STAGES: &str = r#"
- json: {expressions: {user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}}
- labels: {user: "", verb: "", code: ""}
- structured_metadata: {audit_id: ""}
- timestamp: {source: ts, format: RFC3339Nano}
"#;

fn audit_lines() -> Vec<String> {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/gen-logs"))
        .args(["k8s-audit", "--lines", "5000", "--seed", "3", "--out", "-"])
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
        .map(|l| {
            let mut p = Processing::new(base.clone(), l.clone(), 0);
            pipeline.process(&mut p);
            Entry {
                labels: p.labels,
                timestamp_ns: p.timestamp_ns,
                line: p.line,
                structured_metadata: p.structured_metadata,
                ack: None,
            }
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

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("pipeline", |b| {
        b.iter(|| processed(&pipeline, &lines, &base));
    });
    let entries = processed(&pipeline, &lines, &base);
    group.bench_function("batch_encode_snappy", |b| {
        b.iter_batched(
            || entries.clone(),
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
