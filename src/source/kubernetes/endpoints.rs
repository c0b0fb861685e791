//! The targets of an `Endpoints` object, as Prometheus' `endpoints` role makes them: one per port
//! of each address of each subset (`__meta_kubernetes_endpoint_ready` `false` for the not-ready
//! ones), with the endpoint's port name and protocol, node name, hostname and target reference;
//! the object's own meta labels, those of the service of the same name, and — for an address
//! backed by a pod — the pod's labels and those of the container whose port is the endpoint's.
//! A pod's container ports that no endpoint covers get targets of their own (pod labels only).

use super::pod::{self, TargetLabels};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};

const META: &str = "__meta_kubernetes_";

/// Looks up the pods and services the endpoints refer to (`namespace`, `name`).
pub trait Lookup {
    fn pod(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<Pod>>;
    fn service(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<Service>>;
}

/// The labels of the endpoints' group: its own, and its service's.
fn group_labels(ep: &Endpoints, lookup: &dyn Lookup) -> TargetLabels {
    let namespace = ep.metadata.namespace.clone().unwrap_or_default();
    let mut labels = TargetLabels::new();
    labels.insert(format!("{META}namespace"), namespace.clone());
    super::object_meta(&mut labels, "endpoints", &ep.metadata);
    let name = ep.metadata.name.as_deref().unwrap_or("");
    if let Some(svc) = lookup.service(&namespace, name) {
        super::object_meta(&mut labels, "service", &svc.metadata);
    }
    labels
}

/// A pod an address belongs to, and the ports already made targets for it.
pub(super) struct SeenPod {
    pub pod: std::sync::Arc<Pod>,
    pub ports: Vec<i32>,
}

pub fn targets(ep: &Endpoints, lookup: &dyn Lookup) -> Vec<TargetLabels> {
    let group = group_labels(ep, lookup);
    let namespace = ep.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut seen = Seen::new();
    for subset in ep.subsets.iter().flatten() {
        let ports = subset.ports.as_deref().unwrap_or_default();
        for port in ports {
            let ready = subset.addresses.iter().flatten().map(|a| (a, "true"));
            let not_ready = subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, "false"));
            for (address, is_ready) in ready.chain(not_ready) {
                let mut t = group.clone();
                t.insert(
                    "__address__".into(),
                    crate::source::join_host_port(&address.ip, port.port),
                );
                t.insert(
                    format!("{META}endpoint_port_name"),
                    port.name.clone().unwrap_or_default(),
                );
                t.insert(
                    format!("{META}endpoint_port_protocol"),
                    port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                );
                t.insert(format!("{META}endpoint_ready"), is_ready.into());
                if let Some(r) = &address.target_ref {
                    t.insert(
                        format!("{META}endpoint_address_target_kind"),
                        r.kind.clone().unwrap_or_default(),
                    );
                    t.insert(
                        format!("{META}endpoint_address_target_name"),
                        r.name.clone().unwrap_or_default(),
                    );
                }
                if let Some(node) = &address.node_name {
                    t.insert(format!("{META}endpoint_node_name"), node.clone());
                }
                if let Some(host) = &address.hostname {
                    t.insert(format!("{META}endpoint_hostname"), host.clone());
                }
                let all_ports = || ports.iter().map(|p| p.port).collect();
                let target = address.target_ref.as_ref();
                backing_pod(
                    &mut t, target, &namespace, port.port, all_ports, lookup, &mut seen,
                );
                out.push(t);
            }
        }
    }
    for (_, s) in seen {
        out.extend(uncovered_ports(&s, &group));
    }
    out
}

/// The pods seen behind a role's addresses, by `namespace/name`.
pub(super) type Seen = Vec<(String, SeenPod)>;

/// For an address whose target is a pod: the pod's labels, and those of the container whose port
/// is `port`, added to `t`, and the pod noted as seen with `port` (first seen: with `all_ports`,
/// the object's ports, as Prometheus notes them).
pub(super) fn backing_pod(
    t: &mut TargetLabels,
    target: Option<&k8s_openapi::api::core::v1::ObjectReference>,
    namespace: &str,
    port: i32,
    all_ports: impl FnOnce() -> Vec<i32>,
    lookup: &dyn Lookup,
    seen: &mut Seen,
) {
    let pod = target
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| {
            let ns = r.namespace.as_deref().unwrap_or(namespace);
            lookup.pod(ns, r.name.as_deref().unwrap_or(""))
        });
    let Some(pod) = pod else { return };
    let key = super::key(pod.as_ref());
    match seen.iter_mut().find(|(k, _)| *k == key) {
        Some((_, s)) => s.ports.push(port),
        None => seen.push((
            key,
            SeenPod {
                pod: pod.clone(),
                ports: all_ports(),
            },
        )),
    }
    t.extend(pod::pod_labels(&pod));
    if let Some(c) = container_of_port(&pod, port) {
        t.extend(c);
    }
}

