//! Fast extraction of simple JSON paths (`user.username`, `responseStatus.code`, `sourceIPs[0]`) in
//! one streaming pass over the line, without building a document.
//!
//! All wanted paths form a tree; the deserializer descends only into the branches of that tree and
//! skips everything else (an audit line's `requestObject` can be megabytes). Leaves are captured as
//! borrowed raw JSON slices and turned into strings the way Promtail does: strings unquoted, numbers
//! and booleans as written, objects and arrays as JSON text, `null` as absent.
//! Expressions that are more than such a path (functions, filters, projections) use `jmespath` instead.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// Parses a JMESPath expression that is a plain path (`a.b`, `"x-y".z`, `a[0].b`); `None` otherwise.
pub fn parse_simple_path(expr: &str) -> Option<Vec<Segment>> {
    let b = expr.trim().as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let mut expect_field = true;
    while i < b.len() {
        if expect_field {
            if b[i] == b'"' {
                let mut s = String::new();
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            let c = *b.get(i + 1)?;
                            if c != b'"' && c != b'\\' {
                                return None;
                            }
                            s.push(c as char);
                            i += 2;
                        }
                        _ => {
                            // Copy one UTF-8 character.
                            let start = i;
                            i += 1;
                            while i < b.len() && (b[i] & 0xC0) == 0x80 {
                                i += 1;
                            }
                            s.push_str(std::str::from_utf8(&b[start..i]).ok()?);
                        }
                    }
                }
                i += 1;
                segs.push(Segment::Field(s));
            } else {
                let start = i;
                if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
                    return None;
                }
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                segs.push(Segment::Field(
                    String::from_utf8_lossy(&b[start..i]).into_owned(),
                ));
            }
            expect_field = false;
        } else if b[i] == b'.' {
            i += 1;
            expect_field = true;
        } else if b[i] == b'[' {
            let start = i + 1;
            let end = start + b[start..].iter().position(|&c| c == b']')?;
            let index: usize = std::str::from_utf8(&b[start..end]).ok()?.parse().ok()?;
            segs.push(Segment::Index(index));
            i = end + 1;
        } else {
            return None;
        }
    }
    if expect_field || segs.is_empty() {
        return None;
    }
    Some(segs)
}

#[derive(Debug, Default)]
struct Node {
    fields: Vec<(String, Node)>,
    indexes: Vec<(usize, Node)>,
    /// Output slots captured at this node.
    targets: Vec<usize>,
}

impl Node {
    fn child(&mut self, seg: &Segment) -> &mut Node {
        match seg {
            Segment::Field(name) => {
                let pos = match self.fields.iter().position(|(n, _)| n == name) {
                    Some(p) => p,
                    None => {
                        self.fields.push((name.clone(), Node::default()));
                        self.fields.len() - 1
                    }
                };
                &mut self.fields[pos].1
            }
            Segment::Index(i) => {
                let pos = match self.indexes.iter().position(|(n, _)| n == i) {
                    Some(p) => p,
                    None => {
                        self.indexes.push((*i, Node::default()));
                        self.indexes.len() - 1
                    }
                };
                &mut self.indexes[pos].1
            }
        }
    }
}

/// A set of simple paths extracted together in one pass.
#[derive(Debug, Default)]
pub struct JsonPaths {
    root: Node,
    count: usize,
}

/// Why a line could not be read as JSON.
#[derive(Debug)]
pub struct MalformedJson(pub String);

impl JsonPaths {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path; its value lands at the returned slot.
    pub fn add(&mut self, path: &[Segment]) -> usize {
        let mut node = &mut self.root;
        for seg in path {
            node = node.child(seg);
        }
        node.targets.push(self.count);
        self.count += 1;
        self.count - 1
    }

    /// Extracts every path of `json` (which must be a JSON object) into `out` (one slot per path).
    pub fn extract<'de>(
        &self,
        json: &'de str,
        out: &mut Vec<Option<&'de RawValue>>,
    ) -> Result<(), MalformedJson> {
        out.clear();
        out.resize(self.count, None);
        if json.trim_start().as_bytes().first() != Some(&b'{') {
            return Err(MalformedJson("not a JSON object".into()));
        }
        let mut de = serde_json::Deserializer::from_str(json);
        NodeSeed {
            node: &self.root,
            out,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| MalformedJson(e.to_string()))
    }
}

