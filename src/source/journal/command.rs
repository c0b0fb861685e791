//! The `journalctl` command line of one journal job: where it starts, what it reads.
//!
//! lokiship reads the journal through `journalctl --output=export` (Vector runs journalctl too, with JSON), so the binary
//! needs no libsystemd and reads whatever journal format the host's systemd writes. Where to start
//! is Promtail's rule: after the stored cursor, unless that entry is older than `max_age` (or there
//! is none), then from `max_age` ago.

use std::ffi::OsString;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one `journalctl` run is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `journal.path`: a directory (`--directory`) or a journal file (`--file`); the system's
    /// journal when empty.
    pub path: String,
    /// `journal.matches`, split on spaces: `FIELD=value` terms and `+` between alternatives.
    pub matches: Vec<String>,
    /// Keep following (`--follow`), or stop at the end of the journal (a dry run, `-exit-at-eof`).
    pub follow: bool,
    pub start: Start,
}

/// Where a run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// After this entry (`--after-cursor`).
    AfterCursor(String),
    /// At entries newer than this many seconds since the epoch (`--since=@…`).
    Since(u64),
}

impl Start {
    /// After `cursor` if there is one and its entry is not older than `max_age`; else `max_age`
    /// ago. A cursor's age is its `t=` part (the entry's realtime, hex microseconds); a cursor
    /// without one is tried, and journalctl tells if it is no good.
    pub fn choose(cursor: Option<&str>, max_age: Duration, now: SystemTime) -> Start {
        let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let since = Start::Since(now_s.saturating_sub(max_age).as_secs());
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return since;
        };
        match cursor_time(cursor) {
            Some(at) if now_s.saturating_sub(at) > max_age => since,
            _ => Start::AfterCursor(cursor.to_string()),
        }
    }
}

/// The realtime of a cursor's entry, from its `t=` part.
fn cursor_time(cursor: &str) -> Option<Duration> {
    let hex = cursor.split(';').find_map(|part| part.strip_prefix("t="))?;
    u64::from_str_radix(hex, 16).ok().map(Duration::from_micros)
}

impl Invocation {
    /// The arguments after `journalctl`.
    pub fn args(&self, path_is_file: bool) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            // A quarter of the CPU JSON costs journalctl; binary fields come as length and bytes.
            "--output=export",
            "--all",
            "--no-pager",
            "--quiet",
            // Every entry from the start point, not only the last ten that --follow shows.
            "--lines=all",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if self.follow {
            args.push("--follow".into());
        }
        match &self.start {
            Start::AfterCursor(c) => args.push(format!("--after-cursor={c}").into()),
            Start::Since(s) => args.push(format!("--since=@{s}").into()),
        }
        if !self.path.is_empty() {
            let flag = if path_is_file {
                "--file"
            } else {
                "--directory"
            };
            args.push(format!("{flag}={}", self.path).into());
        }
        args.extend(self.matches.iter().map(OsString::from));
        args
    }
}

/// `journal.matches` as journalctl takes them: one argument per space-separated term.
pub fn split_matches(matches: &str) -> Vec<String> {
    matches.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_recent_cursor_is_resumed_after_and_an_old_one_gives_way_to_max_age() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs_ago: u64| {
            format!(
                "s=ab;i=1;b=cd;m=1;t={:x};x=ef",
                (1_800_000_000 - secs_ago) * 1_000_000
            )
        };
        let recent = at(60);
        assert_eq!(
            Start::choose(Some(&recent), 7 * HOUR, now),
            Start::AfterCursor(recent.clone())
        );
        assert_eq!(
            Start::choose(Some(&at(8 * 3600)), 7 * HOUR, now),
            Start::Since(1_800_000_000 - 7 * 3600)
        );
        assert_eq!(
            Start::choose(None, 7 * HOUR, now),
            Start::Since(1_800_000_000 - 7 * 3600)
        );
        // A cursor whose age cannot be read is tried: journalctl says if it is no good.
        assert_eq!(
            Start::choose(Some("opaque"), 7 * HOUR, now),
            Start::AfterCursor("opaque".into())
        );
    }

    #[test]
    fn the_command_line_names_the_path_the_matches_and_the_start() {
        let inv = Invocation {
            path: "/var/log/journal".into(),
            matches: split_matches("_SYSTEMD_UNIT=ssh.service + _TRANSPORT=kernel"),
            follow: true,
            start: Start::Since(1000),
        };
        let args: Vec<String> = inv
            .args(false)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(args.contains(&"--follow".to_string()));
        assert!(args.contains(&"--since=@1000".to_string()));
        assert!(args.contains(&"--directory=/var/log/journal".to_string()));
        assert_eq!(
            &args[args.len() - 3..],
            ["_SYSTEMD_UNIT=ssh.service", "+", "_TRANSPORT=kernel"]
        );
        let file = Invocation {
            follow: false,
            start: Start::AfterCursor("c".into()),
            ..inv
        };
        let args = file.args(true);
        assert!(args.contains(&"--file=/var/log/journal".into()));
        assert!(args.contains(&"--after-cursor=c".into()));
        assert!(!args.contains(&"--follow".into()));
    }
}
