//! The positions on disk: two files, each written atomically.
//!
//! - `positions.filename` holds Promtail's format and nothing else — `positions:`, a map of path
//!   to offset (a string) — because Promtail reads it strictly: a node switched back to Promtail
//!   resumes where lokiship stopped instead of refusing to start.
//! - `<filename>.lokiship` holds what only lokiship knows, versioned ([`VERSION`]): each file's
//!   identity (device, inode, fingerprint) and offset, and the earlier contents of truncated files
//!   (`truncated:`) for the copies copytruncate makes of them.
//!
//! Read back: the identity file when there is one; else the positions file, which is Promtail's, or
//! lokiship's own before version 2 (the identities were kept in it, under `files:`). A file of a
//! newer version is refused, not misread.

use crate::source::file::identity::{FileId, Fingerprint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The version of the identity file this build writes, and the newest it reads.
pub const VERSION: u32 = 2;

/// Promtail's positions file; before version 2, lokiship's identities were in it too.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PromtailFile {
    #[serde(default)]
    pub positions: BTreeMap<String, String>,
    /// Version 1 only (read, never written here).
    #[serde(default, skip_serializing)]
    pub files: Vec<FileRecord>,
    /// Version 1 only (read, never written here).
    #[serde(default, skip_serializing)]
    pub truncated: Vec<GenerationRecord>,
}

/// lokiship's identity file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct IdentityFile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRecord>,
    /// Earlier contents of truncated files, for the copy that copytruncate made of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<GenerationRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub path: String,
    #[serde(default)]
    pub dev: u64,
    #[serde(default)]
    pub inode: u64,
    pub offset: u64,
    pub fingerprint_len: u64,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    pub offset: u64,
    #[serde(default)]
    pub fingerprint_len: u64,
    #[serde(default)]
    pub fingerprint: String,
    /// A compressed file read to its end and acknowledged: not opened again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub complete: bool,
}

impl FileRecord {
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            inode: self.inode,
        }
    }
}

impl GenerationRecord {
    /// The file that held the content.
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            inode: self.inode,
        }
    }
}

/// A fingerprint's hash as written: 16 hex digits.
pub fn hex(fp: &Fingerprint) -> String {
    format!("{:016x}", fp.hash)
}

/// The fingerprint written as `len` and [`hex`]; an unreadable hash matches nothing.
pub fn fingerprint(len: u64, hex: &str) -> Fingerprint {
    Fingerprint {
        len,
        hash: u64::from_str_radix(hex, 16).unwrap_or(0),
    }
}

/// How Promtail names a journal's cursor entry in its positions map: `journal-<job_name>`.
pub const CURSOR_PREFIX: &str = "journal-";
/// How Promtail names a Docker container's entry: `cursor-<container id>` → the time of its last
/// line read, in Unix seconds (lokiship writes `seconds.nanoseconds`).
pub const DOCKER_CURSOR_PREFIX: &str = "cursor-";

/// Whether an entry of the positions map is a cursor rather than a file's offset: a Docker
/// container's time is a number too, and must not be taken for a file's offset.
fn is_cursor_key(key: &str) -> bool {
    key.starts_with(CURSOR_PREFIX) || key.starts_with(DOCKER_CURSOR_PREFIX)
}

/// Everything the two files say.
#[derive(Debug, Default)]
pub struct OnDisk {
    /// Promtail's map: path → offset.
    pub positions: BTreeMap<String, u64>,
    /// Promtail's cursor entries in the same map: `journal-<job>` → the journal cursor.
    pub cursors: BTreeMap<String, String>,
    pub files: Vec<FileRecord>,
    pub truncated: Vec<GenerationRecord>,
}

/// Where the identity file of the positions file `path` is.
pub fn identity_path(path: &Path) -> PathBuf {
    sibling(path, ".lokiship")
}

/// Where the previous copy of `path` is kept (a hard link made before each write).
pub fn previous_copy(path: &Path) -> PathBuf {
    sibling(path, ".prev")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// What is wrong with the files on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("{0}")]
    Positions(String),
    #[error("identity file: {0}")]
    Identities(String),
    /// Not damage: a newer lokiship wrote it, and a downgrade must not misread it.
    #[error("identity file: written by a newer lokiship (format version {0}; this one reads up to {VERSION}); downgrading needs that file removed, which reads every file again from the positions")]
    Newer(u32),
}

/// Parses the positions file's text and, when there is one, the identity file's.
pub fn parse(promtail: &str, identity: Option<&str>) -> Result<OnDisk, Damage> {
    let main = parse_positions(promtail).map_err(Damage::Positions)?;
    let (files, truncated) = match identity {
        Some(text) => {
            let ids = parse_identities(text)?;
            (ids.files, ids.truncated)
        }
        None => (main.files, main.truncated),
    };
    Ok(OnDisk {
        positions: main.positions,
        cursors: main.cursors,
        files,
        truncated,
    })
}

