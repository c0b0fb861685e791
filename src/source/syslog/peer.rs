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

/// The name reverse DNS (through the system's resolver) gives `ip`, if any.
fn reverse_dns(ip: IpAddr) -> Option<String> {
    let addr = std::net::SocketAddr::new(ip, 0);
    let (storage, len) = sockaddr(&addr);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is a writable buffer of the
    // length given; no service name is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host` on success.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    let name = name.to_string_lossy().trim_end_matches('.').to_string();
    (!name.is_empty()).then_some(name)
}

fn sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
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
