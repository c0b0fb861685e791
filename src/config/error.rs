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
    pub fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line,
            message: message.into(),
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
        Self::new(file, line, reword(&path, &detail))
    }
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
