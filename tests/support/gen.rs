//! Realistic log lines made in the project, from a seed: Kubernetes audit events, auditd records
//! and syslog lines, so that the tests run from a clone alone. (The soak drills and benches use
//! `../shared/tools/gen-logs`, which also rotates files as it writes.)
//!
//! What the tests rely on is there on purpose: audit events of every stage (some
//! `RequestReceived`, without a response code), 403s, secrets, cluster-scoped objects without a
//! namespace; auditd events of several records sharing a serial, enriched records (after `\x1d`),
//! `res=` inside `msg='…'`; syslog lines with and without a pid.

use serde_json::json;
use std::path::Path;

/// splitmix64: small, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `true` with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Writes `lines` to `out`, one per line.
pub fn write_lines(out: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(out, text).unwrap();
}

/// `n` audit.k8s.io/v1 Events, one JSON object per line, as the API server writes them.
pub fn audit_lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z").unwrap();
    let mut at_us = 0i64;
    (0..n)
        .map(|_| {
            at_us += 200 + rng.below(2_000) as i64;
            let received = start + chrono::Duration::microseconds(at_us);
            let done = received + chrono::Duration::microseconds(rng.below(80_000) as i64);
            audit_event(&mut rng, received, done).to_string()
        })
        .collect()
}

fn audit_event(
    rng: &mut Rng,
    received: chrono::DateTime<chrono::FixedOffset>,
    done: chrono::DateTime<chrono::FixedOffset>,
) -> serde_json::Value {
    const USERS: [(&str, &str); 5] = [
        (
            "system:node:node-5",
            "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46",
        ),
        (
            "system:serviceaccount:kube-system:coredns",
            "coredns/v1.11.3 (linux/amd64)",
        ),
        (
            "system:kube-controller-manager",
            "kube-controller-manager/v1.31.2",
        ),
        (
            "alice@example.com",
            "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
        ),
        ("system:anonymous", "curl/8.5.0"),
    ];
    const VERBS: [&str; 6] = ["get", "list", "watch", "create", "update", "delete"];
    // (resource, api group, namespaced)
    const RESOURCES: [(&str, &str, bool); 6] = [
        ("pods", "", true),
        ("leases", "coordination.k8s.io", true),
        ("secrets", "", true),
        ("configmaps", "", true),
        ("nodes", "", false),
        ("clusterroles", "rbac.authorization.k8s.io", false),
    ];
    let (user, agent) = *rng.pick(&USERS);
    let verb = *rng.pick(&VERBS);
    let (resource, group, namespaced) = *rng.pick(&RESOURCES);
    let namespace = *rng.pick(&["default", "kube-system", "web", "monitoring"]);
    let name = format!("{}-{}", resource.trim_end_matches('s'), rng.below(300));
    let stage = if rng.chance(15) {
        "RequestReceived"
    } else {
        "ResponseComplete"
    };
    let code = *rng.pick(&[200, 200, 200, 200, 201, 403, 404, 409]);
    let mut object = json!({"resource": resource, "apiVersion": "v1", "name": name});
    let mut uri = format!("/api/v1/{resource}/{name}");
    if !group.is_empty() {
        object["apiGroup"] = json!(group);
        uri = format!("/apis/{group}/v1/{resource}/{name}");
    }
    if namespaced {
        object["namespace"] = json!(namespace);
        uri = uri.replacen(
            &format!("/{resource}/"),
            &format!("/namespaces/{namespace}/{resource}/"),
            1,
        );
    }
    let stamp = |t: chrono::DateTime<chrono::FixedOffset>| {
        t.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": rng.uuid(),
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [format!("10.{}.{}.{}", rng.below(4), rng.below(256), 1 + rng.below(254))],
        "userAgent": agent,
        "objectRef": object,
        "requestReceivedTimestamp": stamp(received),
        "stageTimestamp": stamp(if stage == "RequestReceived" { received } else { done }),
    });
    if stage != "RequestReceived" {
        event["responseStatus"] = json!({"metadata": {}, "code": code});
        let decision = if code == 403 { "forbid" } else { "allow" };
        event["annotations"] = json!({"authorization.k8s.io/decision": decision});
    }
    event
}

/// `n` auditd records (events of one to five records sharing a serial), as `audit.log` holds
/// them with `log_format = ENRICHED`.
pub fn auditd_lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut lines = Vec::with_capacity(n + 5);
    let mut serial = 0u64;
    let mut ms = 0u64;
    while lines.len() < n {
        serial += 1;
        ms += rng.below(40);
        let stamp = format!("{}.{:03}:{serial}", 1_795_478_400 + ms / 1000, ms % 1000);
        if rng.chance(40) {
            lines.push(user_record(&mut rng, &stamp));
        } else {
            lines.extend(syscall_event(&mut rng, &stamp));
        }
    }
    lines.truncate(n);
    lines
}

