//! The unit that travels from a source through the pipeline to the clients: a log line with its labels,
//! timestamp, structured metadata and the acknowledgement that moves its source's position.

pub mod ack;
pub mod sink;

use ack::Ack;
use std::fmt::Write as _;
use std::sync::Arc;

/// A set of labels kept sorted by name, so that equal sets render to the same stream selector.
///
/// Label sets are small (Loki allows 15 names), so a sorted vector beats a map on every operation that
/// matters here: clone, render, compare. Names and values are shared strings: every line of a file
/// starts with the same target labels, and cloning them must not allocate per label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Vec<(Arc<str>, Arc<str>)>);

impl Labels {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Sets `name` to `value`, replacing an existing value.
    pub fn insert(&mut self, name: &str, value: impl Into<Arc<str>>) {
        match self.position(name) {
            Ok(i) => self.0[i].1 = value.into(),
            Err(i) => self.0.insert(i, (Arc::from(name), value.into())),
        }
    }

    /// Like [`Labels::insert`] with a name that is already shared (no allocation for it).
    pub fn insert_shared(&mut self, name: &Arc<str>, value: impl Into<Arc<str>>) {
        match self.position(name) {
            Ok(i) => self.0[i].1 = value.into(),
            Err(i) => self.0.insert(i, (name.clone(), value.into())),
        }
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| (**n).cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| &*self.0[i].1)
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<str>> {
        match self.position(name) {
            Ok(i) => Some(self.0.remove(i).1),
            Err(_) => None,
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(n, v)| keep(n, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (&**n, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Renders the stream selector Loki expects: `{a="1", b="x \"y\""}`, names sorted, values quoted
    /// with Go string escaping (PromQL's lexer reads it back).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(
            2 + self
                .0
                .iter()
                .map(|(n, v)| n.len() + v.len() + 5)
                .sum::<usize>(),
        );
        out.push('{');
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push_str("=\"");
            escape_label_value(value, &mut out);
            out.push('"');
        }
        out.push('}');
        out
    }
}

impl<S: AsRef<str>> FromIterator<(S, S)> for Labels {
    fn from_iter<I: IntoIterator<Item = (S, S)>>(iter: I) -> Self {
        let mut labels = Labels::new();
        for (n, v) in iter {
            labels.insert(n.as_ref(), v.as_ref());
        }
        labels
    }
}

/// Escapes a label value as a Go double-quoted string body.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// The label that sets an entry's tenant, overriding the client's `tenant_id`.
pub const TENANT_LABEL: &str = "__tenant_id__";

/// One log entry on its way to Loki.
#[derive(Debug, Clone)]
pub struct Entry {
    pub labels: Labels,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    pub line: String,
    pub structured_metadata: Vec<(String, String)>,
    /// Set when the entry's position must only advance once it is delivered.
    pub ack: Option<Ack>,
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_and_escaped_like_promtail() {
        let labels: Labels = [
            ("verb", "delete"),
            ("user", "bob \"the\" admin"),
            ("code", "403"),
            ("job", "audit"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            labels.render(),
            r#"{code="403", job="audit", user="bob \"the\" admin", verb="delete"}"#
        );
    }

    #[test]
    fn escapes_backslash_newline_and_control_characters() {
        let labels: Labels = [("a", "c:\\dir\nnext\u{1}")].into_iter().collect();
        assert_eq!(labels.render(), r#"{a="c:\\dir\nnext\x01"}"#);
    }

    #[test]
    fn insert_replaces_and_remove_removes() {
        let mut labels = Labels::new();
        labels.insert("b", "1");
        labels.insert("a", "2");
        labels.insert("b", "3");
        assert_eq!(labels.get("b"), Some("3"));
        assert_eq!(labels.remove("a").as_deref(), Some("2"));
        assert_eq!(labels.render(), r#"{b="3"}"#);
    }
}
