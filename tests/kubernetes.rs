//! The Kubernetes manifests in `config/kubernetes/`: valid against the Kubernetes schemas
//! (`kubernetes-validate`) and accepted by a real kube-apiserver 1.36 (server-side dry run, strict
//! field validation), wired as they claim (the ConfigMap is the node config, every mount and port
//! is where the config expects it, the security context is read-only and without capabilities
//! but one), and the audit policy does what it says on a real API server: one event per request,
//! Secrets and ConfigMaps without their contents, changes with their request.

mod support;

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/kubernetes")
        .join(name)
}

/// The YAML documents of a file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// The `mountPath` at which `container` mounts the volume that is the host's `host_path`.
fn mount_of_host_path<'a>(pod: &'a Value, container: &'a Value, host_path: &str) -> &'a Value {
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["hostPath"]["path"] == host_path)
        .unwrap_or_else(|| panic!("no hostPath volume for {host_path}"));
    container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap_or_else(|| panic!("{host_path} is not mounted"))
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// Asserts the container security context every lokiship container has: nothing writable but
/// its volumes, no privilege escalation, every capability dropped but `allowed`.
fn assert_locked_down(c: &Value, allowed: &[&str]) {
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let added: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(added, allowed);
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas() {
    let files = [
        "daemonset.yaml",
        "apiserver-sidecar.yaml",
        "audit-policy.yaml",
    ];
    let Ok(out) = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files.map(manifest))
        .output()
    else {
        support::skip("kubernetes-validate is not installed (pip install kubernetes-validate)");
        return;
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubernetes-validate:\n{text}");
    // What it has no schema for are the two kinds outside Kubernetes' API (checked below and by
    // the real API server), nothing else.
    for line in text.lines().filter(|l| !l.starts_with("INFO")) {
        assert!(
            line.contains("kind ServiceMonitor")
                || line.contains("kind Policy with api version audit.k8s.io/v1"),
            "kubernetes-validate: {line}"
        );
    }
    assert_eq!(
        text.lines().filter(|l| l.contains(" passed for ")).count(),
        6,
        "{text}"
    );
}

#[test]
fn the_daemonset_reads_the_node_as_the_node_config_expects() {
    let docs = documents(&manifest("daemonset.yaml"));
    let node_config = std::fs::read_to_string(manifest("../lokiship.yaml")).unwrap();
    let cm = of_kind(&docs, "ConfigMap");
    assert_eq!(
        cm["data"]["lokiship.yaml"].as_str(),
        Some(node_config.as_str()),
        "the ConfigMap in daemonset.yaml must be config/lokiship.yaml as it is"
    );
    let ds = of_kind(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let tolerated: Vec<&str> = pod["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert!(
        tolerated.contains(&"node-role.kubernetes.io/control-plane"),
        "runs on control-plane nodes"
    );
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "lokiship does not call the API"
    );
    let c = container(pod, "lokiship");
    assert_locked_down(c, &["DAC_READ_SEARCH"]);
    assert!(c["resources"]["limits"]["memory"].is_string());
    let config_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap();
    let config_arg = format!(
        "-config.file={}/lokiship.yaml",
        config_mount["mountPath"].as_str().unwrap()
    );
    assert!(c["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == config_arg.as_str()));
    // The logs the node config reads are mounted read-only where it reads them; the state
    // directory, the one writable mount, holds the positions.
    let varlog = mount_of_host_path(pod, c, "/var/log");
    assert_eq!(
        (varlog["mountPath"].as_str(), &varlog["readOnly"]),
        (Some("/var/log"), &Value::Bool(true))
    );
    for path in [
        "/var/log/kubernetes/audit",
        "/var/log/{syslog",
        "/var/log/audit/audit.log",
    ] {
        assert!(
            node_config.contains(&format!(":-{path}")),
            "the node config reads {path}"
        );
    }
    assert!(env_value(c, "JOURNAL_PATH")
        .unwrap()
        .starts_with("/var/log/"));
    let state = mount_of_host_path(pod, c, "/var/lib/lokiship");
    let positions = env_value(c, "LOKISHIP_POSITIONS").unwrap();
    assert_eq!(
        Path::new(positions).parent(),
        Some(Path::new(state["mountPath"].as_str().unwrap()))
    );
    for m in c["volumeMounts"].as_array().unwrap() {
        assert!(
            m == state || m["readOnly"] == true,
            "only the state directory is writable: {m}"
        );
    }
    // Probes, Service and ServiceMonitor meet at the port the config listens on.
    let port = &c["ports"][0];
    assert!(node_config.contains(&format!("LOKISHIP_LISTEN_PORT:-{}", port["containerPort"])));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], port["name"]);
    let svc = of_kind(&docs, "Service");
    assert_eq!(
        svc["spec"]["selector"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], port["name"]);
    let sm = of_kind(&docs, "ServiceMonitor");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        svc["metadata"]["labels"]
    );
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
}

