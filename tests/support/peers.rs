//! The real peers in `../shared/peers` (Loki 3.6.15, Promtail 3.6.15): started on free ports on
//! 127.0.0.1, stopped when dropped. When `../shared` is not beside the checkout, [`RealLoki::start`]
//! and [`promtail_binary`] say so and return `None`, and the test skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers")
}

/// The path of a peer binary (`loki`, `promtail`), unpacked by `../shared/peers/get`; `None`, with
/// a message, when the peers are not there.
pub fn peer_binary(name: &str) -> Option<PathBuf> {
    let get = peers_dir().join("get");
    if !get.exists() {
        super::skip(&format!(
            "{} is not there (no real {name} to test against)",
            get.display()
        ));
        return None;
    }
    // The first call unpacks the peer; two at once (tests run in parallel) trip over each other.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(&get)
        .arg(name)
        .stderr(Stdio::inherit())
        .output()
        .expect("running ../shared/peers/get");
    assert!(out.status.success(), "../shared/peers/get {name} failed");
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

/// A real Loki with its default validation limits (`../shared/peers/loki-local.yaml`).
pub struct RealLoki {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RealLoki {
    /// Starts Loki and waits until it answers `ready` (queries need the ingester).
    pub fn start() -> Option<Self> {
        let binary = peer_binary("loki")?;
        let dir = tempfile::tempdir().unwrap();
        let (port, grpc) = (super::free_port(), super::free_port());
        let config = std::fs::read_to_string(peers_dir().join("loki-local.yaml"))
            .unwrap()
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@HTTP@", &port.to_string())
            .replace("@GRPC@", &grpc.to_string());
        let config_path = dir.path().join("loki.yaml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("loki.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("-config.file={}", config_path.display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting loki");
        let loki = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !loki
            .get("/ready")
            .is_some_and(|(s, b)| s == 200 && b.trim() == "ready")
        {
            assert!(
                Instant::now() < deadline,
                "Loki did not become ready in 90 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Some(loki)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push_url(&self) -> String {
        format!("{}/loki/api/v1/push", self.url())
    }

    /// A GET on Loki's HTTP port: status and body.
    pub fn get(&self, path_and_query: &str) -> Option<(u16, String)> {
        super::status_and_body(&super::http_get(self.port, path_and_query)?)
    }

    /// The sum of a LogQL metric query over the last `range` (e.g. `count_over_time({job="x"}[1h])`).
    pub fn instant_sum(&self, logql: &str) -> u64 {
        let (status, body) = self
            .get(&format!("/loki/api/v1/query?query={}", encode(logql)))
            .expect("querying Loki");
        assert_eq!(status, 200, "query {logql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                    .sum::<f64>() as u64
            })
            .unwrap_or(0)
    }

    /// Loki's own metric `name` summed over the series whose labels contain `filter`.
    pub fn metric_sum(&self, name: &str, filter: &str) -> u64 {
        let (_, body) = self.get("/metrics").expect("Loki's /metrics");
        super::metric_samples(&body, name, filter).sum::<f64>() as u64
    }
}

impl Drop for RealLoki {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real kube-apiserver 1.36 with etcd on free ports on 127.0.0.1 (`../shared/peers/k8s/start.sh`),
/// stopped when dropped; `kubectl` against it with [`RealApiServer::kubectl`].
pub struct RealApiServer {
    state: tempfile::TempDir,
    kubectl: PathBuf,
}

impl RealApiServer {
    /// Starts it with `audit_policy` as its `--audit-policy-file`. `None`, with a message, when the
    /// peers or etcd (Debian's `etcd-server`) are missing.
    pub fn start(audit_policy: &Path) -> Option<Self> {
        Self::start_with_args(audit_policy, "")
    }

    /// [`RealApiServer::start`] with more kube-apiserver flags (`extra`, split at spaces).
    pub fn start_with_args(audit_policy: &Path, extra: &str) -> Option<Self> {
        let kubectl = peer_binary("kubectl")?;
        peer_binary("kube-apiserver")?;
        if Command::new("etcd").arg("--version").output().is_err() {
            super::skip("etcd is not installed (apt-get install etcd-server)");
            return None;
        }
        let state = tempfile::tempdir().unwrap();
        let out = Command::new(peers_dir().join("k8s/start.sh"))
            .env("K8S_STATE", state.path())
            .env("APISERVER_PORT", super::free_port().to_string())
            .env("ETCD_PORT", super::free_port().to_string())
            .env("ETCD_PEER_PORT", super::free_port().to_string())
            .env("SMOKE", "0")
            // No controller manager makes ServiceAccounts: pods are admitted without one.
            .env("DISABLE_SA_ADMISSION", "1")
            .env(
                "EXTRA_APISERVER_ARGS",
                format!("--audit-policy-file={} {extra}", audit_policy.display()),
            )
            .stderr(Stdio::inherit())
            .output()
            .expect("running ../shared/peers/k8s/start.sh");
        let server = Self { state, kubectl };
        assert!(out.status.success(), "k8s/start.sh failed");
        Some(server)
    }

    /// The audit log it writes.
    pub fn audit_log(&self) -> PathBuf {
        self.state.path().join("audit/audit.log")
    }

    /// The cluster admin's kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.state.path().join("admin.kubeconfig")
    }

    /// Runs kubectl with `args` as the cluster admin: success, and stdout + stderr.
    pub fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.kubectl)
            .arg(format!(
                "--kubeconfig={}",
                self.state.path().join("admin.kubeconfig").display()
            ))
            .args(args)
            .output()
            .expect("running kubectl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }
}

impl Drop for RealApiServer {
    fn drop(&mut self) {
        let _ = Command::new(peers_dir().join("k8s/stop.sh"))
            .env("K8S_STATE", self.state.path())
            .stdout(Stdio::null())
            .status();
    }
}
