//! Configuration errors with the file and line they come from, worded for an operator:
//! `config.yaml:12: unknown field "batchwiat" in clients[0], did you mean "batchwait"?`

use std::fmt;

/// An error in a configuration file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ConfigError {
    /// Values quoted in `message` are cut to a short excerpt — an error about a file that is no
    /// config at all (`-config.file=/etc/passwd`) must not print that file — and passwords in
    /// URLs are masked.
    pub fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line,
            message: super::expand::mask_url_passwords(&excerpt_quoted(&message.into(), false)),
        }
    }

    /// Rewords a serde_yaml_ng error (`path: message at line L column C`).
    pub fn from_yaml(file: &str, err: &serde_yaml_ng::Error) -> Self {
        let line = err.location().map(|l| l.line());
        let mut text = err.to_string();
        if let Some(pos) = text.rfind(" at line ") {
            text.truncate(pos);
        }
        // serde_yaml_ng prefixes the path of the value: `clients[0]: ...` (none at the top level).
        let (path, detail) = match text.split_once(": ") {
            Some((p, rest)) if !p.is_empty() && !p.contains(' ') => {
                (p.to_string(), rest.to_string())
            }
            _ => (String::new(), text.clone()),
        };
        let mut error = Self::new(file, line, reword(&path, &detail));
        if is_secret_path(&path) {
            error.message = excerpt_quoted(&error.message, true);
        }
        error
    }
}

/// The most characters of a quoted value an error message shows.
const EXCERPT_CHARS: usize = 40;

/// Keys whose values are secrets, as masked in `/config` and `-print-config-stderr`, and the
/// blocks that hold them: a secret written where its block was expected is still a secret.
const SECRET_KEYS: [&str; 10] = [
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "secret",
    "token",
    "basic_auth",
    "authorization",
    "oauth2",
    "auth",
];

/// Whether a value's path (`clients[0].basic_auth.password`) ends in a secret's key.
fn is_secret_path(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    let key = last.split('[').next().unwrap_or(last);
    SECRET_KEYS.contains(&key)
}

/// `message` with each value quoted in it (`"…"` or `` `…` ``, as serde quotes them) cut to
/// [`EXCERPT_CHARS`] characters with its length, or replaced by `<secret>`.
fn excerpt_quoted(message: &str, secret: bool) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=start]);
        let inner = &rest[start + 1..];
        let end = closing_quote(inner, quote).unwrap_or(inner.len());
        let value = &inner[..end];
        if secret {
            out.push_str("<secret>");
        } else if value.chars().count() > EXCERPT_CHARS {
            out.extend(value.chars().take(EXCERPT_CHARS));
            out.push_str(&format!("…{quote} ({} characters)", value.chars().count()));
            rest = inner.get(end + 1..).unwrap_or("");
            continue;
        } else {
            out.push_str(value);
        }
        out.push(quote);
        rest = inner.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Where the value opened by `quote` ends in `inner`: serde escapes `"` inside with a backslash.
fn closing_quote(inner: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn reword(path: &str, detail: &str) -> String {
    let place = if path.is_empty() || path == "." {
        "the top level".to_string()
    } else {
        path.to_string()
    };
    if detail.contains(" is not supported") {
        return format!("{detail} (in {place})");
    }
    if let Some(rest) = detail.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let hint = suggest(field, candidates.iter().copied())
                .map(|s| format!(", did you mean \"{s}\"?"))
                .unwrap_or_default();
            return format!("unknown field \"{field}\" in {place}{hint}");
        }
    }
    if let Some(rest) = detail.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return format!("missing field \"{field}\" in {place}");
    }
    if path.is_empty() {
        detail.to_string()
    } else {
        format!("{path}: {detail}")
    }
}

/// The candidate closest to `word`, if it is close enough to be a typo of it.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Damerau-Levenshtein distance (optimal string alignment): a swap of two letters counts once.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let keys = ["url", "batchwait", "batchsize", "timeout"];
        assert_eq!(
            suggest("batchwiat", keys.iter().copied()),
            Some("batchwait")
        );
        assert_eq!(suggest("zzzzzzzz", keys.iter().copied()), None);
    }

    #[test]
    fn a_file_that_is_no_config_is_quoted_in_a_short_excerpt_only() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                .repeat(20);
        let err = serde_yaml_ng::from_str::<crate::config::schema::Config>(&passwd).unwrap_err();
        let shown = ConfigError::from_yaml("/etc/passwd", &err).to_string();
        assert!(shown.len() < 200, "{shown}");
        assert!(
            shown.contains("root:x:0:0"),
            "an excerpt says what the file is: {shown}"
        );
        assert!(!shown.contains("daemon:x:1:1:daemon:/usr/sbin"), "{shown}");
        assert!(shown.contains(" characters)"), "how long it was: {shown}");
    }

    #[test]
    fn values_at_secret_keys_are_never_quoted() {
        let msg = excerpt_quoted("invalid value: string \"hunter2\", expected `x`", true);
        assert_eq!(
            msg,
            "invalid value: string \"<secret>\", expected `<secret>`"
        );
        assert!(is_secret_path("clients[0].basic_auth.password"));
        assert!(is_secret_path("clients[1].bearer_token"));
        assert!(!is_secret_path("clients[0].basic_auth.password_file"));
        let short = excerpt_quoted(
            "unknown field \"batchwiat\", did you mean \"batchwait\"?",
            false,
        );
        assert_eq!(
            short,
            "unknown field \"batchwiat\", did you mean \"batchwait\"?"
        );
    }

    #[test]
    fn rewords_unknown_fields() {
        let msg = reword(
            "clients[0]",
            "unknown field `batchwiat`, expected one of `url`, `batchwait`",
        );
        assert_eq!(
            msg,
            "unknown field \"batchwiat\" in clients[0], did you mean \"batchwait\"?"
        );
    }
}
