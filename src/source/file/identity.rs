//! File identity: device + inode + a fingerprint of the first bytes.
//!
//! Device and inode follow a file across renames (rotation), so a rotated file is not read twice; the
//! fingerprint tells a new file that reused a deleted file's inode from the old one.

use std::fs::File;
use std::os::unix::fs::MetadataExt;

/// Bytes hashed for the fingerprint.
pub const FINGERPRINT_BYTES: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub inode: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            inode: meta.ino(),
        }
    }
}

/// A hash of a file's first `len` bytes (at most [`FINGERPRINT_BYTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub len: u64,
    pub hash: u64,
}

impl Fingerprint {
    /// Fingerprints the first bytes of `file` (up to its size). Reads with `pread`: the file's
    /// position is untouched.
    pub fn read(file: &File) -> std::io::Result<Self> {
        let mut buf = [0u8; FINGERPRINT_BYTES as usize];
        let n = read_full_at(file, &mut buf, 0)?;
        Ok(Self::of(&buf[..n]))
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len() as u64,
            hash: fnv1a(bytes),
        }
    }

    /// Does `file` start with the bytes this fingerprint was taken of?
    pub fn matches(&self, file: &File) -> bool {
        if self.len == 0 {
            return true;
        }
        let mut buf = [0u8; FINGERPRINT_BYTES as usize];
        let want = (self.len as usize).min(buf.len());
        matches!(read_full_at(file, &mut buf[..want], 0), Ok(n) if n == want)
            && fnv1a(&buf[..want]) == self.hash
    }

    /// Covers all [`FINGERPRINT_BYTES`]: files that share it are taken to share their beginning.
    pub fn is_full(&self) -> bool {
        self.len >= FINGERPRINT_BYTES
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; the bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// FNV-1a, 64 bit: stable across versions and platforms, which the positions file needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn fingerprint_tells_files_apart_and_keeps_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"first line\nsecond\n").unwrap();
        let mut f = File::open(&path).unwrap();
        f.seek(SeekFrom::Start(5)).unwrap();
        let fp = Fingerprint::read(&f).unwrap();
        assert_eq!(fp.len, 18);
        assert!(!fp.is_full());
        assert_eq!(f.stream_position().unwrap(), 5, "reading position kept");
        assert!(fp.matches(&f));

        // Appending keeps the beginning: still the same file.
        let mut h = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        h.write_all(b"third\n").unwrap();
        assert!(fp.matches(&f));

        // Rewritten in place (the same inode): another file.
        std::fs::write(&path, b"other content, same inode\n").unwrap();
        assert!(!fp.matches(&f));
    }
}
