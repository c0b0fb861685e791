//! A Go `text/template` subset, enough for Promtail's `template` and `replace` stages, computing
//! what Promtail 3.6 computes (checked against its recorded pushes in `tests/differential.rs`).
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `{{/* comments */}}`; pipelines
//! with `|`; fields `.Name` (the stage's data: `.Value`, `.Entry` and every extracted value, all
//! strings); variables (`$x := …`, `$`); string (`"…"`, `` `…` ``), number and boolean literals;
//! `if` / `else if` / `else` / `end`; `range` over the data or a list. Functions (`functions.rs`):
//! Go's builtins, Promtail's `ToLower` … `regexReplaceAllLiteral`, and most of sprig's
//! (`sprig.rs`, `numbers.rs`, `lists.rs`). A missing field prints `<no value>`; a function that
//! wants a string refuses it, and the failed template leaves the stage's value as it was.
//!
//! `parse.rs` reads the text into nodes once; `eval.rs` runs them; `value.rs` is what they compute
//! with and how Go prints it (`gofmt.rs`: `print`, `printf`).

mod codecs;
mod eval;
mod functions;
mod gofmt;
mod lists;
mod numbers;
mod parse;
mod sprig;
mod value;

pub use eval::Data;

use std::fmt;

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parse::Node>,
}

/// A template that does not parse, or an action that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            nodes: parse::parse(text)?,
        })
    }

    /// Renders with `data`; an error names the action that failed (a wrong argument type, a bad
    /// regex in `regexReplaceAll`).
    pub fn render(&self, data: &Data) -> Result<String, TemplateError> {
        eval::render(&self.nodes, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, value: &str, extra: &[(&str, &str)]) -> String {
        let mut data = Data::new(Some(value.to_string()), "the line".to_string());
        for (k, v) in extra {
            data.insert(k, v.to_string());
        }
        Template::parse(t).unwrap().render(&data).unwrap()
    }

    #[test]
    fn promtail_documented_examples() {
        assert_eq!(
            render("{{ .Value }}_some_suffix", "loki", &[]),
            "loki_some_suffix"
        );
        assert_eq!(render("{{ ToLower .Value }}", "WARN", &[]), "warn");
        assert_eq!(
            render(
                r#"{{ Replace .Value "loki" "blokey" 1 }}"#,
                "loki loki",
                &[]
            ),
            "blokey loki"
        );
        assert_eq!(
            render(r#"{{ .Value }} {{ .app }}"#, "x", &[("app", "loki")]),
            "x loki"
        );
        assert_eq!(
            render("{{ .Value | ToUpper }} doki", "loki", &[]),
            "LOKI doki"
        );
        let level = r#"{{ if eq .Value "WARN" }}{{ Replace .Value "WARN" "OK" -1 }}{{ else }}{{ .Value }}{{ end }}"#;
        assert_eq!(render(level, "WARN", &[]), "OK");
        assert_eq!(render(level, "INFO", &[]), "INFO");
        assert_eq!(render("{{ TrimSpace .Value }}", "  a b ", &[]), "a b");
        assert_eq!(
            render(r#"{{ TrimPrefix .Value "pre" }}"#, "prefix", &[]),
            "fix"
        );
        assert_eq!(
            render(r#"{{ TrimSuffix .Value "fix" }}"#, "prefix", &[]),
            "pre"
        );
        assert_eq!(render(r#"{{ Trim .Value "!" }}"#, "!!hi!", &[]), "hi");
        assert_eq!(render(r#"{{ TrimLeft .Value "!" }}"#, "!!hi!", &[]), "hi!");
        assert_eq!(
            render(r#"{{ TrimRight .Value "!" }}"#, "!!hi!", &[]),
            "!!hi"
        );
        assert_eq!(render("{{ .Entry }}", "", &[]), "the line");
    }

    #[test]
    fn hashes_match_promtail() {
        // Test vectors of Promtail's template stage: SHA-256 / SHA3-256 of value + salt.
        assert_eq!(
            render(r#"{{ Sha2Hash .Value "salt" }}"#, "this is PII data", &[]),
            "5526fd6f8ad457279cf8ff06453c6cb61bf479fa826e3b099caa6c846f9376f2"
        );
        assert_eq!(
            render(r#"{{ Hash .Value "salt" }}"#, "this is PII data", &[]),
            "0807ea24e992127128b38e4930f7155013786a4999c73a25910318a793847658"
        );
    }

    #[test]
    fn regex_functions_and_logic() {
        assert_eq!(
            render(
                r#"{{ regexReplaceAll "(\\d+)" .Value "<$1>" }}"#,
                "a1b22",
                &[]
            ),
            "a<1>b<22>"
        );
        assert_eq!(
            render(
                r#"{{ regexReplaceAllLiteral "\\d" .Value "$1" }}"#,
                "a1",
                &[]
            ),
            "a$1"
        );
        let t = r#"{{ if and (ne .Value "") (not (eq .code "200")) }}bad{{ else if eq .code "200" }}ok{{ else }}none{{ end }}"#;
        assert_eq!(render(t, "x", &[("code", "500")]), "bad");
        assert_eq!(render(t, "x", &[("code", "200")]), "ok");
        assert_eq!(render(t, "", &[("code", "500")]), "none");
        assert_eq!(
            render(
                r#"{{ if contains "err" .Value }}E{{ end }}"#,
                "an error",
                &[]
            ),
            "E"
        );
        assert_eq!(render(r#"{{ printf "%s-%d" .Value 7 }}"#, "v", &[]), "v-7");
        assert_eq!(render("{{ len .Value }}", "four", &[]), "4");
        assert_eq!(render("{{ if lt 3 10 }}lt{{ end }}", "", &[]), "lt");
    }

    #[test]
    fn variables_range_trim_and_comments() {
        assert_eq!(
            render("{{ $v := ToUpper .Value }}{{ $v }}-{{ $v }}", "a", &[]),
            "A-A"
        );
        assert_eq!(
            render(
                "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}",
                "x",
                &[("b", "2"), ("a", "1")]
            ),
            "Entry=the line;Value=x;a=1;b=2;"
        );
        assert_eq!(render("a  {{- /* note */ -}}  b", "", &[]), "ab");
        assert_eq!(render("{{ .missing }}|", "", &[]), "<no value>|");
        assert_eq!(render("{{`raw \\n`}}", "", &[]), "raw \\n");
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        for bad in [
            "{{ .Value",
            "{{ if .Value }}x",
            "{{ end }}",
            "{{ NoSuchFunc .Value }}",
            "{{ else }}",
            r#"{{ "unterminated }}"#,
            "{{ ( .Value }}",
            "{{ $undefined }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} should not parse");
        }
        let t = Template::parse(r#"{{ Replace .Value "a" }}"#).unwrap();
        assert!(t
            .render(&Data::new(Some("a".into()), String::new()))
            .is_err());
        let t = Template::parse(r#"{{ regexReplaceAll "(" .Value "x" }}"#).unwrap();
        assert!(t
            .render(&Data::new(Some("a".into()), String::new()))
            .is_err());
    }
}
