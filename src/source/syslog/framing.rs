//! Cutting a syslog byte stream into messages, as RFC 6587 frames them over TCP.
//!
//! The first byte of a connection says which framing the sender uses: a digit starts octet
//! counting (`LEN SP MSG`), anything else non-transparent framing (messages ended by LF). Promtail
//! decides the same way, but closes the connection on a first byte that is neither a digit nor `<`;
//! here such bytes are messages too (they fail to parse and are shipped raw, counted).
//!
//! In non-transparent framing an LF followed by a byte other than `<` is part of the message (a
//! multi-line message, as Promtail joins them), but only when that byte has arrived with it:
//! Promtail waits for the next message to decide, and so holds a quiet sender's last message
//! until it sends another one; here a message ends when the data received so far ends after its LF.
//!
//! Memory is bounded by `max` (`max_message_length`): a longer message is cut to `max` bytes and
//! the rest of it is read and thrown away, never buffered. Promtail drops such a message whole
//! under octet counting and does not limit it at all with LF framing.

/// The framing of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Undecided,
    OctetCounting,
    NonTransparent,
}

/// What to throw away of a message cut to `max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discard {
    Nothing,
    Bytes(usize),
    ToNewline,
}

/// The most digits a message length may have (a length is at most 4 GiB).
const MAX_LENGTH_DIGITS: usize = 10;

/// Splits what one connection (or datagram) sends into messages.
#[derive(Debug)]
pub struct Framer {
    mode: Mode,
    max: usize,
    buf: Vec<u8>,
    discard: Discard,
    /// Octet-counting lengths that were not numbers: the rest of the connection is read as lines.
    pub bad_lengths: u64,
}

/// One message out of the stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub bytes: &'a [u8],
    /// It was longer than `max` and cut.
    pub truncated: bool,
}

impl Framer {
    /// A framer for a TCP connection: the first byte decides the framing.
    pub fn new(max: usize) -> Self {
        Self {
            mode: Mode::Undecided,
            max: max.max(1),
            buf: Vec::new(),
            discard: Discard::Nothing,
            bad_lengths: 0,
        }
    }

    /// A framer for a UDP datagram: messages end at LF (Promtail splits datagrams the same way).
    pub fn for_datagram(max: usize) -> Self {
        Self {
            mode: Mode::NonTransparent,
            ..Self::new(max)
        }
    }

