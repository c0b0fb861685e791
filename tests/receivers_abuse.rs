//! Receivers under abuse: a flood of idle connections, headers and bodies trickled in, while a
//! well-behaved sender pushes on the same listener. The limits (`http_listen_conn_limit`,
//! `http_server_read_timeout`) end the abusers' connections, the sender is answered, and memory
//! stays bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use support::{free_port, http_post, FakeLoki, Lokiship};

fn config(dir: &Path, url: &str, push_port: u16) -> std::path::PathBuf {
    let text = format!(
        "server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 50ms}}]
scrape_configs:
  - job_name: pushed
    loki_push_api:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {push_port}, http_server_read_timeout: 1s, http_listen_conn_limit: 50}}
      labels: {{via: push}}
",
        dir = dir.display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether the server closed `s` (a read ends or fails) within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error response before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
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
fn idle_and_trickling_connections_are_ended_and_a_good_sender_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let port = free_port();
    let lokiship = Lokiship::start(&config(dir.path(), &loki.url(), port), &[]);
    support::eventually(Duration::from_secs(30), "the receiver listens", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // 300 idle connections, 20 that trickle their headers, 20 that send half a body: far more
    // than the listener's 50 slots.
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut slow_headers: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nX-Slow: a")
                .unwrap();
            s
        })
        .collect();
    let mut slow_bodies: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"streams\":[")
                .unwrap();
            s
        })
        .collect();
    // The well-behaved sender, meanwhile: answered once slots free up (each abuser holds one for
    // at most the read timeout).
    let body =
        br#"{"streams":[{"stream":{"app":"good"},"values":[["1700000000000000000","hello"]]}]}"#;
    let (status, text) = http_post(
        port,
        "/loki/api/v1/push",
        &[("Content-Type", "application/json")],
        body,
    )
    .expect("answered");
    assert_eq!(status, 204, "{text}");
    loki.wait_for(Duration::from_secs(30), "the good line", |r| {
        r.iter().any(|e| e.line == "hello")
    });
    for (what, conns) in [
        ("idle", &mut idle),
        ("trickled headers", &mut slow_headers),
        ("half a body", &mut slow_bodies),
    ] {
        // Every abuser is let in at last and then ended: 340 connections over 50 slots at 1 s
        // each take about 7 s.
        for s in conns.iter_mut() {
            assert!(
                closed_by_server(s, Duration::from_secs(60)),
                "a connection with {what} was never closed"
            );
        }
    }
    let rss = peak_rss_kb(lokiship.child.id());
    println!("peak RSS with 340 abusive connections: {} MB", rss / 1024);
    assert!(rss < 200 * 1024, "peak RSS {} MB", rss / 1024);
}
