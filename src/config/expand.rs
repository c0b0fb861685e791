//! `-config.expand-env`: replaces `${VAR}` and `${VAR:-default}` with the environment's values before
//! the YAML is parsed. An undefined variable becomes the empty string (as in Promtail); `$$` is a
//! literal `$`. Line numbers are unchanged as long as values contain no newline.

/// Expands `${VAR}`, `${VAR:-default}` and `$$` in `text`, looking variables up with `lookup`.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    expand_reporting(text, lookup).0
}

/// A `${VAR}` in the config text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    /// 1-based line of the text.
    pub line: usize,
    pub has_default: bool,
    /// `lookup` found no value.
    pub unset: bool,
}

/// Like [`expand`], also returning every variable referenced (outside comment lines), so that an
/// unset one can be named in a warning, and a `${VAR}` left unexpanded can be explained.
pub fn expand_reporting(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> (String, Vec<Reference>) {
    let mut references = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            match closing_brace(body) {
                Some(end) => {
                    let inner = &body[..end];
                    let (name, default) = match inner.split_once(":-") {
                        Some((n, d)) => (n, Some(d)),
                        None => (inner, None),
                    };
                    if !is_variable_name(name) {
                        // `${1}` in a relabel replacement is a regex group, not a variable.
                        out.push('$');
                        rest = after;
                        continue;
                    }
                    let found = lookup(name);
                    let consumed = text.len() - rest.len() + pos;
                    let line_start = text[..consumed].rfind('\n').map_or(0, |i| i + 1);
                    if !text[line_start..consumed].trim_start().starts_with('#') {
                        references.push(Reference {
                            name: name.to_string(),
                            line: text[..consumed].matches('\n').count() + 1,
                            has_default: default.is_some(),
                            unset: found.is_none(),
                        });
                    }
                    let value = found.filter(|v| !(v.is_empty() && default.is_some()));
                    out.push_str(&value.unwrap_or_else(|| default.unwrap_or("").to_string()));
                    rest = &body[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (out, references)
}

/// The `}` that closes `${`: braces inside a default (`${PATHS:-/var/log/{a,b}}`) are balanced.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    None
}

/// An environment variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::{expand, expand_reporting, Reference};

    #[test]
    fn references_name_their_line_and_whether_they_are_set() {
        let text = "# ${IN_COMMENT}\nurl: ${LOKI}\ntenant: ${MISSING}\nx: ${OTHER:-d} ${1}\n";
        let (_, refs) = expand_reporting(text, env);
        let r = |name: &str, line, has_default, unset| Reference {
            name: name.into(),
            line,
            has_default,
            unset,
        };
        assert_eq!(
            refs,
            vec![
                r("LOKI", 2, false, false),
                r("MISSING", 3, false, true),
                r("OTHER", 4, true, true)
            ]
        );
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "LOKI" => Some("http://loki:3100".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(
            expand("url: ${LOKI}/push", env),
            "url: http://loki:3100/push"
        );
        assert_eq!(expand("${MISSING:-http://x}", env), "http://x");
        assert_eq!(expand("${EMPTY:-d}", env), "d");
        assert_eq!(expand("a${MISSING}b", env), "ab");
        assert_eq!(
            expand("price: $$5 and regex (.*)$", env),
            "price: $5 and regex (.*)$"
        );
        assert_eq!(expand("${unterminated", env), "${unterminated");
        assert_eq!(
            expand("__path__: ${MISSING:-/var/log/{syslog,auth.log}}", env),
            "__path__: /var/log/{syslog,auth.log}"
        );
        // Regex group references in relabel replacements survive.
        assert_eq!(
            expand("replacement: '${1}-$1-${2}:${LOKI}'", env),
            "replacement: '${1}-$1-${2}:http://loki:3100'"
        );
    }
}

/// The config text with secrets replaced by `<secret>`: values of `password`, `bearer_token`,
/// `credentials`, `client_secret`, `secret` and `token` keys (block or flow style), and passwords
/// in URLs (`https://user:pass@host`). For `-print-config-stderr`: logs are read by many.
// The regexes are constants: they cannot fail on input.
#[allow(clippy::expect_used)]
pub fn mask_secrets(text: &str) -> String {
    static KEYS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        regex::Regex::new(
            r#"(?m)(^|[\s{,])(password|bearer_token|credentials|client_secret|secret|token)(\s*:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s,}#](?:[^,}#\n]*[^\s,}#])?)"#,
        )
        .expect("a valid regex")
    });
    mask_url_passwords(&keys.replace_all(text, "${1}${2}${3}<secret>"))
}

/// `text` with the passwords of URLs in it (`https://user:pass@host`) replaced by `<secret>`.
#[allow(clippy::expect_used)]
pub fn mask_url_passwords(text: &str) -> String {
    static URLS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let urls =
        URLS.get_or_init(|| regex::Regex::new(r"(://[^/\s:@]+:)[^/\s@]+@").expect("a valid regex"));
    urls.replace_all(text, "${1}<secret>@").into_owned()
}

#[cfg(test)]
mod mask_tests {
    use super::mask_secrets;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        let text = "clients:\n  - url: https://tenant:s3cr3t@loki.example/loki/api/v1/push\n    basic_auth:\n      username: tenant\n      password: hunter2 # old\n      password_file: /etc/pw\n    bearer_token: 'abc.def'\n    authorization: {type: Bearer, credentials: \"xyz\"}\n    oauth2: {client_id: me, client_secret: shh}\n";
        let out = mask_secrets(text);
        for secret in ["s3cr3t", "hunter2", "abc.def", "xyz", "shh"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("https://tenant:<secret>@loki.example/loki/api/v1/push"));
        assert!(out.contains("password: <secret> # old"));
        assert!(
            out.contains("password_file: /etc/pw"),
            "paths to secrets are not secrets"
        );
        assert!(out.contains("username: tenant"));
        assert!(out.contains("client_id: me"));
        assert!(out.contains("{type: Bearer, credentials: <secret>}"));
    }
}
