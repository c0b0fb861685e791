//! What changed between two config texts, section by section: the clients, each scrape config
//! (by `job_name`), and every other top-level section. A reload logs it, so that an operator sees
//! what a SIGHUP applied; it is also what deciding which parts to rebuild needs.

use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The sections that differ.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `clients` (or `client`) differ.
    pub clients: bool,
    pub jobs_added: Vec<String>,
    pub jobs_removed: Vec<String>,
    pub jobs_changed: Vec<String>,
    /// Other top-level sections that differ (`server`, `positions`, `limits_config`, …).
    pub sections: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (what, jobs) in [
            ("jobs added", &self.jobs_added),
            ("jobs removed", &self.jobs_removed),
            ("jobs changed", &self.jobs_changed),
        ] {
            if !jobs.is_empty() {
                parts.push(format!("{what}: {}", jobs.join(", ")));
            }
        }
        if self.clients {
            parts.push("clients".into());
        }
        parts.extend(self.sections.iter().cloned());
        if parts.is_empty() {
            return f.write_str("no section (a file the config names changed)");
        }
        f.write_str(&parts.join("; "))
    }
}

/// The sections of `new` that differ from `old` (both config texts, already expanded). `None`
/// when either is no YAML mapping (a config that loaded is one).
pub fn changes(old: &str, new: &str) -> Option<Changes> {
    let (old, new) = (sections(old)?, sections(new)?);
    let mut out = Changes::default();
    let client_keys = ["clients", "client"];
    out.clients = client_keys.iter().any(|k| old.get(*k) != new.get(*k));
    let (old_jobs, new_jobs) = (
        jobs(old.get("scrape_configs")),
        jobs(new.get("scrape_configs")),
    );
    for (name, job) in &new_jobs {
        match old_jobs.get(name) {
            None => out.jobs_added.push(name.clone()),
            Some(before) if before != job => out.jobs_changed.push(name.clone()),
            Some(_) => {}
        }
    }
    out.jobs_removed = old_jobs
        .keys()
        .filter(|name| !new_jobs.contains_key(*name))
        .cloned()
        .collect();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    out.sections = keys
        .into_iter()
        .filter(|k| !client_keys.contains(&k.as_str()) && k.as_str() != "scrape_configs")
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    Some(out)
}

/// The contents of each file a config text names under a key ending in `_file` (`cert_file`,
/// `ca_file`, `password_file`, …), so that a renewed certificate is a change even when the text
/// is not.
// The regex is a constant: it cannot fail on input.
#[allow(clippy::expect_used)]
pub fn named_files(text: &str) -> Vec<u8> {
    static FILE_KEY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let key = FILE_KEY.get_or_init(|| {
        regex::Regex::new(r#"\b\w+_file\s*:\s*["']?([^"',}\s]+)"#).expect("a valid regex")
    });
    let mut out = Vec::new();
    for path in key.captures_iter(text).filter_map(|c| c.get(1)) {
        out.extend_from_slice(path.as_str().as_bytes());
        out.push(0);
        out.extend_from_slice(&std::fs::read(path.as_str()).unwrap_or_default());
        out.push(0);
    }
    out
}

/// The top-level mapping of a config text, by key.
fn sections(text: &str) -> Option<BTreeMap<String, Value>> {
    let Value::Mapping(map) = serde_yaml_ng::from_str(text).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
            .collect(),
    )
}

/// The scrape configs by `job_name`.
fn jobs(list: Option<&Value>) -> BTreeMap<String, Value> {
    let Some(Value::Sequence(list)) = list else {
        return BTreeMap::new();
    };
    list.iter()
        .enumerate()
        .map(|(i, job)| {
            let name = job
                .get("job_name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{i}"), str::to_string);
            (name, job.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "server: {http_listen_port: 9080}
clients: [{url: 'http://loki/loki/api/v1/push'}]
scrape_configs:
  - job_name: audit
    static_configs: [{targets: [localhost], labels: {job: audit, __path__: /a/*.log}}]
  - job_name: syslog
    syslog: {listen_address: ':1514'}
";

    #[test]
    fn the_same_config_in_another_layout_is_no_change() {
        let reflowed = "server:\n  http_listen_port: 9080\nclients:\n  - url: http://loki/loki/api/v1/push\nscrape_configs:\n  - job_name: audit\n    static_configs:\n      - targets: [localhost]\n        labels: {__path__: /a/*.log, job: audit}\n  - {job_name: syslog, syslog: {listen_address: ':1514'}}\n";
        let c = changes(BASE, reflowed).unwrap();
        assert!(c.is_empty(), "{c}");
    }

    #[test]
    fn each_changed_section_is_named() {
        let new = BASE
            .replace("/a/*.log", "/b/*.log")
            .replace("9080", "9081")
            .replace(
                "  - job_name: syslog\n    syslog: {listen_address: ':1514'}\n",
                "  - job_name: journal\n    journal: {}\n",
            );
        let c = changes(BASE, &new).unwrap();
        assert_eq!(c.jobs_changed, ["audit"]);
        assert_eq!(c.jobs_added, ["journal"]);
        assert_eq!(c.jobs_removed, ["syslog"]);
        assert!(!c.clients);
        assert_eq!(c.sections, ["server"]);
        assert_eq!(
            c.to_string(),
            "jobs added: journal; jobs removed: syslog; jobs changed: audit; server"
        );
        let c = changes(BASE, &BASE.replace("http://loki", "http://other")).unwrap();
        assert!(c.clients && c.jobs_changed.is_empty(), "{c}");
    }
}
