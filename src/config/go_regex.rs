//! Regular expressions with Go's (RE2's) meaning.
//!
//! Promtail compiles every expression with Go's `regexp`, where `\d`, `\w`, `\s` and `\b` are ASCII
//! classes; in Rust's `regex` they are Unicode classes. A Promtail config must match the same lines
//! here, so those classes are rewritten to their ASCII sets before compiling. It is also what makes
//! the common syslog expressions fast: a Unicode `\w` or `\d` makes the capture engines walk large
//! Unicode tables — a 3–4× difference per line on syslog (see `benches/pipeline.rs`).

use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSetItem, Span};

/// Compile `pattern` with Go's meaning of the Perl classes and word boundaries.
pub fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&to_rust(pattern))
}

/// The pattern rewritten for Rust's `regex`; unchanged if it does not parse (so that
/// `regex::Regex::new` reports the error against the user's own text).
pub fn to_rust(pattern: &str) -> String {
    let Ok(parsed) = ast::parse::Parser::new().parse(pattern) else {
        return pattern.to_string();
    };
    let Ok(mut edits) = ast::visit(&parsed, Rewrites(Vec::new()));
    // Spans do not overlap (a Perl class or an assertion has no children): splice from the end.
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start.offset));
    let mut out = pattern.to_string();
    for (span, text) in edits {
        out.replace_range(span.start.offset..span.end.offset, text);
    }
    out
}

/// Collects the spans to replace and their ASCII equivalents.
struct Rewrites(Vec<(Span, &'static str)>);

impl Rewrites {
    fn perl(&mut self, class: &ast::ClassPerl) {
        // A bracketed class is valid both alone and nested inside another class (`[\d.]`).
        let text = match (&class.kind, class.negated) {
            (ClassPerlKind::Digit, false) => "[0-9]",
            (ClassPerlKind::Digit, true) => "[^0-9]",
            (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
            (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
            (ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
            (ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
        };
        self.0.push((class.span, text));
    }
}

impl ast::Visitor for Rewrites {
    type Output = Vec<(Span, &'static str)>;
    type Err = std::convert::Infallible;

    fn finish(self) -> Result<Self::Output, Self::Err> {
        Ok(self.0)
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), Self::Err> {
        match node {
            Ast::ClassPerl(class) => self.perl(class),
            Ast::Assertion(a) => match a.kind {
                ast::AssertionKind::WordBoundary => self.0.push((a.span, r"(?-u:\b)")),
                ast::AssertionKind::NotWordBoundary => self.0.push((a.span, r"(?-u:\B)")),
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), Self::Err> {
        if let ClassSetItem::Perl(class) = item {
            self.perl(class);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        let digits = compile(r"^\d+$").unwrap();
        assert!(digits.is_match("0123"));
        assert!(!digits.is_match("٣")); // Arabic-Indic three: a Unicode digit, not a Go \d
        let word = compile(r"^\w+$").unwrap();
        assert!(word.is_match("a_Z9"));
        assert!(!word.is_match("é"));
        let not_space = compile(r"^\S+$").unwrap();
        assert!(not_space.is_match("é\u{a0}x")); // no-break space is not a Go \s
        assert!(!compile(r"\s").unwrap().is_match("\u{0b}")); // nor is the vertical tab
        let boundary = compile(r"\bfoo\b").unwrap();
        assert!(boundary.is_match("a foo."));
        assert!(boundary.is_match("éfooé")); // é is not an ASCII word character
    }

    #[test]
    fn classes_inside_brackets_and_escapes_are_rewritten_correctly() {
        assert_eq!(to_rust(r"[\d.]+"), r"[[0-9].]+");
        assert_eq!(to_rust(r"[^\s]"), r"[^[\t\n\f\r ]]");
        assert_eq!(to_rust(r"\\d"), r"\\d"); // an escaped backslash followed by d
        assert_eq!(to_rust(r"(?P<n>\D)"), r"(?P<n>[^0-9])");
        let re = compile(r"^[\w\-.]+@[^\s]+$").unwrap();
        assert!(re.is_match("a-b.c@host"));
        assert!(!re.is_match("a b@host"));
        // Unicode stays available where it is asked for explicitly, as in Go.
        assert!(compile(r"^\pL+$").unwrap().is_match("héllo"));
        assert!(compile(r"^.$").unwrap().is_match("é"));
    }

    #[test]
    fn invalid_patterns_report_the_users_text() {
        let err = compile(r"(\d").unwrap_err().to_string();
        assert!(err.contains(r"(\d"), "{err}");
    }
}
