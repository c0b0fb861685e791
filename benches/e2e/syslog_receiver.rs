//! `LOKISHIP_BENCH_KIND=syslog-tcp` / `syslog-udp`: the syslog receiver. A sender in the bench
//! writes `lines` RFC 5424 messages (octet-counted on one TCP connection, or one UDP datagram
//! each) as fast as it can; reported: messages/s received, lokiship's CPU per message and what that
//! is as a share of one core at 10,000 messages/s, peak RSS, and (UDP) the messages the kernel
//! dropped because lokiship did not read them in time.

use super::{cpu_seconds, rss_kb, stop};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub fn run(binary: &Path, url: &str, udp: bool, lines: usize, received: &AtomicU64) {
    let messages = messages(lines);
    for run in 1..=3 {
        received.store(0, Ordering::Relaxed);
        print!("run {run}: ");
        one_run(binary, url, udp, &messages, received);
    }
}

fn one_run(binary: &Path, url: &str, udp: bool, messages: &[Vec<u8>], received: &AtomicU64) {
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = port_free();
    let config = work.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{http_listen_address: 127.0.0.1, http_listen_port: {http}}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: "{url}", tenant_id: bench}}]
scrape_configs:
  - job_name: syslog
    syslog: {{listen_address: "127.0.0.1:{port}", listen_protocol: {protocol}, labels: {{job: syslog}}}}
    relabel_configs:
      - {{source_labels: [__syslog_message_hostname], target_label: host}}
      - {{source_labels: [__syslog_message_app_name], target_label: app}}
      - {{source_labels: [__syslog_message_severity], target_label: level}}
"#,
            dir = work.path().display(),
            protocol = if udp { "udp" } else { "tcp" },
        ),
    )
    .unwrap();
    let mut child = super::spawn_lokiship(binary, &config);
    let pid = child.id();
    wait_ready(http);
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let sender = {
        let messages = messages.to_vec();
        std::thread::spawn(move || send(port, udp, &messages))
    };
    let expected = messages.len() as u64;
    let mut peak_rss = 0;
    let (mut last, mut last_change) = (0, Instant::now());
    let mut done_at = Instant::now();
    // Until everything arrived, or (UDP) nothing more arrived for 2 s after the sender finished.
    loop {
        let now = received.load(Ordering::Relaxed);
        if now != last {
            (last, last_change) = (now, Instant::now());
            done_at = last_change;
        }
        if now >= expected
            || (sender.is_finished() && last_change.elapsed() > Duration::from_secs(2))
        {
            break;
        }
        peak_rss = peak_rss.max(rss_kb(pid, "VmHWM"));
        std::thread::sleep(Duration::from_millis(20));
        assert!(started.elapsed() < Duration::from_secs(600), "timed out");
    }
    let wall = (done_at - started).as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    stop(&mut child);
    let got = received.load(Ordering::Relaxed);
    let per_message_us = cpu / got.max(1) as f64 * 1e6;
    println!(
        "syslog over {}: {got} of {expected} messages in {wall:.2} s ({:.0} messages/s); lokiship CPU {cpu:.2} s = {per_message_us:.1} µs/message = {:.1} % of a core at 10,000 messages/s; peak RSS {:.1} MB{}",
        if udp { "UDP" } else { "TCP" },
        got as f64 / wall,
        per_message_us * 10_000.0 / 1e4,
        peak_rss as f64 / 1024.0,
        if udp { format!("; dropped by the kernel: {}", expected - got) } else { String::new() },
    );
}

fn port_free() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(http: u16) {
    use std::io::Read;
    for _ in 0..500 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", http)) {
            let _ = write!(s, "GET /ready HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains(" 200 ") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("lokiship did not become ready");
}

fn send(port: u16, udp: bool, messages: &[Vec<u8>]) {
    if udp {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for m in messages {
            let _ = s.send_to(m, ("127.0.0.1", port));
        }
    } else {
        let mut s = std::io::BufWriter::with_capacity(
            256 * 1024,
            std::net::TcpStream::connect(("127.0.0.1", port)).unwrap(),
        );
        for m in messages {
            write!(s, "{} ", m.len()).unwrap();
            s.write_all(m).unwrap();
        }
        s.flush().unwrap();
    }
}

/// Messages shaped like a fleet's: sshd, sudo, kernel and a switch's link messages from 20 hosts.
fn messages(n: usize) -> Vec<Vec<u8>> {
    let apps = [
        ("sshd", "Accepted publickey for admin from 10.0.0.9 port 52311 ssh2: ED25519 SHA256:Zm9vYmFy"),
        ("sudo", "admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/usr/bin/systemctl restart kubelet"),
        ("kernel", "IPv4: martian source 10.244.1.5 from 10.244.2.7, on dev eth0"),
        ("lldpd", "%LINK-3-UPDOWN: Interface GigabitEthernet0/12, changed state to up"),
    ];
    (0..n)
        .map(|i| {
            let (app, msg) = apps[i % apps.len()];
            format!(
                "<{}>1 2026-11-24T10:{:02}:{:02}.{:06}Z node-{} {app} {} - - {msg} #{i}",
                (i % 24) * 8 + i % 8,
                (i / 60_000) % 60,
                (i / 1000) % 60,
                i % 1_000_000,
                i % 20,
                1000 + i % 50,
            )
            .into_bytes()
        })
        .collect()
}
