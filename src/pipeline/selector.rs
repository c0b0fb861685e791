//! LogQL log selectors, as used by the `match` stage: `{job="audit", verb=~"get|list"} |= "secrets" !~ "kube-system"`.
//!
//! Label matchers (`=`, `!=`, `=~`, `!~`; regexes anchored at both ends, a missing label matches as
//! empty) and line filters (`|=`, `!=`, `|~`, `!~`; regexes unanchored).

use crate::config::go_regex;
use crate::entry::Labels;
use regex::Regex;

#[derive(Debug)]
pub struct Selector {
    matchers: Vec<(String, LabelOp)>,
    filters: Vec<LineFilter>,
}

#[derive(Debug)]
enum LabelOp {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

#[derive(Debug)]
enum LineFilter {
    Contains(String),
    NotContains(String),
    Re(Regex),
    NotRe(Regex),
}

/// Parses a stream's labels as Loki writes them in a push: `{name="value", ...}` — a selector of
/// equality matchers only.
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let selector = Selector::parse(text)?;
    if !selector.filters.is_empty() {
        return Err("line filters after the labels".into());
    }
    selector
        .matchers
        .into_iter()
        .map(|(name, op)| match op {
            LabelOp::Eq(value) => Ok((name, value)),
            _ => Err(format!("label {name:?} needs = and a value")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|pairs| {
            pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect()
        })
}

impl Selector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser { s: text, pos: 0 };
        p.skip_ws();
        p.expect("{")?;
        let mut matchers = Vec::new();
        loop {
            p.skip_ws();
            if p.eat("}") {
                break;
            }
            let name = p.ident()?;
            p.skip_ws();
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| p.eat(op))
                .ok_or_else(|| p.err("expected =, !=, =~ or !~"))?;
            p.skip_ws();
            let value = p.string()?;
            let anchored = |v: &str| {
                go_regex::compile(&format!("^(?:{v})$"))
                    .map_err(|e| format!("invalid regex {v:?}: {e}"))
            };
            let op = match op {
                "=" => LabelOp::Eq(value),
                "!=" => LabelOp::Ne(value),
                "=~" => LabelOp::Re(anchored(&value)?),
                _ => LabelOp::NotRe(anchored(&value)?),
            };
            matchers.push((name, op));
            p.skip_ws();
            if p.eat(",") {
                continue;
            }
            p.expect("}")?;
            break;
        }
        if matchers.is_empty() {
            return Err("a selector needs at least one label matcher".into());
        }
        let mut filters = Vec::new();
        loop {
            p.skip_ws();
            if p.pos >= p.s.len() {
                break;
            }
            let op = ["|=", "!=", "|~", "!~"]
                .into_iter()
                .find(|op| p.eat(op))
                .ok_or_else(|| p.err("expected a line filter (|=, !=, |~ or !~)"))?;
            p.skip_ws();
            let value = p.string()?;
            let re =
                |v: &str| go_regex::compile(v).map_err(|e| format!("invalid regex {v:?}: {e}"));
            filters.push(match op {
                "|=" => LineFilter::Contains(value),
                "!=" => LineFilter::NotContains(value),
                "|~" => LineFilter::Re(re(&value)?),
                _ => LineFilter::NotRe(re(&value)?),
            });
        }
        Ok(Self { matchers, filters })
    }

    pub fn matches(&self, labels: &Labels, line: &str) -> bool {
        self.matchers.iter().all(|(name, op)| {
            let v = labels.get(name).unwrap_or("");
            match op {
                LabelOp::Eq(x) => v == x,
                LabelOp::Ne(x) => v != x,
                LabelOp::Re(r) => r.is_match(v),
                LabelOp::NotRe(r) => !r.is_match(v),
            }
        }) && self.filters.iter().all(|f| match f {
            LineFilter::Contains(s) => line.contains(s.as_str()),
            LineFilter::NotContains(s) => !line.contains(s.as_str()),
            LineFilter::Re(r) => r.is_match(line),
            LineFilter::NotRe(r) => !r.is_match(line),
        })
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }
    fn err(&self, what: &str) -> String {
        format!("{what} at position {} of {:?}", self.pos + 1, self.s)
    }
    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }
    fn eat(&mut self, tok: &str) -> bool {
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, tok: &str) -> Result<(), String> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.err(&format!("expected {tok:?}")))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.err("expected a label name"));
        }
        let name = self.rest()[..len].to_string();
        self.pos += len;
        Ok(name)
    }
    /// A double-quoted string with Go escapes, or a backquoted raw string.
    fn string(&mut self) -> Result<String, String> {
        if self.eat("`") {
            let end = self
                .rest()
                .find('`')
                .ok_or_else(|| self.err("unterminated `string`"))?;
            let v = self.rest()[..end].to_string();
            self.pos += end + 1;
            return Ok(v);
        }
        self.expect("\"")?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, 'a')) => out.push('\u{7}'),
                    Some((_, 'b')) => out.push('\u{8}'),
                    Some((_, 'f')) => out.push('\u{c}'),
                    Some((_, 'v')) => out.push('\u{b}'),
                    // Go's \xNN, \uNNNN and \UNNNNNNNN (how Go and lokiship quote control
                    // characters in a label value).
                    Some((_, kind @ ('x' | 'u' | 'U'))) => {
                        let digits = match kind {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.by_ref().take(digits).map(|(_, c)| c).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == digits)
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.err(&format!("invalid escape \\{kind}{hex}")))?;
                        out.push(c);
                    }
                    Some((_, c)) => out.push(c),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        [("job", "audit"), ("verb", "get")].into_iter().collect()
    }

    #[test]
    fn label_values_with_control_characters_read_back_as_rendered() {
        let mut labels = Labels::new();
        labels.insert("a", "bell\u{7} nul\u{1} tab\t quote\" back\\ é");
        let back = parse_labels(&labels.render()).unwrap();
        assert_eq!(back, labels, "{}", labels.render());
        assert_eq!(
            parse_labels(r#"{a="\u00e9\U0001F600\x41"}"#)
                .unwrap()
                .get("a"),
            Some("é😀A")
        );
        assert!(parse_labels(r#"{a="\xZZ"}"#).is_err());
    }

    #[test]
    fn label_matchers() {
        assert!(Selector::parse(r#"{job="audit"}"#)
            .unwrap()
            .matches(&labels(), ""));
        assert!(Selector::parse(r#"{job="audit", verb=~"get|list"}"#)
            .unwrap()
            .matches(&labels(), ""));
        assert!(
            !Selector::parse(r#"{verb=~"ge"}"#)
                .unwrap()
                .matches(&labels(), ""),
            "regexes are anchored"
        );
        assert!(Selector::parse(r#"{verb!~"delete.*", user!="x"}"#)
            .unwrap()
            .matches(&labels(), ""));
        assert!(
            Selector::parse(r#"{user=""}"#)
                .unwrap()
                .matches(&labels(), ""),
            "missing label is empty"
        );
    }

    #[test]
    fn line_filters() {
        let s = Selector::parse(r#"{job="audit"} |= "secrets" != "kube-system" |~ `"code":4\d\d`"#)
            .unwrap();
        assert!(s.matches(&labels(), r#"secrets in default "code":403"#));
        assert!(!s.matches(&labels(), r#"secrets in kube-system "code":403"#));
        assert!(!s.matches(&labels(), r#"secrets "code":200"#));
    }

    #[test]
    fn errors_say_where() {
        assert!(Selector::parse(r#"job="audit""#)
            .unwrap_err()
            .contains("expected \"{\""));
        assert!(Selector::parse(r#"{job="audit"} |= 5"#).is_err());
        assert!(Selector::parse(r#"{job=~"("}"#)
            .unwrap_err()
            .contains("invalid regex"));
    }
}
