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

/// The node the pods run on, and the host name both shippers are given.
const NODE: &str = "node-a";

fn create_pod(api: &RealApiServer, name: &str, labels: &str) -> String {
    create_pod_on(api, name, labels, NODE)
}

fn create_pod_on(api: &RealApiServer, name: &str, labels: &str, node: &str) -> String {
    create_pod_in(api, "shop", name, &format!(r#""labels": {labels}"#), node)
}

/// Creates pod `name` in `namespace` with `metadata` (labels, annotations, owners: JSON fields),
/// containers `app` (with a port) and `sidecar`, gives it an IP as a kubelet would, and returns
/// its UID.
fn create_pod_in(
    api: &RealApiServer,
    namespace: &str,
    name: &str,
    metadata: &str,
    node: &str,
) -> String {
    let manifest = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}", "namespace": "{namespace}", {metadata}}},
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
        namespace,
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
        namespace,
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

/// The scrape config the grafana/promtail Helm chart renders by default (its `kubernetes-pods`
/// job with the common rules), with the pods' log directory under `logs`.
fn helm_config(dir: &Path, logs: &Path, kubeconfig: &Path, url: &str) -> PathBuf {
    let text = format!(
        r#"server: {{http_listen_address: 127.0.0.1, http_listen_port: {http}, grpc_listen_port: 0}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 100ms}}]
scrape_configs:
  - job_name: kubernetes-pods
    pipeline_stages:
      - cri: {{}}
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: {kubeconfig}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_controller_name]
        regex: ([0-9a-z-.]+?)(-[0-9a-f]{{8,10}})?
        action: replace
        target_label: __tmp_controller_name
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name, __meta_kubernetes_pod_label_app, __tmp_controller_name, __meta_kubernetes_pod_name]
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: app
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance, __meta_kubernetes_pod_label_instance]
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: instance
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_component, __meta_kubernetes_pod_label_component]
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: component
      - action: replace
        source_labels: [__meta_kubernetes_pod_node_name]
        target_label: node_name
      - action: replace
        source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - action: replace
        replacement: $1
        separator: /
        source_labels: [namespace, app]
        target_label: job
      - action: replace
        source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - action: replace
        source_labels: [__meta_kubernetes_pod_container_name]
        target_label: container
      - action: replace
        replacement: {logs}/*$1/*.log
        separator: /
        source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name]
        target_label: __path__
      - action: replace
        regex: true/(.*)
        replacement: {logs}/*$1/*.log
        separator: /
        source_labels: [__meta_kubernetes_pod_annotationpresent_kubernetes_io_config_hash, __meta_kubernetes_pod_annotation_kubernetes_io_config_hash, __meta_kubernetes_pod_container_name]
        target_label: __path__
"#,
        http = support::free_port(),
        d = dir.display(),
        kubeconfig = kubeconfig.display(),
        logs = logs.display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What both shippers pushed, comparable: labels (without `filename`), line, timestamp.
fn pushed(got: &[Received]) -> Vec<(String, String, i64)> {
    let re = regex::Regex::new(r#"filename="[^"]*", "#).unwrap();
    let mut v: Vec<_> = got
        .iter()
        .map(|r| {
            (
                re.replace(&r.labels, "").into_owned(),
                r.line.clone(),
                r.ts_ns,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_helm_charts_rules_give_the_streams_promtail_gives() {
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let Some(api) = RealApiServer::start(&policy()) else {
        return;
    };
    let (ok, out) = api.kubectl(&["create", "namespace", "helm"]);
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("pods");
    let owner = |kind: &str, name: &str| {
        format!(
            r#""ownerReferences": [{{"apiVersion": "apps/v1", "kind": "{kind}", "name": "{name}", "uid": "0b5c0c33-51b3-4c1b-8a44-5e3b0b4a1f00", "controller": true}}]"#
        )
    };
    let pods = [
        // A Deployment's pod: app, instance and component from the recommended labels.
        (
            "checkout-7d4b9c8f6d-x2x9z",
            format!(
                r#""labels": {{"app.kubernetes.io/name": "checkout", "app.kubernetes.io/instance": "shop-eu", "app.kubernetes.io/component": "api"}}, {}"#,
                owner("ReplicaSet", "checkout-7d4b9c8f6d")
            ),
            None,
        ),
        // A StatefulSet's pod with the old `app` label.
        (
            "db-0",
            format!(
                r#""labels": {{"app": "postgres"}}, {}"#,
                owner("StatefulSet", "db")
            ),
            None,
        ),
        // No labels: app is the controller's name without its hash.
        (
            "worker-5f8d9c7b6a-abcde",
            owner("ReplicaSet", "worker-5f8d9c7b6a"),
            None,
        ),
        // A static pod: its logs are under its config hash, not its UID.
        (
            "etcd-node-a",
            r#""annotations": {"kubernetes.io/config.hash": "9f3c2b1a"}"#.to_string(),
            Some("9f3c2b1a"),
        ),
    ];
    for (i, (name, metadata, hash)) in pods.iter().enumerate() {
        let uid = create_pod_in(&api, "helm", name, metadata, NODE);
        let id = hash.map_or(uid, str::to_string);
        for container in ["app", "sidecar"] {
            let dir = logs.join(format!("helm_{name}_{id}")).join(container);
            std::fs::create_dir_all(&dir).unwrap();
            let lines: String = (0..3)
                .map(|n| {
                    format!("2026-12-03T07:00:0{n}.00000000{i}Z stdout F {name} {container} line {n}\n")
                })
                .collect::<String>()
                + &format!("2026-12-03T07:00:05.1Z stderr P {name} partial \n2026-12-03T07:00:05.2Z stderr F joined\n");
            std::fs::write(dir.join("0.log"), lines).unwrap();
        }
    }
    let expected = pods.len() * 2 * 4;
    let mut results = Vec::new();
    for binary in [
        Path::new(env!("CARGO_BIN_EXE_lokiship")),
        promtail.as_path(),
    ] {
        let loki = FakeLoki::start();
        let own = tempfile::tempdir().unwrap();
        let cfg = helm_config(own.path(), &logs, &api.kubeconfig(), &loki.url());
        let _shipper = run(binary, &cfg);
        loki.wait_for(
            WAIT,
            &format!("{expected} lines from {}", binary.display()),
            |r| r.len() >= expected,
        );
        results.push(pushed(&loki.accepted()));
    }
    assert_eq!(results[0].len(), expected);
    assert_eq!(
        results[0], results[1],
        "lokiship (left) and Promtail (right)"
    );
    // And what they pushed is what the chart means.
    assert!(results[0].iter().any(|(labels, _, _)| labels
        == r#"{app="checkout", component="api", container="app", instance="shop-eu", job="helm/checkout", namespace="helm", node_name="node-a", pod="checkout-7d4b9c8f6d-x2x9z", stream="stdout"}"#));
    assert!(results[0]
        .iter()
        .any(|(labels, _, _)| labels.contains(r#"app="worker""#)));
    assert!(results[0]
        .iter()
        .any(|(labels, line, _)| labels.contains(r#"pod="etcd-node-a""#)
            && line == "etcd-node-a partial joined"));
}

/// Jobs of the `node`, `service` and `ingress` roles, each target reading a file of its own under
/// `<logs>/<role>/`.
fn node_and_service_config(dir: &Path, logs: &Path, kubeconfig: &Path, url: &str) -> PathBuf {
    let text = format!(
        r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 100ms}}]
scrape_configs:
  - job_name: nodes
    kubernetes_sd_configs: [{{role: node, kubeconfig_file: {kubeconfig}}}]
    relabel_configs:
      - {{action: labelmap, regex: '__meta_kubernetes_node_(name|provider_id|label_.+|address_.+)', replacement: 'node_$1'}}
      - {{source_labels: [__address__], target_label: addr}}
      - {{source_labels: [__meta_kubernetes_node_name], replacement: '{logs}/nodes/$1.log', target_label: __path__}}
  - job_name: services
    kubernetes_sd_configs: [{{role: service, kubeconfig_file: {kubeconfig}, namespaces: {{names: [shop]}}}}]
    relabel_configs:
      - {{action: labelmap, regex: '__meta_kubernetes_(namespace|service_.+)', replacement: 'svc_$1'}}
      - {{source_labels: [__address__], target_label: addr}}
      - {{source_labels: [__meta_kubernetes_service_name, __meta_kubernetes_service_port_name], separator: '-', replacement: '{logs}/services/$1.log', target_label: __path__}}
  - job_name: ingresses
    kubernetes_sd_configs: [{{role: ingress, kubeconfig_file: {kubeconfig}}}]
    relabel_configs:
      - {{action: labelmap, regex: '__meta_kubernetes_(namespace|ingress_.+)', replacement: 'ing_$1'}}
      - {{source_labels: [__address__], target_label: addr}}
      - {{source_labels: [__meta_kubernetes_ingress_host, __meta_kubernetes_ingress_path], regex: '(.+);/(.*)', replacement: '{logs}/ingresses/${{1}}_${{2}}.log', target_label: __path__}}
  - job_name: endpoints
    kubernetes_sd_configs: [{{role: endpoints, kubeconfig_file: {kubeconfig}, namespaces: {{names: [shop]}}}}]
    relabel_configs:
      - {{action: labelmap, regex: '__meta_kubernetes_(endpoint_ready|endpoint_port_name|endpoint_node_name|endpoint_address_target_kind|endpoints_name|pod_name|pod_node_name|pod_container_name|pod_container_port_number|service_name|service_label_app)', replacement: 'ep_$1'}}
      - {{source_labels: [__address__], target_label: addr}}
      - {{source_labels: [__meta_kubernetes_endpoint_address_target_name, __meta_kubernetes_endpoint_ready], regex: '(.*);(.*)', replacement: '{logs}/endpoints/${{1}}_${{2}}.log', target_label: __path__}}
  - job_name: endpointslices
    kubernetes_sd_configs: [{{role: endpointslice, kubeconfig_file: {kubeconfig}, namespaces: {{names: [shop]}}}}]
    relabel_configs:
      - {{action: labelmap, regex: '__meta_kubernetes_(endpointslice_name|endpointslice_port|endpointslice_port_name|endpointslice_endpoint_conditions_ready|endpointslice_address_type|endpointslice_endpoint_node_name|endpointslice_address_target_kind|pod_name|pod_container_name|service_name|service_label_app)', replacement: 'es_$1'}}
      - {{source_labels: [__address__], target_label: addr}}
      - {{source_labels: [__meta_kubernetes_endpointslice_address_target_name], replacement: '{logs}/slices/$1.log', target_label: __path__}}
  - job_name: attached
    kubernetes_sd_configs: [{{role: pod, kubeconfig_file: {kubeconfig}, namespaces: {{names: [shop]}}, attach_metadata: {{node: true, namespace: true}}}}]
    relabel_configs:
      - {{action: labelmap, regex: '__meta_kubernetes_(node_name|node_label_.+|node_labelpresent_kubernetes_io_os|namespace_label_.+|pod_name)', replacement: 'am_$1'}}
      - {{source_labels: [__meta_kubernetes_pod_name, __meta_kubernetes_pod_container_name], separator: '_', replacement: '{logs}/attached/$1.log', target_label: __path__}}
"#,
        d = dir.display(),
        kubeconfig = kubeconfig.display(),
        logs = logs.display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_role_gives_the_targets_and_labels_promtail_gives() {
    let Some(api) = RealApiServer::start(&policy()) else {
        return;
    };
    let manifests = tempfile::tempdir().unwrap();
    let create = |name: &str, manifest: &str| {
        let file = manifests.path().join(name);
        std::fs::write(&file, manifest).unwrap();
        let (ok, out) = api.kubectl(&[
            "create",
            "--validate=false",
            "-f",
            &file.display().to_string(),
        ]);
        assert!(ok, "{out}");
    };
    let (ok, out) = api.kubectl(&["create", "namespace", "shop"]);
    assert!(ok, "{out}");
    create(
        "node.json",
        r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a", "labels": {"kubernetes.io/os": "linux", "topology.kubernetes.io/zone": "z1"}}, "spec": {"providerID": "test://node-a"}}"#,
    );
    let (ok, out) = api.kubectl(&[
        "patch", "node", "node-a", "--subresource=status", "--type=merge", "-p",
        r#"{"status": {"addresses": [{"type": "Hostname", "address": "node-a"}, {"type": "InternalIP", "address": "10.0.0.5"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}"#,
    ]);
    assert!(ok, "{out}");
    create(
        "service.json",
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}}"#,
    );
    create(
        "ingress.json",
        r#"{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": "shop", "annotations": {"kubernetes.io/ingress.class": "nginx"}}, "spec": {"tls": [{"hosts": ["*.example.com"]}], "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}, {"pathType": "Prefix", "path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}, {"host": "plain.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}"#,
    );
    // Endpoints of the service (no controller manager makes them here): a pod of this node, one of
    // another node, and an address not ready.
    create_pod(&api, "web-1", r#"{"app": "web"}"#);
    create_pod_on(&api, "elsewhere", r#"{"app": "web"}"#, "node-b");
    create(
        "endpoints.json",
        r#"{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "subsets": [{"addresses": [{"ip": "10.1.2.3", "nodeName": "node-a", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}, {"ip": "10.1.2.4", "nodeName": "node-b", "targetRef": {"kind": "Pod", "name": "elsewhere", "namespace": "shop"}}], "notReadyAddresses": [{"ip": "10.1.2.9"}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}"#,
    );
    create(
        "slice.json",
        r#"{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"], "conditions": {"ready": true}, "nodeName": "node-a", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    for (sub, name, line) in [
        ("attached", "web-1_app", "attached app line"),
        ("attached", "web-1_sidecar", "attached sidecar line"),
        ("slices", "web-1", "slice line"),
        ("endpoints", "web-1_true", "web-1 endpoint line"),
        ("endpoints", "elsewhere_true", "elsewhere endpoint line"),
        ("endpoints", "_false", "not ready endpoint line"),
        ("nodes", "node-a", "kubelet says hi"),
        ("services", "web-http", "http line"),
        ("services", "web-dns", "dns line"),
        ("ingresses", "a.example.com_api", "api path line"),
        ("ingresses", "a.example.com_", "root path line"),
        ("ingresses", "plain.test_", "plain host line"),
    ] {
        std::fs::create_dir_all(logs.join(sub)).unwrap();
        std::fs::write(
            logs.join(sub).join(format!("{name}.log")),
            format!("{line}\n"),
        )
        .unwrap();
    }
    let push_of = |binary: &Path, name: &str| {
        let loki = FakeLoki::start();
        let own = dir.path().join(name);
        std::fs::create_dir_all(&own).unwrap();
        let cfg = node_and_service_config(&own, &logs, &api.kubeconfig(), &loki.url());
        let _running = run(binary, &cfg);
        loki.wait_for(WAIT, "a line of the node and of each service port", |r| {
            r.len() >= 12
        });
        std::thread::sleep(Duration::from_millis(300));
        streams(&loki.accepted())
    };
    let ours = push_of(Path::new(env!("CARGO_BIN_EXE_lokiship")), "lokiship");
    let node = ours.iter().find(|(_, l)| l == "kubelet says hi").unwrap();
    assert_eq!(
        node.0,
        r#"{addr="10.0.0.5:10250", instance="node-a", node_address_Hostname="node-a", node_address_InternalIP="10.0.0.5", node_label_kubernetes_io_os="linux", node_label_topology_kubernetes_io_zone="z1", node_name="node-a", node_provider_id="test://node-a"}"#
    );
    let dns = ours.iter().find(|(_, l)| l == "dns line").unwrap();
    assert!(dns.0.contains(r#"addr="web.shop.svc:53""#), "{}", dns.0);
    assert!(
        dns.0.contains(r#"svc_service_port_protocol="UDP""#),
        "{}",
        dns.0
    );
    let api_path = ours.iter().find(|(_, l)| l == "api path line").unwrap();
    assert!(
        api_path.0.contains(r#"addr="a.example.com""#)
            && api_path.0.contains(r#"ing_ingress_scheme="https""#)
            // Promtail reads no class from the annotation.
            && !api_path.0.contains("ing_ingress_class_name"),
        "{}",
        api_path.0
    );
    let web = ours
        .iter()
        .find(|(_, l)| l == "web-1 endpoint line")
        .unwrap();
    assert!(
        web.0.contains(r#"ep_pod_container_name="app""#)
            && web.0.contains(r#"ep_service_label_app="web""#)
            && web.0.contains(r#"ep_endpoint_ready="true""#),
        "{}",
        web.0
    );
    let attached = ours.iter().find(|(_, l)| l == "attached app line").unwrap();
    assert!(
        attached
            .0
            .contains(r#"am_node_label_topology_kubernetes_io_zone="z1""#)
            && attached
                .0
                .contains(r#"am_namespace_label_kubernetes_io_metadata_name="shop""#),
        "{}",
        attached.0
    );
    let slice = ours.iter().find(|(_, l)| l == "slice line").unwrap();
    assert!(
        slice.0.contains(r#"es_endpointslice_port="8080""#)
            && slice.0.contains(r#"es_pod_container_name="app""#)
            && slice.0.contains(r#"es_service_name="web""#),
        "{}",
        slice.0
    );
    let plain = ours.iter().find(|(_, l)| l == "plain host line").unwrap();
    assert!(
        plain.0.contains(r#"ing_ingress_scheme="http""#),
        "{}",
        plain.0
    );
    if let Some(promtail) = support::peers::peer_binary("promtail") {
        assert_eq!(
            push_of(&promtail, "promtail"),
            ours,
            "Promtail pushed other streams"
        );
    }
}
