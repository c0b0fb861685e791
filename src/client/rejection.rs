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

/// What a 400 refused, by reason: entries and bytes of each, for `promtail_dropped_entries_total`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Refused {
    pub by_reason: Vec<Refusal>,
}

/// The entries of a push refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub entries: usize,
    pub bytes: usize,
}

impl Refused {
    pub fn entries(&self) -> usize {
        self.by_reason.iter().map(|r| r.entries).sum()
    }

    pub fn bytes(&self) -> usize {
        self.by_reason.iter().map(|r| r.bytes).sum()
    }

    fn all(reason: &'static str, streams: &[StreamCount]) -> Self {
        Self {
            by_reason: vec![Refusal {
                reason,
                entries: streams.iter().map(|s| s.entries).sum(),
                bytes: streams.iter().map(|s| s.bytes).sum(),
            }],
        }
    }
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
        || m.contains("max entry size")
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

/// What the 400 `body` refused of a push made of `streams`. `complete` is false when the body
/// could not be read whole (too long, or the connection broke): then nothing can be known to be
/// stored, and the whole push counts as refused, never as sent.
pub fn refused(body: &str, complete: bool, streams: &[StreamCount]) -> Refused {
    if !complete {
        return Refused::all(reason_of(body), streams);
    }
    let total_entries: usize = streams.iter().map(|s| s.entries).sum();
    let total_bytes: usize = streams.iter().map(|s| s.bytes).sum();
    if let Some(groups) = grouped_errors(body, streams) {
        return groups;
    }
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
        by_reason: vec![Refusal {
            reason,
            entries,
            bytes,
        }],
    }
}

/// Loki 3's body: one `N errors like: <message>` group per distinct message, joined by `; `. Each
/// group's entries are counted under its message's reason, its bytes estimated from the stream it
/// names; `None` when the body has no such group.
fn grouped_errors(body: &str, streams: &[StreamCount]) -> Option<Refused> {
    const MARK: &str = " errors like: ";
    // (where the count starts, the count, where the message starts) of each group.
    let mut starts: Vec<(usize, usize, usize)> = Vec::new();
    let mut at = 0;
    while let Some(found) = body[at..].find(MARK) {
        let mark = at + found;
        let digits = body[..mark]
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        if let Ok(count) = body[digits..mark].parse::<usize>() {
            starts.push((digits, count, mark + MARK.len()));
        }
        at = mark + MARK.len();
    }
    if starts.is_empty() {
        return None;
    }
    let total_entries: usize = streams.iter().map(|s| s.entries).sum();
    let average = streams.iter().map(|s| s.bytes).sum::<usize>() / total_entries.max(1);
    let mut refused = Refused::default();
    let mut left = total_entries;
    for (i, &(_, count, message_start)) in starts.iter().enumerate() {
        let message_end = starts.get(i + 1).map_or(body.len(), |next| next.0);
        let message = &body[message_start..message_end];
        let count = count.min(left);
        left -= count;
        let per_entry = streams
            .iter()
            .find(|s| message.contains(&s.labels))
            .map_or(average, |s| s.bytes / s.entries.max(1));
        let reason = reason_of(message);
        match refused.by_reason.iter_mut().find(|r| r.reason == reason) {
            Some(r) => {
                r.entries += count;
                r.bytes += count * per_entry;
            }
            None => refused.by_reason.push(Refusal {
                reason,
                entries: count,
                bytes: count * per_entry,
            }),
        }
    }
    Some(refused)
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

    fn one(reason: &'static str, entries: usize, bytes: usize) -> Refused {
        Refused {
            by_reason: vec![Refusal {
                reason,
                entries,
                bytes,
            }],
        }
    }

    /// As Loki 3.6 answers (recorded from the real Loki): a group per distinct message.
    const GROUPED: &str = "1 errors like: entry for stream '{job=\"audit\", verb=\"get\"}' has timestamp too old: 2026-11-22T21:12:02Z, oldest acceptable timestamp is: 2026-11-24T21:12:01Z; 4 errors like: entry for stream '{job=\"audit\", verb=\"get\"}' has timestamp too old: 2026-11-22T21:12:03Z, oldest acceptable timestamp is: 2026-11-24T21:12:01Z; 1 errors like: entry for stream '{job=\"audit\", verb=\"list\"}' has timestamp too new: 2026-12-01T22:12:01Z; 1 errors like: max entry size '262144' bytes exceeded for stream '{job=\"audit\", verb=\"list\"}' while adding an entry with length '300000' bytes\n";

    #[test]
    fn every_group_of_a_loki_3_body_counts_under_its_reason() {
        assert_eq!(
            refused(GROUPED, true, &streams()).by_reason,
            vec![
                Refusal {
                    reason: "too_old",
                    entries: 5,
                    bytes: 500
                },
                Refusal {
                    reason: "too_new",
                    entries: 1,
                    bytes: 100
                },
                Refusal {
                    reason: "line_too_long",
                    entries: 1,
                    bytes: 100
                },
            ]
        );
    }

    #[test]
    fn a_body_not_read_whole_refuses_the_whole_push() {
        let cut = &GROUPED[..300];
        let r = refused(cut, false, &streams());
        assert_eq!((r.entries(), r.bytes()), (10, 1000));
    }

    #[test]
    fn counts_never_exceed_the_push() {
        let body = "7 errors like: entry for stream '{job=\"audit\", verb=\"get\"}' has timestamp too old; 9 errors like: too old";
        assert_eq!(refused(body, true, &streams()).entries(), 10);
    }

    #[test]
    fn a_named_stream_is_refused_the_others_count_as_sent() {
        let body = r#"entry for stream '{job="audit", verb="list"}' has timestamp too old: 2025-01-01T00:00:00Z"#;
        assert_eq!(refused(body, true, &streams()), one("too_old", 3, 300));
    }

    #[test]
    fn total_ignored_wins_when_given() {
        let body = "entry with timestamp 2026-11-26 10:00:00 ignored, reason: 'entry too far behind, oldest acceptable timestamp is: 2026-11-26T09:00:00Z' for stream: {job=\"audit\", verb=\"get\"},\ntotal ignored: 2 out of 10";
        assert_eq!(
            refused(body, true, &streams()),
            one("too_far_behind", 2, 200)
        );
    }

    #[test]
    fn an_unrecognised_body_refuses_everything() {
        assert_eq!(
            refused("error parsing labels", true, &streams()),
            one("invalid_labels", 10, 1000)
        );
        assert_eq!(
            reason_of("Max entry size '262144' bytes exceeded: line too long"),
            "line_too_long"
        );
        assert_eq!(reason_of("something else"), "ingester_error");
    }
}
