//! `LOKISHIP_BENCH_KIND=webhook`: the `k8s_audit_webhook` receiver with a disk queue, so that
//! each 200 comes only once the request's events are fsync'd on it. Senders POST `EventList`s of
//! 400 events (kube-apiserver's default `--audit-webhook-batch-max-size`), one request at a
//! time each, as its batch backend does; reported for 1 and 4 senders: events/s answered 200,
//! request latency p50/p99, lokiship's CPU, and that every event reached the receiver.

use super::{cpu_seconds, rss_kb, stop};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 400;

pub fn run(binary: &Path, source: &Path, url: &str, lines: usize, received: &Arc<AtomicU64>) {
    let text = std::fs::read_to_string(source).unwrap();
    // The API server sends its events without kind/apiVersion in the items.
    let events: Vec<String> = text
        .lines()
        .take(lines)
        .map(|l| l.replacen(r#""kind":"Event","apiVersion":"audit.k8s.io/v1","#, "", 1))
        .collect();
    let bodies: Arc<Vec<String>> = Arc::new(
        events
            .chunks(BATCH)
            .map(|items| {
                format!(
                    r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                    items.join(",")
                )
            })
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for senders in [1, 4] {
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = write_config(work.path(), url, port);
        received.store(0, Ordering::Relaxed);
        let mut child = super::spawn_lokiship(binary, &config);
        let pid = child.id();
        let hook = format!("http://127.0.0.1:{port}/audit");
        runtime.block_on(wait_listening(&hook));
        let cpu_start = cpu_seconds(pid);
        let started = Instant::now();
        let latencies = runtime.block_on(send_all(&hook, bodies.clone(), senders));
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid) - cpu_start;
        let rss = rss_kb(pid, "VmHWM");
        let expected = events.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = received.load(Ordering::Relaxed);
        stop(&mut child);
        let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| ms[((ms.len() - 1) as f64 * p) as usize];
        println!(
            "webhook, {senders} sender(s): {expected} events in {} requests of {BATCH}, {wall:.2} s: {:.0} events/s answered 200 after fsync; latency p50 {:.1} ms, p99 {:.1} ms; lokiship CPU {cpu:.2} s ({:.0} µs/event); peak RSS {:.1} MB; received {got}{}",
            ms.len(),
            expected as f64 / wall,
            pct(0.5),
            pct(0.99),
            cpu / expected as f64 * 1e6,
            rss as f64 / 1024.0,
            if got == expected { "" } else { " (MISMATCH)" },
        );
    }
}

/// Sends every body, `senders` at a time, each retried until answered 200; each 200's latency.
async fn send_all(hook: &str, bodies: Arc<Vec<String>>, senders: usize) -> Vec<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (next, bodies, client, hook) = (
                next.clone(),
                bodies.clone(),
                client.clone(),
                hook.to_string(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = bodies.get(i) else {
                        return latencies;
                    };
                    loop {
                        let started = Instant::now();
                        let answer = client.post(&hook).body(body.clone()).send().await;
                        if answer.is_ok_and(|a| a.status().as_u16() == 200) {
                            latencies.push(started.elapsed());
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

async fn wait_listening(hook: &str) {
    let client = reqwest::Client::new();
    for _ in 0..500 {
        // An empty EventList: 200 once the receiver listens.
        let empty = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}"#;
        if client.post(hook).body(empty).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the webhook receiver did not listen");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, url: &str, port: u16) -> std::path::PathBuf {
    let config = format!(
        r#"server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: "{url}", tenant_id: bench}}]
wal: {{enabled: true, dir: {dir}/wal}}
scrape_configs:
  - job_name: audit
    k8s_audit_webhook:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
    pipeline_stages:
      - json: {{expressions: {{user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}}}}
      - labels: {{user: "", verb: "", code: ""}}
      - structured_metadata: {{audit_id: ""}}
      - timestamp: {{source: ts, format: RFC3339Nano}}
"#,
        dir = dir.display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, config).unwrap();
    path
}
