//! BSD syslog (RFC 3164): `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, as Promtail reads it, and
//! with the year Promtail leaves out.
//!
//! The timestamp has no year and no zone. Promtail sets year 0, and Loki refuses the whole batch
//! such a timestamp is in (with `use_incoming_timestamp`): every message of it is lost. Here the
//! year is the current one in the local zone, or the one before when that would put the message
//! more than a day in the future (a December message read in January). An RFC 3339 timestamp
//! (rsyslog's `RSYSLOG_ForwardFormat`) is read too.
//!
//! The tag is the program name: up to 32 characters up to `:` or `[PID]:`. Without one, all that
//! follows the hostname is the message.

use super::message::Header;
use chrono::{DateTime, Datelike, Duration, FixedOffset, Local, NaiveDate, TimeZone};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The longest tag taken as a program name.
const MAX_TAG: usize = 32;

/// `text` as an RFC 3164 message, `now` deciding the year; `None` when it is not one.
pub fn parse(text: &str, now: DateTime<Local>) -> Option<Header<'_>> {
    let (pri, rest) = super::message::pri(text)?;
    let (timestamp, rest) = stamp(rest, now).or_else(|| rfc3339(rest))?;
    let rest = rest.strip_prefix(' ')?;
    let (hostname, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if hostname.is_empty() {
        return None;
    }
    let (app, procid, msg) = tag(rest);
    Some(Header {
        pri,
        version: None,
        timestamp: Some(timestamp),
        hostname: Some(hostname),
        app,
        procid,
        msgid: None,
        structured_data: Vec::new(),
        msg,
    })
}

/// `Mmm dd hh:mm:ss` (the day padded with a space or a zero).
fn stamp(text: &str, now: DateTime<Local>) -> Option<(DateTime<FixedOffset>, &str)> {
    let head = text.get(..15)?;
    let month = MONTHS.iter().position(|m| head.starts_with(m))? as u32 + 1;
    let b = head.as_bytes();
    if b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let number = |s: &str| s.trim_start().parse::<u32>().ok();
    let day = number(&head[4..6])?;
    let (hour, minute, second) = (
        number(&head[7..9])?,
        number(&head[10..12])?,
        number(&head[13..15])?,
    );
    let at = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, day)?
            .and_hms_opt(hour, minute, second)
            .and_then(|t| Local.from_local_datetime(&t).earliest())
    };
    let mut time = at(now.year())?;
    if time > now + Duration::days(1) {
        time = at(now.year() - 1)?;
    }
    Some((time.fixed_offset(), &text[15..]))
}

/// An RFC 3339 timestamp up to the next space.
fn rfc3339(text: &str) -> Option<(DateTime<FixedOffset>, &str)> {
    let end = text.find(' ').unwrap_or(text.len());
    let time = DateTime::parse_from_rfc3339(&text[..end]).ok()?;
    Some((time, &text[end..]))
}

/// The program name, its PID and the message: `sshd[42]: msg`, `cron: msg`, or just `msg`.
fn tag(text: &str) -> (Option<&str>, Option<&str>, &str) {
    let end = text.find([':', '[', ' ']).unwrap_or(text.len());
    let name = &text[..end];
    if name.is_empty() || name.len() > MAX_TAG {
        return (None, None, text);
    }
    let after = &text[end..];
    if let Some(rest) = after.strip_prefix(':') {
        return (Some(name), None, rest.strip_prefix(' ').unwrap_or(rest));
    }
    if let Some(rest) = after.strip_prefix('[') {
        if let Some((pid, rest)) = rest.split_once("]:") {
            if !pid.is_empty() && !pid.contains(' ') {
                return (
                    Some(name),
                    Some(pid),
                    rest.strip_prefix(' ').unwrap_or(rest),
                );
            }
        }
    }
    (None, None, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 1, 1, 0, 30, 0).unwrap()
    }

    #[test]
    fn reads_what_rsyslog_and_logger_send() {
        let h = parse(
            "<34>Nov 24 10:15:30 node-1 sshd[1234]: Accepted publickey",
            now(),
        )
        .unwrap();
        assert_eq!(h.pri, 34);
        assert_eq!(
            (h.hostname, h.app, h.procid, h.msg),
            (
                Some("node-1"),
                Some("sshd"),
                Some("1234"),
                "Accepted publickey"
            )
        );
        let h = parse("<13>Nov  4 01:02:03 host cron: octet", now()).unwrap();
        assert_eq!((h.app, h.procid, h.msg), (Some("cron"), None, "octet"));
        let h = parse("<34>Nov 24 10:15:30 node-1 just text no tag", now()).unwrap();
        assert_eq!((h.app, h.msg), (None, "just text no tag"));
        let h = parse(
            "<34>2026-11-24T10:15:30.5+01:00 node-1 app[x]: rfc3339",
            now(),
        )
        .unwrap();
        assert_eq!(
            h.timestamp.unwrap().to_rfc3339(),
            "2026-11-24T10:15:30.500+01:00"
        );
        assert_eq!((h.app, h.procid), (Some("app"), Some("x")));
        assert!(parse("no pri", now()).is_none());
        assert!(parse("<34>Nov 24 10:15:30.123 node-1 frac", now()).is_none());
        assert!(parse("<34>Foo 24 10:15:30 node-1 x", now()).is_none());
    }

    #[test]
    fn the_year_is_this_one_unless_that_is_more_than_a_day_ahead() {
        let h = parse("<34>Jan  1 00:10:00 h a: x", now()).unwrap();
        assert_eq!(h.timestamp.unwrap().year(), 2026);
        let h = parse("<34>Dec 31 23:59:59 h a: x", now()).unwrap();
        assert_eq!(h.timestamp.unwrap().year(), 2025);
    }
}
