//! One journal entry as `journalctl --output=export` prints it, and what Promtail makes of it:
//! the `__journal_<field>` labels and, with `json: true`, the line.
//!
//! The export format (systemd's "Journal Export Format"): an entry is its fields, one per line,
//! then an empty line. A field is `NAME=value\n`, or, when the value is not printable text (a
//! `MESSAGE` with control bytes, binary data), `NAME\n`, its length as 8 bytes little-endian, the
//! bytes and `\n`. Binary values are decoded as UTF-8, invalid bytes as U+FFFD. A field given
//! twice keeps its last value, as with Promtail's reader. The `__` fields are the entry's address
//! (cursor, timestamps), not data: Promtail has no labels for them. journalctl writes this format
//! for a quarter of the CPU its JSON costs it (measured: 5.6 against 24 µs an entry).

use crate::pipeline::go_json::write_string;
use std::io::{BufRead, Read};

/// One entry's parts.
#[derive(Debug, Default, PartialEq)]
pub struct Record {
    pub cursor: Option<String>,
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch.
    pub realtime_us: Option<i64>,
    /// The data fields, in the order journalctl printed them; binary values decoded as UTF-8
    /// (invalid bytes as U+FFFD).
    pub fields: Vec<(String, String)>,
}

/// Why an entry could not be read; the reader goes on at the next one.
#[derive(Debug, PartialEq, Eq)]
pub enum Broken {
    /// A line that is no field (no journal field name): journalctl printed something else.
    Garbage(String),
    /// The entry is larger than the bound: skipped, not held in memory.
    TooLong,
}

impl Record {
    /// Reads the next entry; `None` at the end of the output. `max` bounds an entry's size.
    pub fn read_export(
        reader: &mut impl BufRead,
        line: &mut Vec<u8>,
        max: usize,
    ) -> std::io::Result<Option<Result<Record, Broken>>> {
        let mut record = Record::default();
        let mut broken = None;
        let mut size = 0;
        let mut any = false;
        loop {
            line.clear();
            if reader.read_until(b'\n', line)? == 0 {
                return Ok(any.then(|| broken.map_or(Ok(record), Err)));
            }
            if line == b"\n" {
                if any {
                    return Ok(Some(broken.map_or(Ok(record), Err)));
                }
                continue;
            }
            any = true;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            size += line.len();
            let (name, value) = match memchr::memchr(b'=', line) {
                Some(eq) => (&line[..eq], Some(&line[eq + 1..])),
                None => (&line[..], None),
            };
            if !is_field_name(name) {
                broken.get_or_insert_with(|| {
                    Broken::Garbage(
                        String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
                    )
                });
                continue;
            }
            let name = String::from_utf8_lossy(name).into_owned();
            let value = match value {
                Some(v) => String::from_utf8_lossy(v).into_owned(),
                None => match read_binary(reader, max.saturating_sub(size))? {
                    Some(v) => {
                        size += v.len();
                        String::from_utf8_lossy(&v).into_owned()
                    }
                    None => {
                        broken.get_or_insert(Broken::TooLong);
                        continue;
                    }
                },
            };
            if size > max {
                broken.get_or_insert(Broken::TooLong);
            }
            if broken.is_none() {
                record.set(name, value);
            }
        }
    }

    fn set(&mut self, name: String, value: String) {
        match name.as_str() {
            "__CURSOR" => self.cursor = Some(value),
            "__REALTIME_TIMESTAMP" => self.realtime_us = value.parse().ok(),
            n if n.starts_with("__") => {}
            _ => match self.fields.iter_mut().find(|(n, _)| *n == name) {
                Some(field) => field.1 = value,
                None => self.fields.push((name, value)),
            },
        }
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The timestamp in nanoseconds, or `now` when journalctl printed none.
    pub fn timestamp_ns(&self, now: i64) -> i64 {
        self.realtime_us.map_or(now, |us| us.saturating_mul(1000))
    }

    /// The line of `json: true`: the data fields as one JSON object, keys sorted and `<`, `>`,
    /// `&` escaped, as Promtail's Go encoder writes a map.
    pub fn to_json_line(&self) -> String {
        let mut sorted: Vec<&(String, String)> = self.fields.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(
            self.fields
                .iter()
                .map(|(n, v)| n.len() + v.len() + 6)
                .sum::<usize>()
                + 2,
        );
        out.push('{');
        for (i, (name, value)) in sorted.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(name, &mut out);
            out.push(':');
            write_string(value, &mut out);
        }
        out.push('}');
        out
    }
}

/// A journal field name: upper-case letters, digits and `_` (the address fields start with `__`).
fn is_field_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A binary field's value after its name line: the length, the bytes, the newline. `None` (the
/// bytes skipped) when it is longer than `room`.
fn read_binary(reader: &mut impl BufRead, room: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    reader.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > room as u64 {
        std::io::copy(&mut reader.by_ref().take(len + 1), &mut std::io::sink())?;
        return Ok(None);
    }
    let mut value = vec![0; len as usize];
    reader.read_exact(&mut value)?;
    let mut newline = [0u8; 1];
    reader.read_exact(&mut newline)?;
    Ok(Some(value))
}

/// The label Promtail gives journal field `name`: `__journal_` and the name in lower case.
pub fn label_name(name: &str) -> String {
    let mut label = String::with_capacity(10 + name.len());
    label.push_str("__journal_");
    label.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    label
}

