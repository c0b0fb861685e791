//! Timestamp formats of Promtail's `timestamp` stage: the named ones (RFC3339, Unix, UnixMs, ...) and
//! Go reference layouts (`2006-01-02T15:04:05.999999999Z07:00`, `Jan _2 15:04:05`).
//!
//! A Go layout is translated once into chrono parsing items. Parsing then follows Go's rules where they
//! matter for logs: a missing year is the current one (or the previous one if that would put the
//! timestamp more than a day in the future, for syslog at New Year), a missing zone is the configured
//! `location` (UTC by default), a weekday name is checked for syntax only, and fractional seconds are
//! accepted after the seconds even when the layout has none.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A compiled timestamp format.
#[derive(Debug, Clone)]
pub enum TimeFormat {
    Rfc3339,
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
    /// Go layout items; `true` when fractional seconds are written after a comma (`05,000`).
    Layout(Vec<Item<'static>>, bool),
}

impl TimeFormat {
    /// Compiles a format name or a Go layout.
    pub fn new(format: &str) -> Result<Self, String> {
        let layout = match format {
            "RFC3339" | "RFC3339Nano" => return Ok(Self::Rfc3339),
            "Unix" => return Ok(Self::Unix),
            "UnixMs" => return Ok(Self::UnixMs),
            "UnixUs" => return Ok(Self::UnixUs),
            "UnixNs" => return Ok(Self::UnixNs),
            "ANSIC" => "Mon Jan _2 15:04:05 2006",
            "UnixDate" => "Mon Jan _2 15:04:05 MST 2006",
            "RubyDate" => "Mon Jan 02 15:04:05 -0700 2006",
            "RFC822" => "02 Jan 06 15:04 MST",
            "RFC822Z" => "02 Jan 06 15:04 -0700",
            "RFC850" => "Monday, 02-Jan-06 15:04:05 MST",
            "RFC1123" => "Mon, 02 Jan 2006 15:04:05 MST",
            "RFC1123Z" => "Mon, 02 Jan 2006 15:04:05 -0700",
            "Kitchen" => "3:04PM",
            "Stamp" => "Jan _2 15:04:05",
            "StampMilli" => "Jan _2 15:04:05.000",
            "StampMicro" => "Jan _2 15:04:05.000000",
            "StampNano" => "Jan _2 15:04:05.000000000",
            "DateTime" => "2006-01-02 15:04:05",
            "DateOnly" => "2006-01-02",
            "TimeOnly" => "15:04:05",
            layout => layout,
        };
        let comma_fraction = layout.contains(",000") || layout.contains(",999");
        let items = translate(layout);
        if !items.iter().any(|i| matches!(i, Item::Numeric(..))) {
            return Err(format!(
                "{format:?} is neither a known format (RFC3339, Unix, UnixMs, ...) nor a Go layout such as 2006-01-02T15:04:05Z07:00"
            ));
        }
        Ok(Self::Layout(items, comma_fraction))
    }

    /// Parses `text` into nanoseconds since the epoch; `tz` is used where the text has no zone.
    pub fn parse(&self, text: &str, tz: Option<Tz>, now: DateTime<Utc>) -> Option<i64> {
        let text = text.trim();
        match self {
            Self::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .ok()?
                .timestamp_nanos_opt(),
            Self::Unix => parse_unix_seconds(text),
            Self::UnixMs => text.parse::<i64>().ok()?.checked_mul(1_000_000),
            Self::UnixUs => text.parse::<i64>().ok()?.checked_mul(1_000),
            Self::UnixNs => text.parse::<i64>().ok(),
            Self::Layout(items, comma_fraction) => {
                let mut parsed = Parsed::new();
                let text: std::borrow::Cow<str> = if *comma_fraction {
                    comma_to_dot(text).into()
                } else {
                    text.into()
                };
                let zone = parse_layout(&mut parsed, &text, items)?;
                // A zone name is the location's when the location has that name at the time
                // (`PST` in America/Los_Angeles), otherwise UTC — as Go reads it.
                let tz = match zone {
                    Some(name) if !zone_is(tz, &parsed, name) => None,
                    _ => tz,
                };
                resolve(&parsed, tz, now)
            }
        }
    }
}

/// Parses `text` with `items`, reading a zone name (`MST`) as Go reads one: 3 to 5 upper-case
/// letters, or `GMT`/`UTC` and an offset (chrono would take every character up to a space).
/// Returns the zone name, if the layout has one.
fn parse_layout<'t>(parsed: &mut Parsed, text: &'t str, items: &[Item]) -> Option<Option<&'t str>> {
    let is_zone = |i: &Item| matches!(i, Item::Fixed(Fixed::TimezoneName));
    let mut rest = text;
    let mut zone = None;
    let mut segments = items.split(is_zone).peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            chrono::format::parse(parsed, rest, segment.iter()).ok()?;
            break;
        }
        rest = chrono::format::parse_and_remainder(parsed, rest, segment.iter()).ok()?;
        let len = zone_name_len(rest)?;
        zone = Some(&rest[..len]);
        rest = &rest[len..];
    }
    Some(zone)
}

