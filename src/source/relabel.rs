//! `relabel_configs`, with Prometheus' semantics, applied to a target's labels (`__path__`,
//! `__address__`, `__meta_*` and the static labels) before it is tailed.
//!
//! Actions: `replace` (default), `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`,
//! `labeldrop`, `labelkeep`, `lowercase`, `uppercase`. The regex is anchored at both ends;
//! defaults are Prometheus': `regex: (.*)`, `separator: ;`, `replacement: $1`.

use crate::config::go_regex;
use crate::config::schema::RelabelConfig as Config;
use std::collections::BTreeMap;
use std::fmt;

use crate::config::values::RelabelAction as Action;

#[derive(Debug, Clone)]
pub struct Relabel {
    action: Action,
    source_labels: Vec<String>,
    separator: String,
    regex: regex::Regex,
    target_label: String,
    replacement: String,
    modulus: u64,
}

#[derive(Debug)]
pub struct RelabelError(pub String);

impl fmt::Display for RelabelError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RelabelError {}

impl Relabel {
    pub fn new(c: &Config) -> Result<Self, RelabelError> {
        let err = |m: &str| Err(RelabelError(m.to_string()));
        let action = c.action.unwrap_or(Action::Replace);
        let pattern = c.regex.as_deref().unwrap_or("(.*)");
        let regex = go_regex::compile(&format!("^(?:{pattern})$"))
            .map_err(|e| RelabelError(format!("invalid regex {pattern:?}: {e}")))?;
        let target = c.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::KeepEqual
                | Action::DropEqual
                | Action::Lowercase
                | Action::Uppercase
        );
        if needs_target && target.is_empty() {
            return err("target_label is required for this action");
        }
        if action == Action::HashMod && c.modulus.unwrap_or(0) == 0 {
            return err("hashmod needs a modulus greater than 0");
        }
        Ok(Self {
            action,
            source_labels: c.source_labels.clone(),
            separator: c.separator.clone().unwrap_or_else(|| ";".into()),
            regex,
            target_label: target,
            replacement: c.replacement.clone().unwrap_or_else(|| "$1".into()),
            modulus: c.modulus.unwrap_or(0),
        })
    }
}

