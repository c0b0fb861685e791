//! The targets of a service, with the meta labels Prometheus' `service` role gives them: one per
//! port, `__address__` the service's DNS name (`<name>.<namespace>.svc`) and the port; its
//! namespace, name, labels and annotations (with `present` variants), type, cluster IP (but for
//! `ExternalName`), external name, load balancer IP, and each port's name, number and protocol.

use super::pod::TargetLabels;
use k8s_openapi::api::core::v1::Service;

const META: &str = "__meta_kubernetes_";

pub fn targets(service: &Service) -> Vec<TargetLabels> {
    let meta = &service.metadata;
    let (name, namespace) = (
        meta.name.clone().unwrap_or_default(),
        meta.namespace.clone().unwrap_or_default(),
    );
    let spec = service.spec.as_ref();
    let kind = spec.and_then(|s| s.type_.clone()).unwrap_or_default();
    let mut common = TargetLabels::new();
    let mut set = |key: String, value: &str| {
        common.insert(key, value.to_string());
    };
    set(format!("{META}namespace"), &namespace);
    set(format!("{META}service_type"), &kind);
    if kind == "ExternalName" {
        set(
            format!("{META}service_external_name"),
            spec.and_then(|s| s.external_name.as_deref()).unwrap_or(""),
        );
    } else {
        set(
            format!("{META}service_cluster_ip"),
            spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or(""),
        );
    }
    if kind == "LoadBalancer" {
        set(
            format!("{META}service_loadbalancer_ip"),
            spec.and_then(|s| s.load_balancer_ip.as_deref())
                .unwrap_or(""),
        );
    }
    super::object_meta(&mut common, "service", meta);
    let host = format!("{name}.{namespace}.svc");
    spec.and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| {
            let mut labels = common.clone();
            labels.insert(
                format!("{META}service_port_name"),
                p.name.clone().unwrap_or_default(),
            );
            labels.insert(format!("{META}service_port_number"), p.port.to_string());
            labels.insert(
                format!("{META}service_port_protocol"),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            labels.insert(
                "__address__".into(),
                crate::source::join_host_port(&host, p.port),
            );
            labels
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_has_a_target_per_port_at_its_dns_name() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                               {"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let t = targets(&svc);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["__address__"], "web.shop.svc:80");
        assert_eq!(t[1]["__address__"], "web.shop.svc:53");
        assert_eq!(t[1]["__meta_kubernetes_service_port_protocol"], "UDP");
        assert_eq!(t[0]["__meta_kubernetes_service_port_name"], "http");
        assert_eq!(t[0]["__meta_kubernetes_service_cluster_ip"], "10.96.0.10");
        assert_eq!(t[0]["__meta_kubernetes_service_label_app"], "web");
        assert_eq!(t[0]["__meta_kubernetes_service_type"], "ClusterIP");
        assert_eq!(t[0]["__meta_kubernetes_namespace"], "shop");
    }
}
