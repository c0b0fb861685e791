//! `LOKISHIP_BENCH_KIND=backfill`: `lokiship backfill` of the audit lines gzip'ed (one file, as
//! logrotate leaves it), beside the same lines plain — by `backfill` and by the file source
//! (`-exit-at-eof`) — each run to its exit: lines/s, CPU seconds (lokiship's, from its rusage),
//! peak RSS, and the lines received (must equal the lines written).

use super::{rss_kb, write_config};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub fn run(binary: &Path, source: &Path, url: &str, received: &AtomicU64) {
    let gz = source.with_extension("log.gz");
    if !gz.exists() {
        eprintln!("compressing {} ...", source.display());
        let mut input = std::fs::File::open(source).unwrap();
        let out = std::fs::File::create(&gz).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        std::io::copy(&mut input, &mut encoder).unwrap();
        encoder.finish().unwrap().sync_all().unwrap();
    }
    let text = std::fs::read(source).unwrap();
    let expected = text.iter().filter(|&&b| b == b'\n').count() as u64;
    drop(text);
    let bytes = std::fs::metadata(source).unwrap().len();
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("bench-0.log");
    std::fs::copy(source, &plain).unwrap();
    let config = write_config(
        work.path(),
        &work.path().join("bench-*.log"),
        url,
        "k8s-audit",
    );
    let runs: [(&str, Vec<String>); 3] = [
        ("backfill, gzip", backfill_args(&gz)),
        ("backfill, plain", backfill_args(&plain)),
        ("file source, plain", vec!["-exit-at-eof".into()]),
    ];
    for round in 1..=2 {
        for (what, args) in &runs {
            for positions in ["positions.yaml", "lokiship-backfill-positions.yaml"] {
                let _ = std::fs::remove_file(work.path().join(positions));
            }
            received.store(0, Ordering::Relaxed);
            let (wall, cpu, rss) = run_to_exit(binary, &config, args);
            let got = received.load(Ordering::Relaxed);
            println!(
                "round {round}, {what}: {expected} lines ({:.0} MB plain) in {wall:.2} s ({:.0} lines/s); lokiship CPU {cpu:.2} s = {:.2} CPU-s/GB; peak RSS {:.1} MB; received {got}{}",
                bytes as f64 / 1e6,
                expected as f64 / wall,
                cpu / (bytes as f64 / 1e9),
                rss as f64 / 1024.0,
                if got == expected { "" } else { " (MISMATCH)" },
            );
        }
    }
}

fn backfill_args(file: &Path) -> Vec<String> {
    // The generated lines are old: sent as they are to the counting receiver.
    vec!["-force".into(), file.display().to_string()]
}

/// Runs lokiship with `args` until it exits: wall seconds, CPU seconds (the children's rusage
/// before and after) and peak RSS in KiB (its VmHWM, sampled).
fn run_to_exit(binary: &Path, config: &Path, args: &[String]) -> (f64, f64, u64) {
    let before = children_cpu();
    let started = Instant::now();
    let backfill = args.first().is_some_and(|a| a == "-force");
    let mut child = Command::new(binary)
        .args(backfill.then_some("backfill"))
        .arg(format!("-config.file={}", config.display()))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak_rss = 0;
    let status = loop {
        peak_rss = peak_rss.max(rss_kb(child.id(), "VmHWM"));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let wall = started.elapsed().as_secs_f64();
    assert!(status.success(), "lokiship {args:?}: {status}");
    (wall, children_cpu() - before, peak_rss)
}

/// CPU seconds of the waited-for children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
