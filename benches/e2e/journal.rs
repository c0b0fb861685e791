//! `LOKISHIP_BENCH_KIND=journal`: the journal source. A journal file of `lines` entries (written
//! by systemd-journal-remote, cached) is read through journalctl with Promtail's usual relabel
//! rules; reported: entries/s, lokiship's CPU per entry and what that is as a share of one core
//! at 30,000 entries/s, and journalctl's CPU beside it.

use super::{cpu_seconds, rss_kb, stop};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn run(binary: &Path, data: &Path, url: &str, lines: usize, received: &AtomicU64) {
    let journal = data.join(format!("journal-{lines}"));
    if !journal.join("bench.journal").exists() {
        eprintln!("writing {lines} journal entries with systemd-journal-remote ...");
        std::fs::create_dir_all(&journal).unwrap();
        write_journal(&journal.join("bench.journal"), lines);
    }
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: "{url}", tenant_id: bench}}]
scrape_configs:
  - job_name: journal
    journal: {{path: "{journal}", max_age: 8760h, labels: {{job: systemd-journal}}}}
    relabel_configs:
      - {{source_labels: [__journal__systemd_unit], target_label: unit}}
      - {{source_labels: [__journal__hostname], target_label: host}}
      - {{source_labels: [__journal_priority_keyword], target_label: level}}
"#,
            dir = work.path().display(),
            journal = journal.display()
        ),
    )
    .unwrap();
    for run in 1..=3 {
        received.store(0, Ordering::Relaxed);
        let _ = std::fs::remove_file(work.path().join("positions.yaml"));
        print!("run {run}: ");
        one_run(binary, &config, lines as u64, received);
    }
}

fn one_run(binary: &Path, config: &Path, expected: u64, received: &AtomicU64) {
    let started = Instant::now();
    let mut child = super::spawn_lokiship(binary, config);
    let pid = child.id();
    let mut peak_rss = 0;
    let mut journalctl = None;
    while received.load(Ordering::Relaxed) < expected {
        peak_rss = peak_rss.max(rss_kb(pid, "VmHWM"));
        journalctl = journalctl.or_else(|| child_pid(pid));
        std::thread::sleep(Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(900), "timed out");
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid);
    let journalctl_cpu = journalctl.map_or(0.0, cpu_seconds);
    stop(&mut child);
    let per_entry_us = cpu / expected as f64 * 1e6;
    println!(
        "journal: {expected} entries in {wall:.2} s ({:.0} entries/s); lokiship CPU {cpu:.2} s = {per_entry_us:.1} µs/entry = {:.0} % of a core at 30,000 entries/s; journalctl CPU {journalctl_cpu:.2} s ({:.0} % of a core at 30,000/s); peak RSS {:.1} MB",
        expected as f64 / wall,
        per_entry_us * 30_000.0 / 1e4,
        journalctl_cpu / expected as f64 * 30_000.0 * 100.0,
        peak_rss as f64 / 1024.0,
    );
}

/// The journalctl lokiship started.
fn child_pid(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|t| {
        let children = std::fs::read_to_string(t.path().join("children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// Entries shaped like a node's journal: sshd, kubelet, containerd and kernel lines.
fn write_journal(out: &Path, n: usize) {
    let start_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
        - 3_600_000_000;
    let units = [
        ("ssh.service", "sshd", "Accepted publickey for admin from 10.0.0.9 port 52311 ssh2: ED25519 SHA256:Zm9vYmFy"),
        ("kubelet.service", "kubelet", "I1124 10:15:30.123456    1234 kubelet.go:2400] \"SyncLoop (PLEG): event for pod\" pod=\"kube-system/coredns-5d78c9869d-abcde\""),
        ("containerd.service", "containerd", "time=\"2026-11-24T10:15:30.123456789Z\" level=info msg=\"StartContainer for \\\"4f1c\\\" returns successfully\""),
        ("", "kernel", "IPv4: martian source 10.244.1.5 from 10.244.2.7, on dev eth0"),
    ];
    let mut child = Command::new("/lib/systemd/systemd-journal-remote")
        .arg(format!("--output={}", out.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-journal-remote (apt-get install systemd-journal-remote)");
    let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
    for i in 0..n {
        let (unit, ident, msg) = units[i % units.len()];
        write!(
            stdin,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=node-1\nPRIORITY={}\nSYSLOG_IDENTIFIER={ident}\n_PID={}\n_TRANSPORT=journal\nMESSAGE={msg} #{i}\n",
            start_us + i as u64,
            i + 1,
            i % 8,
            1000 + i % 50,
        )
        .unwrap();
        if !unit.is_empty() {
            writeln!(stdin, "_SYSTEMD_UNIT={unit}").unwrap();
        }
        writeln!(stdin).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
