//! Targets: what each scrape config tails, from `static_configs`, `file_sd_configs` and
//! `kubernetes_sd_configs` target groups, after `relabel_configs`.
//!
//! Each target of a group becomes a label set: the group's labels, `__address__` (the target),
//! and for file discovery `__meta_filepath`. Relabeling may change or drop it; what remains needs
//! `__path__` (the glob to tail) and may have `__path_exclude__`; labels starting with `__` are
//! then removed (but `__tenant_id__`). A target whose `__host__` is not this host's name is not
//! this node's to read (Promtail's rule, for a DaemonSet: `__host__` from the pod's node name).
//! File discovery files (YAML or JSON lists of
//! `{targets, labels}`) are read again every `refresh_interval` (5 m) and as soon as one changes.

use super::file::compressed::Decompression;
use super::file::discover::PathGlob;
use super::file::Target;
use super::kubernetes::KubernetesSd;
use super::relabel::{self, Relabel};
use crate::config::schema::ScrapeConfig;
use crate::entry::Labels;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Group {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, Option<String>>,
}

/// One scrape config's sources of targets.
pub struct ScrapeTargets {
    pub scrape: usize,
    pub job: String,
    static_groups: Vec<Group>,
    file_sd: Vec<FileSd>,
    kubernetes: Vec<KubernetesSd>,
    relabel: Vec<Relabel>,
    decompression: Option<Decompression>,
}

struct FileSd {
    globs: Vec<PathGlob>,
    refresh: Duration,
    read_at: Option<Instant>,
    /// (modified, length) of each file at the last read, to see changes between refreshes.
    seen: HashMap<PathBuf, (Option<SystemTime>, u64)>,
    groups: Vec<(String, Group)>,
}