/// The container labels of the container (init ones too) that declares `port`.
fn container_of_port(pod: &Pod, port: i32) -> Option<TargetLabels> {
    container_ports(pod)
        .find(|(_, _, p)| p.container_port == port)
        .map(|(c, init, p)| container_labels(pod, c, init, p))
}

fn container_ports(
    pod: &Pod,
) -> impl Iterator<
    Item = (
        &k8s_openapi::api::core::v1::Container,
        bool,
        &k8s_openapi::api::core::v1::ContainerPort,
    ),
> {
    let spec = pod.spec.as_ref();
    let containers = spec
        .map(|s| s.containers.iter().map(|c| (c, false)))
        .into_iter()
        .flatten()
        .chain(
            spec.and_then(|s| s.init_containers.as_ref())
                .into_iter()
                .flatten()
                .map(|c| (c, true)),
        );
    containers.flat_map(|(c, init)| c.ports.iter().flatten().map(move |p| (c, init, p)))
}

fn container_labels(
    pod: &Pod,
    c: &k8s_openapi::api::core::v1::Container,
    init: bool,
    p: &k8s_openapi::api::core::v1::ContainerPort,
) -> TargetLabels {
    let status = pod.status.as_ref();
    let statuses = if init {
        status.and_then(|s| s.init_container_statuses.as_ref())
    } else {
        status.and_then(|s| s.container_statuses.as_ref())
    };
    TargetLabels::from([
        (format!("{META}pod_container_name"), c.name.clone()),
        (
            format!("{META}pod_container_image"),
            c.image.clone().unwrap_or_default(),
        ),
        (
            format!("{META}pod_container_id"),
            pod::container_id(&c.name, statuses),
        ),
        (
            format!("{META}pod_container_port_name"),
            p.name.clone().unwrap_or_default(),
        ),
        (
            format!("{META}pod_container_port_number"),
            p.container_port.to_string(),
        ),
        (
            format!("{META}pod_container_port_protocol"),
            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        ),
        (format!("{META}pod_container_init"), init.to_string()),
    ])
}

/// Targets for a pod's container ports that no endpoint of the object covers.
pub(super) fn uncovered_ports(s: &SeenPod, group: &TargetLabels) -> Vec<TargetLabels> {
    let Some(ip) = s
        .pod
        .status
        .as_ref()
        .and_then(|st| st.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
    else {
        return Vec::new();
    };
    container_ports(&s.pod)
        .filter(|(_, _, p)| !s.ports.contains(&p.container_port))
        .map(|(c, init, p)| {
            let mut t = group.clone();
            t.extend(pod::pod_labels(&s.pod));
            t.extend(container_labels(&s.pod, c, init, p));
            t.insert(
                "__address__".into(),
                crate::source::join_host_port(ip, p.container_port),
            );
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Fixed(Pod, Service);

    impl Lookup for Fixed {
        fn pod(&self, _: &str, name: &str) -> Option<Arc<Pod>> {
            (self.0.metadata.name.as_deref() == Some(name)).then(|| Arc::new(self.0.clone()))
        }
        fn service(&self, _: &str, name: &str) -> Option<Arc<Service>> {
            (self.1.metadata.name.as_deref() == Some(name)).then(|| Arc::new(self.1.clone()))
        }
    }

    #[test]
    fn endpoints_take_their_services_and_pods_labels_and_uncovered_ports_get_targets() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "web:1",
                "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]}]},
            "status": {"podIP": "10.1.2.3", "phase": "Running"}
        }))
        .unwrap();
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}}
        }))
        .unwrap();
        let ep: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.1.2.3", "nodeName": "node-a",
                                        "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}],
                         "notReadyAddresses": [{"ip": "10.1.2.4"}],
                         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
        }))
        .unwrap();
        let t = targets(&ep, &Fixed(pod, svc));
        assert_eq!(t.len(), 3, "{t:#?}");
        assert_eq!(t[0]["__address__"], "10.1.2.3:8080");
        assert_eq!(t[0]["__meta_kubernetes_endpoint_ready"], "true");
        assert_eq!(t[0]["__meta_kubernetes_endpoints_name"], "web");
        assert_eq!(t[0]["__meta_kubernetes_service_label_tier"], "front");
        assert_eq!(t[0]["__meta_kubernetes_pod_name"], "web-1");
        assert_eq!(t[0]["__meta_kubernetes_pod_container_port_name"], "http");
        assert_eq!(t[0]["__meta_kubernetes_endpoint_node_name"], "node-a");
        assert_eq!(t[1]["__address__"], "10.1.2.4:8080");
        assert_eq!(t[1]["__meta_kubernetes_endpoint_ready"], "false");
        assert!(!t[1].contains_key("__meta_kubernetes_pod_name"));
        // The metrics port no endpoint covers.
        assert_eq!(t[2]["__address__"], "10.1.2.3:9090");
        assert!(!t[2].contains_key("__meta_kubernetes_endpoint_ready"));
        assert_eq!(t[2]["__meta_kubernetes_pod_container_port_name"], "metrics");
    }
}
