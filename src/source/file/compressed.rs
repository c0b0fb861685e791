//! Compressed files (`decompression` in a scrape config): old generations that logrotate compressed.
//!
//! Such a file never changes, so it is read once, start to end, through a decoder; offsets are
//! positions in the decompressed stream. Once read and acknowledged it is recorded as complete and
//! not opened again while it keeps its identity. Without `decompression`, compressed files matched by
//! a glob are ignored ([`is_compressed_name`]): their lines were read before they were compressed.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

/// `decompression.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `gz`: gzip (RFC 1952), what logrotate's `compress` writes.
    Gzip,
    /// `z`: zlib (RFC 1950).
    Zlib,
}

impl Format {
    /// Parses `decompression.format`; `Err` names the formats that work.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "gz" | "" => Ok(Self::Gzip),
            "z" => Ok(Self::Zlib),
            other => Err(format!(
                "decompression format {other:?} is not supported yet (gz and z are)"
            )),
        }
    }

    /// Does `head` (a file's first bytes) start like this format?
    pub fn matches(self, head: &[u8]) -> bool {
        match self {
            Self::Gzip => head.starts_with(&[0x1f, 0x8b]),
            // CMF 0x78 (deflate, 32K window) with a valid FCHECK.
            Self::Zlib => {
                head.len() >= 2
                    && head[0] == 0x78
                    && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0
            }
        }
    }

    /// A reader of the decompressed content of `file` (read from its start).
    pub fn decoder(self, file: File) -> Box<dyn Read + Send> {
        let buffered = std::io::BufReader::with_capacity(64 * 1024, file);
        match self {
            Self::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Self::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(buffered)),
        }
    }
}

/// A scrape config's `decompression`.
#[derive(Debug, Clone, Copy)]
pub struct Decompression {
    pub format: Format,
    /// A compressed file is opened only once it was last modified this long ago (the compressor
    /// may still be writing it).
    pub initial_delay: Duration,
}

/// Whether `file` (at its start) holds `format`'s data.
pub fn is_format(file: &File, format: Format) -> bool {
    let mut head = [0u8; 2];
    matches!(super::identity::read_full_at(file, &mut head, 0), Ok(2)) && format.matches(&head)
}

/// Compressed generations that logrotate (`compress`) or kube-apiserver leave beside a log.
pub fn is_compressed_name(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "gz" | "bz2" | "xz" | "zst" | "lz4" | "zip" | "Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn decodes_gzip_and_zlib_and_tells_them_by_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"one\ntwo\n";
        let gz = dir.path().join("a.log.1.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let z = dir.path().join("a.log.1.z");
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        std::fs::write(&z, e.finish().unwrap()).unwrap();
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, text).unwrap();

        for (path, format) in [(&gz, Format::Gzip), (&z, Format::Zlib)] {
            let f = File::open(path).unwrap();
            assert!(is_format(&f, format));
            let mut out = Vec::new();
            format.decoder(f).read_to_end(&mut out).unwrap();
            assert_eq!(out, text);
        }
        assert!(!is_format(&File::open(&plain).unwrap(), Format::Gzip));
        assert!(!is_format(&File::open(&plain).unwrap(), Format::Zlib));
        assert!(Format::parse("bz2")
            .unwrap_err()
            .contains("not supported yet"));
        assert!(is_compressed_name(&gz));
        assert!(!is_compressed_name(&plain));
    }
}
