//! The presets in config/ run unchanged (only environment variables point them at test files and a
//! fake Loki) on gen-logs data, and produce the labels, structured metadata, timestamps and
//! metrics they document.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use support::{
    free_port, gen_logs, http_get, rfc3339_ns, start_preset as start, stop_preset as stop,
    FakeLoki, Received,
};

const WAIT: Duration = Duration::from_secs(60);

/// `{a="b", c="d"}` → map.
fn labels(selector: &str) -> BTreeMap<String, String> {
    let inner = selector.trim_start_matches('{').trim_end_matches('}');
    let mut out = BTreeMap::new();
    for part in inner.split("\", ") {
        if let Some((k, v)) = part.split_once("=\"") {
            out.insert(k.to_string(), v.trim_end_matches('"').to_string());
        }
    }
    out
}

fn metadata(r: &Received) -> BTreeMap<String, String> {
    r.structured_metadata.iter().cloned().collect()
}

#[test]
fn k8s_audit_preset() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let lines = gen_logs("k8s-audit", &dir.path().join("audit.log"), 600, 11);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kept: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["stage"] != "RequestReceived")
        .collect();
    assert!(
        kept.len() < events.len(),
        "the data has RequestReceived events"
    );
    let port = free_port();
    let child = start(
        "k8s-audit.yaml",
        dir.path(),
        &loki,
        port,
        &[("AUDIT_LOG_DIR", dir.path().display().to_string())],
    );
    loki.wait_for(WAIT, "every completed event", |r| r.len() >= kept.len());
    let metrics = http_get(port, "/metrics").unwrap_or_default();
    stop(child);

    let received = loki.accepted();
    assert_eq!(
        received.len(),
        kept.len(),
        "RequestReceived events are dropped, the others shipped once"
    );
    let by_line: HashMap<&str, &Received> = received.iter().map(|r| (r.line.as_str(), r)).collect();
    let mut events_by = BTreeMap::new();
    let mut forbidden = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for (line, e) in lines.iter().zip(&events) {
        if e["stage"] == "RequestReceived" {
            continue;
        }
        let r = by_line[line.as_str()];
        let user = e["user"]["username"].as_str().unwrap().to_string();
        let verb = e["verb"].as_str().unwrap().to_string();
        let code = e["responseStatus"]["code"].as_i64().map(|c| c.to_string());
        let mut want = BTreeMap::from([
            ("job".to_string(), "kube-audit".to_string()),
            ("cluster".into(), "test".into()),
            ("user".into(), user.clone()),
            ("verb".into(), verb.clone()),
        ]);
        if let Some(c) = &code {
            want.insert("code".into(), c.clone());
        }
        assert_eq!(labels(&r.labels), want, "labels of {line}");
        let mut meta = BTreeMap::from([(
            "audit_id".to_string(),
            e["auditID"].as_str().unwrap().to_string(),
        )]);
        for (name, value) in [
            ("namespace", &e["objectRef"]["namespace"]),
            ("resource", &e["objectRef"]["resource"]),
            ("source_ip", &e["sourceIPs"][0]),
            ("user_agent", &e["userAgent"]),
        ] {
            if let Some(v) = value.as_str().filter(|v| !v.is_empty()) {
                meta.insert(name.to_string(), v.to_string());
            }
        }
        assert_eq!(metadata(r), meta, "structured metadata of {line}");
        assert_eq!(r.ts_ns, rfc3339_ns(e["stageTimestamp"].as_str().unwrap()));
        *events_by
            .entry((verb.clone(), code.clone().unwrap_or_default()))
            .or_insert(0) += 1;
        if code.as_deref() == Some("403") {
            *forbidden.entry((user.clone(), verb.clone())).or_insert(0) += 1;
        }
        if e["objectRef"]["resource"] == "secrets" {
            *secrets.entry((user, verb)).or_insert(0) += 1;
        }
    }
    assert!(
        !forbidden.is_empty() && !secrets.is_empty(),
        "the data exercises every metric"
    );
    for ((verb, code), n) in events_by {
        let series = if code.is_empty() {
            format!("audit_events_total{{verb=\"{verb}\"}} {n}")
        } else {
            format!("audit_events_total{{code=\"{code}\",verb=\"{verb}\"}} {n}")
        };
        assert!(
            metrics.contains(&series),
            "{series} missing from\n{metrics}"
        );
    }
    for (name, counts) in [
        ("audit_forbidden_total", forbidden),
        ("audit_secret_access_total", secrets),
    ] {
        for ((user, verb), n) in counts {
            let series = format!("{name}{{user=\"{user}\",verb=\"{verb}\"}} {n}");
            assert!(metrics.contains(&series), "{series} missing");
        }
    }
}

