//! File identity: device + inode + a fingerprint of the first bytes.
//!
//! Device and inode follow a file across renames (rotation), so a rotated file is not read twice; the
//! fingerprint tells a new file that reused a deleted file's inode from the old one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
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
    /// Fingerprints the first bytes of `file` (up to its size), leaving its position unchanged.
    pub fn read(file: &mut File) -> std::io::Result<Self> {
        let pos = file.stream_position()?;
        file.seek(SeekFrom::Start(0))?;
        let mut buf = Vec::with_capacity(FINGERPRINT_BYTES as usize);
        file.by_ref()
            .take(FINGERPRINT_BYTES)
            .read_to_end(&mut buf)?;
        file.seek(SeekFrom::Start(pos))?;
        Ok(Self::of(&buf))
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len() as u64,
            hash: fnv1a(bytes),
        }
    }

    /// Does `file` start with the bytes this fingerprint was taken of?
    pub fn matches(&self, file: &mut File) -> bool {
        if self.len == 0 {
            return true;
        }
        let pos = file.stream_position().unwrap_or(0);
        let mut buf = vec![0u8; self.len as usize];
        let ok = file.seek(SeekFrom::Start(0)).is_ok() && file.read_exact(&mut buf).is_ok();
        let _ = file.seek(SeekFrom::Start(pos));
        ok && fnv1a(&buf) == self.hash
    }
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
    use std::io::Write;

    #[test]
    fn fingerprint_tells_files_apart_and_keeps_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"first line\nsecond\n").unwrap();
        let mut f = File::open(&path).unwrap();
        f.seek(SeekFrom::Start(5)).unwrap();
        let fp = Fingerprint::read(&mut f).unwrap();
        assert_eq!(fp.len, 18);
        assert_eq!(f.stream_position().unwrap(), 5);
        assert!(fp.matches(&mut f));

        std::fs::write(&path, b"other content, same inode\n").unwrap();
        let mut g = File::open(&path).unwrap();
        assert!(!fp.matches(&mut g));
        let mut h = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        h.write_all(b"x").unwrap();
    }
}
