//! The targets of an `EndpointSlice` (`discovery.k8s.io/v1`), as Prometheus' `endpointslice` role
//! makes them: one per port of each address of each endpoint, with the slice's address type, the
//! port's name, number, protocol and app protocol, the endpoint's conditions (ready, serving,
//! terminating), hostname, node name, zone, deprecated topology and target reference; the slice's
//! own meta labels, those of its service (the `kubernetes.io/service-name` label) and, for an
//! endpoint backed by a pod, the pod's and its container's, as in the `endpoints` role.

use super::endpoints::{self, Lookup};
use super::pod::TargetLabels;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

const META: &str = "__meta_kubernetes_endpointslice_";

fn group_labels(slice: &EndpointSlice, lookup: &dyn Lookup) -> TargetLabels {
    let namespace = slice.metadata.namespace.clone().unwrap_or_default();
    let mut labels = TargetLabels::new();
    labels.insert("__meta_kubernetes_namespace".into(), namespace.clone());
    super::object_meta(&mut labels, "endpointslice", &slice.metadata);
    labels.insert(format!("{META}address_type"), slice.address_type.clone());
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"));
    if let Some(svc) = service.and_then(|name| lookup.service(&namespace, name)) {
        super::object_meta(&mut labels, "service", &svc.metadata);
    }
    labels
}

fn endpoint_labels(t: &mut TargetLabels, ep: &Endpoint, port: &EndpointPort) {
    let mut set = |name: String, value: String| {
        t.insert(name, value);
    };
    if let Some(name) = &port.name {
        set(format!("{META}port_name"), name.clone());
    }
    if let Some(protocol) = &port.protocol {
        set(format!("{META}port_protocol"), protocol.clone());
    }
    if let Some(number) = port.port {
        set(format!("{META}port"), number.to_string());
    }
    if let Some(app) = &port.app_protocol {
        set(format!("{META}port_app_protocol"), app.clone());
    }
    if let Some(c) = &ep.conditions {
        for (what, value) in [
            ("ready", c.ready),
            ("serving", c.serving),
            ("terminating", c.terminating),
        ] {
            if let Some(v) = value {
                set(format!("{META}endpoint_conditions_{what}"), v.to_string());
            }
        }
    }
    if let Some(h) = &ep.hostname {
        set(format!("{META}endpoint_hostname"), h.clone());
    }
    if let Some(r) = &ep.target_ref {
        set(
            format!("{META}address_target_kind"),
            r.kind.clone().unwrap_or_default(),
        );
        set(
            format!("{META}address_target_name"),
            r.name.clone().unwrap_or_default(),
        );
    }
    if let Some(n) = &ep.node_name {
        set(format!("{META}endpoint_node_name"), n.clone());
    }
    if let Some(z) = &ep.zone {
        set(format!("{META}endpoint_zone"), z.clone());
    }
    for (k, v) in ep.deprecated_topology.iter().flatten() {
        let n = crate::source::sanitize_label_name(k);
        set(format!("{META}endpoint_topology_{n}"), v.clone());
        set(
            format!("{META}endpoint_topology_present_{n}"),
            "true".into(),
        );
    }
}

pub fn targets(slice: &EndpointSlice, lookup: &dyn Lookup) -> Vec<TargetLabels> {
    let group = group_labels(slice, lookup);
    let namespace = slice.metadata.namespace.clone().unwrap_or_default();
    let ports = slice.ports.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    let mut seen = endpoints::Seen::new();
    for port in ports {
        for ep in slice.endpoints.iter().flatten() {
            for address in &ep.addresses {
                let mut t = group.clone();
                let a = match port.port {
                    Some(p) => crate::source::join_host_port(address, p),
                    None => address.clone(),
                };
                t.insert("__address__".into(), a);
                endpoint_labels(&mut t, ep, port);
                let all_ports = || ports.iter().filter_map(|p| p.port).collect();
                let number = port.port.unwrap_or(0);
                let target = ep.target_ref.as_ref();
                endpoints::backing_pod(
                    &mut t, target, &namespace, number, all_ports, lookup, &mut seen,
                );
                out.push(t);
            }
        }
    }
    for (_, s) in seen {
        out.extend(endpoints::uncovered_ports(&s, &group));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, Service};
    use std::sync::Arc;

    struct NoPods(Service);

    impl Lookup for NoPods {
        fn pod(&self, _: &str, _: &str) -> Option<Arc<Pod>> {
            None
        }
        fn service(&self, _: &str, name: &str) -> Option<Arc<Service>> {
            (self.0.metadata.name.as_deref() == Some(name)).then(|| Arc::new(self.0.clone()))
        }
    }

    #[test]
    fn a_slice_has_a_target_per_port_and_address_with_its_conditions_and_service() {
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.2.3"], "conditions": {"ready": true, "serving": true, "terminating": false},
                           "nodeName": "node-a", "zone": "z1"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
        }))
        .unwrap();
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}}
        }))
        .unwrap();
        let t = targets(&slice, &NoPods(svc));
        assert_eq!(t.len(), 1);
        let t = &t[0];
        assert_eq!(t["__address__"], "10.1.2.3:8080");
        assert_eq!(t["__meta_kubernetes_endpointslice_address_type"], "IPv4");
        assert_eq!(t["__meta_kubernetes_endpointslice_port"], "8080");
        assert_eq!(
            t["__meta_kubernetes_endpointslice_port_app_protocol"],
            "http"
        );
        assert_eq!(
            t["__meta_kubernetes_endpointslice_endpoint_conditions_ready"],
            "true"
        );
        assert_eq!(
            t["__meta_kubernetes_endpointslice_endpoint_conditions_terminating"],
            "false"
        );
        assert_eq!(t["__meta_kubernetes_endpointslice_endpoint_zone"], "z1");
        assert_eq!(t["__meta_kubernetes_endpointslice_name"], "web-abc");
        assert_eq!(t["__meta_kubernetes_service_label_tier"], "front");
    }
}
