//! The Docker API's log stream made into lines: `GET /containers/<id>/logs?timestamps=1` answers,
//! for a container without a TTY, frames of an 8-byte header (stream: 1 stdout, 2 stderr; three
//! zero bytes; the payload's length, big-endian) each carrying one log message; for a container
//! with a TTY, the raw output, lines ending in `\n`. Each message starts with its time
//! (RFC 3339, nanoseconds) and a space.
//!
//! Promtail ships each frame as an entry, so a line longer than Docker's 16 KiB buffer, which
//! Docker cuts into several messages (all but the last without the newline), arrives in Loki in
//! pieces. Here the pieces are joined again, with the first piece's time; a line over `max_line` bytes is shipped in pieces of that size.

use std::collections::VecDeque;

/// A frame claiming more than this is a broken stream, not a message to hold in memory.
pub const MAX_FRAME: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The value of `__meta_docker_container_log_stream`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One log line of the stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub stream: Stream,
    /// Unix nanoseconds, from the message's timestamp.
    pub timestamp_ns: i64,
    pub text: String,
}

/// What did not become a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    /// A message without a readable timestamp (skipped, as Promtail skips it).
    NoTimestamp(String),
    /// A frame header that is none: the stream cannot be read further.
    BrokenFrame(String),
}

/// Turns the stream's bytes, as they come, into lines.
pub struct Decoder {
    tty: bool,
    max_line: usize,
    buf: Vec<u8>,
    /// A message cut by Docker, per stream, waiting for its rest.
    partial: [Option<Line>; 2],
    out: VecDeque<Result<Line, Fault>>,
    broken: bool,
}

impl Decoder {
    /// A decoder for a container with (`tty`) or without a TTY; joined lines are cut at `max_line`.
    pub fn new(tty: bool, max_line: usize) -> Self {
        Self {
            tty,
            max_line: max_line.max(1),
            buf: Vec::new(),
            partial: [None, None],
            out: VecDeque::new(),
            broken: false,
        }
    }

    /// Takes more of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.tty {
            self.split_raw();
        } else {
            self.split_frames();
        }
    }

    /// The next decoded line or fault.
    pub fn next_line(&mut self) -> Option<Result<Line, Fault>> {
        self.out.pop_front()
    }

    /// Whether a cut message is held, waiting for its rest.
    pub fn holds_partial(&self) -> bool {
        self.partial.iter().any(Option::is_some) || (self.tty && !self.buf.is_empty())
    }

    /// Ships what is held: the stream ended, or its rest did not come in time.
    pub fn flush(&mut self) {
        if self.tty && !self.buf.is_empty() {
            let raw = std::mem::take(&mut self.buf);
            self.message(Stream::Stdout, &raw);
        }
        for slot in 0..2 {
            if let Some(line) = self.partial[slot].take() {
                self.out.push_back(Ok(line));
            }
        }
    }

    fn split_raw(&mut self) {
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &self.buf[start..]) {
            let raw = self.buf[start..start + end + 1].to_vec();
            self.message(Stream::Stdout, &raw);
            start += end + 1;
        }
        self.buf.drain(..start);
        if self.buf.len() > self.max_line + 64 {
            // A TTY line longer than the bound: shipped in pieces rather than held whole.
            let raw = std::mem::take(&mut self.buf);
            self.message(Stream::Stdout, &raw);
        }
    }

    fn split_frames(&mut self) {
        let mut start = 0;
        while self.buf.len() - start >= 8 {
            let header = &self.buf[start..start + 8];
            let stream = match header[0] {
                1 => Some(Stream::Stdout),
                2 => Some(Stream::Stderr),
                0 => None,
                other => {
                    self.break_stream(format!("unknown stream {other} in a frame header"));
                    return;
                }
            };
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if len > MAX_FRAME {
                self.break_stream(format!("a frame of {len} bytes (over {MAX_FRAME})"));
                return;
            }
            if self.buf.len() - start - 8 < len {
                break;
            }
            let payload = self.buf[start + 8..start + 8 + len].to_vec();
            start += 8 + len;
            if let Some(stream) = stream {
                self.message(stream, &payload);
            }
        }
        self.buf.drain(..start);
    }

    fn break_stream(&mut self, why: String) {
        self.broken = true;
        self.buf.clear();
        self.out.push_back(Err(Fault::BrokenFrame(why)));
    }

    /// One message: its time split off, joined to a cut message of its stream before it.
    fn message(&mut self, stream: Stream, raw: &[u8]) {
        let complete = raw.ends_with(b"\n");
        let mut body = raw;
        while let Some((last, rest)) = body.split_last() {
            if *last == b'\n' || *last == b'\r' {
                body = rest;
            } else {
                break;
            }
        }
        let (stamp, text) = match memchr::memchr(b' ', body) {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, &[][..]),
        };
        let Some(timestamp_ns) = parse_time(stamp) else {
            self.out.push_back(Err(Fault::NoTimestamp(
                String::from_utf8_lossy(&stamp[..stamp.len().min(64)]).into_owned(),
            )));
            return;
        };
        let text = String::from_utf8_lossy(text);
        let slot = stream as usize;
        let mut line = match self.partial[slot].take() {
            Some(mut held) => {
                held.text.push_str(&text);
                held
            }
            None => Line {
                stream,
                timestamp_ns,
                text: text.into_owned(),
            },
        };
        // Longer than the bound: shipped in pieces of `max_line` bytes, none lost.
        while line.text.len() > self.max_line {
            let mut cut = self.max_line;
            while !line.text.is_char_boundary(cut) {
                cut -= 1;
            }
            let rest = line.text.split_off(cut.max(1));
            let piece = std::mem::replace(&mut line.text, rest);
            self.out.push_back(Ok(Line {
                stream,
                timestamp_ns: line.timestamp_ns,
                text: piece,
            }));
        }
        if complete || self.tty {
            self.out.push_back(Ok(line));
        } else {
            self.partial[slot] = Some(line);
        }
    }
}