#[test]
fn auditd_preset() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_logs("auditd", &log, 300, 5);
    let port = free_port();
    let child = start(
        "auditd.yaml",
        dir.path(),
        &loki,
        port,
        &[
            ("AUDIT_LOG_PATH", log.display().to_string()),
            ("HOSTNAME", "node-1".into()),
        ],
    );
    loki.wait_for(WAIT, "every record", |r| r.len() >= lines.len());
    stop(child);
    let received = loki.accepted();
    assert_eq!(received.len(), lines.len(), "every record is its own entry");
    let by_line: HashMap<&str, &Received> = received.iter().map(|r| (r.line.as_str(), r)).collect();
    let record = regex::Regex::new(r"^type=(\S+) msg=audit\((\d+)\.(\d+):(\d+)\)").unwrap();
    let mut enriched = 0;
    for line in &lines {
        let r = by_line[line.as_str()];
        let caps = record.captures(line).unwrap();
        let l = labels(&r.labels);
        assert_eq!(l.get("type").map(String::as_str), Some(&caps[1]), "{line}");
        assert_eq!(l.get("host").map(String::as_str), Some("node-1"));
        let meta = metadata(r);
        assert_eq!(
            meta.get("serial").map(String::as_str),
            Some(&caps[4]),
            "records of one event share the serial"
        );
        let secs: i64 = caps[2].parse().unwrap();
        let millis: i64 = caps[3].parse().unwrap();
        assert_eq!(r.ts_ns, secs * 1_000_000_000 + millis * 1_000_000);
        if let Some((_, interpreted)) = line.split_once('\x1d') {
            if let Some(auid) = interpreted
                .split("AUID=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
            {
                assert_eq!(
                    meta.get("auid_name").map(String::as_str),
                    Some(auid),
                    "{line}"
                );
                enriched += 1;
            }
        }
        if line.starts_with("type=SYSCALL") {
            assert!(
                meta.contains_key("success")
                    && meta.contains_key("comm")
                    && meta.contains_key("exe"),
                "{line}: {meta:?}"
            );
        }
        if line.contains(" res=") {
            assert!(meta.contains_key("res"), "{line}");
        }
    }
    assert!(enriched > 0, "the data has ENRICHED records");
}

#[test]
fn syslog_preset() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let syslog = dir.path().join("syslog");
    let mut lines = gen_logs("syslog", &syslog, 300, 9);
    // rsyslog's RFC 3339 file format, in auth.log.
    let auth = dir.path().join("auth.log");
    let rfc = [
        "2026-11-24T10:15:30.123456+00:00 node-1 sshd[1234]: Accepted publickey for admin from 10.0.0.9 port 52311 ssh2",
        "2026-11-24T10:15:31+01:00 node-2 sudo: admin : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/ls",
    ];
    std::fs::write(&auth, rfc.join("\n") + "\n").unwrap();
    lines.extend(rfc.iter().map(|s| s.to_string()));
    let port = free_port();
    let child = start(
        "syslog.yaml",
        dir.path(),
        &loki,
        port,
        &[(
            "SYSLOG_PATHS",
            format!("{}/{{syslog,auth.log}}", dir.path().display()),
        )],
    );
    loki.wait_for(WAIT, "every line", |r| r.len() >= lines.len());
    stop(child);
    let received = loki.accepted();
    assert_eq!(received.len(), lines.len());
    let by_line: HashMap<&str, &Received> = received.iter().map(|r| (r.line.as_str(), r)).collect();
    let this_year = chrono::Utc::now().format("%Y").to_string();
    for line in &lines {
        let r = by_line[line.as_str()];
        let (head, _) = line.split_once(": ").unwrap();
        let words: Vec<&str> = head.split_whitespace().collect();
        let (stamp, host, tag) = if line.starts_with("20") {
            (words[0].to_string(), words[1], words[2])
        } else {
            (words[..3].join(" "), words[3], words[4])
        };
        let (app, pid) = match tag.split_once('[') {
            Some((a, p)) => (a, Some(p.trim_end_matches(']'))),
            None => (tag, None),
        };
        let l = labels(&r.labels);
        assert_eq!(l.get("host").map(String::as_str), Some(host), "{line}");
        assert_eq!(l.get("app").map(String::as_str), Some(app), "{line}");
        assert_eq!(metadata(r).get("pid").map(String::as_str), pid, "{line}");
        let want = if line.starts_with("20") {
            rfc3339_ns(&stamp)
        } else {
            // No year in the file: this year (the data is from November 24, not in the future).
            let t = chrono::NaiveDateTime::parse_from_str(
                &format!("{this_year} {stamp}"),
                "%Y %b %e %H:%M:%S",
            )
            .unwrap();
            t.and_utc().timestamp_nanos_opt().unwrap()
        };
        assert_eq!(r.ts_ns, want, "{line}");
    }
}

