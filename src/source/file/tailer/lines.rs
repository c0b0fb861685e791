//! Splits one open file into lines, remembers an incomplete last line until its newline
//! arrives, and bounds the memory an over-long line can take.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Bytes read from a file per call, so that one busy file does not starve the others.
pub const READ_CHUNK: usize = 256 * 1024;

/// What the tailer found.
pub enum LineEvent<'a> {
    /// A complete line (without `\n` or `\r\n`), ending at file offset `end`.
    Line {
        bytes: &'a [u8],
        end: u64,
        truncated: bool,
    },
    /// A line longer than the limit was discarded; it ended at `end`.
    TooLong { end: u64 },
}

/// A file read line by line from an offset: the descriptor (or a decoder of its compressed
/// content), the offset of the next byte, and an incomplete last line.
pub struct LineReader {
    /// The decompressed content of a compressed file ([`super::super::compressed`]); offsets count
    /// its bytes.
    decoder: Option<Box<dyn Read + Send>>,
    file: File,
    /// Offset of the next byte to read.
    offset: u64,
    /// An incomplete line (bytes after the last newline).
    partial: Vec<u8>,
    /// The current line went over the limit: its remaining bytes are discarded until the newline.
    overflow: Overflow,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    None,
    /// Keep the first `max_line` bytes, emit them at the newline.
    Truncating,
    /// Drop the whole line.
    Dropping,
}

