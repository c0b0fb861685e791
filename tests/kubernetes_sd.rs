//! `kubernetes_sd_configs` against the real kube-apiserver 1.36 of `../shared/peers` (no kubelet:
//! pods are given an IP by patching their status, as a kubelet would): pods created, relabelled
//! with the Helm chart's rules, changed and deleted while lokiship watches, the pods of another
//! node left to that node (as Promtail does: `spec.nodeName=$HOSTNAME`); and the same config
//! and pod logs read by the real Promtail 3.6.15, which must push the same streams.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::peers::RealApiServer;
use support::{eventually, FakeLoki, Received};

const WAIT: Duration = Duration::from_secs(30);

fn policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kubernetes/audit-policy.yaml")
}

/// The Helm chart's pod rules (app, namespace, pod, container, job and `__path__` from the pod's
/// UID and container name), with the pods' log directory under `logs`.
fn config(dir: &Path, logs: &Path, kubeconfig: &Path, url: &str, http: u16) -> PathBuf {
    let text = format!(
        r#"server: {{http_listen_address: 127.0.0.1, http_listen_port: {http}, grpc_listen_port: 0}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 100ms}}]
scrape_configs:
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: {kubeconfig}
        namespaces: {{names: [shop]}}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_controller_name]
        regex: ([0-9a-z-.]+?)(-[0-9a-f]{{8,10}})?
        action: replace
        target_label: __tmp_controller_name
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name, __meta_kubernetes_pod_label_app, __tmp_controller_name, __meta_kubernetes_pod_name]
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: app
      - source_labels: [__meta_kubernetes_pod_label_tier]
        target_label: tier
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - action: replace
        replacement: $1
        separator: /
        source_labels: [namespace, app]
        target_label: job
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_container_name]
        target_label: container
      - action: replace
        replacement: {logs}/*$1/*.log
        separator: /
        source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name]
        target_label: __path__
"#,
        d = dir.display(),
        kubeconfig = kubeconfig.display(),
        logs = logs.display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Creates pod `name` in `shop` (containers `app`, with a port, and `sidecar`), gives it an IP as
/// a kubelet would, and returns its UID.
/// The node the pods run on, and the host name both shippers are given.
const NODE: &str = "node-a";

fn create_pod(api: &RealApiServer, name: &str, labels: &str) -> String {
    create_pod_on(api, name, labels, NODE)
}

fn create_pod_on(api: &RealApiServer, name: &str, labels: &str, node: &str) -> String {
    let manifest = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}", "namespace": "shop", "labels": {labels}}},
 "spec": {{"nodeName": "{node}", "containers": [{{"name": "app", "image": "web:1", "ports": [{{"containerPort": 8080}}]}}, {{"name": "sidecar", "image": "proxy:1"}}]}}}}"#
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    // Schema validation needs the OpenAPI document, which a just-started server may not serve yet.
    let (ok, out) = api.kubectl(&[
        "create",
        "--validate=false",
        "-f",
        &file.path().display().to_string(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = api.kubectl(&[
        "patch",
        "pod",
        name,
        "-n",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}]}}"#,
    ]);
    assert!(ok, "{out}");
    let (ok, uid) = api.kubectl(&[
        "get",
        "pod",
        name,
        "-n",
        "shop",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    assert!(ok, "{uid}");
    uid.trim().to_string()
}

/// The kubelet's layout: `<logs>/<namespace>_<pod>_<uid>/<container>/0.log`.
fn write_log(logs: &Path, pod: &str, uid: &str, container: &str, lines: &[&str]) {
    use std::io::Write;
    let dir = logs.join(format!("shop_{pod}_{uid}")).join(container);
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("0.log"))
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn streams(got: &[Received]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            // The filename names a temporary directory; the rest is compared.
            let re = regex::Regex::new(r#"filename="[^"]*", "#).unwrap();
            (re.replace(&r.labels, "").into_owned(), r.line.clone())
        })
        .collect();
    v.sort();
    v
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(binary: &Path, config: &Path) -> Running {
    Running(
        Command::new(binary)
            .arg(format!("-config.file={}", config.display()))
            .env("HOSTNAME", NODE)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn pods_are_discovered_relabelled_changed_and_deleted_as_promtail_does() {
    let Some(api) = RealApiServer::start(&policy()) else {
        return;
    };
    let (ok, out) = api.kubectl(&["create", "namespace", "shop"]);
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("pods");
    std::fs::create_dir_all(&logs).unwrap();
    let web = create_pod(&api, "web-1", r#"{"app": "web"}"#);
    write_log(&logs, "web-1", &web, "app", &["app one", "app two"]);
    write_log(&logs, "web-1", &web, "sidecar", &["sidecar one"]);
    // Another node's pod is that node's shipper's to read.
    let other = create_pod_on(&api, "elsewhere", r#"{"app": "web"}"#, "node-b");
    write_log(&logs, "elsewhere", &other, "app", &["another node's line"]);

    let loki = FakeLoki::start();
    let lokiship_dir = dir.path().join("lokiship");
    std::fs::create_dir_all(&lokiship_dir).unwrap();
    let http = support::free_port();
    let cfg = config(&lokiship_dir, &logs, &api.kubeconfig(), &loki.url(), http);
    let lokiship = run(Path::new(env!("CARGO_BIN_EXE_lokiship")), &cfg);
    loki.wait_for(WAIT, "the pod's 3 lines", |r| r.len() >= 3);
    let got = streams(&loki.accepted());
    let labels = |container: &str| {
        format!(
            r#"{{app="web", container="{container}", job="shop/web", namespace="shop", pod="web-1"}}"#
        )
    };
    assert_eq!(
        got,
        vec![
            (labels("app"), "app one".to_string()),
            (labels("app"), "app two".to_string()),
            (labels("sidecar"), "sidecar one".to_string()),
        ]
    );

    // A new pod is read within seconds of its creation.
    let api_pod = create_pod(
        &api,
        "api-7d4b9c8f6d-x2x9z",
        r#"{"app.kubernetes.io/name": "api"}"#,
    );
    write_log(
        &logs,
        "api-7d4b9c8f6d-x2x9z",
        &api_pod,
        "app",
        &["api ready"],
    );
    loki.wait_for(WAIT, "the new pod's line", |r| {
        r.iter()
            .any(|e| e.line == "api ready" && e.labels.contains(r#"app="api""#))
    });

    // A changed pod gets its new labels.
    let (ok, out) = api.kubectl(&["label", "pod", "web-1", "-n", "shop", "tier=front"]);
    assert!(ok, "{out}");
    eventually(WAIT, "the tier label on web-1's target", || {
        // The open file's labels, as the status page shows them.
        support::http_get(http, "/targets").is_some_and(|page| page.contains("front"))
    });
    write_log(&logs, "web-1", &web, "app", &["app three"]);
    loki.wait_for(WAIT, "web-1's line with its new label", |r| {
        r.iter()
            .any(|e| e.line == "app three" && e.labels.contains(r#"tier="front""#))
    });

    // A deleted pod's files are no longer read.
    let (ok, out) = api.kubectl(&[
        "delete",
        "pod",
        "web-1",
        "-n",
        "shop",
        "--grace-period=0",
        "--force",
    ]);
    assert!(ok, "{out}");
    eventually(WAIT, "web-1's targets gone", || {
        support::http_get(http, "/targets")
            .is_some_and(|page| !page.contains("web-1") && page.contains("api"))
    });
    write_log(&logs, "web-1", &web, "app", &["after deletion"]);
    write_log(
        &logs,
        "api-7d4b9c8f6d-x2x9z",
        &api_pod,
        "app",
        &["api still read"],
    );
    loki.wait_for(WAIT, "the live pod's next line", |r| {
        r.iter().any(|e| e.line == "api still read")
    });
    assert!(
        !loki.accepted().iter().any(|e| e.line == "after deletion"),
        "a deleted pod's file is not read"
    );
    assert!(
        !loki
            .accepted()
            .iter()
            .any(|e| e.line == "another node's line"),
        "another node's pod is not read"
    );
    drop(lokiship);

    // Promtail, on the same pods and files (web-1 is gone: only api's lines), pushes the same.
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let theirs = FakeLoki::start();
    let promtail_dir = dir.path().join("promtail");
    std::fs::create_dir_all(&promtail_dir).unwrap();
    let cfg = config(
        &promtail_dir,
        &logs,
        &api.kubeconfig(),
        &theirs.url(),
        support::free_port(),
    );
    let _promtail = run(&promtail, &cfg);
    theirs.wait_for(WAIT, "Promtail's 2 lines of the api pod", |r| r.len() >= 2);
    let ours: Vec<(String, String)> = streams(&loki.accepted())
        .into_iter()
        .filter(|(labels, _)| labels.contains(r#"app="api""#))
        .collect();
    assert_eq!(
        streams(&theirs.accepted()),
        ours,
        "Promtail's streams and lines"
    );
}
