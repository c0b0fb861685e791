//! The targets of one pod, with the meta labels Prometheus' `pod` role gives them (and Promtail
//! with it): one target per declared container port, one per container without ports; init
//! containers too. A pod without an IP yet has none (it is starting, or evicted).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::BTreeMap;

pub type TargetLabels = BTreeMap<String, String>;

const META: &str = "__meta_kubernetes_";

/// The labels every target of the pod has.
pub(super) fn pod_labels(pod: &Pod) -> TargetLabels {
    let mut labels = TargetLabels::new();
    let mut set = |name: &str, value: &str| {
        labels.insert(format!("{META}{name}"), value.to_string());
    };
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    set("namespace", meta.namespace.as_deref().unwrap_or(""));
    set(
        "pod_ip",
        status.and_then(|s| s.pod_ip.as_deref()).unwrap_or(""),
    );
    set("pod_ready", ready(pod));
    set(
        "pod_phase",
        status.and_then(|s| s.phase.as_deref()).unwrap_or(""),
    );
    set(
        "pod_node_name",
        spec.and_then(|s| s.node_name.as_deref()).unwrap_or(""),
    );
    set(
        "pod_host_ip",
        status.and_then(|s| s.host_ip.as_deref()).unwrap_or(""),
    );
    set("pod_uid", meta.uid.as_deref().unwrap_or(""));
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        set("pod_controller_kind", &owner.kind);
        set("pod_controller_name", &owner.name);
    }
    super::object_meta(&mut labels, "pod", meta);
    labels
}

/// `true`, `false`, or `unknown` without a Ready condition.
fn ready(pod: &Pod) -> &'static str {
    let condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match condition.map(|c| c.status.as_str()) {
        Some("True") => "true",
        Some("False") => "false",
        _ => "unknown",
    }
}

pub(super) fn container_id(name: &str, statuses: Option<&Vec<ContainerStatus>>) -> String {
    statuses
        .into_iter()
        .flatten()
        .find(|s| s.name == name)
        .and_then(|s| s.container_id.clone())
        .unwrap_or_default()
}

/// Every target of `pod`: the pod's labels and each container's (and port's) own.
pub fn targets(pod: &Pod) -> Vec<TargetLabels> {
    let Some(ip) = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
    else {
        return Vec::new();
    };
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let common = pod_labels(pod);
    let status = pod.status.as_ref();
    let containers = spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(spec.init_containers.iter().flatten().map(|c| (c, true)));
    let mut out = Vec::new();
    for (container, init) in containers {
        let statuses = if init {
            status.and_then(|s| s.init_container_statuses.as_ref())
        } else {
            status.and_then(|s| s.container_statuses.as_ref())
        };
        let mut base = common.clone();
        base.insert(format!("{META}pod_container_name"), container.name.clone());
        base.insert(
            format!("{META}pod_container_id"),
            container_id(&container.name, statuses),
        );
        base.insert(
            format!("{META}pod_container_image"),
            container.image.clone().unwrap_or_default(),
        );
        base.insert(format!("{META}pod_container_init"), init.to_string());
        let ports = container.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            base.insert("__address__".into(), ip.to_string());
            out.push(base);
            continue;
        }
        for port in ports {
            let mut t = base.clone();
            let number = port.container_port.to_string();
            t.insert(
                "__address__".into(),
                crate::source::join_host_port(ip, &number),
            );
            t.insert(format!("{META}pod_container_port_number"), number);
            t.insert(
                format!("{META}pod_container_port_name"),
                port.name.clone().unwrap_or_default(),
            );
            t.insert(
                format!("{META}pod_container_port_protocol"),
                port.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: &str) -> Pod {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_pod_gives_prometheus_meta_labels_per_container_and_port() {
        let p = pod(r#"{
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                "labels": {"app.kubernetes.io/name": "web"}, "annotations": {"team": "a"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-rs", "uid": "x", "controller": true}]},
            "spec": {"nodeName": "node-a",
                "containers": [{"name": "app", "image": "web:1", "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "protocol": "UDP"}]},
                               {"name": "sidecar", "image": "proxy:2"}],
                "initContainers": [{"name": "init", "image": "busybox"}]},
            "status": {"podIP": "10.0.0.5", "hostIP": "192.168.1.2", "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "containerID": "containerd://abc", "image": "web:1", "imageID": "", "ready": true, "restartCount": 0}]}
        }"#);
        let t = targets(&p);
        assert_eq!(
            t.len(),
            4,
            "two ports, one container without, one init container"
        );
        let get = |i: usize, k: &str| t[i].get(&format!("{META}{k}")).cloned().unwrap_or_default();
        assert_eq!(t[0]["__address__"], "10.0.0.5:8080");
        assert_eq!(get(0, "pod_container_port_name"), "http");
        assert_eq!(get(0, "pod_container_port_protocol"), "TCP");
        assert_eq!(get(1, "pod_container_port_protocol"), "UDP");
        assert_eq!(get(0, "pod_container_id"), "containerd://abc");
        assert_eq!(t[2]["__address__"], "10.0.0.5");
        assert_eq!(get(2, "pod_container_name"), "sidecar");
        assert_eq!(get(2, "pod_container_id"), "");
        assert_eq!(get(3, "pod_container_init"), "true");
        assert_eq!(get(0, "pod_container_init"), "false");
        assert_eq!(get(0, "pod_label_app_kubernetes_io_name"), "web");
        assert_eq!(get(0, "pod_labelpresent_app_kubernetes_io_name"), "true");
        assert_eq!(get(0, "pod_annotation_team"), "a");
        assert_eq!(get(0, "pod_controller_kind"), "ReplicaSet");
        assert_eq!(get(0, "pod_controller_name"), "web-rs");
        assert_eq!(get(0, "pod_ready"), "true");
        assert_eq!(get(0, "pod_phase"), "Running");
        assert_eq!(get(0, "pod_node_name"), "node-a");
        assert_eq!(get(0, "pod_host_ip"), "192.168.1.2");
        assert_eq!(get(0, "pod_uid"), "u-1");
        assert_eq!(get(0, "namespace"), "shop");
        let pending = pod(
            r#"{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}"#,
        );
        assert!(targets(&pending).is_empty(), "no IP, no target");
    }
}
