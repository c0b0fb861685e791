//! `replace`: the capture groups of every match of `expression` in the line (or in the extracted
//! value `source`) are replaced by the `replace` template's output, rendered per group with
//! `.Value` = the captured text. Named groups also become extracted values.

use super::template::data;
use crate::config::stages::ReplaceStage as Config;
use crate::pipeline::template::Template;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use std::sync::Arc;

pub struct ReplaceStage {
    regex: regex::Regex,
    source: Option<Arc<str>>,
    replace: Option<Template>,
    names: Vec<(usize, Arc<str>)>,
}

impl ReplaceStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let regex = config.expression.0.clone();
        let replace = match config.replace.as_deref() {
            None | Some("") => None,
            Some(t) => {
                Some(Template::parse(t).map_err(|e| BuildError::new("replace", e.to_string()))?)
            }
        };
        let names = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, Arc::from(n))))
            .collect();
        Ok(Self {
            regex,
            source: config.source.as_deref().map(Arc::from),
            replace,
            names,
        })
    }
}

impl Stage for ReplaceStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let Some(input) = entry.input(self.source.as_deref()) else {
            return Verdict::Keep;
        };
        let input = input.to_string();
        let mut out = String::with_capacity(input.len());
        let mut last = 0;
        let mut matched = false;
        for caps in self.regex.captures_iter(&input) {
            matched = true;
            for (i, name) in &self.names {
                if let Some(m) = caps.get(*i) {
                    entry.extracted.set(name, m.as_str().to_string());
                }
            }
            // The template's data, built once per match (it sees this match's named groups).
            let mut values = self.replace.as_ref().map(|_| data(entry, None));
            for group in caps.iter().skip(1).flatten() {
                if group.start() < last {
                    continue; // a group nested in one already replaced
                }
                out.push_str(&input[last..group.start()]);
                let with = match (&self.replace, values.as_mut()) {
                    (Some(t), Some(values)) => {
                        values.set_value(group.as_str().to_string());
                        match t.render(values) {
                            Ok(s) => s,
                            Err(e) => {
                                crate::metrics::pipeline_error("replace", "render");
                                tracing::debug!(error = %e, "replace stage");
                                return Verdict::Keep;
                            }
                        }
                    }
                    _ => String::new(),
                };
                out.push_str(&with);
                last = group.end();
            }
        }
        if !matched {
            return Verdict::Keep;
        }
        out.push_str(&input[last..]);
        match &self.source {
            Some(name) => entry.extracted.set(name, out),
            None => entry.line = out,
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn promtail_documented_examples() {
        let (e, _) = run(
            r#"- replace: {expression: 'password (\S+)', replace: '****'}"#,
            "2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive information with password xyz!",
        );
        assert_eq!(
            e.line,
            "2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive information with password ****"
        );
        let stages = r#"
- replace:
    expression: '^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+) \[(?P<timestamp>[\w:/]+\s[+\-]\d{4})\] "(?P<action>\S+)\s?(?P<path>\S+)?\s?(?P<protocol>\S+)?" (?P<status>\d{3}|-) (\d+|-)\s?"?(?P<referer>[^"]*)"?\s?"?(?P<useragent>[^"]*)?"?$'
    replace: '{{ if eq .Value "200" }}{{ Replace .Value "200" "HttpStatusOk" -1 }}{{ else }}{{ .Value | ToUpper }}{{ end }}'
"#;
        let (e, _) = run(
            stages,
            r#"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#,
        );
        assert_eq!(
            e.line,
            r#"11.11.11.11 - FRANK [25/JAN/2000:14:00:01 -0500] "GET /1986.JS HTTP/1.1" HttpStatusOk 932 "-" "MOZILLA/5.0 (WINDOWS; U; WINDOWS NT 5.1; DE; RV:1.9.1.7) GECKO/20091221 FIREFOX/3.5.7 GTB6""#
        );
        assert_eq!(e.extracted.get("user"), Some("frank"));
        assert_eq!(e.extracted.get("status"), Some("200"));
    }

    #[test]
    fn every_match_source_and_empty_replace() {
        let (e, _) = run(
            r#"- replace: {expression: 'id=(\d+)', replace: 'N'}"#,
            "id=1 id=22 x",
        );
        assert_eq!(e.line, "id=N id=N x");
        let (e, _) = run(
            "- json: {expressions: {msg: msg}}\n- replace: {expression: '(secret)', source: msg}",
            r#"{"msg":"a secret b"}"#,
        );
        assert_eq!(e.extracted.get("msg"), Some("a  b"));
        assert_eq!(
            e.line, r#"{"msg":"a secret b"}"#,
            "the line is unchanged with a source"
        );
        let (e, _) = run(
            r#"- replace: {expression: '(nomatch)', replace: 'x'}"#,
            "line",
        );
        assert_eq!(e.line, "line");
    }
}
