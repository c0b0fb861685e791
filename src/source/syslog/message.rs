//! One syslog message made into a line, a timestamp and Promtail's `__syslog_message_*` meta labels.
//!
//! RFC 5424 is read by `syslog_loose`, RFC 3164 by [`super::rfc3164`]. The configured
//! `syslog_format` is tried first, then the other one: Promtail drops a message of the other format
//! as a parse error, here it keeps its fields. A message neither reads is shipped as it came
//! (counted in `promtail_syslog_target_parsing_errors`), where Promtail drops it.

use chrono::{DateTime, FixedOffset, Local, SecondsFormat};
use std::fmt::Write as _;

/// Which format a job's senders use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
}

/// How a job turns messages into entries.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub format: Format,
    pub label_structured_data: bool,
    pub use_rfc5424_message: bool,
}

/// The fields of a message, in either format.
#[derive(Debug, Default)]
pub struct Header<'a> {
    pub pri: u8,
    /// RFC 5424's VERSION; `None` for RFC 3164.
    pub version: Option<u32>,
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub hostname: Option<&'a str>,
    pub app: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// Elements with their parameters, values still escaped as on the wire.
    pub structured_data: Vec<(&'a str, Vec<(&'a str, &'a str)>)>,
    pub msg: &'a str,
}

/// What a message becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Message(Parsed),
    /// It parsed, but its message part is empty (Promtail drops these, and counts them).
    Empty,
    /// It is not syslog: the text is the line, with no message labels.
    Unparsed(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// `__syslog_message_*` meta labels.
    pub meta: Vec<(String, String)>,
    pub line: String,
    pub timestamp_ns: Option<i64>,
}

/// Promtail's names for the severities (go-syslog's).
const SEVERITIES: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

/// Promtail's names for the facilities (go-syslog's: 13–15 differ from Linux's).
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "security", "console", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Reads `text` (one frame, invalid UTF-8 already replaced).
pub fn parse(text: &str, opts: &Options, now: DateTime<Local>) -> Outcome {
    let text = text.trim();
    let header = match opts.format {
        Format::Rfc5424 => rfc5424(text).or_else(|| super::rfc3164::parse(text, now)),
        Format::Rfc3164 => super::rfc3164::parse(text, now).or_else(|| rfc5424(text)),
    };
    let Some(h) = header else {
        return Outcome::Unparsed(text.to_string());
    };
    if h.msg.is_empty() {
        return Outcome::Empty;
    }
    let line = if opts.use_rfc5424_message && h.version.is_some() {
        render_rfc5424(&h)
    } else if opts.use_rfc5424_message {
        text.to_string()
    } else {
        h.msg.to_string()
    };
    Outcome::Message(Parsed {
        meta: meta_labels(&h, opts.label_structured_data),
        line,
        timestamp_ns: h.timestamp.and_then(|t| t.timestamp_nanos_opt()),
    })
}

/// `<PRI>` at the start of `text`: the value (0–191) and what follows.
pub fn pri(text: &str) -> Option<(u8, &str)> {
    let rest = text.strip_prefix('<')?;
    let (digits, rest) = rest.split_once('>')?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u8 = digits.parse().ok().filter(|&p| p <= 191)?;
    Some((pri, rest))
}

fn rfc5424(text: &str) -> Option<Header<'_>> {
    // syslog_loose reads a PRI over 191 as no PRI; Promtail refuses it.
    let (pri, _) = pri(text)?;
    let m =
        syslog_loose::parse_message_with_year_exact(text, |_| 0, syslog_loose::Variant::RFC5424)
            .ok()?;
    let syslog_loose::Protocol::RFC5424(version) = m.protocol else {
        return None;
    };
    let procid = m.procid.as_ref().map(|p| match p {
        syslog_loose::ProcId::Name(name) => *name,
        // A number: its text is in the message, as it came (leading zeros and all).
        syslog_loose::ProcId::PID(_) => text.split(' ').nth(4).unwrap_or_default(),
    });
    Some(Header {
        pri,
        version: Some(version),
        timestamp: m.timestamp,
        hostname: m.hostname,
        app: m.appname,
        procid,
        msgid: m.msgid,
        structured_data: m
            .structured_data
            .into_iter()
            .map(|e| (e.id, e.params))
            .collect(),
        msg: m.msg,
    })
}

