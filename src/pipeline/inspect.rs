//! `-inspect`: for each entry and stage, what the stage changed (extracted values, labels,
//! timestamp, line), printed to standard error; coloured when that is a terminal.

use super::Processing;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns inspection on for every pipeline (`-inspect`).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub(super) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What an entry looked like before a stage.
pub(super) struct Before {
    labels: Vec<(String, String)>,
    extracted: Vec<(String, String)>,
    structured_metadata: Vec<(String, String)>,
    timestamp_ns: i64,
    line: String,
}

impl Before {
    pub(super) fn of(e: &Processing) -> Self {
        Self {
            labels: pairs(e.labels.iter()),
            extracted: pairs(e.extracted.iter()),
            structured_metadata: e.structured_metadata.clone(),
            timestamp_ns: e.timestamp_ns,
            line: e.line.clone(),
        }
    }

    /// Prints the differences to `after`, under the stage's name; `dropped` says why it was dropped.
    pub(super) fn report(&self, stage: &str, after: &Processing, dropped: Option<&str>) {
        let color = std::io::stderr().is_terminal();
        let paint = |code: &str, s: String| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s
            }
        };
        let mut out = format!("[inspect: {stage} stage]\n");
        let mut changed = false;
        let mut diff = |what: &str, before: &[(String, String)], after: Vec<(String, String)>| {
            for (k, v) in &after {
                match before.iter().find(|(bk, _)| bk == k) {
                    None => {
                        out.push_str(&paint("32", format!("  {what} +{k}: {v:?}\n")));
                        changed = true;
                    }
                    Some((_, old)) if old != v => {
                        out.push_str(&paint("33", format!("  {what} ~{k}: {old:?} -> {v:?}\n")));
                        changed = true;
                    }
                    _ => {}
                }
            }
            for (k, v) in before {
                if !after.iter().any(|(ak, _)| ak == k) {
                    out.push_str(&paint("31", format!("  {what} -{k}: {v:?}\n")));
                    changed = true;
                }
            }
        };
        diff("extracted", &self.extracted, pairs(after.extracted.iter()));
        diff("label", &self.labels, pairs(after.labels.iter()));
        diff(
            "structured_metadata",
            &self.structured_metadata,
            after.structured_metadata.clone(),
        );
        if self.timestamp_ns != after.timestamp_ns {
            out.push_str(&paint(
                "33",
                format!(
                    "  timestamp: {} -> {}\n",
                    time(self.timestamp_ns),
                    time(after.timestamp_ns)
                ),
            ));
            changed = true;
        }
        if self.line != after.line {
            out.push_str(&paint(
                "33",
                format!("  line: {:?} -> {:?}\n", self.line, after.line),
            ));
            changed = true;
        }
        if let Some(reason) = dropped {
            out.push_str(&paint("31", format!("  dropped ({reason})\n")));
        } else if !changed {
            out.push_str("  none\n");
        }
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }
}

/// Reports that a stage holding entries took one (it comes out later, joined or as is).
pub(super) fn held(stage: &str, released: usize) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "[inspect: {stage} stage]\n  held; {released} entr{} released",
        if released == 1 { "y" } else { "ies" }
    );
}

fn pairs<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    it.map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