    /// The buffer to read into: append what arrived, then call [`Framer::frames`].
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Calls `out` with every complete message in the buffer, and keeps the rest for the next
    /// read. With `eof` (the connection closed, or a datagram), what is left is a message too.
    pub fn frames(&mut self, eof: bool, mut out: impl FnMut(Frame<'_>)) {
        let mut pos = 0;
        while pos < self.buf.len() {
            match self.discard {
                Discard::Bytes(n) => {
                    let skip = n.min(self.buf.len() - pos);
                    pos += skip;
                    self.discard = if skip == n {
                        Discard::Nothing
                    } else {
                        Discard::Bytes(n - skip)
                    };
                    continue;
                }
                Discard::ToNewline => match memchr::memchr(b'\n', &self.buf[pos..]) {
                    Some(i) => {
                        pos += i + 1;
                        self.discard = Discard::Nothing;
                        continue;
                    }
                    None => {
                        pos = self.buf.len();
                        break;
                    }
                },
                Discard::Nothing => {}
            }
            let next = match self.mode {
                Mode::Undecided => {
                    self.mode = if self.buf[pos].is_ascii_digit() {
                        Mode::OctetCounting
                    } else {
                        Mode::NonTransparent
                    };
                    continue;
                }
                Mode::OctetCounting => self.octet_counted(pos, eof, &mut out),
                Mode::NonTransparent => self.line(pos, eof, &mut out),
            };
            match next {
                Some(p) => pos = p,
                None => break,
            }
        }
        self.buf.drain(..pos);
    }

    /// One `LEN SP MSG` frame at `pos`: the position after it, or `None` to wait for more bytes.
    fn octet_counted(
        &mut self,
        pos: usize,
        eof: bool,
        out: &mut impl FnMut(Frame<'_>),
    ) -> Option<usize> {
        let data = &self.buf[pos..];
        // Some senders end each frame with LF anyway: whitespace between frames is no frame.
        if matches!(data[0], b'\n' | b'\r' | b' ') {
            return Some(pos + 1);
        }
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == data.len() && digits <= MAX_LENGTH_DIGITS && !eof {
            return None;
        }
        let length = std::str::from_utf8(&data[..digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&n| n > 0 && digits <= MAX_LENGTH_DIGITS && data.get(digits) == Some(&b' '));
        let Some(length) = length else {
            // Not a length: read the rest of the connection as lines rather than lose it.
            self.bad_lengths += 1;
            self.mode = Mode::NonTransparent;
            return Some(pos);
        };
        let body = pos + digits + 1;
        let available = self.buf.len() - body;
        let take = length.min(self.max);
        if available < take {
            if !eof {
                return None;
            }
            out(Frame {
                bytes: &self.buf[body..],
                truncated: true,
            });
            return Some(self.buf.len());
        }
        out(Frame {
            bytes: &self.buf[body..body + take],
            truncated: take < length,
        });
        if take < length {
            self.discard = Discard::Bytes(length - take);
        }
        Some(body + take)
    }

    /// One LF-ended message at `pos`: the position after it, or `None` to wait for more bytes.
    fn line(&mut self, pos: usize, eof: bool, out: &mut impl FnMut(Frame<'_>)) -> Option<usize> {
        let data = &self.buf[pos..];
        if data[0] == b'\n' {
            return Some(pos + 1);
        }
        let mut end = None;
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'\n', &data[from..]) {
            let lf = from + i;
            match data.get(lf + 1) {
                // A continuation line that came with this message.
                Some(&next) if next != b'<' => from = lf + 1,
                _ => {
                    end = Some(lf);
                    break;
                }
            }
            if lf >= self.max {
                break;
            }
        }
        match end {
            Some(end) if end <= self.max => {
                if end > 0 {
                    out(Frame {
                        bytes: &data[..end],
                        truncated: false,
                    });
                }
                Some(pos + end + 1)
            }
            _ if data.len() > self.max => {
                out(Frame {
                    bytes: &data[..self.max],
                    truncated: true,
                });
                match end {
                    Some(end) => Some(pos + end + 1),
                    None => {
                        self.discard = Discard::ToNewline;
                        Some(pos + self.max)
                    }
                }
            }
            _ if eof => {
                out(Frame {
                    bytes: data,
                    truncated: false,
                });
                Some(self.buf.len())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages `chunks` make, fed one read at a time, then closed.
    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<(String, bool)>, u64) {
        let mut framer = Framer::new(max);
        let mut got = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            framer.buffer().extend_from_slice(chunk);
            framer.frames(i + 1 == chunks.len(), |f| {
                got.push((String::from_utf8_lossy(f.bytes).into_owned(), f.truncated))
            });
        }
        (got, framer.bad_lengths)
    }

    fn ok(messages: &[&str]) -> Vec<(String, bool)> {
        messages.iter().map(|m| (m.to_string(), false)).collect()
    }

    #[test]
    fn octet_counted_frames_may_span_reads_and_hold_newlines() {
        let (got, bad) = split(100, &[b"5 <1>ab6 <1>c", b"\nd", b"3 <2>"]);
        assert_eq!(got, ok(&["<1>ab", "<1>c\nd", "<2>"]));
        assert_eq!(bad, 0);
        // A frame cut by the connection's end is kept, marked cut.
        let (got, _) = split(100, &[b"10 <1>abc"]);
        assert_eq!(got, vec![("<1>abc".to_string(), true)]);
    }

    #[test]
    fn lines_end_at_lf_and_join_continuations_that_came_with_them() {
        let (got, _) = split(100, &[b"<1>a\n<2>b\r\n<3>multi\nline\n<4>c", b"\n<5>last"]);
        assert_eq!(
            got,
            ok(&["<1>a", "<2>b\r", "<3>multi\nline", "<4>c", "<5>last"])
        );
        // An LF at the end of what arrived ends the message: it is not held for the next read.
        let mut framer = Framer::new(100);
        framer.buffer().extend_from_slice(b"<1>quiet sender\n");
        let mut got = Vec::new();
        framer.frames(false, |f| got.push(f.bytes.to_vec()));
        assert_eq!(got, vec![b"<1>quiet sender".to_vec()]);
    }

    #[test]
    fn long_messages_are_cut_and_their_rest_thrown_away() {
        let (got, _) = split(4, &[b"10 <1>", b"abcdefg3 <2>"]);
        assert_eq!(got, vec![("<1>a".into(), true), ("<2>".into(), false)]);
        let (got, _) = split(4, &[b"<1>abc", b"defgh", b"ij\n<2>\n"]);
        assert_eq!(got, vec![("<1>a".into(), true), ("<2>".into(), false)]);
        // The buffer never holds more than a message's worth of a long line.
        let mut framer = Framer::new(8);
        for _ in 0..1000 {
            framer.buffer().extend_from_slice(&[b'x'; 1000]);
            framer.frames(false, |_| {});
            assert!(framer.buffer().len() <= 8);
        }
    }

    #[test]
    fn a_length_that_is_no_number_turns_the_rest_into_lines() {
        let (got, bad) = split(100, &[b"3 <1>2x <2>y\n<3>z\n"]);
        assert_eq!(got, ok(&["<1>", "2x <2>y", "<3>z"]));
        assert_eq!(bad, 1);
        // Garbage first: lines, not a closed connection.
        let (got, bad) = split(100, &[b"garbage\n<1>ok\n"]);
        assert_eq!(got, ok(&["garbage", "<1>ok"]));
        assert_eq!(bad, 0);
        // LF after each octet-counted frame is tolerated.
        let (got, bad) = split(100, &[b"3 <1>\n3 <2>\r\n"]);
        assert_eq!(got, ok(&["<1>", "<2>"]));
        assert_eq!(bad, 0);
        // A length of 11 digits is refused before it is waited for.
        let (got, bad) = split(100, &[b"99999999999", b" x\n"]);
        assert_eq!(got, ok(&["99999999999 x"]));
        assert_eq!(bad, 1);
    }

    #[test]
    fn a_datagram_is_split_at_lf() {
        let mut framer = Framer::for_datagram(100);
        framer.buffer().extend_from_slice(b"12 <1>x\n<2>y\n");
        let mut got = Vec::new();
        framer.frames(true, |f| got.push(f.bytes.to_vec()));
        assert_eq!(got, vec![b"12 <1>x".to_vec(), b"<2>y".to_vec()]);
    }

    #[test]
    fn fuzz_syslog_framing_and_messages() {
        use crate::source::syslog::message::{parse, Format, Options};
        let seeds = [
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][x@1 a=\"\\]\"] An application event\n".to_vec(),
            b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8\n<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!\n".to_vec(),
            b"78 <34>1 2026-11-26T10:00:00+01:00 host app 42 - - message with\na newline inside\n61 <30>Nov 26 10:00:01 host sshd[1]: Accepted publickey for root".to_vec(),
            b"<13>1 - - - - - -\n<191>1 9999-12-31T23:59:59.999999+23:59 h a p m [a b=\"c\"] \xef\xbb\xbfBOM\n".to_vec(),
        ];
        let tokens = [
            "<13>",
            "<191>",
            "1 ",
            " - ",
            "[a@1 b=\"c\"]",
            "\\\"",
            "\\]",
            "Oct 11 22:14:15 ",
            "2026-11-26T10:00:00Z ",
            "99999999999 ",
            "0 ",
            "\n",
        ];
        let now = chrono::Local::now();
        crate::fuzz::run("syslog_framing_and_messages", &seeds, &tokens, |input| {
            // The first byte picks the largest message and the size of each read.
            let knob = usize::from(input.first().copied().unwrap_or(0));
            let (max, read) = (16 + knob * 8, 1 + knob % 64);
            for mut framer in [Framer::new(max), Framer::for_datagram(max)] {
                let chunks: Vec<&[u8]> = input.chunks(read).collect();
                let mut frames = Vec::new();
                for (i, chunk) in chunks.iter().enumerate() {
                    framer.buffer().extend_from_slice(chunk);
                    framer.frames(i + 1 == chunks.len(), |f| {
                        frames.push(String::from_utf8_lossy(f.bytes).into_owned())
                    });
                }
                for frame in frames
                    .iter()
                    .chain([&String::from_utf8_lossy(input).into_owned()])
                {
                    for format in [Format::Rfc5424, Format::Rfc3164] {
                        let opts = Options {
                            format,
                            label_structured_data: true,
                            use_rfc5424_message: knob & 1 == 1,
                        };
                        let _ = parse(frame, &opts, now);
                    }
                }
            }
        });
    }
}