const ACCOUNTS: [(u32, &str); 3] = [(0, "root"), (1000, "alice"), (1001, "bob")];

fn user_record(rng: &mut Rng, stamp: &str) -> String {
    let (kind, op) = *rng.pick(&[
        ("USER_AUTH", "op=PAM:authentication grantors=pam_unix"),
        ("CRED_REFR", "op=PAM:setcred grantors=pam_permit"),
        ("USER_LOGIN", "op=login id=1000"),
    ]);
    let (auid, who) = *rng.pick(&ACCOUNTS);
    let res = if rng.chance(85) { "success" } else { "failed" };
    format!(
        "type={kind} msg=audit({stamp}): pid={} uid=0 auid={auid} ses={} subj=unconfined msg='{op} acct=\"{who}\" exe=\"/usr/sbin/sshd\" hostname=10.0.1.{} addr=10.0.1.{} terminal=ssh res={res}'\x1dUID=\"root\" AUID=\"{who}\"",
        1000 + rng.below(90_000),
        1 + rng.below(60),
        rng.below(255),
        rng.below(255),
    )
}

fn syscall_event(rng: &mut Rng, stamp: &str) -> Vec<String> {
    let (comm, exe, arg) = *rng.pick(&[
        ("iptables", "/usr/sbin/iptables", "--version"),
        (
            "kubelet",
            "/usr/bin/kubelet",
            "--config=/var/lib/kubelet/config.yaml",
        ),
        ("cat", "/usr/bin/cat", "/etc/shadow"),
    ]);
    let (auid, who) = *rng.pick(&ACCOUNTS);
    let success = if rng.chance(90) { "yes" } else { "no" };
    let pid = 1000 + rng.below(90_000);
    let mut records = vec![format!(
        "type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success={success} exit=0 a0=55d1 a1=55d2 a2=55d3 a3=0 items=1 ppid={} pid={pid} auid={auid} uid={auid} gid={auid} euid={auid} tty=pts0 ses=3 comm=\"{comm}\" exe=\"{exe}\" subj=unconfined key=\"exec\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"{who}\" UID=\"{who}\" GID=\"{who}\" EUID=\"{who}\"",
        pid - 1,
    )];
    if rng.chance(70) {
        records.push(format!(
            "type=EXECVE msg=audit({stamp}): argc=2 a0=\"{comm}\" a1=\"{arg}\""
        ));
        records.push(format!("type=CWD msg=audit({stamp}): cwd=\"/home/{who}\""));
        records.push(format!(
            "type=PATH msg=audit({stamp}): item=0 name=\"{exe}\" inode={} dev=fd:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL\x1dOUID=\"root\" OGID=\"root\"",
            100_000 + rng.below(2_000_000)
        ));
        let title: String = format!("{comm} {arg}")
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect();
        records.push(format!(
            "type=PROCTITLE msg=audit({stamp}): proctitle={title}"
        ));
    }
    records
}

/// `n` syslog lines in the traditional file format (`Mmm dd hh:mm:ss host tag: message`),
/// kernel lines without a pid.
pub fn syslog_lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut secs = 0u64;
    (0..n)
        .map(|i| {
            secs += rng.below(3);
            let stamp = format!(
                "Nov 24 {:02}:{:02}:{:02}",
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            );
            let host = format!("node-{}", rng.below(40));
            let (tag, message) = *rng.pick(&[
                (
                    "kubelet",
                    "\"SyncLoop UPDATE\" source=\"api\" pods=[\"default/web-84\"]",
                ),
                (
                    "systemd",
                    "Started session-915.scope - Session 856 of User alice.",
                ),
                (
                    "sshd",
                    "Accepted publickey for admin from 10.0.0.9 port 52311 ssh2",
                ),
                (
                    "containerd",
                    "level=info msg=\"StartContainer returns successfully\"",
                ),
                (
                    "kernel",
                    "IPv4: martian source 10.0.0.1 from 10.0.0.2, on dev eth0",
                ),
                (
                    "CRON",
                    "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
                ),
            ]);
            if tag == "kernel" {
                format!("{stamp} {host} kernel: {message} msgid=m{i}")
            } else {
                let pid = 100 + rng.below(40_000);
                format!("{stamp} {host} {tag}[{pid}]: {message} msgid=m{i}")
            }
        })
        .collect()
}
