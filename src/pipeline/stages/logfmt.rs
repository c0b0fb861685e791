//! `logfmt`: `key=value` pairs of the line (or of an extracted value) become extracted values, as
//! named by `mapping` (extracted name → logfmt key; an empty key means the same name).

use crate::config::stages::LogfmtStage as Config;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use std::sync::Arc;

pub struct LogfmtStage {
    /// (extracted name, logfmt key)
    mapping: Vec<(Arc<str>, String)>,
    source: Option<String>,
}

impl LogfmtStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        if config.mapping.is_empty() {
            return Err(BuildError::new(
                "logfmt",
                "mapping must name at least one key",
            ));
        }
        let mapping = config
            .mapping
            .iter()
            .map(|(name, key)| {
                let key = key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| name.clone());
                (Arc::from(name.as_str()), key)
            })
            .collect();
        Ok(Self {
            mapping,
            source: config.source.clone(),
        })
    }
}

impl Stage for LogfmtStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let Some(input) = entry.input(self.source.as_deref()) else {
            return Verdict::Keep;
        };
        let pairs = match parse(input) {
            Ok(p) => p,
            Err(_) => {
                crate::metrics::pipeline_error("logfmt", "malformed");
                return Verdict::Keep;
            }
        };
        let mut found = Vec::new();
        for (name, key) in &self.mapping {
            // The last occurrence of a key wins, as when a logfmt line is decoded into a map.
            if let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == key) {
                found.push((name, v.clone()));
            }
        }
        for (name, value) in found {
            entry.extracted.set(name, value);
        }
        Verdict::Keep
    }
}

/// Splits a logfmt line into (key, value) pairs. A key without `=` has an empty value; a value may
/// be double-quoted with Go escapes. An unterminated quote or a stray `=` is an error.
pub fn parse(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] <= b' ' {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] > b' ' && bytes[i] != b'=' && bytes[i] != b'"' {
            i += 1;
        }
        if i == start {
            return Err(format!("unexpected {:?} at byte {i}", bytes[i] as char));
        }
        let key = line[start..i].to_string();
        if i >= bytes.len() || bytes[i] != b'=' {
            if i < bytes.len() && bytes[i] == b'"' {
                return Err(format!("unexpected '\"' at byte {i}"));
            }
            pairs.push((key, String::new()));
            continue;
        }
        i += 1;
        let value = if i < bytes.len() && bytes[i] == b'"' {
            let (v, end) = quoted(line, i)?;
            i = end;
            v
        } else {
            let vs = i;
            while i < bytes.len() && bytes[i] > b' ' {
                if bytes[i] == b'"' || bytes[i] == b'=' {
                    return Err(format!(
                        "unexpected {:?} in value at byte {i}",
                        bytes[i] as char
                    ));
                }
                i += 1;
            }
            line[vs..i].to_string()
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// A quoted value starting at `start` (the quote): its text and the index after the closing quote.
fn quoted(line: &str, start: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = line[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + i + 1)),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("bad \\u escape {hex:?}"))?;
                    out.push(c);
                }
                Some(c) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted value".into())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn promtail_documented_example() {
        // Promtail's logfmt docs: mapping `timestamp: time, app:, duration:, unknown:`.
        let stages = "- logfmt: {mapping: {timestamp: time, app: , duration: , unknown: }}";
        let (e, _) = run(stages, "time=2012-11-01T22:08:41+00:00 app=loki level=WARN duration=125 message=\"this is a log line\" extra=\"user=foo\"");
        assert_eq!(
            e.extracted.get("timestamp"),
            Some("2012-11-01T22:08:41+00:00")
        );
        assert_eq!(e.extracted.get("app"), Some("loki"));
        assert_eq!(e.extracted.get("duration"), Some("125"));
        assert_eq!(e.extracted.get("unknown"), None);
        assert_eq!(
            e.extracted.get("level"),
            None,
            "only mapped keys are extracted"
        );
    }

    #[test]
    fn source_and_quoting() {
        let stages = "- logfmt: {mapping: {m: message}}\n- logfmt: {mapping: {user: }, source: m}";
        let (e, _) = run(stages, r#"message="user=\"bob\" ok" x"#);
        assert_eq!(e.extracted.get("m"), Some(r#"user="bob" ok"#));
        assert_eq!(e.extracted.get("user"), Some("bob"));
        assert_eq!(
            parse("a b=").unwrap(),
            vec![("a".into(), String::new()), ("b".into(), String::new())]
        );
        assert_eq!(parse(r#"k="\u00e9\n""#).unwrap()[0].1, "é\n");
    }

    #[test]
    fn malformed_lines_are_kept_unchanged() {
        for bad in [r#"a="unterminated"#, r#"a=b"c"#, "=x", r#""k"=v"#] {
            assert!(parse(bad).is_err(), "{bad}");
            let before = crate::pipeline::stages::test_util::errors("logfmt", "malformed");
            let (e, v) = run("- logfmt: {mapping: {a: }}", bad);
            assert!(
                crate::pipeline::stages::test_util::errors("logfmt", "malformed") > before,
                "counted"
            );
            assert_eq!(v, crate::pipeline::Verdict::Keep);
            assert_eq!(e.line, bad);
            assert!(e.extracted.is_empty());
        }
    }
}