/// The labels of an entry of a streamed source (the journal, syslog): the job's `labels` over the
/// source's meta labels, through `rules`, without the `__` ones; `None` when a rule dropped the
/// entry or no label is left (Loki takes no stream without one). `meta` is called only when there
/// are rules to read the meta labels: without rules they could only be dropped.
pub fn entry_labels(
    job_labels: &[(String, String)],
    rules: &[Relabel],
    meta: impl FnOnce() -> BTreeMap<String, String>,
) -> Option<crate::entry::Labels> {
    let mut out = crate::entry::Labels::new();
    if rules.is_empty() {
        for (name, value) in job_labels {
            if !name.starts_with("__") {
                out.insert(name, value.as_str());
            }
        }
    } else {
        let mut all = meta();
        for (name, value) in job_labels {
            all.insert(name.clone(), value.clone());
        }
        if !apply(rules, &mut all) {
            return None;
        }
        for (name, value) in all {
            if !name.starts_with("__") {
                out.insert(&name, value);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Applies `rules` in order; `false` when the target is dropped.
pub fn apply(rules: &[Relabel], labels: &mut BTreeMap<String, String>) -> bool {
    for r in rules {
        let value = r
            .source_labels
            .iter()
            .map(|n| labels.get(n).map_or("", String::as_str))
            .collect::<Vec<_>>()
            .join(&r.separator);
        match r.action {
            Action::Replace => {
                let Some(caps) = r.regex.captures(&value) else {
                    continue;
                };
                let mut target = String::new();
                caps.expand(&r.target_label, &mut target);
                let mut new = String::new();
                caps.expand(&r.replacement, &mut new);
                if !crate::config::values::is_valid_label_name(&target) {
                    continue;
                }
                if new.is_empty() {
                    labels.remove(&target);
                } else {
                    labels.insert(target, new);
                }
            }
            Action::Keep if !r.regex.is_match(&value) => return false,
            Action::Drop if r.regex.is_match(&value) => return false,
            Action::KeepEqual
                if labels.get(&r.target_label).map_or("", String::as_str) != value =>
            {
                return false
            }
            Action::DropEqual
                if labels.get(&r.target_label).map_or("", String::as_str) == value =>
            {
                return false
            }
            Action::HashMod => {
                let digest = md5::compute(value.as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest.0[8..]);
                let hash = u64::from_be_bytes(tail) % r.modulus;
                labels.insert(r.target_label.clone(), hash.to_string());
            }
            Action::LabelMap => {
                let mapped: Vec<(String, String)> = labels
                    .iter()
                    .filter_map(|(name, v)| {
                        let caps = r.regex.captures(name)?;
                        let mut new = String::new();
                        caps.expand(&r.replacement, &mut new);
                        Some((new, v.clone()))
                    })
                    .collect();
                labels.extend(mapped);
            }
            Action::LabelDrop => labels.retain(|name, _| !r.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| r.regex.is_match(name)),
            Action::Lowercase => {
                labels.insert(r.target_label.clone(), value.to_lowercase());
            }
            Action::Uppercase => {
                labels.insert(r.target_label.clone(), value.to_uppercase());
            }
            Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Relabel> {
        let configs: Vec<Config> = serde_yaml_ng::from_str(yaml).unwrap();
        configs.iter().map(|c| Relabel::new(c).unwrap()).collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replace_with_groups_defaults_and_deletion() {
        let r = rules(
            r#"
- source_labels: [__path__]
  regex: '/var/log/(\w+)/.*'
  target_label: component
- source_labels: [__meta_ns, __meta_pod]
  separator: /
  target_label: instance
- source_labels: [__meta_absent]
  target_label: env
- source_labels: [__meta_pod]
  regex: '(?P<app>[a-z]+)-\w+'
  target_label: app
  replacement: '${app}_x'
"#,
        );
        let mut l = labels(&[
            ("__path__", "/var/log/kube/audit.log"),
            ("__meta_ns", "prod"),
            ("__meta_pod", "web-1"),
            ("env", "old"),
        ]);
        assert!(apply(&r, &mut l));
        assert_eq!(l["component"], "kube");
        assert_eq!(l["instance"], "prod/web-1");
        assert!(
            !l.contains_key("env"),
            "an empty replacement deletes the target label"
        );
        assert_eq!(l["app"], "web_x");
    }

    #[test]
    fn keep_drop_and_label_set_actions() {
        let keep = rules("- {source_labels: [__path__], regex: '.*\\.log', action: keep}");
        assert!(apply(&keep, &mut labels(&[("__path__", "/a.log")])));
        assert!(!apply(&keep, &mut labels(&[("__path__", "/a.txt")])));
        let drop = rules("- {source_labels: [ns], regex: kube-.*, action: drop}");
        assert!(!apply(&drop, &mut labels(&[("ns", "kube-system")])));
        assert!(apply(&drop, &mut labels(&[("ns", "default")])));

        let mut l = labels(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_x", "1"),
            ("job", "j"),
        ]);
        let r = rules(
            r#"
- {action: labelmap, regex: '__meta_kubernetes_pod_label_(.+)'}
- {action: labeldrop, regex: '__meta_.*'}
- {source_labels: [app], target_label: shard, action: hashmod, modulus: 8}
- {source_labels: [app], target_label: APP_UPPER, action: uppercase}
"#,
        );
        assert!(apply(&r, &mut l));
        assert_eq!(l["app"], "web");
        assert!(!l.keys().any(|k| k.starts_with("__meta")));
        let shard: u64 = l["shard"].parse().unwrap();
        assert!(shard < 8);
        assert_eq!(l["APP_UPPER"], "WEB");
        let keep = rules("- {action: labelkeep, regex: 'app|job'}");
        assert!(apply(&keep, &mut l));
        assert_eq!(l.keys().collect::<Vec<_>>(), vec!["app", "job"]);
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("web") = 2567a5ec9705eb7ac2c984033e06189d; last 8 bytes c2c984033e06189d.
        let r = rules("- {source_labels: [app], target_label: s, action: hashmod, modulus: 1000}");
        let mut l = labels(&[("app", "web")]);
        apply(&r, &mut l);
        assert_eq!(l["s"], (0xc2c984033e06189d_u64 % 1000).to_string());
    }

    #[test]
    fn invalid_rules_are_refused() {
        for bad in [
            "{action: replace, source_labels: [a]}",
            "{action: hashmod, target_label: s}",
            "{action: explode}",
            "{regex: '(', target_label: x}",
        ] {
            // Refused when read (an action that is no keyword) or when compiled.
            let refused =
                serde_yaml_ng::from_str::<Config>(bad).map_or(true, |c| Relabel::new(&c).is_err());
            assert!(refused, "{bad}");
        }
    }
}
