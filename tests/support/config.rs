//! One builder for the configs the tests run lokiship with: Promtail's YAML, with the short
//! periods tests want (positions and targets every 200 ms, polling every 50 ms), the server off
//! (see [`super::enable_server`]), and the clients and jobs a test names. Tests that need a
//! variation replace a line of what it renders.

use std::path::{Path, PathBuf};

/// The audit pipeline: labels `user`, `verb`, `code`; `audit_id` as structured metadata; the
/// event's `stageTimestamp`.
pub const AUDIT_STAGES: &str = r#"      - json:
          expressions: {user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}
      - labels: {user: "", verb: "", code: ""}
      - structured_metadata: {audit_id: ""}
      - timestamp: {source: ts, format: RFC3339Nano}
"#;

pub struct ConfigBuilder {
    dir: PathBuf,
    target_sync: bool,
    poll: bool,
    limits: Option<String>,
    wal: Option<String>,
    clients: String,
    jobs: String,
}

impl ConfigBuilder {
    /// A config written to `dir/config.yaml`, its positions beside it.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            target_sync: true,
            poll: true,
            limits: None,
            wal: None,
            clients: String::new(),
            jobs: String::new(),
        }
    }

    /// Without `target_config` (Promtail's 10 s sync).
    pub fn default_sync(mut self) -> Self {
        self.target_sync = false;
        self
    }

    /// Without `global.file_watch_config` (Promtail's polling periods).
    pub fn default_poll(mut self) -> Self {
        self.poll = false;
        self
    }

    /// `limits_config: {<limits>}`.
    pub fn limits(mut self, limits: &str) -> Self {
        self.limits = Some(limits.to_string());
        self
    }

    /// `wal: <wal>`.
    pub fn wal(mut self, wal: &str) -> Self {
        self.wal = Some(wal.to_string());
        self
    }

    /// A client pushing to `url`, with `settings` (one `key: value` each).
    pub fn client(mut self, url: &str, settings: &[&str]) -> Self {
        self.clients.push_str(&format!("  - url: {url}\n"));
        for s in settings {
            self.clients.push_str(&format!("    {s}\n"));
        }
        self
    }

    /// Clients given as YAML list items (`  - url: …`), as they are.
    pub fn raw_clients(mut self, yaml: &str) -> Self {
        self.clients.push_str(yaml);
        if !yaml.is_empty() && !yaml.ends_with('\n') {
            self.clients.push('\n');
        }
        self
    }

    /// A job `name` tailing `glob` with the labels `labels` (`job: x`, …) and `stages` (YAML list
    /// items indented by six spaces; empty for none).
    pub fn job(mut self, name: &str, labels: &str, glob: &str, stages: &str) -> Self {
        self.jobs.push_str(&format!(
            "  - job_name: {name}\n    static_configs:\n      - targets: [localhost]\n        labels: {{{labels}, __path__: \"{glob}\"}}\n"
        ));
        if !stages.is_empty() {
            self.jobs.push_str("    pipeline_stages:\n");
            self.jobs.push_str(stages);
            if !stages.ends_with('\n') {
                self.jobs.push('\n');
            }
        }
        self
    }

    pub fn render(&self) -> String {
        let mut text = format!(
            "server: {{disable: true}}\npositions: {{filename: {}/positions.yaml, sync_period: 200ms}}\n",
            self.dir.display()
        );
        if self.target_sync {
            text.push_str("target_config: {sync_period: 200ms}\n");
        }
        if self.poll {
            text.push_str("global: {file_watch_config: {min_poll_frequency: 50ms, max_poll_frequency: 50ms}}\n");
        }
        if let Some(limits) = &self.limits {
            text.push_str(&format!("limits_config: {{{limits}}}\n"));
        }
        if let Some(wal) = &self.wal {
            text.push_str(&format!("wal: {wal}\n"));
        }
        text.push_str("clients:\n");
        text.push_str(&self.clients);
        text.push_str("scrape_configs:\n");
        text.push_str(&self.jobs);
        text
    }

    /// Writes `config.yaml` in the directory; its path.
    pub fn write(&self) -> PathBuf {
        let path = self.dir.join("config.yaml");
        std::fs::write(&path, self.render()).unwrap();
        path
    }
}
