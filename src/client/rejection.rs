//! Reading a 400 from Loki: which entries of a push were refused, and why.
//!
//! Loki validates each entry: the valid streams of a push are stored and the response is still 400,
//! its body naming the refused streams (`entry for stream '{job="audit"}' has timestamp too old: …`)
//! and, in recent versions, `total ignored: X out of Y`. Counting every entry of the push as dropped
//! would hide that most were stored; lokiship counts what the body says was refused, by reason, and
//! the rest as sent. When the body names nothing it recognises, the whole push counts as refused.

/// One stream of a push: its selector, entries and bytes of lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCount {
    pub labels: String,
    pub entries: usize,
    pub bytes: usize,
}

/// What a 400 refused: entries and bytes, and the reason for `promtail_dropped_entries_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: &'static str,
    pub entries: usize,
    pub bytes: usize,
}

/// The reason label for one of Loki's validation messages.
pub fn reason_of(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("too old") || m.contains("greater_than_max_sample_age") {
        "too_old"
    } else if m.contains("too new") || m.contains("too far in the future") {
        "too_new"
    } else if m.contains("too far behind") || m.contains("out of order") {
        "too_far_behind"
    } else if m.contains("line too long")
        || m.contains("max line size")
        || m.contains("line_too_long")
    {
        "line_too_long"
    } else if m.contains("structured metadata") {
        "structured_metadata"
    } else if m.contains("label") {
        "invalid_labels"
    } else {
        "ingester_error"
    }
}

/// What the 400 `body` refused of a push made of `streams`.
pub fn refused(body: &str, streams: &[StreamCount]) -> Refused {
    let total_entries: usize = streams.iter().map(|s| s.entries).sum();
    let total_bytes: usize = streams.iter().map(|s| s.bytes).sum();
    let reason = reason_of(body);
    // Streams the body names.
    let named: Vec<&StreamCount> = streams
        .iter()
        .filter(|s| body.contains(&s.labels))
        .collect();
    let (mut entries, mut bytes) = if named.is_empty() {
        (total_entries, total_bytes)
    } else {
        (
            named.iter().map(|s| s.entries).sum(),
            named.iter().map(|s| s.bytes).sum(),
        )
    };
    if let Some((ignored, out_of)) = total_ignored(body) {
        if out_of > 0 && ignored <= out_of {
            entries = ignored.min(total_entries);
            bytes = (total_bytes as u128 * entries as u128 / total_entries.max(1) as u128) as usize;
        }
    }
    Refused {
        reason,
        entries,
        bytes,
    }
}

/// `total ignored: X out of Y`.
fn total_ignored(body: &str) -> Option<(usize, usize)> {
    let rest = &body[body.find("total ignored:")? + "total ignored:".len()..];
    let mut words = rest.split_whitespace();
    let x = words.next()?.parse().ok()?;
    if (words.next()?, words.next()?) != ("out", "of") {
        return None;
    }
    let y = words
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Vec<StreamCount> {
        vec![
            StreamCount {
                labels: r#"{job="audit", verb="get"}"#.into(),
                entries: 7,
                bytes: 700,
            },
            StreamCount {
                labels: r#"{job="audit", verb="list"}"#.into(),
                entries: 3,
                bytes: 300,
            },
        ]
    }

    #[test]
    fn a_named_stream_is_refused_the_others_count_as_sent() {
        let body = r#"entry for stream '{job="audit", verb="list"}' has timestamp too old: 2025-01-01T00:00:00Z"#;
        assert_eq!(
            refused(body, &streams()),
            Refused {
                reason: "too_old",
                entries: 3,
                bytes: 300
            }
        );
    }

    #[test]
    fn total_ignored_wins_when_given() {
        let body = "entry with timestamp 2026-11-26 10:00:00 ignored, reason: 'entry too far behind, oldest acceptable timestamp is: 2026-11-26T09:00:00Z' for stream: {job=\"audit\", verb=\"get\"},\ntotal ignored: 2 out of 10";
        assert_eq!(
            refused(body, &streams()),
            Refused {
                reason: "too_far_behind",
                entries: 2,
                bytes: 200
            }
        );
    }

    #[test]
    fn an_unrecognised_body_refuses_everything() {
        assert_eq!(
            refused("error parsing labels", &streams()),
            Refused {
                reason: "invalid_labels",
                entries: 10,
                bytes: 1000
            }
        );
        assert_eq!(
            reason_of("Max entry size '262144' bytes exceeded: line too long"),
            "line_too_long"
        );
        assert_eq!(reason_of("something else"), "ingester_error");
    }
}