/// An RFC 3339 time with any fraction, as Unix nanoseconds.
pub fn parse_time(stamp: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(stamp).ok()?;
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    t.timestamp_nanos_opt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, text: &str) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(text.len() as u32).to_be_bytes());
        f.extend_from_slice(text.as_bytes());
        f
    }

    fn drain(d: &mut Decoder) -> Vec<Result<Line, Fault>> {
        std::iter::from_fn(|| d.next_line()).collect()
    }

    #[test]
    fn frames_are_demultiplexed_across_reads_with_their_times() {
        let mut bytes = frame(1, "2026-12-03T10:00:00.123456789Z hello stdout\n");
        bytes.extend(frame(2, "2026-12-03T10:00:01+01:00 oops stderr\n"));
        let mut d = Decoder::new(false, 1 << 20);
        for b in bytes.chunks(5) {
            d.push(b);
        }
        let lines = drain(&mut d);
        assert_eq!(
            lines,
            vec![
                Ok(Line {
                    stream: Stream::Stdout,
                    timestamp_ns: 1_796_292_000_123_456_789,
                    text: "hello stdout".into()
                }),
                Ok(Line {
                    stream: Stream::Stderr,
                    timestamp_ns: 1_796_288_401_000_000_000,
                    text: "oops stderr".into()
                }),
            ]
        );
    }

    #[test]
    fn a_line_docker_cut_is_joined_with_the_first_pieces_time_and_bounded() {
        let mut d = Decoder::new(false, 1 << 20);
        d.push(&frame(1, "2026-12-03T10:00:02.5Z part one "));
        d.push(&frame(2, "2026-12-03T10:00:02.7Z between\n"));
        assert!(d.holds_partial());
        d.push(&frame(1, "2026-12-03T10:00:03.5Z part two\n"));
        let lines = drain(&mut d);
        assert_eq!(lines.len(), 2);
        let Ok(joined) = &lines[1] else { panic!() };
        assert_eq!(joined.text, "part one part two");
        assert_eq!(joined.timestamp_ns, 1_796_292_002_500_000_000);
        let mut small = Decoder::new(false, 8);
        small.push(&frame(1, "2026-12-03T10:00:02Z 0123456789abc"));
        small.flush();
        let pieces: Vec<String> = drain(&mut small)
            .into_iter()
            .map(|l| l.unwrap().text)
            .collect();
        assert_eq!(pieces, ["01234567", "89abc"]);
    }

    #[test]
    fn tty_output_is_split_at_newlines_and_a_held_rest_is_flushed() {
        let mut d = Decoder::new(true, 1 << 20);
        d.push(b"2026-12-03T10:00:06Z tty one\r\n2026-12-03T10:00:07Z tty");
        d.push(b" two\n2026-12-03T10:00:08Z no newline");
        d.flush();
        let texts: Vec<String> = drain(&mut d).into_iter().map(|l| l.unwrap().text).collect();
        assert_eq!(texts, ["tty one", "tty two", "no newline"]);
    }

    #[test]
    fn broken_input_is_reported_not_trusted() {
        let mut d = Decoder::new(false, 1 << 20);
        d.push(&frame(1, "notime line\n"));
        assert_eq!(
            d.next_line(),
            Some(Err(Fault::NoTimestamp("notime".into())))
        );
        let mut huge = vec![1, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        d.push(&huge);
        assert!(matches!(d.next_line(), Some(Err(Fault::BrokenFrame(_)))));
        d.push(&frame(1, "2026-12-03T10:00:02Z after\n"));
        assert_eq!(d.next_line(), None, "nothing is read past a broken header");
    }
}