impl ScrapeTargets {
    /// The targets of scrape config number `scrape`, with its relabel rules compiled.
    pub fn new(
        scrape: usize,
        sc: &ScrapeConfig,
        relabel: Vec<Relabel>,
        decompression: Option<Decompression>,
    ) -> Result<Self, String> {
        let static_groups = sc
            .static_configs
            .iter()
            .map(|s| Group {
                targets: s.targets.clone(),
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
            })
            .collect();
        let file_sd = sc
            .file_sd_configs
            .iter()
            .map(|f| {
                let globs = f
                    .files
                    .iter()
                    .map(|p| {
                        PathGlob::new(p, None).map_err(|e| {
                            format!("file_sd_configs: invalid files pattern {p:?}: {e}")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(FileSd {
                    globs,
                    refresh: f.refresh_interval.map_or(Duration::from_secs(300), |d| d.0),
                    read_at: None,
                    seen: HashMap::new(),
                    groups: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let kubernetes = sc
            .kubernetes_sd_configs
            .iter()
            .map(|k| KubernetesSd::new(&sc.job_name, k))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            scrape,
            job: sc.job_name.clone(),
            static_groups,
            file_sd,
            kubernetes,
            relabel,
            decompression,
        })
    }

    pub fn has_discovery(&self) -> bool {
        !self.file_sd.is_empty() || !self.kubernetes.is_empty()
    }

    /// Reads discovery files that are due or changed, and takes what the Kubernetes watches
    /// found; `true` when some group changed.
    pub fn refresh(&mut self) -> bool {
        let mut changed = false;
        for sd in &mut self.file_sd {
            changed |= sd.refresh(&self.job);
        }
        for sd in &mut self.kubernetes {
            changed |= sd.refresh();
        }
        changed
    }

    pub fn watches_kubernetes(&self) -> bool {
        !self.kubernetes.is_empty()
    }

    /// Whether a Kubernetes watch has news since the last [`refresh`](Self::refresh): looked at
    /// every pass, so that a new pod does not wait for the next sync.
    pub fn discovery_changed(&self) -> bool {
        self.kubernetes.iter().any(KubernetesSd::changed)
    }

    /// Every label set discovered, before relabeling: each target of each group with the group's
    /// labels, `__address__` and `__meta_filepath`; each Kubernetes target with its meta labels.
    fn discovered(&self) -> Vec<BTreeMap<String, String>> {
        let groups = self.static_groups.iter().map(|g| (None, g)).chain(
            self.file_sd
                .iter()
                .flat_map(|sd| sd.groups.iter().map(|(p, g)| (Some(p.as_str()), g))),
        );
        let mut out = Vec::new();
        for (file, group) in groups {
            let addresses: Vec<&str> = if group.targets.is_empty() {
                vec![""]
            } else {
                group.targets.iter().map(String::as_str).collect()
            };
            for address in addresses {
                let mut labels: BTreeMap<String, String> = group
                    .labels
                    .iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect();
                labels.insert("__address__".into(), address.to_string());
                if let Some(f) = file {
                    labels.insert("__meta_filepath".into(), f.to_string());
                }
                out.push(labels);
            }
        }
        for sd in &self.kubernetes {
            out.extend(sd.targets().into_iter().map(|(_, labels)| labels));
        }
        out
    }

    /// The targets now. Invalid globs are reported and skipped.
    pub fn targets(&self) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        let host = super::this_host();
        for mut labels in self.discovered() {
            if !relabel::apply(&self.relabel, &mut labels) {
                continue;
            }
            if labels.get("__host__").is_some_and(|h| *h != host) {
                continue;
            }
            let Some(pattern) = labels.get("__path__").filter(|p| !p.is_empty()) else {
                continue;
            };
            let glob = match PathGlob::new(
                pattern,
                labels.get("__path_exclude__").map(String::as_str),
            ) {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(job = %self.job, pattern = %pattern, error = %e, "invalid __path__ glob; target skipped");
                    continue;
                }
            };
            let labels: Labels = labels
                .iter()
                .filter(|(k, _)| !k.starts_with("__") || k.as_str() == crate::entry::TENANT_LABEL)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // Several addresses with the same path and labels are one target.
            if out
                .iter()
                .any(|t| t.glob.pattern() == glob.pattern() && t.labels == labels)
            {
                continue;
            }
            out.push(Target {
                glob,
                labels,
                scrape: self.scrape,
                decompression: self.decompression,
            });
        }
        out
    }
}

impl FileSd {
    fn refresh(&mut self, job: &str) -> bool {
        let files: Vec<PathBuf> = self.globs.iter().flat_map(|g| g.matches()).collect();
        let state: HashMap<PathBuf, (Option<SystemTime>, u64)> = files
            .iter()
            .filter_map(|f| {
                let m = std::fs::metadata(f).ok()?;
                Some((f.clone(), (m.modified().ok(), m.len())))
            })
            .collect();
        let due = self.read_at.is_none_or(|t| t.elapsed() >= self.refresh);
        if !due && state == self.seen {
            return false;
        }
        self.read_at = Some(Instant::now());
        self.seen = state;
        let mut groups = Vec::new();
        for f in &files {
            let path = f.display().to_string();
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(job, file = %path, error = %e, "cannot read file_sd file");
                    crate::metrics::file_error("file_sd");
                    continue;
                }
            };
            // JSON is YAML: one reader for both formats.
            match serde_yaml_ng::from_str::<Option<Vec<Group>>>(&text) {
                Ok(list) => groups.extend(
                    list.unwrap_or_default()
                        .into_iter()
                        .map(|g| (path.clone(), g)),
                ),
                Err(e) => {
                    // Keep the file's previous groups: a half-written file must not drop targets.
                    tracing::warn!(job, file = %path, error = %e, "invalid file_sd file; keeping its previous targets");
                    crate::metrics::file_error("file_sd");
                    groups.extend(self.groups.iter().filter(|(p, _)| *p == path).cloned());
                }
            }
        }
        let changed = groups != self.groups;
        if changed {
            tracing::info!(job, groups = groups.len(), "file_sd targets changed");
        }
        self.groups = groups;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Config;

    fn scrape(yaml: &str) -> ScrapeTargets {
        let config: Config = serde_yaml_ng::from_str(yaml).unwrap();
        {
            let sc = &config.scrape_configs[0];
            let relabel = sc
                .relabel_configs
                .iter()
                .map(|c| Relabel::new(c).unwrap())
                .collect();
            ScrapeTargets::new(0, sc, relabel, None).unwrap()
        }
    }

    #[test]
    fn static_targets_are_relabeled() {
        let s = scrape(
            r#"
scrape_configs:
  - job_name: system
    static_configs:
      - targets: [localhost, node-2]
        labels: {job: varlogs, __path__: /var/log/*.log, env: }
      - targets: [localhost]
        labels: {job: other, __path__: /srv/app/*.log}
    relabel_configs:
      - {source_labels: [__path__], regex: '/srv/.*', action: drop}
      - {source_labels: [__address__], target_label: host}
"#,
        );
        let t = s.targets();
        assert_eq!(
            t.len(),
            2,
            "two addresses, one path: two label sets (host differs)"
        );
        assert_eq!(t[0].glob.pattern(), "/var/log/*.log");
        assert_eq!(t[0].labels.get("host"), Some("localhost"));
        assert_eq!(t[1].labels.get("host"), Some("node-2"));
        assert_eq!(t[0].labels.get("env"), None, "a null label is no label");
        assert!(t[0].labels.iter().all(|(k, _)| !k.starts_with("__")));
    }

    #[test]
    fn file_sd_groups_are_read_and_reread_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().join("targets.yaml");
        std::fs::write(
            &sd,
            "- targets: [localhost]\n  labels: {job: a, __path__: /var/log/a.log}\n",
        )
        .unwrap();
        let yaml = format!(
            "scrape_configs:\n  - job_name: sd\n    file_sd_configs:\n      - files: ['{}/*.yaml']\n        refresh_interval: 1h\n    relabel_configs:\n      - {{source_labels: [__meta_filepath], target_label: sd_file}}\n",
            dir.path().display()
        );
        let mut s = scrape(&yaml);
        assert!(s.refresh());
        let t = s.targets();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].glob.pattern(), "/var/log/a.log");
        assert_eq!(
            t[0].labels.get("sd_file"),
            Some(sd.display().to_string().as_str())
        );
        assert!(!s.refresh(), "nothing changed, not due");

        // JSON, a second group, written after the first read: seen without waiting an hour.
        std::fs::write(
            &sd,
            r#"[{"targets":["localhost"],"labels":{"job":"a","__path__":"/var/log/a.log"}},
                {"targets":["localhost"],"labels":{"job":"b","__path__":"/var/log/b.log"}}]"#,
        )
        .unwrap();
        assert!(s.refresh());
        assert_eq!(s.targets().len(), 2);

        // A broken file keeps its previous groups.
        std::fs::write(&sd, "- targets: [\n").unwrap();
        s.refresh();
        assert_eq!(s.targets().len(), 2);
    }
}