fn meta_labels(h: &Header<'_>, structured_data: bool) -> Vec<(String, String)> {
    let mut meta = vec![
        (
            "__syslog_message_severity".to_string(),
            SEVERITIES[usize::from(h.pri % 8)].to_string(),
        ),
        (
            "__syslog_message_facility".to_string(),
            FACILITIES[usize::from(h.pri / 8)].to_string(),
        ),
    ];
    let fields = [
        ("__syslog_message_hostname", h.hostname),
        ("__syslog_message_app_name", h.app),
        ("__syslog_message_proc_id", h.procid),
        ("__syslog_message_msg_id", h.msgid),
    ];
    for (name, value) in fields {
        if let Some(v) = value.filter(|v| !v.is_empty() && *v != "-") {
            meta.push((name.to_string(), v.to_string()));
        }
    }
    if structured_data {
        for (id, params) in &h.structured_data {
            for (name, value) in params {
                let label = format!("__syslog_message_sd_{id}_{name}");
                // Every invalid character replaced, not only `@` as Promtail does (Loki refuses the rest).
                meta.push((crate::source::sanitize_label_name(&label), unescape(value)));
            }
        }
    }
    meta
}

/// A structured-data value as it reads: `\"`, `\\` and `\]` are escapes (RFC 5424 6.3.3).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('"' | '\\' | ']')) => out.push(e),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The message as Promtail renders it for `use_rfc5424_message`: fields in order, the time in
/// RFC 3339 with as many fraction digits as it needs, elements and parameters sorted.
fn render_rfc5424(h: &Header<'_>) -> String {
    let field = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("-").to_string();
    let time = h.timestamp.map_or_else(
        || "-".to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    );
    let mut out = format!(
        "<{}>{} {} {} {} {} {} ",
        h.pri,
        h.version.unwrap_or(1),
        trim_fraction(&time),
        field(h.hostname),
        field(h.app),
        field(h.procid),
        field(h.msgid),
    );
    if h.structured_data.is_empty() {
        out.push('-');
    }
    let mut elements = h.structured_data.clone();
    elements.sort_by(|a, b| a.0.cmp(b.0));
    for (id, mut params) in elements {
        params.sort_by(|a, b| a.0.cmp(b.0));
        let _ = write!(out, "[{id}");
        for (name, value) in params {
            let _ = write!(out, " {name}=\"{value}\"");
        }
        out.push(']');
    }
    if !h.msg.is_empty() {
        out.push(' ');
        out.push_str(h.msg);
    }
    out
}

