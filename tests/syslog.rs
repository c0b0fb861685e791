//! `syslog` receivers: what senders (a test client, util-linux `logger`, rsyslog) send over TCP,
//! TLS and UDP arrives with Promtail's labels — the same streams, lines and timestamps the real
//! Promtail 3.6.15 pushes for the same messages — and what Promtail loses (RFC 3164 timestamps
//! with year 0, structured-data ids Loki refuses, invalid UTF-8, unparsable or over-long messages)
//! arrives too, counted.

mod support;

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::start_shipper as start;
use support::{eventually, free_port, http_get, metric_samples, FakeLoki, Received, Shipper};

const WAIT: Duration = Duration::from_secs(30);

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with `jobs` (YAML list items), pushing to `url`, serving HTTP on `http_port`.
fn write_config(
    dir: &Path,
    name: &str,
    http_port: u16,
    url: &str,
    jobs: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {http_port}, grpc_listen_port: 0}}\n\
         positions: {{filename: {dir}/{name}.positions.yaml}}\n\
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

fn octet(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

/// Sends `data` on one TCP connection, then closes it.
fn send_tcp(port: u16, data: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(data).unwrap();
}

fn send_udp(port: u16, datagram: &[u8]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(datagram, ("127.0.0.1", port)).unwrap();
}

/// The jobs both shippers run in the differential test, on the given ports.
fn differential_jobs(tcp: u16, udp: u16, bsd: u16, full: u16) -> String {
    format!(
        "- job_name: rfc5424
  syslog: {{listen_address: '127.0.0.1:{tcp}', label_structured_data: true, labels: {{job: rfc5424}}}}
  relabel_configs: [{{action: labelmap, regex: '__syslog_(.+)'}}]
- job_name: udp
  syslog: {{listen_address: '127.0.0.1:{udp}', listen_protocol: udp, use_incoming_timestamp: true, labels: {{job: udp}}}}
  relabel_configs: [{{action: labelmap, regex: '__syslog_(.+)'}}]
- job_name: bsd
  syslog: {{listen_address: '127.0.0.1:{bsd}', syslog_format: rfc3164, labels: {{job: bsd}}}}
  relabel_configs:
  - {{source_labels: [__syslog_message_app_name], target_label: app}}
  - {{source_labels: [__syslog_message_hostname], target_label: host}}
  - {{source_labels: [__syslog_message_severity], target_label: level}}
- job_name: full
  syslog: {{listen_address: '127.0.0.1:{full}', use_incoming_timestamp: true, use_rfc5424_message: true, labels: {{job: full}}}}
  relabel_configs: [{{action: labelmap, regex: '__syslog_message_(.+)'}}]
"
    )
}

/// The messages of the differential test, each as its sender sends it.
fn send_differential_corpus(tcp: u16, udp: u16, bsd: u16, full: u16) {
    let mut octets = Vec::new();
    for m in [
        &br#"<34>1 2026-11-24T10:15:30.003Z node-1 sshd 1234 ID47 [exampleSDID@32473 iut="3" eventSource="App"][meta seq="7"] octet one"#[..],
        b"<165>1 2026-11-24T10:15:31.5+02:00 - - - - - nil everything",
        b"<0>1 2026-11-24T10:15:32Z h kernel - - - pri zero",
        b"<191>1 2026-11-24T10:15:33Z h app 7 M1 - local7 debug",
        b"<110>1 2026-11-24T10:15:34Z h app - - - cron2\nwith a newline inside",
    ] {
        octets.extend(octet(m));
    }
    send_tcp(tcp, &octets);
    send_tcp(
        tcp,
        b"<13>1 2026-11-24T10:15:35Z host app - - - lf framed\n<14>1 2026-11-24T10:15:36Z host app - - - multi\nline\n<15>1 2026-11-24T10:15:37Z host app - - - last at close",
    );
    send_udp(udp, b"<13>1 2026-11-24T10:15:38.25Z host app - - - udp one");
    send_udp(
        udp,
        b"<14>1 2026-11-24T10:15:39Z host app - - - udp two\n<15>1 2026-11-24T10:15:40Z host app - - - udp three\n",
    );
    send_tcp(
        bsd,
        b"<34>Nov 24 10:15:30 node-1 sshd[1234]: Accepted publickey for admin\n<13>Nov  4 01:02:03 host cron: a tag without pid\n<30>Nov 24 10:15:30 node-1 just text no tag\n",
    );
    send_tcp(
        bsd,
        &octet(b"<86>Dec  1 23:59:59 myhost systemd[1]: octet-counted 3164"),
    );
    send_tcp(
        full,
        &[
            octet(br#"<12>1 2026-11-24T10:15:30.000500+01:00 h a - - [z k="v"][a y="2" b="1"] rendered"#),
            octet(b"<12>1 2026-11-24T10:15:30.100Z h a p m - with ids"),
        ]
        .concat(),
    );
}

/// What a shipper pushed, comparable across shippers: labels and line, and the timestamp where
/// it is the message's own (`udp` and `full`).
fn comparable(received: &[Received]) -> Vec<(String, String, i64)> {
    let mut out: Vec<_> = received
        .iter()
        .map(|r| {
            let own_time = r.labels.contains("job=\"udp\"") || r.labels.contains("job=\"full\"");
            (
                r.labels.clone(),
                r.line.clone(),
                if own_time { r.ts_ns } else { 0 },
            )
        })
        .collect();
    out.sort();
    out
}

const DIFFERENTIAL_MESSAGES: usize = 17;

/// Promtail 3.6.15's push for the corpus, recorded by `promtail_pushes_what_was_recorded` with
/// `LOKISHIP_RECORD=1`: one JSON `[labels, line, timestamp]` per entry, the connection's hostname
/// left out (it depends on the machine's /etc/hosts).
const RECORDED: &str = "tests/data/syslog/promtail-3.6.15.jsonl";

/// Runs `binary` on the differential jobs, sends the corpus, and returns what it pushed.
fn push_of_corpus(binary: &Path) -> Vec<(String, String, i64)> {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp, bsd, full, http) = (
        free_port(),
        free_udp_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let config = write_config(
        dir.path(),
        "c.yaml",
        http,
        &loki.url(),
        &differential_jobs(tcp, udp, bsd, full),
    );
    let _shipper = start(binary, &config, http);
    send_differential_corpus(tcp, udp, bsd, full);
    loki.wait_for(WAIT, "every message of the corpus", |r| {
        r.len() >= DIFFERENTIAL_MESSAGES
    });
    comparable(&loki.accepted())
}

/// `pushed` without the `connection_hostname` label.
fn without_hostname(pushed: &[(String, String, i64)]) -> Vec<(String, String, i64)> {
    let hostname = regex::Regex::new(r#"connection_hostname="[^"]*", "#).unwrap();
    let mut out: Vec<_> = pushed
        .iter()
        .map(|(l, line, ts)| (hostname.replace(l, "").into_owned(), line.clone(), *ts))
        .collect();
    out.sort();
    out
}

fn recorded() -> Vec<(String, String, i64)> {
    support::recorded_push(RECORDED)
}

#[test]
fn pushes_the_streams_lines_and_timestamps_promtail_pushed() {
    let ours = without_hostname(&push_of_corpus(lokiship()));
    let promtail = recorded();
    assert_eq!(promtail.len(), DIFFERENTIAL_MESSAGES);
    for (p, o) in promtail.iter().zip(&ours) {
        assert_eq!(p, o);
    }
    assert_eq!(promtail, ours);
}

#[test]
fn promtail_pushes_what_was_recorded_and_lokiship_the_same_hostnames() {
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let theirs = push_of_corpus(&promtail);
    if std::env::var("LOKISHIP_RECORD").is_ok_and(|v| v == "1") {
        let text: String = without_hostname(&theirs)
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDED), text).unwrap();
    }
    assert_eq!(
        without_hostname(&theirs),
        recorded(),
        "Promtail's push is not the recorded one"
    );
    // The hostnames too, which depend on this machine.
    assert_eq!(push_of_corpus(lokiship()), theirs);
}

/// lokiship alone on `jobs`, with a recording Loki.
struct Alone {
    loki: FakeLoki,
    http: u16,
    _shipper: Shipper,
    _dir: tempfile::TempDir,
}

impl Alone {
    fn start(jobs: &str) -> Self {
        let loki = FakeLoki::start();
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let config = write_config(dir.path(), "c.yaml", http, &loki.url(), jobs);
        let shipper = start(lokiship(), &config, http);
        Self {
            loki,
            http,
            _shipper: shipper,
            _dir: dir,
        }
    }

    fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = http_get(self.http, "/metrics").unwrap_or_default();
        metric_samples(&text, name, filter).sum()
    }

    fn wait_metric(&self, name: &str, filter: &str, at_least: f64) {
        eventually(WAIT, &format!("{name}{{{filter}}} >= {at_least}"), || {
            self.metric(name, filter) >= at_least
        });
    }
}

