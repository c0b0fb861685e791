//! Compressed files (`decompression` in a scrape config): old generations that logrotate compressed.
//!
//! Such a file never changes, so it is read once, start to end, through a decoder; offsets are
//! positions in the decompressed stream. Once read and acknowledged it is recorded as complete and
//! not opened again while it keeps its identity. Without `decompression`, compressed files matched by
//! a glob are ignored ([`is_compressed_name`]): their lines were read before they were compressed.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

/// A compression format of log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `gz`: gzip (RFC 1952), what logrotate's `compress` writes.
    Gzip,
    /// `z`: zlib (RFC 1950).
    Zlib,
    /// `bz2`: bzip2.
    Bzip2,
    /// `zst`: Zstandard (lokiship's own; `compresscmd zstd` in logrotate).
    Zstd,
    /// `xz` (lokiship's own).
    Xz,
}

/// The formats told by their first bytes, in the order they are tried.
const ALL: [Format; 5] = [
    Format::Gzip,
    Format::Zstd,
    Format::Bzip2,
    Format::Xz,
    Format::Zlib,
];

impl Format {
    /// Parses `decompression.format`: one format, or `None` for `auto` (each file's format
    /// told by its content); `Err` names the formats that work.
    pub fn parse(name: &str) -> Result<Option<Self>, String> {
        match name {
            "gz" | "" => Ok(Some(Self::Gzip)),
            "z" => Ok(Some(Self::Zlib)),
            "bz2" => Ok(Some(Self::Bzip2)),
            "zst" => Ok(Some(Self::Zstd)),
            "xz" => Ok(Some(Self::Xz)),
            "auto" => Ok(None),
            other => Err(format!(
                "decompression format {other:?} is not supported yet (gz, z, bz2, zst, xz and auto are)"
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
            // "BZh" and the block size, '1' to '9'.
            Self::Bzip2 => {
                head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3])
            }
            Self::Zstd => head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            Self::Xz => head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
        }
    }

    /// The format `head` starts like, if any.
    pub fn detect(head: &[u8]) -> Option<Self> {
        ALL.into_iter().find(|f| f.matches(head))
    }

    /// A reader of the decompressed content of `file` (read from its start). Files of several
    /// concatenated streams (`cat a.gz b.gz`) are read whole.
    pub fn decoder(self, file: File) -> Box<dyn Read + Send> {
        let buffered = std::io::BufReader::with_capacity(64 * 1024, file);
        match self {
            Self::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Self::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(buffered)),
            Self::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
            Self::Zstd => match zstd::stream::read::Decoder::with_buffer(buffered) {
                Ok(d) => Box::new(d),
                Err(e) => Box::new(Failing(Some(e))),
            },
            Self::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
        }
    }
}

/// A reader that fails with the error its decoder could not be made for.
struct Failing(Option<std::io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| std::io::Error::other("decoder unavailable")))
    }
}

/// A scrape config's `decompression`.
#[derive(Debug, Clone, Copy)]
pub struct Decompression {
    /// `None`: each file's format is told by its first bytes (`auto`).
    pub format: Option<Format>,
    /// A compressed file is opened only once it was last modified this long ago (the compressor
    /// may still be writing it).
    pub initial_delay: Duration,
}

/// The format `file` (at its start) holds: `format`, or (`None`, `auto`) whichever its first
/// bytes say; `None` for a file of another format, or none (plain text).
pub fn format_of(file: &File, format: Option<Format>) -> Option<Format> {
    let mut head = [0u8; 6];
    let n = super::identity::read_full_at(file, &mut head, 0).unwrap_or(0);
    let head = &head[..n];
    match format {
        Some(f) => f.matches(head).then_some(f),
        None => Format::detect(head),
    }
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

    /// `text` compressed as `format` writes it.
    fn compress(format: Format, text: &[u8]) -> Vec<u8> {
        match format {
            Format::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
            Format::Zlib => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
            Format::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), Default::default());
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
            Format::Zstd => zstd::encode_all(text, 3).unwrap(),
            Format::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(text).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[test]
    fn each_format_is_decoded_and_told_by_its_first_bytes_not_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"one\ntwo\n";
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, text).unwrap();
        for format in ALL {
            // Two streams one after the other, as `cat a.gz b.gz` makes them.
            let mut bytes = compress(format, text);
            if format != Format::Zlib {
                bytes.extend(compress(format, b"three\n"));
            }
            let path = dir.path().join("rotated-without-extension");
            std::fs::write(&path, bytes).unwrap();
            let f = File::open(&path).unwrap();
            assert_eq!(format_of(&f, None), Some(format));
            assert_eq!(format_of(&f, Some(format)), Some(format));
            let mut out = Vec::new();
            format.decoder(f).read_to_end(&mut out).unwrap();
            let want: &[u8] = if format == Format::Zlib {
                text
            } else {
                b"one\ntwo\nthree\n"
            };
            assert_eq!(out, want, "{format:?}");
            assert_eq!(format_of(&File::open(&plain).unwrap(), Some(format)), None);
        }
        assert_eq!(format_of(&File::open(&plain).unwrap(), None), None);
        assert_eq!(Format::parse("auto"), Ok(None));
        assert!(Format::parse("lz4")
            .unwrap_err()
            .contains("not supported yet"));
        assert!(is_compressed_name(&dir.path().join("a.log.1.gz")));
        assert!(!is_compressed_name(&plain));
    }
}
