//! One journal entry as `journalctl --output=json --all` prints it, and what Promtail makes of it:
//! the `__journal_<field>` labels and, with `json: true`, the line.
//!
//! journalctl prints a field as a string; as an array of numbers when its value is not printable
//! UTF-8 (a `MESSAGE` with control bytes, binary data); as an array of those when an entry has the
//! field more than once (the last value counts, as with Promtail's reader). The `__` fields are the
//! entry's address (cursor, timestamps), not data: Promtail has no labels for them.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

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

impl Record {
    /// Parses one line of `journalctl --output=json`.
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
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
            go_json_string(name, &mut out);
            out.push(':');
            go_json_string(value, &mut out);
        }
        out.push('}');
        out
    }
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

/// Appends `s` as a JSON string the way Go's encoder does (HTML-safe, U+2028/9 escaped).
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a journal entry (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut record = Record::default();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: Value = map.next_value()?;
            let Value::Text(value) = value else {
                // null: a value journalctl left out (over 4096 bytes without `--all`).
                continue;
            };
            match &*name {
                "__CURSOR" => record.cursor = Some(value),
                "__REALTIME_TIMESTAMP" => record.realtime_us = value.parse().ok(),
                n if n.starts_with("__") => {}
                _ => record.fields.push((name.into_owned(), value)),
            }
        }
        Ok(record)
    }
}

/// A field's value: text (decoded if it came as bytes), or nothing.
enum Value {
    Text(String),
    Missing,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, an array of bytes, or an array of values")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Missing)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Text(v.to_string()))
    }

    /// Bytes (`[104, 105]`), or several values of one field (`["a", [1, 2]]`: the last counts).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut bytes = Vec::new();
        let mut last = Value::Missing;
        while let Some(element) = seq.next_element::<Element>()? {
            match element {
                Element::Byte(b) => bytes.push(b),
                Element::Value(v) => last = v,
            }
        }
        if !bytes.is_empty() {
            return Ok(Value::Text(String::from_utf8_lossy(&bytes).into_owned()));
        }
        Ok(last)
    }
}

/// An element of an array value: a byte, or one of several values.
enum Element {
    Byte(u8),
    Value(Value),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte or a value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
        u8::try_from(v)
            .map(Element::Byte)
            .map_err(|_| E::custom(format!("byte {v} out of range")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
        Ok(Element::Value(Value::Text(v.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element::Value(Value::Missing))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
        ValueVisitor.visit_seq(seq).map(Element::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_as_strings_bytes_or_repeated_values() {
        let line = br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1700000000123456","__MONOTONIC_TIMESTAMP":"5","MESSAGE":[104,105,7,255],"_SYSTEMD_UNIT":"ssh.service","TAG":["a",[98,99]],"BIG":null}"#;
        let r = Record::parse(line).unwrap();
        assert_eq!(r.cursor.as_deref(), Some("s=1;i=2"));
        assert_eq!(r.timestamp_ns(0), 1_700_000_000_123_456_000);
        assert_eq!(r.field("MESSAGE"), Some("hi\u{7}\u{fffd}"));
        assert_eq!(r.field("TAG"), Some("bc"));
        assert_eq!(r.field("BIG"), None);
        // The address fields are no data.
        assert!(r.fields.iter().all(|(n, _)| !n.starts_with("__")));
        assert_eq!(r.fields.len(), 3);
    }

    #[test]
    fn broken_lines_are_errors_not_panics() {
        for bad in [
            &b"{"[..],
            b"[1,2]",
            b"",
            b"{\"MESSAGE\":[1,300]}",
            b"\xff\xfe",
        ] {
            assert!(Record::parse(bad).is_err(), "{bad:?}");
        }
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
}
