//! Options Promtail ignores and lokiship reports: an unknown key inside a pipeline stage, named
//! with its line, the stage it is in and, when it is a typo of one the stage knows, the right one.

use super::error::suggest;
use super::load::find_line;

/// An unknown option, from serde_ignored's path of it
/// (`scrape_configs.0.pipeline_stages.1.json.?.drop_malformd`).
pub(super) struct UnknownOption {
    pub line: Option<usize>,
    key: String,
    /// Where it is, as errors name places: `scrape_configs[0].pipeline_stages[1].json`.
    place: String,
    suggestion: Option<&'static str>,
}

impl UnknownOption {
    pub fn new(text: &str, path: &str) -> Self {
        let parts: Vec<&str> = path.split('.').filter(|p| *p != "?").collect();
        let key = parts.last().copied().unwrap_or(path).to_string();
        let mut place = String::new();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if part.parse::<usize>().is_ok() {
                place.push_str(&format!("[{part}]"));
            } else {
                if !place.is_empty() {
                    place.push('.');
                }
                place.push_str(part);
            }
        }
        let stage = parts.len().checked_sub(2).map(|i| parts[i]).unwrap_or("");
        let suggestion = super::stages::stage_fields(stage)
            .and_then(|fields| suggest(&key, fields.iter().copied()));
        Self {
            line: line_of_ignored(text, path),
            key,
            place,
            suggestion,
        }
    }

    /// The message: a warning (Promtail ignores the option), or with `-config.strict` an error.
    pub fn message(&self, strict: bool) -> String {
        let hint = self
            .suggestion
            .map(|s| format!(", did you mean \"{s}\"?"))
            .unwrap_or_default();
        let mut text = format!(
            "unknown option \"{}\" in pipeline stage {}{hint}",
            self.key, self.place
        );
        if !strict {
            text.push_str(
                " (Promtail ignores it, so does lokiship; -config.strict makes it an error)",
            );
        }
        text
    }
}

/// A "missing field" error whose field was misspelt: the misspelling was ignored just before (the
/// same stage), and the error is better told as the typo it is.
pub(super) fn misspelt_required(
    text: &str,
    message: &str,
    ignored: &[String],
) -> Option<UnknownOption> {
    let rest = message.strip_prefix("missing field \"")?;
    let (field, place) = rest.split_once("\" in ")?;
    ignored
        .iter()
        .map(|path| UnknownOption::new(text, path))
        .find(|u| u.place == place && suggest(&u.key, std::iter::once(field)).is_some())
        .map(|mut u| {
            u.suggestion = super::stages::stage_fields(place.rsplit('.').next().unwrap_or(""))
                .and_then(|f| f.iter().copied().find(|f| *f == field));
            u
        })
}

/// The line of an ignored key, from serde_ignored's path (`scrape_configs.1.pipeline_stages.0.json.foo`):
/// the first occurrence of `foo:` after the start of that scrape config.
pub(super) fn line_of_ignored(text: &str, path: &str) -> Option<usize> {
    let parts: Vec<&str> = path.split('.').collect();
    let key = parts.last()?;
    let job_index: usize = parts
        .iter()
        .position(|p| *p == "scrape_configs")
        .and_then(|i| parts.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);

    let mut after = 0;
    for _ in 0..=job_index {
        after = find_line(text, "job_name", after + 1).unwrap_or(after);
    }
    let pattern = format!("{key}:");
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| {
            l.trim_start()
                .trim_start_matches("- ")
                .starts_with(&pattern)
                || l.contains(&format!("{{{pattern}"))
                || l.contains(&format!(" {pattern}"))
        })
        .map(|(i, _)| i + 1)
}