/// Promtail's file, its map split into files' offsets and cursors.
pub struct Positions {
    pub positions: BTreeMap<String, u64>,
    pub cursors: BTreeMap<String, String>,
    pub files: Vec<FileRecord>,
    pub truncated: Vec<GenerationRecord>,
}

pub fn parse_positions(promtail: &str) -> Result<Positions, String> {
    let main: PromtailFile = if promtail.trim().is_empty() {
        PromtailFile::default()
    } else {
        serde_yaml_ng::from_str(promtail).map_err(|e| e.to_string())?
    };
    let mut positions = BTreeMap::new();
    let mut cursors = BTreeMap::new();
    for (path, offset) in main.positions {
        if is_cursor_key(&path) {
            cursors.insert(path, offset);
            continue;
        }
        match offset.trim().parse::<u64>() {
            Ok(offset) => {
                positions.insert(path, offset);
            }
            Err(_) => return Err(format!("offset {offset:?} of {path:?} is not a number")),
        }
    }
    Ok(Positions {
        positions,
        cursors,
        files: main.files,
        truncated: main.truncated,
    })
}

pub fn parse_identities(text: &str) -> Result<IdentityFile, Damage> {
    let ids: IdentityFile =
        serde_yaml_ng::from_str(text).map_err(|e| Damage::Identities(e.to_string()))?;
    if ids.version > VERSION {
        return Err(Damage::Newer(ids.version));
    }
    Ok(ids)
}

/// The two files' texts: (positions file, identity file).
pub fn render(on_disk: &OnDisk) -> Result<(String, String), serde_yaml_ng::Error> {
    let main = PromtailFile {
        positions: on_disk
            .positions
            .iter()
            .map(|(path, offset)| (path.clone(), offset.to_string()))
            .chain(on_disk.cursors.clone())
            .collect(),
        ..Default::default()
    };
    let ids = IdentityFile {
        version: VERSION,
        files: on_disk.files.clone(),
        truncated: on_disk.truncated.clone(),
    };
    Ok((
        serde_yaml_ng::to_string(&main)?,
        serde_yaml_ng::to_string(&ids)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, offset: u64) -> FileRecord {
        FileRecord {
            path: path.into(),
            dev: 1,
            inode: 2,
            offset,
            fingerprint_len: 3,
            fingerprint: "00000000000000ff".into(),
            complete: false,
        }
    }

    #[test]
    fn the_positions_file_is_promtails_alone_and_the_identities_go_beside_it() {
        let on_disk = OnDisk {
            positions: [("/var/log/a.log".to_string(), 42)].into_iter().collect(),
            files: vec![record("/var/log/a.log", 42)],
            ..OnDisk::default()
        };
        let (main, ids) = render(&on_disk).unwrap();
        assert_eq!(main, "positions:\n  /var/log/a.log: '42'\n");
        assert!(ids.starts_with("version: 2\n"), "{ids}");
        let back = parse(&main, Some(&ids)).unwrap();
        assert_eq!(back.positions["/var/log/a.log"], 42);
        assert_eq!(back.files.len(), 1);
        assert_eq!(back.files[0].inode, 2);
    }

    #[test]
    fn version_1_files_with_identities_inside_are_still_read() {
        let v1 = "positions:\n  /a.log: '7'\nfiles:\n- path: /a.log\n  dev: 1\n  inode: 2\n  offset: 7\n";
        let back = parse(v1, None).unwrap();
        assert_eq!(back.files.len(), 1);
        assert_eq!(back.files[0].offset, 7);
    }

    #[test]
    fn promtails_journal_cursors_are_read_and_written_back_beside_the_offsets() {
        let promtail = "positions:\n  /var/log/a.log: '42'\n  journal-system: s=0b4f;i=1a2b;t=5f\n";
        let back = parse(promtail, None).unwrap();
        assert_eq!(back.positions["/var/log/a.log"], 42);
        assert_eq!(back.cursors["journal-system"], "s=0b4f;i=1a2b;t=5f");
        let (main, _) = render(&back).unwrap();
        assert_eq!(parse(&main, None).unwrap().cursors, back.cursors);
        // A damaged offset is still an error, not mistaken for a cursor.
        assert!(parse("positions:\n  /a.log: x1\n", None).is_err());
    }

    #[test]
    fn promtails_docker_cursors_are_cursors_though_they_are_numbers() {
        let promtail = "positions:\n  cursor-c1aa: \"1796288405\"\n  /a.log: '3'\n";
        let back = parse(promtail, None).unwrap();
        assert_eq!(back.cursors["cursor-c1aa"], "1796288405");
        assert_eq!(back.positions.len(), 1, "{:?}", back.positions);
    }

    #[test]
    fn a_newer_identity_file_is_refused_not_misread() {
        let err = parse("positions: {}\n", Some("version: 3\nfiles: []\n")).unwrap_err();
        assert_eq!(err, Damage::Newer(3));
        assert!(err.to_string().contains("newer lokiship"), "{err}");
    }
}
