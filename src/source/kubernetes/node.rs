//! The target of a node, with the meta labels Prometheus' `node` role gives it: its name, provider
//! id, labels and annotations (with `present` variants), the first address of each type, and
//! `__address__` — the preferred address (InternalIP, InternalDNS, ExternalIP, ExternalDNS,
//! LegacyHostIP, Hostname) with the kubelet's port. Prometheus also sets `instance` to the node's
//! name, so, as in Promtail, a node target's streams carry an `instance` label unless a rule drops it.

use super::pod::TargetLabels;
use k8s_openapi::api::core::v1::Node;

const META: &str = "__meta_kubernetes_node_";
const PREFERRED: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// The node's one target; none for a node without an address.
pub fn targets(node: &Node) -> Vec<TargetLabels> {
    let meta = &node.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let status = node.status.as_ref();
    let addresses = status.and_then(|s| s.addresses.as_ref());
    let Some(address) = PREFERRED.iter().find_map(|kind| {
        addresses
            .into_iter()
            .flatten()
            .find(|a| a.type_ == *kind)
            .map(|a| a.address.clone())
    }) else {
        tracing::debug!(node = %name, "node without an address: no target");
        return Vec::new();
    };
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |e| e.port);
    let mut labels = TargetLabels::new();
    let mut set = |name: String, value: &str| {
        labels.insert(name, value.to_string());
    };
    set(
        format!("{META}provider_id"),
        node.spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .unwrap_or(""),
    );
    super::object_meta(&mut labels, "node", meta);
    for a in addresses.into_iter().flatten() {
        let key = format!(
            "{META}address_{}",
            crate::source::sanitize_label_name(&a.type_)
        );
        labels.entry(key).or_insert_with(|| a.address.clone());
    }
    labels.insert(
        "__address__".into(),
        crate::source::join_host_port(&address, port),
    );
    labels.insert("instance".into(), name);
    vec![labels]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_has_its_preferred_address_with_the_kubelet_port_and_its_meta_labels() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-a", "labels": {"kubernetes.io/os": "linux"},
                         "annotations": {"a/b": "c"}},
            "spec": {"providerID": "aws:///eu-west-1a/i-1"},
            "status": {"addresses": [{"type": "Hostname", "address": "node-a"},
                                     {"type": "InternalIP", "address": "10.0.0.5"},
                                     {"type": "InternalIP", "address": "10.0.0.6"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
        }))
        .unwrap();
        let t = &targets(&node)[0];
        assert_eq!(t["__address__"], "10.0.0.5:10250");
        assert_eq!(t["instance"], "node-a");
        assert_eq!(t["__meta_kubernetes_node_name"], "node-a");
        assert_eq!(
            t["__meta_kubernetes_node_provider_id"],
            "aws:///eu-west-1a/i-1"
        );
        assert_eq!(t["__meta_kubernetes_node_label_kubernetes_io_os"], "linux");
        assert_eq!(
            t["__meta_kubernetes_node_labelpresent_kubernetes_io_os"],
            "true"
        );
        assert_eq!(t["__meta_kubernetes_node_annotation_a_b"], "c");
        assert_eq!(t["__meta_kubernetes_node_address_InternalIP"], "10.0.0.5");
        assert_eq!(t["__meta_kubernetes_node_address_Hostname"], "node-a");
        let bare: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap();
        assert!(targets(&bare).is_empty());
    }
}
