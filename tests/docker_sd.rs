//! `docker_sd_configs`: containers of a (fake) Docker daemon on a unix socket, read through the
//! Docker API's log stream as Promtail reads them — the same streams, lines and timestamps the real
//! Promtail 3.6.15 pushes for the same daemon (recorded in tests/data/docker/) — followed as they
//! come, go, stop and start, and resumed after a restart without sending a line twice.

mod support;

use std::path::Path;
use std::time::Duration;
use support::docker::{Container, FakeDocker};
use support::start_shipper as start;
use support::{eventually, free_port, http_get, metric_samples, FakeLoki, Received, Shipper};

const WAIT: Duration = Duration::from_secs(30);
/// 2026-12-03T10:00:00Z.
const T0: i64 = 1_796_292_000_000_000_000;
const WEB: &str = "c1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HOSTNET: &str = "c2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SIDECAR: &str = "c3cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// Promtail 3.6.15's push for [`corpus`], recorded by `promtail_pushes_what_was_recorded` with
/// `LOKISHIP_RECORD=1`: one JSON `[labels, line, timestamp]` per entry, sorted.
const RECORDED: &str = "tests/data/docker/promtail-3.6.15.jsonl";

fn networks() -> serde_json::Value {
    serde_json::json!([
        {"Id": "n1", "Name": "bridge", "Scope": "local", "Internal": false, "Ingress": false, "Labels": {}},
        {"Id": "n2", "Name": "backend", "Scope": "local", "Internal": true, "Ingress": false,
         "Labels": {"com.docker.network.x": "1"}},
        {"Id": "n3", "Name": "host", "Scope": "local", "Internal": false, "Ingress": false, "Labels": {}}
    ])
}

/// Three containers: one on two networks with ports and labels, one in host networking mode with
/// a TTY, one sharing the first's network; lines on stdout and stderr, with Docker's times.
fn corpus(d: &FakeDocker) -> usize {
    let mut web = Container::new(WEB, "/web");
    web.labels = vec![
        ("com.docker.compose.service".into(), "web".into()),
        ("app.kubernetes/x".into(), "y".into()),
    ];
    web.ports = serde_json::json!([
        {"PrivatePort": 53, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"}
    ]);
    web.networks = vec![
        ("bridge".into(), "n1".into(), "172.17.0.2".into()),
        ("backend".into(), "n2".into(), "172.18.0.5".into()),
    ];
    let mut hostnet = Container::new(HOSTNET, "/hostnet");
    hostnet.network_mode = "host".into();
    hostnet.networks = vec![("host".into(), "n3".into(), String::new())];
    hostnet.tty = true;
    let mut sidecar = Container::new(SIDECAR, "/sidecar");
    sidecar.network_mode = format!("container:{WEB}");
    sidecar.networks = Vec::new();
    d.add(web);
    d.add(hostnet);
    d.add(sidecar);
    let lines: [(&str, u8, i64, &str); 8] = [
        (WEB, 1, 123_456_789, "GET / 200\n"),
        (WEB, 2, 1_000_000_001, "warning: slow upstream\n"),
        (
            WEB,
            1,
            2_500_000_000,
            "{\"level\":\"info\",\"msg\":\"ok\"}\n",
        ),
        (WEB, 1, 3_000_000_000, "ünïcode ✓ line\n"),
        (HOSTNET, 1, 6_000_000_000, "tty line one\r\n"),
        (HOSTNET, 1, 7_000_000_000, "tty line two\n"),
        (SIDECAR, 1, 8_000_000_000, "sidecar says hi\n"),
        (SIDECAR, 2, 8_000_000_500, "sidecar complains\n"),
    ];
    for (id, stream, offset, text) in lines {
        d.log(id, stream, T0 + offset, text);
    }
    lines.len()
}

/// The job both shippers run: every container meta label kept, and the address.
fn corpus_job(host: &str) -> String {
    format!(
        "  - job_name: docker\n    docker_sd_configs:\n      - host: {host}\n        refresh_interval: 1s\n        port: 9100\n        host_networking_host: node-1\n    relabel_configs:\n      - {{action: labelmap, regex: '__meta_docker_(container_.+)', replacement: 'm_$1'}}\n      - {{action: labelmap, regex: '__meta_docker_(network_name|network_ip|network_internal|port_private|port_public)', replacement: 'm_$1'}}\n      - {{source_labels: [__address__], target_label: addr}}\n"
    )
}

fn write_config(dir: &Path, http_port: u16, url: &str, jobs: &str) -> std::path::PathBuf {
    let path = dir.join("c.yaml");
    let text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {http_port}, grpc_listen_port: 0}}\n\
         positions: {{filename: {dir}/positions.yaml, sync_period: 200ms}}\n\
         clients: [{{url: '{url}', batchwait: 100ms}}]\n\
         scrape_configs:\n{jobs}",
        dir = dir.display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn lokiship() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lokiship"))
}