#[test]
fn journal_preset() {
    if !support::journal::have_journal_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    support::journal::write_journal(&journal, "a", &support::journal::entries(0, 30), 0);
    let loki = FakeLoki::start();
    let child = start(
        "journal.yaml",
        dir.path(),
        &loki,
        free_port(),
        &[("JOURNAL_PATH", journal.display().to_string())],
    );
    loki.wait_for(WAIT, "30 journal entries", |got| got.len() >= 30);
    stop(child);
    for r in loki.accepted() {
        let i: usize = r.line.trim_start_matches("message ").parse().unwrap();
        let l = labels(&r.labels);
        let unit = if i % 2 == 0 {
            "ssh.service"
        } else {
            "cron.service"
        };
        let level = [
            "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
        ][i % 8];
        assert_eq!(l["unit"], unit, "{r:?}");
        assert_eq!(l["level"], level, "{r:?}");
        assert_eq!(l["host"], "node-1");
        assert_eq!(l["app"], "sshd");
        assert_eq!(l["job"], "systemd-journal");
        assert_eq!(l["cluster"], "test");
    }
}

/// The in-project generator the tests rely on: the same seed gives the same lines, and what it
/// makes parses as its format says.
#[test]
fn generated_lines_are_reproducible_and_well_formed() {
    use support::gen;
    assert_eq!(gen::audit_lines(50, 7), gen::audit_lines(50, 7));
    assert_ne!(gen::audit_lines(50, 7), gen::audit_lines(50, 8));
    for line in gen::audit_lines(300, 1) {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["apiVersion"], "audit.k8s.io/v1", "{line}");
    }
    let record = regex::Regex::new(r"^type=[A-Z_]+ msg=audit\(\d+\.\d{3}:\d+\): ").unwrap();
    let auditd = gen::auditd_lines(300, 5);
    assert_eq!(auditd.len(), 300);
    assert!(auditd.iter().all(|l| record.is_match(l)));
    let syslog = gen::syslog_lines(300, 9);
    assert!(syslog.iter().all(|l| l.starts_with("Nov 24 ")));
}

/// `config/lokiship.yaml`, the node config: the audit log, the syslog files, auditd's log and the
/// journal in one process, each with its preset's labels.
#[test]
fn node_config_reads_the_audit_log_auth_log_auditd_and_the_journal() {
    let with_journal = support::journal::have_journal_tools();
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let audit_dir = dir.path().join("audit");
    std::fs::create_dir(&audit_dir).unwrap();
    let audit = gen_logs("k8s-audit", &audit_dir.join("audit.log"), 200, 3);
    let audit_kept = audit
        .iter()
        .filter(|l| !l.contains(r#""stage":"RequestReceived""#))
        .count();
    let auth = gen_logs("syslog", &dir.path().join("auth.log"), 50, 4);
    let auditd = gen_logs("auditd", &dir.path().join("auditd.log"), 40, 5);
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let journal_entries = if with_journal {
        support::journal::write_journal(&journal, "a", &support::journal::entries(0, 10), 0);
        10
    } else {
        0
    };
    let child = start(
        "lokiship.yaml",
        dir.path(),
        &loki,
        free_port(),
        &[
            ("AUDIT_LOG_DIR", audit_dir.display().to_string()),
            (
                "SYSLOG_PATHS",
                dir.path().join("auth.log").display().to_string(),
            ),
            (
                "AUDIT_LOG_PATH",
                dir.path().join("auditd.log").display().to_string(),
            ),
            ("JOURNAL_PATH", journal.display().to_string()),
        ],
    );
    let count = |got: &[Received], job: &str| {
        got.iter()
            .filter(|r| labels(&r.labels).get("job").map(String::as_str) == Some(job))
            .count()
    };
    let want = [
        ("kube-audit", audit_kept),
        ("syslog", auth.len()),
        ("auditd", auditd.len()),
        ("systemd-journal", journal_entries),
    ];
    loki.wait_for(WAIT, "every source's entries", |got| {
        want.iter().all(|(job, n)| count(got, job) >= *n)
    });
    stop(child);
    let got = loki.accepted();
    for (job, n) in want {
        assert_eq!(count(&got, job), n, "{job}");
    }
    let first = |job: &str| {
        got.iter()
            .map(|r| labels(&r.labels))
            .find(|l| l["job"] == job)
            .unwrap()
    };
    assert!(first("kube-audit").contains_key("verb"));
    assert!(first("syslog").contains_key("app"));
    assert!(first("auditd").contains_key("type"));
    if with_journal {
        assert!(first("systemd-journal").contains_key("unit"));
    }
}
