//! The targets of an ingress, with the meta labels Prometheus' `ingress` role gives them: one per
//! path of each rule (`/` for a rule without paths), `__address__` the rule's host; the ingress's
//! namespace, name, labels and annotations (with `present` variants), class name, and each target's scheme (`https` when a TLS entry
//! covers the host), host and path.

use super::pod::TargetLabels;
use k8s_openapi::api::networking::v1::Ingress;

const META: &str = "__meta_kubernetes_";

pub fn targets(ingress: &Ingress) -> Vec<TargetLabels> {
    let meta = &ingress.metadata;
    let spec = ingress.spec.as_ref();
    let mut common = TargetLabels::new();
    let mut set = |key: String, value: &str| {
        common.insert(key, value.to_string());
    };
    set(
        format!("{META}namespace"),
        meta.namespace.as_deref().unwrap_or(""),
    );
    // From `spec` only: Promtail 3.6.15 does not read the `kubernetes.io/ingress.class` annotation.
    if let Some(class) = spec.and_then(|s| s.ingress_class_name.clone()) {
        set(format!("{META}ingress_class_name"), &class);
    }
    super::object_meta(&mut common, "ingress", meta);
    let tls_hosts: Vec<&str> = spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|t| t.hosts.iter().flatten().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = rule.host.clone().unwrap_or_default();
        let scheme = if tls_hosts.iter().any(|t| host_matches(t, &host)) {
            "https"
        } else {
            "http"
        };
        let paths: Vec<String> = match &rule.http {
            Some(http) => http
                .paths
                .iter()
                .map(|p| {
                    p.path
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "/".into())
                })
                .collect(),
            None => vec!["/".into()],
        };
        for path in paths {
            let mut labels = common.clone();
            labels.insert(format!("{META}ingress_scheme"), scheme.into());
            labels.insert(format!("{META}ingress_host"), host.clone());
            labels.insert(format!("{META}ingress_path"), path);
            labels.insert("__address__".into(), host.clone());
            out.push(labels);
        }
    }
    out
}

/// Whether TLS host `pattern` (`*.example.com` matches one more label) covers `host`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingress_has_a_target_per_path_of_each_rule_with_its_scheme() {
        let ingress: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["*.example.com"]}],
                     "rules": [
                        {"host": "a.example.com", "http": {"paths": [
                            {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}},
                            {"pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                        {"host": "plain.test"}]}
        }))
        .unwrap();
        let t = targets(&ingress);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0]["__address__"], "a.example.com");
        assert_eq!(t[0]["__meta_kubernetes_ingress_path"], "/api");
        assert_eq!(t[0]["__meta_kubernetes_ingress_scheme"], "https");
        assert_eq!(t[1]["__meta_kubernetes_ingress_path"], "/");
        assert_eq!(t[2]["__meta_kubernetes_ingress_scheme"], "http");
        assert_eq!(t[2]["__meta_kubernetes_ingress_class_name"], "nginx");
        assert_eq!(t[2]["__meta_kubernetes_ingress_label_app"], "web");
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
    }
}
