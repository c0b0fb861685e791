//! The containers the daemon lists, made into targets as Prometheus' Docker discovery makes them,
//! and then as Promtail takes them: one target per container.
//!
//! Prometheus gives a container one target per TCP port per network (`__address__` the network's
//! IP and the private port, or `port` from the config when it has no TCP port; a container in host
//! networking mode gets `host_networking_host`). A container sharing another's network
//! (`container:<id>`) takes that one's networks; with `match_first_network` (the default) a
//! container on several networks keeps the first by name. Promtail reads each container once,
//! with the labels of its first target, so that is what a container gets here.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Container {
    pub id: String,
    pub names: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    pub host_config: HostConfig,
    pub network_settings: NetworkSettings,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    #[serde(rename = "IP")]
    pub ip: String,
    pub private_port: u16,
    pub public_port: u16,
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub network_mode: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub networks: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub internal: bool,
    pub ingress: bool,
    pub labels: BTreeMap<String, String>,
}

/// How addresses are made.
pub struct Addressing<'a> {
    pub port: u16,
    pub host_networking_host: &'a str,
}

/// One container to read: its id and the meta labels of its first target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub labels: BTreeMap<String, String>,
}

/// The containers' targets, one per container, in the daemon's order.
pub fn targets(containers: &[Container], networks: &[Network], how: &Addressing) -> Vec<Target> {
    let by_id: HashMap<&str, &Container> = containers.iter().map(|c| (c.id.as_str(), c)).collect();
    let network_labels: HashMap<&str, BTreeMap<String, String>> = networks
        .iter()
        .map(|n| (n.id.as_str(), network_meta(n)))
        .collect();
    containers
        .iter()
        .filter_map(|c| {
            let labels = first_target(c, &by_id, &network_labels, how)?;
            Some(Target {
                id: c.id.clone(),
                labels,
            })
        })
        .collect()
}

fn network_meta(n: &Network) -> BTreeMap<String, String> {
    let mut m = BTreeMap::from([
        ("__meta_docker_network_id".to_string(), n.id.clone()),
        ("__meta_docker_network_name".to_string(), n.name.clone()),
        ("__meta_docker_network_scope".to_string(), n.scope.clone()),
        (
            "__meta_docker_network_internal".to_string(),
            n.internal.to_string(),
        ),
        (
            "__meta_docker_network_ingress".to_string(),
            n.ingress.to_string(),
        ),
    ]);
    for (k, v) in &n.labels {
        m.insert(
            format!(
                "__meta_docker_network_label_{}",
                crate::source::sanitize_label_name(k)
            ),
            v.clone(),
        );
    }
    m
}

