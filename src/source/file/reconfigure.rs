//! A reload that changed only scrape configs, applied to the running file source: the files stay
//! open where they are, so nothing read is read again and nothing is skipped.
//!
//! Each open file follows its job by name: an unchanged job keeps its pipeline (and what its
//! stages hold, a `multiline` entry half-joined), a changed one gets the new pipeline and the
//! labels of the new target that matches the file, from the next line on. A removed job's files
//! are retired: what its stages hold goes out first, nothing more is read, and each is closed
//! once what was read of it is delivered — its position kept for a job that takes it up later.
//! New jobs' files are opened by the discovery that follows.

use super::{FileSource, Target};
use crate::pipeline::{Pipeline, Processing};
use crate::source::targets::ScrapeTargets;
use std::sync::Arc;

/// The file source's part of a new config.
pub struct Reconfigure {
    /// One per scrape config of the new config, in order (an unchanged job's is replaced by
    /// the running one).
    pub pipelines: Vec<Arc<Pipeline>>,
    pub scrapes: Vec<ScrapeTargets>,
    /// For each scrape config of the running config, in order: its index in the new config
    /// (the same `job_name`), `None` if it was removed.
    pub moved: Vec<Option<usize>>,
    /// For each scrape config of the new config: whether it is new or its config changed.
    pub changed: Vec<bool>,
}

impl FileSource {
    /// Takes the new scrape configs (see the module doc), then looks for their files.
    pub(super) fn reconfigure(&mut self, new: Reconfigure) {
        let Reconfigure {
            mut pipelines,
            mut scrapes,
            moved,
            changed,
        } = new;
        let replaced = |old: usize| moved.get(old).copied().flatten().is_none_or(|n| changed[n]);
        // An unchanged job goes on with its running pipeline, and what its stages hold.
        for (old, new) in moved.iter().enumerate() {
            if let (Some(new), Some(running)) = (*new, self.config.pipelines.get(old)) {
                if !changed[new] {
                    pipelines[new] = running.clone();
                }
            }
        }
        // What stages of a replaced pipeline hold goes out now: the new pipeline never saw it.
        let mut out = Vec::new();
        for (old, pipeline) in self.config.pipelines.iter().enumerate() {
            if replaced(old) {
                pipeline.flush(true, &mut out);
            }
        }
        self.held
            .extend(out.into_iter().map(Processing::into_entry));
        for s in &mut scrapes {
            s.refresh();
        }
        let targets: Vec<Target> = scrapes.iter().flat_map(|s| s.targets()).collect();
        // A removed job's files keep its pipeline, at an index past the new ones that no target
        // has: retired at once, below.
        let mut kept_for_removed: Vec<(usize, usize)> = Vec::new();
        for t in &mut self.tailers {
            let old = t.scrape();
            match moved.get(old).copied().flatten() {
                Some(new) if changed[new] => {
                    let path = std::path::Path::new(t.path());
                    let labels = targets
                        .iter()
                        .find(|target| target.scrape == new && target.glob.is_match(path))
                        .map(|target| super::open::labels_of(target, t.path()));
                    t.reassign(new, labels);
                }
                Some(new) => t.reassign(new, None),
                None => {
                    let index = match kept_for_removed.iter().find(|(o, _)| *o == old) {
                        Some((_, index)) => *index,
                        None => {
                            pipelines.push(self.config.pipelines[old].clone());
                            kept_for_removed.push((old, pipelines.len() - 1));
                            pipelines.len() - 1
                        }
                    };
                    t.reassign(index, None);
                }
            }
        }
        crate::metrics::metrics()
            .targets_active
            .set(targets.len() as i64);
        self.config.pipelines = pipelines;
        self.config.scrapes = scrapes;
        self.config.targets = targets;
        self.path_index = None;
        self.retire_unmatched();
        self.discover();
        tracing::info!(
            files = self.tailers.len(),
            "file source: the new scrape configs apply"
        );
    }
}

/// Hands new scrape configs to a running file source ([`FileSource::reconfigurer`]).
pub struct Reconfigurer {
    send: std::sync::mpsc::Sender<Reconfigure>,
    waker: Option<super::watch::Waker>,
}

impl Reconfigurer {
    /// Sends `new`; the source applies it at once if it sleeps, else after the pass it is in.
    /// `false` when the source has ended.
    pub fn send(&self, new: Reconfigure) -> bool {
        let sent = self.send.send(new).is_ok();
        if let Some(w) = &self.waker {
            w.wake();
        }
        sent
    }
}

impl FileSource {
    /// The handle a reload sends new scrape configs through (one per source; a second call
    /// replaces the first).
    pub fn reconfigurer(&mut self) -> Reconfigurer {
        let (send, receive) = std::sync::mpsc::channel();
        self.reconfigure = Some(receive);
        Reconfigurer {
            send,
            waker: self.watcher.waker(),
        }
    }

    /// Applies what a reload sent since the last look.
    pub(super) fn take_reconfigure(&mut self) {
        let Some(receive) = &self.reconfigure else {
            return;
        };
        let news: Vec<Reconfigure> = receive.try_iter().collect();
        // Each is relative to the one before: applied in order.
        for new in news {
            self.reconfigure(new);
        }
    }
}
