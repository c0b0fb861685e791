//! `-print-config-stderr`: the config as it runs, in the shape Promtail prints it — every section
//! and key in Promtail's order, defaults filled in where the file is silent (`printed-defaults.yaml`:
//! Promtail 3.6.15's own output, with lokiship's values where they differ), each client, relabel
//! rule, journal block and docker_sd_configs entry filled in as well, and secrets masked.

use serde_yaml_ng::Value;

const DEFAULTS: &str = include_str!("printed-defaults.yaml");

/// The printed config for `text` (already expanded, if `-config.expand-env` is on); None when the
/// text is not a YAML mapping (then it would not have loaded).
pub fn printed(text: &str, version: &str) -> Option<String> {
    let text = super::yaml_compat::empty_flow_values(text.to_string());
    let config: Value = serde_yaml_ng::from_str(&text).ok()?;
    let Value::Mapping(mut defaults) = serde_yaml_ng::from_str::<Value>(DEFAULTS).ok()? else {
        return None;
    };
    let client = defaults.remove("_client")?;
    let relabel = defaults.remove("_relabel")?;
    let journal = defaults.remove("_journal")?;
    let docker = defaults.remove("_docker")?;
    let mut merged = merge(
        Value::Mapping(defaults),
        config.as_mapping()?.clone().into(),
    );
    if let Some(single) = merged.get_mut("client") {
        *single = merge(client.clone(), single.clone());
    }
    if let Some(Value::Sequence(clients)) = merged.get_mut("clients") {
        for c in clients.iter_mut() {
            *c = merge(client.clone(), c.clone());
        }
    }
    if let Some(Value::Sequence(jobs)) = merged.get_mut("scrape_configs") {
        for job in jobs.iter_mut() {
            fill_job(job, &relabel, &journal, &docker);
        }
    }
    go_durations(&mut merged);
    let yaml = serde_yaml_ng::to_string(&merged).ok()?;
    Some(format!(
        "---\n# lokiship Config\n# (version={version})\n{}",
        super::expand::mask_secrets(&yaml)
    ))
}

/// The keys whose values are durations, printed as Go prints them (`5m` → `5m0s`).
const DURATIONS: &[&str] = &[
    "batchwait",
    "timeout",
    "min_period",
    "max_period",
    "sync_period",
    "refresh_interval",
    "max_wait_time",
    "max_age",
    "idle_timeout",
    "max_idle_duration",
    "older_than",
    "initial_delay",
    "min_poll_frequency",
    "max_poll_frequency",
    "cleanSegmentsOlderThan",
    "graceful_shutdown_timeout",
    "http_server_read_timeout",
    "http_server_write_timeout",
    "http_server_idle_timeout",
    "reject_old_samples_max_age",
    "unhealthy_after",
];

fn go_durations(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let is_duration = k.as_str().is_some_and(|k| DURATIONS.contains(&k));
                match v {
                    Value::String(text) if is_duration => {
                        if let Ok(d) = super::values::parse_duration(text) {
                            *text = super::values::GoDuration(d).to_string();
                        }
                    }
                    other => go_durations(other),
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(go_durations),
        _ => {}
    }
}

fn fill_job(job: &mut Value, relabel: &Value, journal: &Value, docker: &Value) {
    let Some(map) = job.as_mapping_mut() else {
        return;
    };
    if let Some(Value::Sequence(rules)) = map.get_mut("relabel_configs") {
        for rule in rules.iter_mut() {
            *rule = merge(relabel.clone(), rule.clone());
        }
    }
    if let Some(block) = map.get_mut("journal") {
        *block = merge(journal.clone(), block.clone());
    }
    if let Some(Value::Sequence(entries)) = map.get_mut("docker_sd_configs") {
        for entry in entries.iter_mut() {
            *entry = merge(docker.clone(), entry.clone());
        }
    }
    if !map.contains_key("static_configs") {
        map.insert("static_configs".into(), Value::Sequence(Vec::new()));
    }
}

/// `over` laid over `base`: mappings key by key in `base`'s order (keys only `over` has after
/// them), anything else replaced. A key given without a value (`log_level:`) keeps the default.
fn merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut base), Value::Mapping(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => {
                        let b = std::mem::replace(slot, Value::Null);
                        *slot = if v.is_null() { b } else { merge(b, v) };
                    }
                    None => {
                        base.insert(k, v);
                    }
                }
            }
            Value::Mapping(base)
        }
        (base, Value::Null) => base,
        (_, over) => over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_filled_in_promtails_order_and_secrets_masked() {
        let text = "positions: {filename: /tmp/p.yaml}\nclients:\n  - url: http://loki:3100/loki/api/v1/push\n    batchwait: 2m\n    basic_auth: {username: u, password: hunter2}\nscrape_configs:\n  - job_name: a\n    relabel_configs: [{source_labels: [x], target_label: y}]\n";
        let out = printed(text, "test").unwrap();
        assert!(out.starts_with("---\n# lokiship Config\n"), "{out}");
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("password: <secret>"), "{out}");
        for key in [
            "http_listen_port: 9080",
            "batchwait: 2m0s",
            "max_retries: 10",
            "sync_period: 10s",
            "filename: /tmp/p.yaml",
            "replacement: $1",
            "action: replace",
            "static_configs: []",
            "readline_rate: 10000",
        ] {
            assert!(out.contains(key), "{key} missing:\n{out}");
        }
        let order: Vec<usize> = [
            "global:",
            "server:",
            "clients:",
            "positions:",
            "scrape_configs:",
            "target_config:",
            "limits_config:",
            "wal:",
        ]
        .iter()
        .map(|k| {
            out.find(&format!("\n{k}"))
                .unwrap_or_else(|| panic!("{k}:\n{out}"))
        })
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "Promtail's order:\n{out}"
        );
        let again = crate::config::load_str(
            "printed",
            &out.replace("<secret>", "x"),
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("the printed config loads: {e}\n{out}"));
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    }
}
