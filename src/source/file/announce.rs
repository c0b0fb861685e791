//! What an operator needs to hear about targets, as Promtail logs "Adding target": each target
//! added and removed (info), a glob that matches no file (warn, once, until it matches one), and a
//! `__path__` that names a directory (warn: it matches no file; `dir/*.log` would).

use super::FileSource;
use std::collections::HashSet;
use std::path::Path;

/// The targets already announced, and the globs already reported as matching nothing.
#[derive(Default)]
pub(super) struct Announced {
    targets: HashSet<String>,
    empty: HashSet<String>,
}

/// A target as the log names it: `glob:{labels}`, as Promtail's target keys.
fn key(target: &super::Target) -> String {
    format!("{}:{}", target.glob.pattern(), target.labels.render())
}

impl FileSource {
    /// Logs the targets added and removed since the last call.
    pub(super) fn announce_targets(&mut self) {
        let now: HashSet<String> = self.config.targets.iter().map(key).collect();
        for target in &self.config.targets {
            let k = key(target);
            if self.announced.targets.contains(&k) {
                continue;
            }
            tracing::info!(target = %k, "adding target");
            let pattern = target.glob.pattern();
            if !pattern.contains(['*', '?', '[', '{']) && Path::new(pattern).is_dir() {
                tracing::warn!(path = %pattern, "__path__ is a directory, which holds no lines: it matches no file (did you mean {pattern}/*.log?)");
            }
        }
        for k in self.announced.targets.difference(&now) {
            tracing::info!(target = %k, "removing target");
        }
        self.announced.empty.retain(|k| now.contains(k));
        self.announced.targets = now;
    }

    /// Warns once when `target`'s glob matched no file; forgets it once it matches one.
    /// The key is rendered only for an empty glob, or to forget one: at every look at the files
    /// most globs match something and nothing is empty.
    pub(super) fn report_matches(&mut self, target: usize, matched: usize) {
        if matched > 0 && self.announced.empty.is_empty() {
            return;
        }
        let k = key(&self.config.targets[target]);
        if matched > 0 {
            self.announced.empty.remove(&k);
        } else if self.announced.empty.insert(k.clone()) {
            tracing::warn!(target = %k, "the target's glob matches no file (yet); files that appear are picked up");
        }
    }
}
