//! JSON as Promtail writes it, where a value it extracted is an object, an array or a number:
//! strings escaped as Go's encoder escapes them (`<`, `>`, `&`, U+2028/9 and control characters as
//! `\u00XX`), numbers as Go formats a float64. Object keys come in the order the parsed value has
//! them (Promtail's order is that of a Go map: random from one run to the next).

use std::fmt::Write as _;

/// `s` as a JSON string the way Go's `json.Marshal` writes it.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON string literal (quotes included) decoded as Go's decoder does: a `\\u` escape of a
/// surrogate that is not half of a pair becomes U+FFFD instead of failing the whole value (the
/// Kubernetes API server and Promtail both write and read such strings). `None` when `literal`
/// is not a string literal at all.
pub fn unquote_lossy(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            if pending_high.take().is_some() {
                out.push('\u{fffd}');
            }
            out.push(c);
            continue;
        }
        let escaped = chars.next()?;
        if escaped != 'u' && pending_high.take().is_some() {
            out.push('\u{fffd}');
        }
        match escaped {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)?;
                match (pending_high.take(), unit) {
                    (Some(high), 0xDC00..=0xDFFF) => {
                        let code = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    (high, 0xD800..=0xDBFF) => {
                        if high.is_some() {
                            out.push('\u{fffd}');
                        }
                        pending_high = Some(unit);
                    }
                    (high, _) => {
                        if high.is_some() {
                            out.push('\u{fffd}');
                        }
                        out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                    }
                }
            }
            _ => return None,
        }
    }
    if pending_high.is_some() {
        out.push('\u{fffd}');
    }
    Some(out)
}

/// A float64 inside JSON: plain digits from 1e-6 up to 1e21, exponent form outside.
pub fn float_in_json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let sci = format!("{f:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

/// A JSON number extracted on its own: Go's `strconv.FormatFloat(f, 'f', -1, 64)` of it, so
/// `1.50` is `1.5`, `1e3` is `1000` and a 20-digit integer loses what a float64 cannot hold.
pub fn number_alone(text: &str) -> String {
    if text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return text.to_string();
    }
    match text.parse::<f64>() {
        Ok(f) => format!("{f}"),
        Err(_) => text.to_string(),
    }
}

/// A parsed value as Go writes it back.
pub fn write_value(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) => out.push_str(&float_in_json(f)),
            None => out.push_str(&n.to_string()),
        },
        serde_json::Value::String(s) => write_string(s, out),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_promtail_writes_them() {
        // Recorded from Promtail 3.6.15's json stage (tests/data/differential/).
        assert_eq!(number_alone("4.0"), "4");
        assert_eq!(number_alone("-0.0"), "-0");
        assert_eq!(number_alone("12345678901234567890"), "12345678901234567000");
        assert_eq!(number_alone("1e21"), "1000000000000000000000");
        assert_eq!(number_alone("403"), "403");
        let v: serde_json::Value =
            serde_json::from_str(r#"[1, {"x": "<&>"}, 2.50, 1e21]"#).unwrap();
        let mut out = String::new();
        write_value(&v, &mut out);
        assert_eq!(out, r#"[1,{"x":"\u003c\u0026\u003e"},2.5,1e+21]"#);
    }

    #[test]
    fn lone_surrogates_become_replacement_characters_as_in_go() {
        // Promtail 3.6.15's json stage gave a="x\u{fffd}y" for {"a":"x\ud800y"} (recorded here).
        assert_eq!(
            unquote_lossy(r#""x\ud800y""#).as_deref(),
            Some("x\u{fffd}y")
        );
        assert_eq!(
            unquote_lossy(r#""\udc00\ud800""#).as_deref(),
            Some("\u{fffd}\u{fffd}")
        );
        assert_eq!(
            unquote_lossy(r#""\ud83d\ude00 \u00e9\n""#).as_deref(),
            Some("😀 é\n")
        );
        assert_eq!(
            unquote_lossy(r#""\ud800\n""#).as_deref(),
            Some("\u{fffd}\n")
        );
        assert_eq!(
            unquote_lossy(r#""\ud800\u0041""#).as_deref(),
            Some("\u{fffd}A")
        );
        assert_eq!(unquote_lossy(r#""\uzz""#), None);
        assert_eq!(unquote_lossy("12"), None);
    }
}