/// `PRIORITY`'s keyword (`__journal_priority_keyword`), as Promtail names the syslog levels; an
/// unknown value is kept as it is.
pub fn priority_keyword(priority: &str) -> &str {
    match priority {
        "0" => "emerg",
        "1" => "alert",
        "2" => "crit",
        "3" => "error",
        "4" => "warning",
        "5" => "notice",
        "6" => "info",
        "7" => "debug",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut input: &[u8]) -> Vec<Result<Record, Broken>> {
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(r) = Record::read_export(&mut input, &mut line, 1000).unwrap() {
            out.push(r);
        }
        out
    }

    fn binary(name: &str, value: &[u8]) -> Vec<u8> {
        let mut v = format!("{name}\n").into_bytes();
        v.extend_from_slice(&(value.len() as u64).to_le_bytes());
        v.extend_from_slice(value);
        v.push(b'\n');
        v
    }

    #[test]
    fn fields_come_as_text_or_binary_and_the_last_value_counts() {
        let mut input =
            b"__CURSOR=s=1;i=2\n__REALTIME_TIMESTAMP=1700000000123456\n__MONOTONIC_TIMESTAMP=5\n"
                .to_vec();
        input.extend(binary("MESSAGE", b"hi\n\nthere\x07\xff"));
        input.extend_from_slice(b"_SYSTEMD_UNIT=ssh.service\nTAG=a\nTAG=b=c\n\n");
        input.extend_from_slice(b"MESSAGE=second\n");
        let got = read_all(&input);
        assert_eq!(got.len(), 2);
        let r = got[0].as_ref().unwrap();
        assert_eq!(r.cursor.as_deref(), Some("s=1;i=2"));
        assert_eq!(r.timestamp_ns(0), 1_700_000_000_123_456_000);
        assert_eq!(r.field("MESSAGE"), Some("hi\n\nthere\u{7}\u{fffd}"));
        assert_eq!(r.field("TAG"), Some("b=c"));
        // The address fields are no data.
        assert_eq!(r.fields.len(), 3);
        // The last entry needs no empty line after it.
        assert_eq!(got[1].as_ref().unwrap().field("MESSAGE"), Some("second"));
    }

    #[test]
    fn garbage_and_oversized_entries_are_skipped_and_the_next_one_is_read() {
        let mut input = b"this is no journal\nMESSAGE=in a broken entry\n\n".to_vec();
        input.extend(binary("MESSAGE", &[b'x'; 2000]));
        input.extend_from_slice(b"\nMESSAGE=fine\n\n");
        let got = read_all(&input);
        assert!(matches!(&got[0], Err(Broken::Garbage(g)) if g == "this is no journal"));
        assert_eq!(got[1], Err(Broken::TooLong));
        assert_eq!(got[2].as_ref().unwrap().field("MESSAGE"), Some("fine"));
        // Cut short inside a binary field: an error of the read, not a panic.
        let mut line = Vec::new();
        let mut cut: &[u8] = b"MESSAGE\n\x05\x00";
        assert!(Record::read_export(&mut cut, &mut line, 1000).is_err());
    }

    #[test]
    fn labels_and_the_json_line_are_as_promtail_writes_them() {
        assert_eq!(label_name("_SYSTEMD_UNIT"), "__journal__systemd_unit");
        assert_eq!(priority_keyword("3"), "error");
        assert_eq!(priority_keyword("x"), "x");
        let r = Record {
            fields: vec![
                ("PRIORITY".into(), "6".into()),
                ("MESSAGE".into(), "a <b> & \"c\"\n\u{1}".into()),
            ],
            ..Record::default()
        };
        assert_eq!(
            r.to_json_line(),
            r#"{"MESSAGE":"a \u003cb\u003e \u0026 \"c\"\n\u0001","PRIORITY":"6"}"#
        );
    }

    #[test]
    fn fuzz_journal_export_reader() {
        let mut seed = b"__CURSOR=s=0;i=1\n__REALTIME_TIMESTAMP=1700000000000000\n_SYSTEMD_UNIT=ssh.service\nPRIORITY=6\nMESSAGE=Accepted publickey\n\n".to_vec();
        seed.extend(binary("MESSAGE", b"bytes \x1b[1m\xff\n and a newline"));
        seed.extend_from_slice(b"_PID=1\n\n__CURSOR=s=0;i=2\nMESSAGE=again\nMESSAGE=twice\n\n");
        let tokens = [
            "\n\n",
            "MESSAGE=",
            "__CURSOR=",
            "__REALTIME_TIMESTAMP=",
            "PRIORITY=",
            "_SYSTEMD_UNIT\n",
            "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f",
            "\x05\0\0\0\0\0\0\0",
        ];
        crate::fuzz::run("journal_export_reader", &[seed], &tokens, |mut input| {
            let mut line = Vec::new();
            while let Ok(Some(read)) = Record::read_export(&mut input, &mut line, 4096) {
                if let Ok(record) = read {
                    let _ = record.to_json_line();
                    let _ = record.timestamp_ns(0);
                    for (name, _) in &record.fields {
                        let _ = label_name(name);
                    }
                    let _ = priority_keyword(record.field("PRIORITY").unwrap_or(""));
                }
            }
        });
    }
}
