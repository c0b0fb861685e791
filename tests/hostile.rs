//! Hostile files: what lokiship meets on real nodes besides clean log lines. Nothing here may crash
//! lokiship, stall the other files or vanish silently: each case is shipped or skipped, and counted.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{enable_server, http_get, wait_timeout, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

/// A config that ships every line of the files matching `glob` unchanged.
fn plain_config(dir: &Path, glob: &str, url: &str, limits: &str) -> PathBuf {
    support::ConfigBuilder::new(dir)
        .limits(limits)
        .client(
            url,
            &[
                "batchwait: 100ms",
                "backoff_config: {min_period: 20ms, max_period: 200ms}",
            ],
        )
        .job("plain", "job: plain", glob, "")
        .write()
}

/// The value of the first sample of `metric` whose labels contain `labels`.
fn metric(port: u16, metric: &str, labels: &str) -> Option<f64> {
    let text = http_get(port, "/metrics")?;
    let first = support::metric_samples(&text, metric, labels).next();
    first
}

fn wait_for_metric(port: u16, name: &str, labels: &str, want: f64) {
    support::eventually(WAIT, &format!("{name}{{{labels}}} = {want}"), || {
        metric(port, name, labels) == Some(want)
    });
}

fn lines_of(loki: &FakeLoki) -> Vec<String> {
    let mut lines: Vec<String> = loki.accepted().into_iter().map(|r| r.line).collect();
    lines.sort();
    lines
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn nul_bytes_invalid_utf8_and_a_binary_file_are_shipped_and_counted() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    append(&logs.join("nul.log"), b"before\0after\n");
    append(&logs.join("latin1.log"), b"caf\xe9 ok\n");
    // A binary file matched by mistake: pseudo-random bytes, some of them newlines.
    let mut x: u32 = 12345;
    let binary: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    append(&logs.join("binary.log"), &binary);
    append(&logs.join("binary.log"), b"\n");
    let binary_lines = binary.iter().filter(|&&b| b == b'\n').count() + 1;
    let config = plain_config(
        dir.path(),
        &format!("{}/*.log", logs.display()),
        &loki.url(),
        "max_line_size: 1kb, max_line_size_truncate: true",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "every line of the three files", |r| {
        r.len() >= 2 + binary_lines
    });

    let lines = lines_of(&loki);
    assert!(lines.contains(&"before\0after".to_string()), "NUL kept");
    assert!(
        lines.contains(&"caf\u{fffd} ok".to_string()),
        "invalid UTF-8 replaced"
    );
    assert!(lines.iter().all(|l| l.len() <= 3 * 1024), "cut at 1 KB");
    assert!(
        metric(port, "lokiship_invalid_utf8_lines_total", "latin1.log") == Some(1.0),
        "invalid UTF-8 counted per file"
    );
    assert!(metric(port, "lokiship_invalid_utf8_lines_total", "binary.log").unwrap_or(0.0) > 0.0);

    // Still following every file.
    append(&logs.join("latin1.log"), b"next\n");
    loki.wait_for(WAIT, "the line appended afterwards", |r| {
        r.iter().any(|e| e.line == "next")
    });
    assert!(lokiship.terminate().success());
}

/// A 50 MB line without a newline (a runaway writer): cut at max_line_size with memory that does not
/// grow with the line, counted; the lines around it are shipped.
#[test]
fn a_50mb_line_is_dropped_with_bounded_memory_and_counted() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"first\n");
    let config = plain_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "the first line", |r| r.len() == 1);
    let before_kb = peak_rss_kb(lokiship.child.id());
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..50 {
        append(&log, &chunk);
    }
    // All 50 MB read (and held back as an unfinished line) before the newline arrives.
    wait_for_metric(
        port,
        "promtail_read_bytes_total",
        "app.log",
        (6 + 50 * chunk.len()) as f64,
    );
    append(&log, b"\nlast\n");
    loki.wait_for(WAIT, "the line after it", |r| {
        r.iter().any(|e| e.line == "last")
    });
    wait_for_metric(
        port,
        "promtail_dropped_entries_total",
        "reason=\"line_too_long\"",
        1.0,
    );
    assert_eq!(lines_of(&loki), vec!["first", "last"]);
    let grown_kb = peak_rss_kb(lokiship.child.id()) - before_kb;
    assert!(
        grown_kb < 20 * 1024,
        "peak RSS grew by {grown_kb} kB: the line must not be held in memory"
    );
    assert!(lokiship.terminate().success());
}

#[test]
fn a_long_line_is_truncated_when_configured_and_counted() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut content = vec![b'y'; 5000];
    content.extend_from_slice(b"\nshort\n");
    append(&log, &content);
    let config = plain_config(
        dir.path(),
        &log.display().to_string(),
        &loki.url(),
        "max_line_size: 1KB, max_line_size_truncate: true",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "both lines", |r| r.len() == 2);
    assert_eq!(lines_of(&loki), vec!["short".to_string(), "y".repeat(1024)]);
    wait_for_metric(
        port,
        "promtail_mutated_entries_total",
        "reason=\"line_too_long\"",
        1.0,
    );
    assert!(lokiship.terminate().success());
}

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn fifos_directories_and_compressed_files_matching_the_glob_are_skipped() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::create_dir(logs.join("sub.log")).unwrap();
    let fifo = logs.join("pipe.log");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    append(&logs.join("app.log"), b"one\ntwo\n");
    append(&logs.join("app.log.1.gz"), b"\x1f\x8b\x08\x00compressed\n");
    let config = plain_config(
        dir.path(),
        &format!("{}/*", logs.display()),
        &loki.url(),
        "",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "the regular file's lines", |r| r.len() >= 2);
    // The FIFO is reported; a directory is simply not a file to read.
    wait_for_metric(
        port,
        "lokiship_file_errors_total",
        "reason=\"not_regular_file\"",
        1.0,
    );
    append(&logs.join("app.log"), b"three\n");
    loki.wait_for(WAIT, "a line appended later", |r| r.len() >= 3);
    assert_eq!(lines_of(&loki), vec!["one", "three", "two"]);
    assert!(lokiship.terminate().success(), "not stuck opening the FIFO");
}

