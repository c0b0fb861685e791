//! Opening files: each target's glob is matched, and each file not open yet (by identity, so a
//! rotated file still matched is not read twice) becomes a [`Tailer`] at the offset the positions
//! ledger gives. What cannot be read (not a regular file, no permission, compressed without
//! `decompression`) is reported once, until it can be.

use super::compressed;
use super::identity::FileId;
use super::tailer::{Opening, Tailer};
use super::{FileSource, Target};
use crate::metrics::metrics;
use std::collections::HashSet;
use std::path::Path;

impl FileSource {
    /// Opens matching files that are not open yet.
    pub(super) fn discover(&mut self) {
        self.refresh_targets();
        self.announce_targets();
        let mut open: HashSet<FileId> = self.tailers.iter().map(|t| t.id()).collect();
        for index in 0..self.config.targets.len() {
            let target = &self.config.targets[index];
            self.watcher.watch(target.glob.base());
            let matches = target.glob.matches();
            self.report_matches(index, matches.len());
            for path in matches {
                let target = &self.config.targets[index];
                if target.glob.recursive() {
                    if let Some(dir) = path.parent() {
                        self.watcher.watch(dir);
                    }
                }
                if let Some(t) = self.open_file(index, &path, &open) {
                    open.insert(t.id());
                    self.tailers.push(t);
                    self.path_index = None;
                }
            }
        }
        metrics().files_active.set(self.tailers.len() as i64);
    }

    /// A tailer for `path`, matched by target `index`, unless it is open already (`open`), not to
    /// be read, or not to be read yet.
    fn open_file(&mut self, index: usize, path: &Path, open: &HashSet<FileId>) -> Option<Tailer> {
        let (path_str, file, meta, id) = self.openable(index, path, open)?;
        let target = &self.config.targets[index];
        let decompress = target
            .decompression
            .and_then(|d| compressed::format_of(&file, d.format).map(|format| (d, format)));
        if let Some((d, _)) = decompress {
            let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
            if age.is_none_or(|age| age < d.initial_delay) || self.positions.is_complete(id, &file)
            {
                // Still being written (initial_delay), or read completely before.
                return None;
            }
        }
        // A compressed file's offsets are in its decompressed content, not bounded by its size.
        let size = if decompress.is_some() {
            u64::MAX
        } else {
            meta.len()
        };
        let opened = self.positions.open(id, &path_str, &file, size);
        let start = opened.start;
        let opening = Opening {
            labels: labels_of(target, &path_str),
            path: path_str,
            id,
            scrape: target.scrape,
            file,
            decompress: decompress.map(|(_, format)| format),
            watched: self.is_watched(path),
        };
        let compressed = opening.decompress.is_some();
        let path_str = opening.path.clone();
        match Tailer::open(opening, opened) {
            Ok(t) if compressed => {
                tracing::info!(path = %path_str, offset = start, "reading compressed file");
                Some(t)
            }
            Ok(t) => {
                tracing::info!(path = %path_str, offset = start, "tailing file");
                Some(t)
            }
            Err(e) if compressed => {
                tracing::warn!(path = %path_str, error = %e, "cannot decompress file");
                crate::metrics::file_error("decompress");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path_str, error = %e, "cannot seek in file");
                None
            }
        }
    }

    /// `path` opened, unless it is compressed without `decompression`, not a regular file, open
    /// already, or cannot be opened (each reported once, until it can be read).
    fn openable(
        &mut self,
        index: usize,
        path: &Path,
        open: &HashSet<FileId>,
    ) -> Option<(String, std::fs::File, std::fs::Metadata, FileId)> {
        let target = &self.config.targets[index];
        let path_str = path.display().to_string();
        if target.decompression.is_none() && compressed::is_compressed_name(path) {
            // A rotated generation compressed by logrotate: its lines were read from the file
            // before it was compressed, and its bytes are not lines.
            if self.unreadable.insert(path_str.clone()) {
                tracing::info!(path = %path_str, "compressed file ignored (decompression is not configured)");
            }
            return None;
        }
        // Follows symlinks: a link is known by its target's identity.
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            // A directory, FIFO, socket or device matched by the glob: opening a FIFO would block
            // the thread, and none of them is a log file.
            if self.unreadable.insert(path_str.clone()) {
                tracing::warn!(path = %path_str, "not a regular file; ignored");
                crate::metrics::file_error("not_regular_file");
            }
            return None;
        }
        let id = FileId::of(&meta);
        if open.contains(&id) {
            return None;
        }
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                if self.unreadable.insert(path_str.clone()) {
                    tracing::warn!(path = %path_str, error = %e, "cannot open file; will retry at the next sync");
                    crate::metrics::file_error("open");
                }
                return None;
            }
        };
        self.unreadable.remove(&path_str);
        Some((path_str, file, meta, id))
    }

    /// inotify reports writes to `path`: its directory is watched and it is no symlink (a
    /// link's target changes where inotify does not look).
    fn is_watched(&self, path: &Path) -> bool {
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        !is_link && path.parent().is_some_and(|dir| self.watcher.covers(dir))
    }
}

/// A file's labels: its target's, plus `filename`.
pub(crate) fn labels_of(target: &Target, path: &str) -> crate::entry::Labels {
    let mut labels = target.labels.clone();
    labels.insert("filename", path.to_string());
    labels
}