/// The labels of the first target Prometheus makes for `c`; `None` for a container it skips
/// (no name, or sharing the network of a container not listed).
fn first_target(
    c: &Container,
    by_id: &HashMap<&str, &Container>,
    network_labels: &HashMap<&str, BTreeMap<String, String>>,
    how: &Addressing,
) -> Option<BTreeMap<String, String>> {
    let name = c.names.first()?;
    let mut common = BTreeMap::from([
        ("__meta_docker_container_id".to_string(), c.id.clone()),
        ("__meta_docker_container_name".to_string(), name.clone()),
        (
            "__meta_docker_container_network_mode".to_string(),
            c.host_config.network_mode.clone(),
        ),
    ]);
    for (k, v) in &c.labels {
        common.insert(
            format!(
                "__meta_docker_container_label_{}",
                crate::source::sanitize_label_name(k)
            ),
            v.clone(),
        );
    }
    let mut networks = &c.network_settings.networks;
    if let Some(other) = c.host_config.network_mode.strip_prefix("container:") {
        networks = &by_id.get(other)?.network_settings.networks;
    }
    // Networks in name order: the first one's first TCP port is the container's target (with
    // `match_first_network: false` Prometheus makes targets of every network, but Promtail still
    // reads the container once, with the first's labels).
    let (_, endpoint) = networks.iter().next()?;
    let mut labels = common;
    if let Some(n) = network_labels.get(endpoint.network_id.as_str()) {
        labels.extend(n.clone());
    }
    labels.insert(
        "__meta_docker_network_ip".to_string(),
        endpoint.ip_address.clone(),
    );
    let address = match c.ports.iter().find(|p| p.kind == "tcp") {
        Some(p) => {
            labels.insert(
                "__meta_docker_port_private".to_string(),
                p.private_port.to_string(),
            );
            if p.public_port > 0 {
                labels.insert(
                    "__meta_docker_port_public".to_string(),
                    p.public_port.to_string(),
                );
                labels.insert("__meta_docker_port_public_ip".to_string(), p.ip.clone());
            }
            crate::source::join_host_port(&endpoint.ip_address, p.private_port)
        }
        None if c.host_config.network_mode == "host" => how.host_networking_host.to_string(),
        None => crate::source::join_host_port(&endpoint.ip_address, how.port),
    };
    labels.insert("__address__".to_string(), address);
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (Vec<Container>, Vec<Network>) {
        let containers = serde_json::from_str(
            r#"[
 {"Id": "c1", "Names": ["/web"], "Labels": {"com.docker.compose.service": "web"},
  "Ports": [{"PrivatePort": 53, "Type": "udp"}, {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
  "HostConfig": {"NetworkMode": "bridge"},
  "NetworkSettings": {"Networks": {"bridge": {"NetworkID": "n1", "IPAddress": "172.17.0.2"},
                                    "backend": {"NetworkID": "n2", "IPAddress": "172.18.0.5"}}}},
 {"Id": "c2", "Names": ["/hostnet"], "HostConfig": {"NetworkMode": "host"},
  "NetworkSettings": {"Networks": {"host": {"NetworkID": "n3", "IPAddress": ""}}}},
 {"Id": "c3", "Names": ["/sidecar"], "HostConfig": {"NetworkMode": "container:c1"},
  "NetworkSettings": {"Networks": {}}},
 {"Id": "c4", "Names": ["/plain"], "HostConfig": {"NetworkMode": "bridge"},
  "NetworkSettings": {"Networks": {"bridge": {"NetworkID": "n1", "IPAddress": "fd00::5"}}}},
 {"Id": "c5", "Names": [], "NetworkSettings": {"Networks": {"bridge": {"NetworkID": "n1"}}}}
]"#,
        )
        .unwrap();
        let networks = serde_json::from_str(
            r#"[{"Id": "n1", "Name": "bridge", "Scope": "local"},
                {"Id": "n2", "Name": "backend", "Scope": "local", "Internal": true, "Labels": {"com.docker.network.x": "1"}},
                {"Id": "n3", "Name": "host", "Scope": "local"}]"#,
        )
        .unwrap();
        (containers, networks)
    }

    #[test]
    fn each_container_gets_the_labels_of_its_first_target_as_promtail_reads_it() {
        let (containers, networks) = fixture();
        let how = Addressing {
            port: 9100,
            host_networking_host: "node-1",
        };
        let t = targets(&containers, &networks, &how);
        let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            ["c1", "c2", "c3", "c4"],
            "a container without a name is skipped"
        );
        let web = &t[0].labels;
        // The first network by name (backend), the first TCP port: what Promtail 3.6.15 pushed.
        assert_eq!(web["__address__"], "172.18.0.5:80");
        assert_eq!(web["__meta_docker_network_name"], "backend");
        assert_eq!(web["__meta_docker_network_internal"], "true");
        assert_eq!(web["__meta_docker_network_label_com_docker_network_x"], "1");
        assert_eq!(web["__meta_docker_port_public"], "8080");
        assert_eq!(web["__meta_docker_port_public_ip"], "0.0.0.0");
        assert_eq!(
            web["__meta_docker_container_label_com_docker_compose_service"],
            "web"
        );
        assert_eq!(t[1].labels["__address__"], "node-1");
        assert_eq!(t[2].labels["__address__"], "172.18.0.5:9100");
        assert_eq!(
            t[2].labels["__meta_docker_container_network_mode"],
            "container:c1"
        );
        assert_eq!(t[3].labels["__address__"], "[fd00::5]:9100");
        assert!(!t[3].labels.contains_key("__meta_docker_port_private"));
    }
}
