//! `-log.format=logfmt`: one line per event, `ts=… level=… caller=… msg="…" key=value …`, as Promtail
//! writes its logs, so that existing log queries keep working.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event formatter.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format_line(
            &ts,
            meta.level().as_str(),
            meta.target(),
            &fields.msg,
            &fields.rest,
        );
        writer.write_str(&line)
    }
}

/// Formats one logfmt line (with its newline).
pub fn format_line(ts: &str, level: &str, caller: &str, msg: &str, rest: &str) -> String {
    let mut out = String::with_capacity(64 + msg.len() + rest.len());
    let _ = write!(
        out,
        "ts={ts} level={} caller={caller} msg=",
        level.to_ascii_lowercase()
    );
    quote_into(msg, &mut out);
    out.push_str(rest);
    out.push('\n');
    out
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest.push(' ');
            self.rest.push_str(field.name());
            self.rest.push('=');
            quote_into(value, &mut self.rest);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Writes `value` bare when it is a plain token, else double-quoted with `"`, `\` and newlines escaped.
fn quote_into(value: &str, out: &mut String) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c == '\\');
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let line = format_line(
            "2026-11-25T10:00:00.000Z",
            "WARN",
            "lokiship::client",
            "push failed; retrying",
            " status=503 body=\"a \\\"b\\\"\"",
        );
        assert_eq!(
            line,
            "ts=2026-11-25T10:00:00.000Z level=warn caller=lokiship::client msg=\"push failed; retrying\" status=503 body=\"a \\\"b\\\"\"\n"
        );
        let mut out = String::new();
        quote_into("", &mut out);
        quote_into("x=y", &mut out);
        quote_into("line\nbreak", &mut out);
        assert_eq!(out, r#""""x=y""line\nbreak""#);
    }
}