fn comparable(received: &[Received]) -> Vec<(String, String, i64)> {
    let mut out: Vec<_> = received
        .iter()
        .map(|r| (r.labels.clone(), r.line.clone(), r.ts_ns))
        .collect();
    out.sort();
    out
}

/// Runs `binary` on the corpus's daemon and returns what it pushed.
fn push_of_corpus(binary: &Path) -> Vec<(String, String, i64)> {
    let docker = FakeDocker::start(networks());
    let expected = corpus(&docker);
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let config = write_config(dir.path(), http, &loki.url(), &corpus_job(&docker.host()));
    let _shipper = start(binary, &config, http);
    loki.wait_for(WAIT, "every line of the corpus", |r| r.len() >= expected);
    // Nothing more comes (a line sent twice would).
    std::thread::sleep(Duration::from_millis(300));
    comparable(&loki.accepted())
}

fn recorded() -> Vec<(String, String, i64)> {
    support::recorded_push(RECORDED)
}

#[test]
fn pushes_the_streams_lines_and_timestamps_promtail_pushed() {
    let ours = push_of_corpus(lokiship());
    let promtail = recorded();
    for (p, o) in promtail.iter().zip(&ours) {
        assert_eq!(p, o);
    }
    assert_eq!(promtail, ours);
}

#[test]
fn promtail_pushes_what_was_recorded() {
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let theirs = push_of_corpus(&promtail);
    if std::env::var("LOKISHIP_RECORD").is_ok_and(|v| v == "1") {
        let text: String = theirs
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDED), text).unwrap();
    }
    assert_eq!(
        theirs,
        recorded(),
        "Promtail's push is not the recorded one"
    );
}

/// lokiship on one daemon with a job that labels each line by container name and stream.
struct Alone {
    loki: FakeLoki,
    http: u16,
    config: std::path::PathBuf,
    shipper: Option<Shipper>,
    dir: tempfile::TempDir,
}

impl Alone {
    fn start(host: &str, extra: &str) -> Self {
        let loki = FakeLoki::start();
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let job = format!(
            "  - job_name: docker\n    docker_sd_configs:\n      - host: {host}\n        refresh_interval: 1s\n{extra}    relabel_configs:\n      - {{source_labels: [__meta_docker_container_name], target_label: name}}\n      - {{source_labels: [__meta_docker_container_log_stream], target_label: stream}}\n"
        );
        let config = write_config(dir.path(), http, &loki.url(), &job);
        let shipper = Some(start(lokiship(), &config, http));
        Self {
            loki,
            http,
            config,
            shipper,
            dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut got: Vec<(i64, String)> = self
            .loki
            .accepted()
            .into_iter()
            .map(|r| (r.ts_ns, r.line))
            .collect();
        got.sort();
        got.into_iter().map(|(_, l)| l).collect()
    }

    fn wait_lines(&self, want: &[&str]) {
        eventually(WAIT, &format!("exactly the lines {want:?}"), || {
            let got = self.lines();
            assert!(got.len() <= want.len(), "more than expected: {got:?}");
            got == want
        });
    }

    fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = http_get(self.http, "/metrics").unwrap_or_default();
        metric_samples(&text, name, filter).sum()
    }

    fn restart(&mut self) {
        self.shipper = None;
        self.shipper = Some(start(lokiship(), &self.config, self.http));
    }
}