#[test]
fn the_sidecar_reads_the_audit_log_the_api_server_writes() {
    let docs = documents(&manifest("apiserver-sidecar.yaml"));
    let pod = &of_kind(&docs, "Pod")["spec"];
    let apiserver = container(pod, "kube-apiserver");
    let flag = |name: &str| {
        apiserver["command"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|a| a.as_str()?.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let audit_log = Path::new(flag("--audit-log-path"));
    let c = container(pod, "lokiship");
    assert_locked_down(c, &[]);
    // Both containers mount the same volume at the same place, the sidecar read-only, and the
    // preset's default audit directory is that place.
    let log_dir = audit_log.parent().unwrap().to_str().unwrap();
    let theirs = mount_of_host_path(pod, apiserver, log_dir);
    let ours = mount_of_host_path(pod, c, log_dir);
    assert_eq!(
        (theirs["mountPath"].as_str(), ours["mountPath"].as_str()),
        (Some(log_dir), Some(log_dir))
    );
    assert_eq!(ours["readOnly"], true);
    let preset = std::fs::read_to_string(manifest("../k8s-audit.yaml")).unwrap();
    assert!(preset.contains(&format!("${{AUDIT_LOG_DIR:-{log_dir}}}/*.log")));
    assert_eq!(flag("--audit-log-format"), "json");
    let policy = mount_of_host_path(pod, apiserver, flag("--audit-policy-file"));
    assert_eq!(
        policy["mountPath"].as_str(),
        Some(flag("--audit-policy-file"))
    );
    // The probes ask lokiship where it listens.
    let port = env_value(c, "LOKISHIP_LISTEN_PORT").unwrap();
    assert_eq!(c["readinessProbe"]["httpGet"]["port"].to_string(), port);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    let config = c["args"][0]
        .as_str()
        .unwrap()
        .strip_prefix("-config.file=")
        .unwrap();
    let config_mount = mount_of_host_path(pod, c, "/etc/lokiship");
    assert_eq!(
        Path::new(config).parent(),
        Some(Path::new(config_mount["mountPath"].as_str().unwrap()))
    );
    assert_eq!(Path::new(config).file_name().unwrap(), "k8s-audit.yaml");
    let state = mount_of_host_path(pod, c, "/var/lib/lokiship-apiserver");
    let positions = env_value(c, "LOKISHIP_POSITIONS").unwrap();
    assert_eq!(
        Path::new(positions).parent(),
        Some(Path::new(state["mountPath"].as_str().unwrap()))
    );
}

/// Where the API server takes `doc`: `/api/v1/namespaces/lokiship/configmaps`, ….
fn resource_path(doc: &Value) -> String {
    let api = doc["apiVersion"].as_str().unwrap();
    let base = if api.contains('/') {
        format!("/apis/{api}")
    } else {
        format!("/api/{api}")
    };
    let plural = match doc["kind"].as_str().unwrap() {
        "Namespace" => return format!("{base}/namespaces"),
        "DaemonSet" => "daemonsets",
        "ServiceAccount" => "serviceaccounts",
        "ConfigMap" => "configmaps",
        "Service" => "services",
        "Pod" => "pods",
        other => panic!("no resource path for {other}"),
    };
    format!(
        "{base}/namespaces/{}/{plural}",
        doc["metadata"]["namespace"].as_str().unwrap()
    )
}

/// The audit events of `audit_log` (one JSON object per line).
fn audit_events(audit_log: &Path) -> Vec<Value> {
    std::fs::read_to_string(audit_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_real_api_server_accepts_the_manifests_and_audits_by_the_policy() {
    let Some(api) = support::peers::RealApiServer::start(&manifest("audit-policy.yaml")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Each object of Kubernetes' own API is posted with `dryRun=All&fieldValidation=Strict`: the
    // server decodes it strictly (an unknown field is refused), validates and admits it, and
    // stores nothing. (kubectl's own --validate asks for /openapi/v2, which this build answers
    // 503.) The DaemonSet's namespace is created for real first: the others live in it. The
    // ServiceMonitor needs the Prometheus Operator's CRD, which this cluster does not have.
    let docs = documents(&manifest("daemonset.yaml"));
    let sidecar = documents(&manifest("apiserver-sidecar.yaml"));
    let post = |i: usize, doc: &Value, dry_run: bool| {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        let mut uri = resource_path(doc);
        if dry_run {
            uri.push_str("?dryRun=All&fieldValidation=Strict");
        }
        api.kubectl(&["create", "--raw", &uri, "-f", file.to_str().unwrap()])
    };
    let (ok, text) = post(0, of_kind(&docs, "Namespace"), false);
    assert!(ok, "{text}");
    let objects = docs
        .iter()
        .filter(|d| !["Namespace", "ServiceMonitor"].contains(&d["kind"].as_str().unwrap()));
    let mut checked = 0;
    for (i, doc) in objects.chain(&sidecar).enumerate() {
        let (ok, text) = post(i + 1, doc, true);
        assert!(
            ok,
            "the API server refuses {} {}: {text}",
            doc["kind"], doc["metadata"]["name"]
        );
        checked += 1;
    }
    assert_eq!(
        checked, 5,
        "ServiceAccount, ConfigMap, DaemonSet, Service and the static pod"
    );
    // The same check refuses a field Kubernetes does not have.
    let mut broken = of_kind(&docs, "DaemonSet").clone();
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] =
        Value::Bool(true);
    let (ok, text) = post(99, &broken, true);
    assert!(!ok && text.contains("readOnlyRootFileSystem"), "{text}");

    // What the policy logs: a Secret read and written without its contents, a change with its
    // request, each request once.
    let steps: [&[&str]; 4] = [
        &[
            "create",
            "secret",
            "generic",
            "db-password",
            "--from-literal=password=hunter2",
        ],
        &["get", "secret", "db-password", "-o", "name"],
        &["create", "namespace", "audited"],
        &["delete", "namespace", "audited", "--wait=false"],
    ];
    for step in steps {
        let (ok, text) = api.kubectl(step);
        assert!(ok, "kubectl {step:?}: {text}");
    }
    let of = |events: &[Value], verb: &str, resource: &str, name: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| {
                e["verb"] == verb
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["name"] == name
            })
            .cloned()
            .collect()
    };
    let mut events = Vec::new();
    support::eventually(
        std::time::Duration::from_secs(30),
        "the namespace deletion in the audit log",
        || {
            events = audit_events(&api.audit_log());
            !of(&events, "delete", "namespaces", "audited").is_empty()
        },
    );
    let log = std::fs::read_to_string(api.audit_log()).unwrap();
    assert!(
        !log.contains("hunter2") && !log.contains("aHVudGVyMg"),
        "a secret's value is in the audit log"
    );
    for (verb, resource, name, level) in [
        ("create", "secrets", "db-password", "Metadata"),
        ("get", "secrets", "db-password", "Metadata"),
        ("create", "namespaces", "audited", "Request"),
        ("delete", "namespaces", "audited", "Request"),
    ] {
        let found = of(&events, verb, resource, name);
        assert_eq!(
            found.len(),
            1,
            "one event for {verb} {resource}/{name}: {found:?}"
        );
        let e = &found[0];
        assert_eq!(
            (e["level"].as_str(), e["stage"].as_str()),
            (Some(level), Some("ResponseComplete"))
        );
        assert!(
            e["user"]["username"].is_string() && e["responseStatus"]["code"].is_number(),
            "{e}"
        );
        assert_eq!(e["requestObject"].is_object(), level == "Request", "{e}");
        assert!(e.get("responseObject").is_none(), "{e}");
    }
    assert!(events.iter().all(|e| e["stage"] != "RequestReceived"));
    assert!(
        events.iter().all(|e| !e["requestURI"]
            .as_str()
            .unwrap_or("")
            .starts_with("/readyz")),
        "probes are not audited"
    );
}