#[test]
fn a_symlink_is_followed_and_known_by_its_target() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&logs).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    append(&elsewhere.join("real.txt"), b"outside 1\n");
    std::os::unix::fs::symlink(elsewhere.join("real.txt"), logs.join("linked.log")).unwrap();
    // A link to a file the glob matches as well: read once, not twice.
    append(&logs.join("app-1.log"), b"inside 1\n");
    std::os::unix::fs::symlink(logs.join("app-1.log"), logs.join("current.log")).unwrap();
    let config = plain_config(
        dir.path(),
        &format!("{}/*.log", logs.display()),
        &loki.url(),
        "",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "both files", |r| r.len() >= 2);
    append(&elsewhere.join("real.txt"), b"outside 2\n");
    append(&logs.join("app-1.log"), b"inside 2\n");
    loki.wait_for(WAIT, "the appended lines", |r| r.len() >= 4);
    support::wait_for_syncs(port, 2);
    assert_eq!(
        lines_of(&loki),
        vec!["inside 1", "inside 2", "outside 1", "outside 2"]
    );
    let linked = loki
        .accepted()
        .into_iter()
        .find(|r| r.line == "outside 1")
        .unwrap();
    assert!(
        linked.labels.contains("linked.log"),
        "filename is the matched path: {}",
        linked.labels
    );
    assert!(lokiship.terminate().success());
}

#[test]
fn a_file_deleted_while_loki_is_down_is_read_to_its_end_through_the_open_descriptor() {
    let loki = FakeLoki::start();
    loki.script(&[503; 30]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"line 0\n");
    let config = plain_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    support::eventually(WAIT, "no push attempted", || !loki.requests().is_empty());
    // Written and deleted while Loki refuses everything.
    let more: String = (1..500).map(|i| format!("line {i}\n")).collect();
    append(&log, more.as_bytes());
    std::fs::remove_file(&log).unwrap();
    loki.wait_for(WAIT, "all 500 lines", |r| r.len() >= 500);
    support::wait_for_syncs(port, 2);
    assert_eq!(loki.accepted().len(), 500, "each line once");
    assert!(lokiship.terminate().success());
}

/// A file lokiship may not read is reported once (not at every sync), counted, and read as soon
/// as it becomes readable. As root, lokiship runs as `nobody` so that permissions apply.
#[test]
fn an_unreadable_file_is_reported_once_and_read_once_permitted() {
    use std::os::unix::fs::PermissionsExt;
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = dir.path().join("secret.log");
    append(&log, b"hidden\n");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o000)).unwrap();
    let config = plain_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let port = enable_server(&config);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_lokiship"),
        ]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_lokiship"))
    };
    let mut child = cmd
        .arg(format!("-config.file={}", config.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    wait_for_metric(port, "lokiship_file_errors_total", "reason=\"open\"", 1.0);
    // Several syncs pass: still reported once.
    support::wait_for_syncs(port, 4);
    assert_eq!(
        metric(port, "lokiship_file_errors_total", "reason=\"open\""),
        Some(1.0)
    );
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    loki.wait_for(WAIT, "the line once readable", |r| r.len() == 1);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_timeout(&mut child, Duration::from_secs(30)).success());
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(
        stderr.matches("cannot open file").count(),
        1,
        "logged once:\n{stderr}"
    );
}

/// `decompression: {enabled: true}`: a gzipped generation is read once, beside the live file; a
/// restart does not read it again.
#[test]
fn a_compressed_generation_is_read_once_when_decompression_is_configured() {
    use std::io::Write as _;
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let old: String = (0..300).map(|i| format!("old {i}\n")).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(old.as_bytes()).unwrap();
    std::fs::write(logs.join("app.log.1.gz"), gz.finish().unwrap()).unwrap();
    append(&logs.join("app.log"), b"live 1\n");
    let config = plain_config(
        dir.path(),
        &format!("{}/app.log*", logs.display()),
        &loki.url(),
        "",
    );
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "  - job_name: plain\n",
            "  - job_name: plain\n    decompression: {enabled: true, format: gz}\n",
        ),
    )
    .unwrap();
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "301 lines", |r| r.len() >= 301);
    // Acknowledged, then recorded as complete at the next look.
    support::wait_for_syncs(port, 2);
    assert!(lokiship.terminate().success());
    let lines = lines_of(&loki);
    assert_eq!(lines.len(), 301);
    assert!(lines.contains(&"old 299".to_string()) && lines.contains(&"live 1".to_string()));

    let again = Lokiship::start(&config, &[]);
    append(&logs.join("app.log"), b"live 2\n");
    loki.wait_for(WAIT, "the new live line", |r| {
        r.iter().any(|e| e.line == "live 2")
    });
    support::wait_for_syncs(port, 2);
    assert!(again.terminate().success());
    assert_eq!(loki.accepted().len(), 302, "nothing read twice");
}
