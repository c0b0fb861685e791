//! Who sent a message: `__syslog_connection_ip_address` and `__syslog_connection_hostname`.
//!
//! Promtail sets the hostname to every name the address has, joined by commas: the names
//! `/etc/hosts` gives it (all of them, in file order), else the one reverse DNS gives. Lookups are
//! cached for a minute, failed ones too, so a sender without a PTR record costs one lookup a minute,
//! not one per message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CACHE_FOR: Duration = Duration::from_secs(60);

/// The connection labels of one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub ip: String,
    pub hostname: Option<String>,
}

/// Reverse lookups, cached.
#[derive(Default)]
pub struct Lookup {
    cache: Mutex<HashMap<IpAddr, (Instant, Arc<Peer>)>>,
}

impl Lookup {
    /// The labels for `ip` if looked up less than a minute ago; never blocks.
    pub fn cached(&self, ip: IpAddr) -> Option<Arc<Peer>> {
        let cache = self.cache.lock().ok()?;
        let (at, peer) = cache.get(&ip)?;
        (at.elapsed() < CACHE_FOR).then(|| peer.clone())
    }

    /// The labels for `ip`; may block on DNS (call it off the async workers).
    pub fn peer(&self, ip: IpAddr) -> Arc<Peer> {
        if let Some(peer) = self.cached(ip) {
            return peer;
        }
        let shown = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let mut names = hosts_names(&hosts, shown);
        if names.is_empty() {
            names.extend(reverse_dns(shown));
        }
        let peer = Arc::new(Peer {
            ip: shown.to_string(),
            hostname: (!names.is_empty()).then(|| names.join(",")),
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(ip, (Instant::now(), peer.clone()));
        }
        peer
    }
}

/// Every name `hosts` (the text of `/etc/hosts`) gives `ip`, in order, once each.
fn hosts_names(hosts: &str, ip: IpAddr) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        if fields.next().and_then(|a| a.parse::<IpAddr>().ok()) != Some(ip) {
            continue;
        }
        for name in fields {
            let name = name.trim_end_matches('.');
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The name reverse DNS (through the system's resolver: getnameinfo with `NI_NAMEREQD`) gives
/// `ip`, if any.
fn reverse_dns(ip: IpAddr) -> Option<String> {
    let name = dns_lookup::lookup_addr(&ip).ok()?;
    let name = name.trim_end_matches('.').to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hosts_name_of_the_address_in_order() {
        let hosts = "# comment\n127.0.0.1 localhost\n127.0.0.1 runsc vm. # x\n::1 localhost ip6\n10.0.0.1 other\n127.0.0.1 localhost\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            hosts_names(hosts, ip("127.0.0.1")),
            ["localhost", "runsc", "vm"]
        );
        assert_eq!(hosts_names(hosts, ip("::1")), ["localhost", "ip6"]);
        assert!(hosts_names(hosts, ip("10.9.9.9")).is_empty());
    }

    #[test]
    fn an_ipv4_mapped_address_is_shown_as_ipv4() {
        let lookup = Lookup::default();
        let peer = lookup.peer("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(peer.ip, "127.0.0.1");
    }
}
