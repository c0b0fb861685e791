//! Writing files so that a crash or power loss leaves either the old state or the new one.
//!
//! A file's data is durable after `fsync` of the file; its *name* (a create or a rename) only
//! after `fsync` of the directory holding it. Every file lokiship's correctness depends on — the
//! positions file, a disk queue's cursor and segments — is written through these helpers.
//!
//! They hold which files were read and the log lines themselves, so files are created 0600 and
//! directories 0700, and a symlink planted where one will be written is never followed: a
//! temporary file is created with `O_EXCL` (which does not follow a link), a rename replaces a
//! link rather than writing through it, and an existing segment is opened with `O_NOFOLLOW`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Permissions of the files lokiship writes: its own user's only.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents, 0700 (existing ones keep their permissions).
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Opens an existing file of lokiship's for writing, refusing a symlink in its place.
pub fn open_for_write(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Replaces `path` with `data`: written to a temporary file beside it, fsync'd, renamed over
/// `path`, and the directory fsync'd. The directory is created if missing.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    write_parts_atomically(path, &[data])
}

/// [`write_atomically`] of the concatenation of `parts`, without joining them in memory.
pub fn write_parts_atomically(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let dir = parent(path);
    create_dir_private(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // A leftover of a crash, or something planted: removing a symlink removes the link only.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
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
    match OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(file) => {
            sync_dir(parent(path))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path),
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
    fn files_are_private_and_a_planted_symlink_is_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me\n").unwrap();
        let state = dir.path().join("state");
        let path = state.join("positions.yaml");
        create_dir_private(&state).unwrap();
        // Planted where the temporary file, the file itself and a segment will be.
        std::os::unix::fs::symlink(&victim, state.join("positions.yaml.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let seg = state.join("0000000001.seg");
        std::os::unix::fs::symlink(&victim, &seg).unwrap();
        write_atomically(&path, b"positions: {}\n").unwrap();
        assert!(
            create_durably(&seg).is_err(),
            "a segment that is a symlink is refused"
        );
        assert!(open_for_write(&seg).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me\n");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&state), 0o700);
        let new_seg = state.join("0000000002.seg");
        create_durably(&new_seg).unwrap();
        assert_eq!(mode(&new_seg), 0o600);
        let deep = dir.path().join("a/b");
        write_atomically(&deep.join("cursor"), b"1 0\n").unwrap();
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
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