#[test]
fn what_promtail_loses_arrives_and_is_counted() {
    let (tcp, bsd) = (free_port(), free_port());
    let alone = Alone::start(&format!(
        "- job_name: rfc5424
  syslog: {{listen_address: '127.0.0.1:{tcp}', label_structured_data: true, max_message_length: 90, labels: {{job: rfc5424}}}}
  relabel_configs: [{{action: labelmap, regex: '__syslog_message_(.+)'}}]
- job_name: bsd
  syslog: {{listen_address: '127.0.0.1:{bsd}', syslog_format: rfc3164, use_incoming_timestamp: true, labels: {{job: bsd}}}}
"
    ));
    // Promtail: year 0, and Loki refuses the batch.
    send_tcp(bsd, b"<34>Jan  2 03:04:05 node-1 sshd[1]: no year\n");
    let mut stream = Vec::new();
    // Promtail: the label `sd_origin.x-y_ip`, and Loki refuses the batch.
    stream.extend(octet(
        br#"<34>1 2026-11-24T10:15:30Z h a - - [origin.x-y ip="10.0.0.1"] dotted sd id"#,
    ));
    // Promtail: Loki refuses the batch.
    stream.extend(octet(
        b"<34>1 2026-11-24T10:15:30Z h a - - - bad \xff bytes",
    ));
    // Promtail: dropped, and so is the rest of the connection after a length it cannot read.
    stream.extend(octet(
        &[
            b"<34>1 2026-11-24T10:15:30Z h a - - - ".as_slice(),
            &[b'x'; 100],
        ]
        .concat(),
    ));
    stream.extend(octet(
        b"<34>1 2026-11-24T10:15:30Z h a - - - after the long one",
    ));
    stream.extend(b"not a length\n<34>1 2026-11-24T10:15:30Z h a - - - after the garbage\n");
    send_tcp(tcp, &stream);
    alone.loki.wait_for(WAIT, "6 entries", |r| r.len() >= 6);
    let got = alone.loki.accepted();
    let find = |needle: &str| {
        got.iter()
            .find(|r| r.line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {got:#?}"))
    };
    let no_year = find("no year");
    let year = chrono::Utc::now()
        .format("%Y")
        .to_string()
        .parse::<i32>()
        .unwrap();
    let this_year_starts = support::rfc3339_ns(&format!("{}-01-01T00:00:00Z", year - 1));
    assert!(no_year.ts_ns > this_year_starts, "{no_year:?}");
    assert!(find("dotted sd id")
        .labels
        .contains(r#"sd_origin_x_y_ip="10.0.0.1""#));
    assert_eq!(find("bytes").line, "bad \u{fffd} bytes");
    let cut = find("xxxx");
    assert_eq!(
        cut.line.len(),
        90 - "<34>1 2026-11-24T10:15:30Z h a - - - ".len()
    );
    find("after the long one");
    assert_eq!(
        find("not a length").labels,
        r#"{job="rfc5424"}"#,
        "shipped as it came"
    );
    find("after the garbage");
    alone.wait_metric("lokiship_syslog_invalid_utf8_messages_total", "", 1.0);
    alone.wait_metric("lokiship_syslog_truncated_messages_total", "", 1.0);
    alone.wait_metric("promtail_syslog_target_parsing_errors_total", "", 2.0);
    alone.wait_metric("promtail_syslog_target_entries_total", "", 7.0);
}

#[test]
fn idle_and_surplus_connections_are_closed_and_counted() {
    let tcp = free_port();
    let alone = Alone::start(&format!(
        "- job_name: s
  syslog: {{listen_address: '127.0.0.1:{tcp}', idle_timeout: 1s, max_connections: 2, labels: {{job: s}}}}
"
    ));
    let open: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", tcp)).unwrap())
        .collect();
    alone.wait_metric("lokiship_syslog_connections", "", 2.0);
    let mut third = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    alone.wait_metric(
        "lokiship_syslog_connections_refused_total",
        "reason=\"limit\"",
        1.0,
    );
    third.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        std::io::Read::read(&mut third, &mut [0; 8]).unwrap_or(0),
        0,
        "closed"
    );
    // The two idle ones are closed after idle_timeout; a new one is taken then.
    alone.wait_metric(
        "lokiship_syslog_connections_refused_total",
        "reason=\"idle_timeout\"",
        2.0,
    );
    eventually(WAIT, "the idle connections closed", || {
        alone.metric("lokiship_syslog_connections", "") == 0.0
    });
    drop(open);
    send_tcp(tcp, b"<13>1 - h a - - - taken again\n");
    alone.loki.wait_for(WAIT, "the message", |r| {
        r.iter().any(|e| e.line == "taken again")
    });
}

#[test]
fn logger_sends_over_tcp_and_udp() {
    let Ok(version) = Command::new("logger").arg("--version").output() else {
        support::skip("util-linux logger is not installed");
        return;
    };
    assert!(version.status.success());
    let (tcp, udp) = (free_port(), free_udp_port());
    let alone = Alone::start(&format!(
        "- job_name: tcp
  syslog: {{listen_address: '127.0.0.1:{tcp}', labels: {{job: tcp}}}}
  relabel_configs: [{{source_labels: [__syslog_message_app_name], target_label: app}}, {{source_labels: [__syslog_message_severity], target_label: level}}]
- job_name: udp
  syslog: {{listen_address: '127.0.0.1:{udp}', listen_protocol: udp, syslog_format: rfc3164, labels: {{job: udp}}}}
  relabel_configs: [{{source_labels: [__syslog_message_app_name], target_label: app}}]
"
    ));
    let logger = |args: &[&str]| {
        let status = Command::new("logger").args(args).status().unwrap();
        assert!(status.success(), "logger {args:?}");
    };
    let (t, u) = (tcp.to_string(), udp.to_string());
    logger(&[
        "--server",
        "127.0.0.1",
        "--port",
        &t,
        "--tcp",
        "--octet-count",
        "--rfc5424",
        "-t",
        "backup",
        "-p",
        "daemon.err",
        "backup failed: disk full",
    ]);
    logger(&[
        "--server",
        "127.0.0.1",
        "--port",
        &u,
        "--udp",
        "--rfc3164",
        "-t",
        "cron",
        "job done",
    ]);
    // The other framing and the other format on each.
    logger(&[
        "--server",
        "127.0.0.1",
        "--port",
        &t,
        "--tcp",
        "--rfc3164",
        "-t",
        "lf",
        "newline framed",
    ]);
    logger(&[
        "--server",
        "127.0.0.1",
        "--port",
        &u,
        "--udp",
        "--rfc5424",
        "-t",
        "cron",
        "in rfc5424",
    ]);
    alone.loki.wait_for(WAIT, "four messages", |r| r.len() >= 4);
    let got = alone.loki.accepted();
    assert!(
        got.iter().any(|r| r.line == "backup failed: disk full"
            && r.labels == r#"{app="backup", job="tcp", level="error"}"#),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|r| r.line == "job done" && r.labels == r#"{app="cron", job="udp"}"#),
        "{got:#?}"
    );
    let has = |line: &str, labels: &str| got.iter().any(|r| r.line == line && r.labels == labels);
    assert!(
        has("newline framed", r#"{app="lf", job="tcp", level="notice"}"#),
        "{got:#?}"
    );
    assert!(has("in rfc5424", r#"{app="cron", job="udp"}"#), "{got:#?}");
}

#[test]
fn rsyslog_forwards_a_files_lines() {
    let Some(rsyslogd) = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        support::skip("rsyslog is not installed (apt-get install rsyslog)");
        return;
    };
    let (tcp, lf) = (free_port(), free_port());
    let alone = Alone::start(&format!(
        "- job_name: octet
  syslog: {{listen_address: '127.0.0.1:{tcp}', labels: {{job: octet}}}}
  relabel_configs: [{{source_labels: [__syslog_message_app_name], target_label: app}}]
- job_name: lf
  syslog: {{listen_address: '127.0.0.1:{lf}', syslog_format: rfc3164, labels: {{job: lf}}}}
  relabel_configs: [{{source_labels: [__syslog_message_app_name], target_label: app}}]
"
    ));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    let lines: Vec<String> = (0..200)
        .map(|i| format!("line {i} from the file"))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{work}\")
module(load=\"imfile\" mode=\"polling\" PollingInterval=\"1\")
input(type=\"imfile\" File=\"{input}\" Tag=\"myapp:\" ruleset=\"fwd\")
ruleset(name=\"fwd\") {{
  action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tcp}\" protocol=\"tcp\"
         TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")
  action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{lf}\" protocol=\"tcp\"
         template=\"RSYSLOG_ForwardFormat\")
}}
",
            work = dir.path().display(),
            input = input.display(),
        ),
    )
    .unwrap();
    let child = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _rsyslog = Shipper(child);
    alone
        .loki
        .wait_for(WAIT, "the file's 200 lines twice", |r| r.len() >= 400);
    let got = alone.loki.accepted();
    let mut expected = lines.clone();
    expected.sort();
    for job in ["octet", "lf"] {
        let labels = format!(r#"{{app="myapp", job="{job}"}}"#);
        let mut shipped: Vec<_> = got
            .iter()
            .filter(|r| r.labels == labels)
            .map(|r| r.line.clone())
            .collect();
        shipped.sort();
        assert_eq!(shipped, expected, "{job}: {:?}", got[0]);
    }
}

/// Sends `data` over TLS to 127.0.0.1:`port`, with the client certificate in `dir` if `with_cert`.
fn send_tls(port: u16, roots: &rustls::RootCertStore, dir: &Path, with_cert: bool, data: &[u8]) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::AsyncWriteExt;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone());
    let config = if with_cert {
        let certs = CertificateDer::pem_file_iter(dir.join("client.crt"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap();
        builder.with_client_auth_cert(certs, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        // Without a certificate the server refuses the handshake (in TLS 1.3 the client may only
        // learn it at its first read or write): either way nothing it sends may arrive.
        if let Ok(mut tls) = connector.connect(name, tcp).await {
            let _ = tls.write_all(data).await;
            let _ = tls.shutdown().await;
        }
    });
}

#[test]
fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let roots = support::pki::write_pki(dir.path());
    let tcp = free_port();
    let d = dir.path().display();
    let alone = Alone::start(&format!(
        "- job_name: tls
  syslog:
    listen_address: '127.0.0.1:{tcp}'
    labels: {{job: tls}}
    tls_config: {{cert_file: {d}/server.crt, key_file: {d}/server.key, ca_file: {d}/ca.crt}}
"
    ));
    send_tls(
        tcp,
        &roots,
        dir.path(),
        false,
        b"<13>1 - h a - - - without a certificate\n",
    );
    alone.wait_metric(
        "lokiship_syslog_connections_refused_total",
        "reason=\"tls\"",
        1.0,
    );
    send_tls(
        tcp,
        &roots,
        dir.path(),
        true,
        &octet(b"<13>1 - h a - - - with a certificate"),
    );
    alone
        .loki
        .wait_for(WAIT, "the message sent with a certificate", |r| {
            !r.is_empty()
        });
    let got = alone.loki.accepted();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].line, "with a certificate");
}

#[test]
fn what_was_received_before_sigterm_is_delivered_after_the_restart() {
    let loki = FakeLoki::start();
    loki.script(&[503; 100_000]);
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp, http) = (free_port(), free_udp_port(), free_port());
    let config = write_config(
        dir.path(),
        "c.yaml",
        http,
        &loki.url(),
        &format!(
            "- job_name: tcp
  syslog: {{listen_address: '127.0.0.1:{tcp}', labels: {{job: tcp}}}}
- job_name: udp
  syslog: {{listen_address: '127.0.0.1:{udp}', listen_protocol: udp, labels: {{job: udp}}}}
"
        ),
    );
    let lokiship = support::Lokiship::start(&config, &[]);
    eventually(WAIT, "/ready", || {
        http_get(http, "/ready").is_some_and(|r| r.contains(" 200 "))
    });
    // A sender that keeps its connection open, as rsyslog does: nothing tells it what was stored.
    let mut open = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let messages: Vec<Vec<u8>> = (0..500)
        .map(|i| octet(format!("<13>1 - h a - - - message {i}").as_bytes()))
        .collect();
    open.write_all(&messages.concat()).unwrap();
    for i in 0..50 {
        send_udp(udp, format!("<13>1 - h a - - - datagram {i}").as_bytes());
    }
    eventually(WAIT, "every message received", || {
        let text = http_get(http, "/metrics").unwrap_or_default();
        metric_samples(&text, "promtail_syslog_target_entries_total", "").sum::<f64>() >= 550.0
    });
    assert!(lokiship.terminate().success());
    drop(open);
    assert!(
        loki.accepted().is_empty(),
        "Loki answered 503 to everything"
    );

    loki.clear_script();
    let restarted = support::Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "the 550 messages from the disk queue", |r| {
        r.len() >= 550
    });
    let got = loki.accepted();
    for i in 0..500 {
        let line = format!("message {i}");
        assert!(got.iter().any(|r| r.line == line), "{line} lost");
    }
    for i in 0..50 {
        let line = format!("datagram {i}");
        assert!(got.iter().any(|r| r.line == line), "{line} lost");
    }
    assert!(restarted.terminate().success());
}

#[test]
fn a_dry_run_prints_received_messages_and_inspect_shows_the_stages() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let (tcp, http) = (free_port(), free_port());
    let config = write_config(
        dir.path(),
        "c.yaml",
        http,
        "http://127.0.0.1:9/loki/api/v1/push",
        &format!(
            "- job_name: s
  syslog: {{listen_address: '127.0.0.1:{tcp}', labels: {{job: s}}}}
  pipeline_stages:
  - regex: {{expression: 'user=(?P<user>\\w+)'}}
  - labels: {{user: ''}}
"
        ),
    );
    let mut child = Command::new(lokiship())
        .arg(format!("-config.file={}", config.display()))
        .args(["-dry-run", "-inspect"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let inspected = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("[inspect: labels stage]"))
    });
    let mut _shipper = Shipper(child);
    eventually(WAIT, "/ready", || {
        http_get(http, "/ready").is_some_and(|r| r.contains(" 200 "))
    });
    send_tcp(tcp, b"<13>1 - h sshd - - - login user=alice ok\n");
    let printed = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("login user=alice ok"))
        .expect("the message printed");
    assert!(printed.contains(r#"{job="s", user="alice"}"#), "{printed}");
    assert!(inspected.join().unwrap().is_some(), "no inspect output");
}