/// The length of the zone name `text` starts with, as Go's `parseTimeZone` accepts it.
fn zone_name_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    if text.starts_with("GMT") || text.starts_with("UTC") {
        // An offset may follow: GMT+3, UTC-07.
        let sign = b.get(3).is_some_and(|c| *c == b'+' || *c == b'-');
        let digits = if sign {
            b[4..].iter().take_while(|c| c.is_ascii_digit()).count()
        } else {
            0
        };
        return Some(if digits > 0 { 4 + digits } else { 3 });
    }
    if b.first().is_some_and(|c| *c == b'+' || *c == b'-') {
        let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        return (digits == 2 || digits == 4).then_some(1 + digits);
    }
    let upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if b[3] == b'T' || text.starts_with("WITA") => Some(4),
        5 if b[4] == b'T' => Some(5),
        _ => None,
    }
}

/// Whether `tz` calls its time `name` at the time parsed.
fn zone_is(tz: Option<Tz>, parsed: &Parsed, name: &str) -> bool {
    use chrono_tz::OffsetName;
    let Some(tz) = tz else {
        return false;
    };
    let date = parsed
        .to_naive_date()
        .unwrap_or_else(|_| Utc::now().date_naive());
    let naive = date.and_time(parsed.to_naive_time().unwrap_or_default());
    tz.offset_from_utc_datetime(&naive).abbreviation() == Some(name)
}

