//! Writing files so that a crash or power loss leaves either the old state or the new one.
//!
//! A file's data is durable after `fsync` of the file; its *name* (a create or a rename) only
//! after `fsync` of the directory holding it. Every file lokiship's correctness depends on — the
//! positions file, a disk queue's cursor and segments — is written through these helpers.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `data`: written to a temporary file beside it, fsync'd, renamed over
/// `path`, and the directory fsync'd. The directory is created if missing.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    write_parts_atomically(path, &[data])
}

/// [`write_atomically`] of the concatenation of `parts`, without joining them in memory.
pub fn write_parts_atomically(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut f = File::create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Opens `path` for appending, creating it; a file that was created has its directory entry
/// fsync'd before this returns, so that data later fsync'd into it cannot vanish with its name.
pub fn create_durably(path: &Path) -> io::Result<File> {
    match OpenOptions::new().append(true).create_new(true).open(path) {
        Ok(file) => {
            sync_dir(parent(path))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Makes the creations, renames and deletions of entries in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("positions.yaml");
        write_atomically(&path, b"first version, longer\n").unwrap();
        write_parts_atomically(&path, &[b"second ", b"version\n"]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second version\n");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("positions.yaml")]);
    }

    #[test]
    fn create_durably_appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0000000001.seg");
        create_durably(&path).unwrap().write_all(b"one\n").unwrap();
        create_durably(&path).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
    }
}