/// Converts a captured raw value to Promtail's string form; `None` for `null`.
pub fn raw_to_string(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .ok()
            .or_else(|| crate::pipeline::go_json::unquote_lossy(text)),
        Some(b'n') => None,
        Some(b't' | b'f') => Some(text.to_string()),
        Some(b'{' | b'[') => {
            // Written again as Promtail writes it: compact, Go's escaping and numbers.
            let value: serde_json::Value = serde_json::from_str(text).ok()?;
            let mut out = String::with_capacity(text.len());
            crate::pipeline::go_json::write_value(&value, &mut out);
            Some(out)
        }
        _ => Some(crate::pipeline::go_json::number_alone(text)),
    }
}

/// Deserializes the value at `node`: captured raw when the node has targets; descended into when it
/// has children (a map or array; any other value there is skipped).
struct NodeSeed<'a, 'o, 'de> {
    node: &'a Node,
    out: &'o mut Vec<Option<&'de RawValue>>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.node.targets.is_empty() {
            return d.deserialize_any(self);
        }
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        for &t in &self.node.targets {
            self.out[t] = Some(raw);
        }
        if !(self.node.fields.is_empty() && self.node.indexes.is_empty()) {
            let mut inner = serde_json::Deserializer::from_str(raw.get());
            inner.deserialize_any(self).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

/// Reads a map key and finds the child node it names, without allocating when the key is unescaped.
struct KeySeed<'a>(&'a Node);

impl<'de, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Option<&'a Node>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for KeySeed<'a> {
    type Value = Option<&'a Node>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.fields.iter().find(|(n, _)| n == key).map(|(_, c)| c))
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(child) = map.next_key_seed(KeySeed(self.node))? {
            match child {
                Some(node) => map.next_value_seed(NodeSeed {
                    node,
                    out: &mut *self.out,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let wanted = self
                .node
                .indexes
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, n)| n);
            let more = match wanted {
                Some(node) => seq
                    .next_element_seed(NodeSeed {
                        node,
                        out: &mut *self.out,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(paths: &[&str], json: &str) -> Result<Vec<Option<String>>, MalformedJson> {
        let mut jp = JsonPaths::new();
        for p in paths {
            jp.add(&parse_simple_path(p).expect("simple path"));
        }
        let mut out = Vec::new();
        jp.extract(json, &mut out)?;
        Ok(out.iter().map(|r| r.and_then(raw_to_string)).collect())
    }

    #[test]
    fn parses_simple_paths_only() {
        assert_eq!(
            parse_simple_path("a.b[2].\"c.d\""),
            Some(vec![
                Segment::Field("a".into()),
                Segment::Field("b".into()),
                Segment::Index(2),
                Segment::Field("c.d".into())
            ])
        );
        assert_eq!(parse_simple_path("length(a)"), None);
        assert_eq!(parse_simple_path("a[*].b"), None);
        assert_eq!(parse_simple_path("a."), None);
        assert_eq!(parse_simple_path("a || b"), None);
    }

    #[test]
    fn extracts_nested_values_in_promtail_form() {
        let line = r#"{"verb":"get","user":{"username":"bob \"the\" admin","groups":["a","b"]},"responseStatus":{"code":403},"x":null,"ok":true,"sourceIPs":["10.0.0.1","10.0.0.2"]}"#;
        let got = extract(
            &[
                "user.username",
                "verb",
                "responseStatus.code",
                "x",
                "ok",
                "user.groups",
                "sourceIPs[1]",
                "missing.deep",
                "user",
            ],
            line,
        )
        .unwrap();
        assert_eq!(got[0].as_deref(), Some("bob \"the\" admin"));
        assert_eq!(got[1].as_deref(), Some("get"));
        assert_eq!(got[2].as_deref(), Some("403"));
        assert_eq!(got[3], None, "null is absent");
        assert_eq!(got[4].as_deref(), Some("true"));
        assert_eq!(got[5].as_deref(), Some(r#"["a","b"]"#));
        assert_eq!(got[6].as_deref(), Some("10.0.0.2"));
        assert_eq!(got[7], None);
        assert_eq!(
            got[8].as_deref(),
            Some(r#"{"groups":["a","b"],"username":"bob \"the\" admin"}"#),
            "an object is written again compact, keys in order (Promtail's order is random)"
        );
    }

    #[test]
    fn skips_values_of_unexpected_type() {
        let got = extract(&["user.username"], r#"{"user":"plain","verb":"x"}"#).unwrap();
        assert_eq!(got[0], None);
    }

    #[test]
    fn rejects_malformed_json() {
        assert!(extract(&["a"], r#"{"a": "b""#).is_err());
        assert!(extract(&["a"], "not json").is_err());
        assert!(extract(&["a"], r#"{"a":1} trailing"#).is_err());
    }
}