/// `10:00:00,125` → `10:00:00.125`: chrono reads fractions after a dot only.
fn comma_to_dot(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = text.to_string().into_bytes();
    for i in 1..b.len().saturating_sub(1) {
        if b[i] == b',' && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit() {
            out[i] = b'.';
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// `1562708916` or `1562708916.414123`.
fn parse_unix_seconds(text: &str) -> Option<i64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = &frac[..frac.len().min(9)];
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn resolve(p: &Parsed, tz: Option<Tz>, now: DateTime<Utc>) -> Option<i64> {
    let hour = match (p.hour_div_12(), p.hour_mod_12()) {
        (Some(d), Some(m)) => d * 12 + m,
        (None, Some(m)) => m,
        _ => 0,
    };
    let time = NaiveTime::from_hms_nano_opt(
        hour,
        p.minute().unwrap_or(0),
        p.second().unwrap_or(0),
        p.nanosecond().unwrap_or(0),
    )?;
    let year_given = p.year().or_else(|| {
        p.year_mod_100()
            .map(|y| if y < 69 { 2000 + y } else { 1900 + y })
    });
    let build = |year: i32| -> Option<NaiveDateTime> {
        let date = match (p.month(), p.day(), p.ordinal()) {
            (Some(m), Some(d), _) => NaiveDate::from_ymd_opt(year, m, d)?,
            (_, _, Some(o)) => NaiveDate::from_yo_opt(year, o)?,
            (m, d, None) => NaiveDate::from_ymd_opt(year, m.unwrap_or(1), d.unwrap_or(1))?,
        };
        Some(date.and_time(time))
    };
    let to_utc = |naive: NaiveDateTime| -> Option<DateTime<Utc>> {
        match p.offset() {
            Some(off) => Some(DateTime::from_naive_utc_and_offset(
                naive - chrono::Duration::seconds(off as i64),
                Utc,
            )),
            None => match tz {
                Some(tz) => tz
                    .from_local_datetime(&naive)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc)),
                None => Some(Utc.from_utc_datetime(&naive)),
            },
        }
    };
    let utc = match year_given {
        Some(y) => to_utc(build(y)?)?,
        None => {
            let this_year = match tz {
                Some(tz) => now.with_timezone(&tz).year(),
                None => now.year(),
            };
            let guess = to_utc(build(this_year)?)?;
            if guess > now + chrono::Duration::days(1) {
                to_utc(build(this_year - 1)?)?
            } else {
                guess
            }
        }
    };
    utc.timestamp_nanos_opt()
}

/// Translates a Go reference layout into chrono parsing items.
fn translate(layout: &str) -> Vec<Item<'static>> {
    // Longest tokens first, as Go's layout scanner does.
    const TOKENS: &[&str] = &[
        "January",
        "Monday",
        "Jan",
        "Mon",
        "MST",
        "2006",
        "002",
        "Z07:00:00",
        "-07:00:00",
        "Z070000",
        "-070000",
        "Z07:00",
        "-07:00",
        "Z0700",
        "-0700",
        "Z07",
        "-07",
        "01",
        "02",
        "_2",
        "03",
        "04",
        "05",
        "06",
        "15",
        "PM",
        "pm",
        "1",
        "2",
        "3",
        "4",
        "5",
    ];
    let mut items = Vec::new();
    let mut literal = String::new();
    let mut rest = layout;
    let flush = |literal: &mut String, items: &mut Vec<Item<'static>>| {
        if !literal.is_empty() {
            items.push(Item::OwnedLiteral(std::mem::take(literal).into_boxed_str()));
        }
    };
    'outer: while !rest.is_empty() {
        // Fractional seconds: .000 / .999 (any length), after the seconds.
        if let Some(frac) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
            let n = frac.bytes().take_while(|&b| b == b'0' || b == b'9').count();
            if n > 0 && matches!(items.last(), Some(Item::Numeric(Numeric::Second, _))) {
                flush(&mut literal, &mut items);
                items.pop();
                items.push(Item::Numeric(Numeric::Second, Pad::Zero));
                items.push(Item::Fixed(Fixed::Nanosecond));
                rest = &frac[n..];
                continue;
            }
        }
        if rest.starts_with(char::is_whitespace) {
            flush(&mut literal, &mut items);
            items.push(Item::Space(""));
            rest = rest.trim_start();
            continue;
        }
        for &token in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                // "Jan" must not match the start of "January"-like words that are literal text: Go
                // matches the same way (January before Jan), so nothing more to check.
                let item = match token {
                    "January" => Item::Fixed(Fixed::LongMonthName),
                    "Jan" => Item::Fixed(Fixed::ShortMonthName),
                    "Monday" => Item::Fixed(Fixed::LongWeekdayName),
                    "Mon" => Item::Fixed(Fixed::ShortWeekdayName),
                    "MST" => Item::Fixed(Fixed::TimezoneName),
                    "2006" => Item::Numeric(Numeric::Year, Pad::Zero),
                    "06" => Item::Numeric(Numeric::YearMod100, Pad::Zero),
                    "002" => Item::Numeric(Numeric::Ordinal, Pad::Zero),
                    "01" | "1" => Item::Numeric(Numeric::Month, Pad::Zero),
                    "02" | "2" => Item::Numeric(Numeric::Day, Pad::Zero),
                    "_2" => Item::Numeric(Numeric::Day, Pad::Space),
                    "15" => Item::Numeric(Numeric::Hour, Pad::Zero),
                    "03" | "3" => Item::Numeric(Numeric::Hour12, Pad::Zero),
                    "04" | "4" => Item::Numeric(Numeric::Minute, Pad::Zero),
                    "05" | "5" => Item::Numeric(Numeric::Second, Pad::Zero),
                    "PM" | "pm" => Item::Fixed(Fixed::UpperAmPm),
                    t if t.starts_with('Z') => Item::Fixed(Fixed::TimezoneOffsetZ),
                    _ => Item::Fixed(Fixed::TimezoneOffset),
                };
                flush(&mut literal, &mut items);
                items.push(item);
                if token == "05" || token == "5" {
                    // Go accepts fractional seconds after the seconds even if the layout has none.
                    if !(after.starts_with(".0")
                        || after.starts_with(".9")
                        || after.starts_with(",0")
                        || after.starts_with(",9"))
                    {
                        items.push(Item::Fixed(Fixed::Nanosecond));
                    }
                }
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut literal, &mut items);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parse(format: &str, text: &str) -> Option<i64> {
        TimeFormat::new(format).unwrap().parse(text, None, now())
    }

    fn ns(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn named_formats() {
        assert_eq!(
            parse("RFC3339Nano", "2026-11-24T10:00:00.123456Z"),
            Some(1795514400123456000)
        );
        assert_eq!(
            parse("RFC3339", "2026-11-24T11:00:00+01:00"),
            Some(1795514400000000000)
        );
        assert_eq!(parse("Unix", "1795514400.5"), Some(1795514400500000000));
        assert_eq!(parse("UnixMs", "1795514400123"), Some(1795514400123000000));
        assert_eq!(
            parse("UnixUs", "1795514400123456"),
            Some(1795514400123456000)
        );
        assert_eq!(
            parse("UnixNs", "1795514400123456789"),
            Some(1795514400123456789)
        );
        assert_eq!(
            parse("RFC1123Z", "Tue, 24 Nov 2026 10:00:00 +0000"),
            Some(ns("2026-11-24T10:00:00Z"))
        );
        assert_eq!(
            parse("ANSIC", "Tue Nov 24 10:00:00 2026"),
            Some(ns("2026-11-24T10:00:00Z"))
        );
        assert_eq!(parse("RFC3339", "yesterday"), None);
    }

    #[test]
    fn go_layouts() {
        assert_eq!(
            parse(
                "2006-01-02T15:04:05.999999999Z07:00",
                "2026-11-24T10:00:00.25-02:00"
            ),
            Some(ns("2026-11-24T12:00:00.25Z"))
        );
        assert_eq!(
            parse("2006-01-02 15:04:05,000", "2026-11-24 10:00:00,125"),
            Some(ns("2026-11-24T10:00:00.125Z"))
        );
        assert_eq!(
            parse("02/Jan/2006:15:04:05 -0700", "24/Nov/2026:10:00:00 +0100"),
            Some(ns("2026-11-24T09:00:00Z"))
        );
        assert_eq!(
            parse("2006-01-02 03:04:05 PM", "2026-11-24 01:30:00 PM"),
            Some(ns("2026-11-24T13:30:00Z"))
        );
    }

    #[test]
    fn syslog_without_year_uses_this_year_or_the_last() {
        assert_eq!(
            parse("Jan _2 15:04:05", "Nov  4 10:00:00"),
            Some(ns("2026-11-04T10:00:00Z"))
        );
        assert_eq!(
            parse("Jan _2 15:04:05", "Nov 24 10:00:00"),
            Some(ns("2026-11-24T10:00:00Z"))
        );
        assert_eq!(
            parse("Jan _2 15:04:05", "Dec 31 23:59:59"),
            Some(ns("2025-12-31T23:59:59Z")),
            "a date in the future is last year's"
        );
        assert_eq!(
            parse("Jan _2 15:04:05", "Nov 24 10:00:00.5"),
            Some(ns("2026-11-24T10:00:00.5Z"))
        );
    }

    #[test]
    fn a_zone_name_is_read_as_go_reads_it() {
        assert_eq!(
            parse(
                "Jan 2, 2006 at 3:04pm (MST)",
                "Nov 30, 2026 at 3:04pm (UTC)"
            ),
            Some(ns("2026-11-30T15:04:00Z")),
            "the name ends where its letters end, not at the next space"
        );
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        let f = TimeFormat::new("RFC1123").unwrap();
        assert_eq!(
            f.parse("Mon, 30 Nov 2026 10:00:00 PST", Some(la), now()),
            Some(ns("2026-11-30T18:00:00Z")),
            "the location's own name: its offset"
        );
        assert_eq!(
            f.parse("Mon, 30 Nov 2026 10:00:00 EST", Some(la), now()),
            Some(ns("2026-11-30T10:00:00Z")),
            "another name: UTC, as Go fabricates a zone with offset 0"
        );
        assert_eq!(parse("RFC1123", "Mon, 30 Nov 2026 10:00:00 pst"), None);
    }

    #[test]
    fn location_applies_when_the_text_has_no_zone() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let f = TimeFormat::new("2006-01-02 15:04:05").unwrap();
        assert_eq!(
            f.parse("2026-11-24 11:00:00", Some(tz), now()),
            Some(ns("2026-11-24T10:00:00Z"))
        );
    }

    #[test]
    fn rejects_layouts_without_fields() {
        assert!(TimeFormat::new("nonsense").is_err());
    }
}
