//! The disk queue's (`wal`) write and read throughput: processed audit entries appended in the
//! chunks a file read produces (about 256 KiB of lines, fsync'd each), then read back and
//! committed in 1 MiB batches as the client does when Loki is back.
//!
//!     cargo bench --bench wal
//!
//! Throughput is in bytes of log lines. The files go to a temporary directory under the target
//! directory (a real disk; `/tmp` may be memory, where fsync costs nothing).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lokiship::client::wal::{Wal, WhenFull};
use lokiship::entry::Entry;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lines per chunk: about what one 256 KiB read of an audit log holds.
const CHUNK_LINES: usize = 150;

fn audit_entries() -> Vec<Entry> {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/gen-logs"))
        .args(["k8s-audit", "--lines", "3000", "--seed", "5", "--out", "-"])
        .output()
        .expect("running gen-logs");
    String::from_utf8(out.stdout)
        .expect("gen-logs writes UTF-8")
        .lines()
        .enumerate()
        .map(|(i, l)| Entry {
            labels: [("job", "audit"), ("verb", "get"), ("code", "200")]
                .into_iter()
                .collect(),
            timestamp_ns: 1_700_000_000_000_000_000 + i as i64,
            line: l.to_string(),
            structured_metadata: vec![("audit_id".into(), format!("{i:08x}"))],
            ack: None,
        })
        .collect()
}

fn scratch_dir() -> tempfile::TempDir {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target).expect("target directory");
    tempfile::tempdir_in(target).expect("scratch directory")
}

fn benches(c: &mut Criterion) {
    let entries = audit_entries();
    let bytes: usize = entries.iter().map(|e| e.line.len()).sum();
    let chunks: Vec<&[Entry]> = entries.chunks(CHUNK_LINES).collect();

    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.bench_function("append_fsync_per_chunk", |b| {
        b.iter_batched(
            scratch_dir,
            |dir| {
                let mut wal =
                    Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "bench").expect("open");
                for chunk in &chunks {
                    wal.append(chunk).expect("append");
                }
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("read_and_commit_1mib", |b| {
        b.iter_batched(
            || {
                let dir = scratch_dir();
                let mut wal =
                    Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "bench").expect("open");
                for chunk in &chunks {
                    wal.append(chunk).expect("append");
                }
                (dir, wal)
            },
            |(dir, mut wal)| {
                let mut n = 0;
                loop {
                    let got = wal.read(1 << 20).expect("read");
                    if got.is_empty() {
                        break;
                    }
                    n += got.len();
                    wal.commit().expect("commit");
                }
                assert_eq!(n, entries.len());
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(wal_benches, benches);
criterion_main!(wal_benches);