#[test]
fn containers_are_followed_as_they_come_stop_start_and_after_a_restart_nothing_twice() {
    let docker = FakeDocker::start(networks());
    docker.add(Container::new(WEB, "/web"));
    docker.log(WEB, 1, T0, "one\n");
    docker.log(WEB, 2, T0 + 1, "two\n");
    let mut alone = Alone::start(&docker.host(), "");
    alone.wait_lines(&["one", "two"]);
    let streams: Vec<String> = alone
        .loki
        .accepted()
        .iter()
        .map(|r| r.labels.clone())
        .collect();
    assert!(
        streams.contains(&r#"{name="/web", stream="stderr"}"#.to_string()),
        "{streams:?}"
    );

    // A line logged later arrives on the open stream; a container started later is found.
    docker.log(WEB, 1, T0 + 2, "three\n");
    docker.add(Container::new(SIDECAR, "/late"));
    docker.log(SIDECAR, 1, T0 + 3, "late one\n");
    alone.wait_lines(&["one", "two", "three", "late one"]);

    // Stopped and started again: the stream is opened again after the last line read.
    docker.set_running(WEB, false);
    eventually(WAIT, "the stopped container's stream to end", || {
        docker
            .requests()
            .iter()
            .filter(|r| r.contains(&format!("/containers/{WEB}/json")))
            .count()
            >= 1
    });
    std::thread::sleep(Duration::from_millis(1500));
    docker.set_running(WEB, true);
    docker.log(WEB, 1, T0 + 4, "four\n");
    alone.wait_lines(&["one", "two", "three", "late one", "four"]);
    let logs_requests = docker
        .requests()
        .iter()
        .filter(|r| r.contains(&format!("/containers/{WEB}/logs")))
        .count();
    assert!(
        logs_requests >= 2,
        "the stream was not opened again: {:?}",
        docker.requests()
    );

    // Stopped, two lines logged meanwhile, started again: those two, nothing twice.
    eventually(WAIT, "the positions to hold the last line", || {
        std::fs::read_to_string(alone.dir.path().join("positions.yaml"))
            .unwrap_or_default()
            .contains(&format!("cursor-{WEB}: '1796292000.000000004'"))
    });
    alone.shipper = None;
    docker.log(WEB, 1, T0 + 5, "five\n");
    docker.log(SIDECAR, 2, T0 + 6, "late two\n");
    alone.restart();
    alone.wait_lines(&[
        "one", "two", "three", "late one", "four", "five", "late two",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(alone.lines().len(), 7, "{:?}", alone.lines());
    // The daemon was asked for the lines since the position, to the nanosecond.
    assert!(
        docker
            .requests()
            .iter()
            .any(|r| r.contains("since=1796292000.000000004")),
        "{:?}",
        docker.requests()
    );
}

#[test]
fn a_line_docker_cut_into_pieces_arrives_whole_and_relabel_rules_drop_streams() {
    let docker = FakeDocker::start(networks());
    docker.add(Container::new(WEB, "/web"));
    // Docker cuts lines at 16 KiB: all pieces but the last come without the newline.
    let long = "x".repeat(16 * 1024);
    docker.log(WEB, 1, T0, &long);
    docker.log(WEB, 1, T0 + 1, "and the rest\n");
    docker.log(WEB, 2, T0 + 2, "dropped: stderr\n");
    docker.log(WEB, 1, T0 + 3, "next\n");
    let dropping = {
        let loki = FakeLoki::start();
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let job = format!(
            "  - job_name: docker\n    docker_sd_configs:\n      - host: {}\n    relabel_configs:\n      - {{source_labels: [__meta_docker_container_log_stream], regex: stderr, action: drop}}\n      - {{source_labels: [__meta_docker_container_name], target_label: name}}\n",
            docker.host()
        );
        let config = write_config(dir.path(), http, &loki.url(), &job);
        let shipper = start(lokiship(), &config, http);
        loki.wait_for(WAIT, "the two stdout lines", |r| r.len() >= 2);
        std::thread::sleep(Duration::from_millis(300));
        let got = loki.accepted();
        drop(shipper);
        got
    };
    let lines: Vec<&str> = dropping.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(lines, [format!("{long}and the rest").as_str(), "next"]);
    assert_eq!(dropping[0].ts_ns, T0, "the first piece's time");
}

#[test]
fn a_daemon_not_there_yet_is_waited_for_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("later.sock");
    let alone = Alone::start(&format!("unix://{}", socket.display()), "");
    eventually(WAIT, "a connect error counted", || {
        alone.metric(
            "lokiship_docker_discovery_errors_total",
            r#"reason="connect""#,
        ) >= 1.0
    });
    let docker = FakeDocker::start_at(socket, networks(), dir);
    let mut c = Container::new(WEB, "/web");
    c.labels = vec![("team".into(), "a".into())];
    docker.add(c);
    docker.log(WEB, 1, T0, "finally\n");
    alone.wait_lines(&["finally"]);
    assert!(alone.metric("promtail_docker_target_entries_total", "") >= 1.0);
}

#[test]
fn filters_reach_the_daemon_and_only_matching_containers_are_read() {
    let docker = FakeDocker::start(networks());
    let mut web = Container::new(WEB, "/web");
    web.labels = vec![("logs".into(), "yes".into())];
    docker.add(web);
    docker.add(Container::new(SIDECAR, "/other"));
    docker.log(WEB, 1, T0, "wanted\n");
    docker.log(SIDECAR, 1, T0 + 1, "not wanted\n");
    let alone = Alone::start(
        &docker.host(),
        "        filters:\n          - {name: label, values: ['logs=yes']}\n",
    );
    alone.wait_lines(&["wanted"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(alone.lines(), ["wanted"]);
    assert!(!docker.requests().iter().any(|r| r.contains(SIDECAR)));
}