impl LineReader {
    /// Reads `file` from `offset` on.
    pub fn new(mut file: File, offset: u64) -> std::io::Result<Self> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            decoder: None,
            file,
            offset,
            partial: Vec::new(),
            overflow: Overflow::None,
        })
    }

    /// Reads `file` from where it is, without seeking: a pipe (standard input), whose offsets
    /// count the bytes read since.
    pub fn stream(file: File) -> Self {
        Self {
            decoder: None,
            file,
            offset: 0,
            partial: Vec::new(),
            overflow: Overflow::None,
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the file through `format`'s decoder from now on, skipping the first `offset` bytes of
    /// its decompressed content (already shipped).
    pub fn decompress(&mut self, format: super::super::compressed::Format) -> std::io::Result<()> {
        // The descriptor was put at `offset`, a position in the decompressed content: the
        // decoder reads the compressed bytes from their start.
        self.file.seek(SeekFrom::Start(0))?;
        let mut decoder = format.decoder(self.file.try_clone()?);
        let skipped = std::io::copy(&mut (&mut decoder).take(self.offset), &mut std::io::sink())?;
        self.offset = skipped;
        self.decoder = Some(decoder);
        Ok(())
    }

    /// Read through a decoder: offsets are not file sizes, and the content never changes.
    pub fn compressed(&self) -> bool {
        self.decoder.is_some()
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Offset just after the last complete line read: where reading resumes in another file that
    /// holds the same content (a copy), without cutting a line.
    pub fn line_end(&self) -> u64 {
        self.offset - self.partial.len() as u64
    }

    /// Continues at `offset`, forgetting any incomplete line (the file was truncated, or is a
    /// copy of content read elsewhere up to `offset`).
    pub fn restart_at(&mut self, offset: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.offset = offset;
        self.partial.clear();
        self.overflow = Overflow::None;
        Ok(())
    }

    /// Reads up to `buf.len()` bytes (a buffer shared by all tailers: a thousand files must not
    /// hold a thousand buffers) and reports each complete line. Returns the bytes read (0 at
    /// the end of the file). `max_line` bounds a line's bytes; longer lines are truncated to it when
    /// `truncate` is set, else dropped.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        max_line: usize,
        truncate: bool,
        mut on_line: impl FnMut(LineEvent),
    ) -> std::io::Result<usize> {
        let n = loop {
            let source: &mut dyn Read = match &mut self.decoder {
                Some(decoder) => decoder.as_mut(),
                None => &mut self.file,
            };
            match source.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let chunk_start = self.offset;
        self.offset += n as u64;
        let mut rest = &buf[..n];
        let mut consumed = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let end = chunk_start + (consumed + nl + 1) as u64;
            let piece = &rest[..nl];
            match self.overflow {
                Overflow::None => {
                    let line: &[u8] = if self.partial.is_empty() {
                        piece
                    } else {
                        self.partial.extend_from_slice(piece);
                        &self.partial
                    };
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.len() <= max_line {
                        on_line(LineEvent::Line {
                            bytes: line,
                            end,
                            truncated: false,
                        });
                    } else if truncate {
                        on_line(LineEvent::Line {
                            bytes: &line[..max_line],
                            end,
                            truncated: true,
                        });
                    } else {
                        on_line(LineEvent::TooLong { end });
                    }
                }
                Overflow::Truncating => {
                    on_line(LineEvent::Line {
                        bytes: &self.partial,
                        end,
                        truncated: true,
                    });
                }
                Overflow::Dropping => on_line(LineEvent::TooLong { end }),
            }
            self.partial.clear();
            self.overflow = Overflow::None;
            consumed += nl + 1;
            rest = &rest[nl + 1..];
        }
        // Bytes after the last newline: an incomplete line, bounded by `max_line`.
        match self.overflow {
            Overflow::None => {
                self.partial.extend_from_slice(rest);
                if self.partial.len() > max_line {
                    if truncate {
                        self.partial.truncate(max_line);
                        self.overflow = Overflow::Truncating;
                    } else {
                        self.partial = Vec::new();
                        self.overflow = Overflow::Dropping;
                    }
                }
            }
            Overflow::Truncating | Overflow::Dropping => {}
        }
        Ok(n)
    }

    /// Reports the incomplete last line as a line ending at the offset read (the file will not
    /// grow any more), as [`LineReader::read`] reports a line at its newline; the bytes it took
    /// (0 without one). It is within the line limit already: `read` cut or dropped it as it grew.
    pub fn take_partial(&mut self, mut on_line: impl FnMut(LineEvent)) -> usize {
        let end = self.offset;
        let taken = self.partial.len();
        match self.overflow {
            Overflow::None if taken == 0 => return 0,
            Overflow::None => on_line(LineEvent::Line {
                bytes: self.partial.strip_suffix(b"\r").unwrap_or(&self.partial),
                end,
                truncated: false,
            }),
            Overflow::Truncating => on_line(LineEvent::Line {
                bytes: &self.partial,
                end,
                truncated: true,
            }),
            Overflow::Dropping => on_line(LineEvent::TooLong { end }),
        }
        self.partial.clear();
        self.overflow = Overflow::None;
        taken.max(1)
    }

    /// Bytes held for an incomplete last line.
    pub fn pending_partial(&self) -> usize {
        self.partial.len()
    }

    /// An incomplete last line is held, or being dropped for its length.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.overflow != Overflow::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(t: &mut LineReader, max: usize, truncate: bool) -> Vec<(String, u64, bool)> {
        let mut out = Vec::new();
        while t
            .read(&mut vec![0; READ_CHUNK], max, truncate, |ev| match ev {
                LineEvent::Line {
                    bytes,
                    end,
                    truncated,
                } => out.push((String::from_utf8_lossy(bytes).into_owned(), end, truncated)),
                LineEvent::TooLong { end } => out.push(("<too long>".into(), end, false)),
            })
            .unwrap()
            > 0
        {}
        out
    }

    fn tailer(path: &std::path::Path) -> LineReader {
        LineReader::new(File::open(path).unwrap(), 0).unwrap()
    }

    #[test]
    fn splits_lines_strips_crlf_and_waits_for_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\r\ntwo\nthr").unwrap();
        let mut t = tailer(&path);
        assert_eq!(
            collect(&mut t, 100, false),
            vec![("one".into(), 5, false), ("two".into(), 9, false)]
        );
        assert_eq!(t.pending_partial(), 3);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"ee\n")
            .unwrap();
        assert_eq!(
            collect(&mut t, 100, false),
            vec![("three".into(), 15, false)]
        );
    }

    #[test]
    fn over_long_lines_are_dropped_or_truncated_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut content = b"short\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 3 * READ_CHUNK));
        content.extend_from_slice(b"\nafter\n");
        std::fs::write(&path, &content).unwrap();
        let total = content.len() as u64;

        let mut t = tailer(&path);
        let lines = collect(&mut t, 1000, false);
        assert_eq!(lines[0].0, "short");
        assert_eq!(lines[1], ("<too long>".into(), total - 6, false));
        assert_eq!(lines[2], ("after".into(), total, false));
        assert!(t.pending_partial() <= 1000);

        let mut t = tailer(&path);
        let lines = collect(&mut t, 1000, true);
        assert_eq!(lines[1].0.len(), 1000);
        assert!(lines[1].2, "marked truncated");
        assert_eq!(lines[2].0, "after");
    }
}