/// `10:15:30.500Z` as Go's RFC3339Nano writes it: `10:15:30.5Z`.
fn trim_fraction(time: &str) -> String {
    let Some(dot) = time.find('.') else {
        return time.to_string();
    };
    let zone = time[dot..]
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or(time.len(), |i| dot + i);
    let fraction = time[dot + 1..zone].trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}{}", &time[..dot], &time[zone..])
    } else {
        format!("{}.{fraction}{}", &time[..dot], &time[zone..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn opts(format: Format, sd: bool, full: bool) -> Options {
        Options {
            format,
            label_structured_data: sd,
            use_rfc5424_message: full,
        }
    }

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
    }

    fn parsed(text: &str, o: Options) -> Parsed {
        match parse(text, &o, now()) {
            Outcome::Message(p) => p,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn meta(p: &Parsed) -> Vec<(&str, &str)> {
        p.meta
            .iter()
            .map(|(n, v)| (n.trim_start_matches("__syslog_message_"), v.as_str()))
            .collect()
    }

    #[test]
    fn rfc5424_fields_become_promtails_meta_labels() {
        let text = r#"<34>1 2026-11-24T10:15:30.003Z node-1 sshd 1234 ID47 [exampleSDID@32473 iut="3" eventSource="App"][origin.x-y ip="a\"b\]c"] octet message one"#;
        let p = parsed(text, opts(Format::Rfc5424, true, false));
        assert_eq!(p.line, "octet message one");
        assert_eq!(p.timestamp_ns, Some(1_795_515_330_003_000_000));
        assert_eq!(
            meta(&p),
            vec![
                ("severity", "critical"),
                ("facility", "auth"),
                ("hostname", "node-1"),
                ("app_name", "sshd"),
                ("proc_id", "1234"),
                ("msg_id", "ID47"),
                ("sd_exampleSDID_32473_iut", "3"),
                ("sd_exampleSDID_32473_eventSource", "App"),
                ("sd_origin_x_y_ip", "a\"b]c"),
            ]
        );
        // Nil values give no label; structured data only when asked for.
        let p = parsed(
            "<165>1 2026-11-24T10:15:31.5+02:00 - - - - [a b=\"c\"] nil",
            opts(Format::Rfc5424, false, false),
        );
        assert_eq!(
            meta(&p),
            vec![("severity", "notice"), ("facility", "local4")]
        );
        assert_eq!(p.timestamp_ns, Some(1_795_508_131_500_000_000));
    }

    #[test]
    fn facility_names_are_go_syslogs() {
        let name = |pri: u8| {
            let p = parsed(
                &format!("<{pri}>1 - h a - - - x"),
                opts(Format::Rfc5424, false, false),
            );
            p.meta[1].1.clone()
        };
        assert_eq!(
            [0, 13, 14, 15, 23].map(|f| name(f * 8)),
            ["kern", "security", "console", "cron2", "local7"].map(String::from)
        );
    }

    #[test]
    fn the_other_format_is_read_too_and_what_is_neither_is_kept_raw() {
        let p = parsed(
            "<30>Dec  1 23:59:59 myhost systemd[1]: Started thing.",
            opts(Format::Rfc5424, false, false),
        );
        assert_eq!(p.line, "Started thing.");
        assert_eq!(
            meta(&p)[2..],
            [
                ("hostname", "myhost"),
                ("app_name", "systemd"),
                ("proc_id", "1")
            ]
        );
        let p = parsed(
            "<13>1 - h a - - - five",
            opts(Format::Rfc3164, false, false),
        );
        assert_eq!(p.line, "five");
        let o = opts(Format::Rfc5424, false, false);
        assert_eq!(
            parse("garbage", &o, now()),
            Outcome::Unparsed("garbage".into())
        );
        assert_eq!(
            parse("<999>1 bad pri", &o, now()),
            Outcome::Unparsed("<999>1 bad pri".into())
        );
        assert_eq!(
            parse("<34>1 2026-11-24T10:15:30Z h a - - - ", &o, now()),
            Outcome::Empty
        );
    }

    #[test]
    fn the_whole_message_is_rendered_as_promtail_renders_it() {
        let p = parsed(
            r#"<12>1 2026-11-24T10:15:30.000500+01:00 h a - - [z k="v"][a y="2" b="1"] render"#,
            opts(Format::Rfc5424, false, true),
        );
        assert_eq!(
            p.line,
            r#"<12>1 2026-11-24T10:15:30.0005+01:00 h a - - [a b="1" y="2"][z k="v"] render"#
        );
        let p = parsed(
            "<12>1 2026-11-24T10:15:30.100Z h a p m - pm",
            opts(Format::Rfc5424, false, true),
        );
        assert_eq!(p.line, "<12>1 2026-11-24T10:15:30.1Z h a p m - pm");
    }
}
