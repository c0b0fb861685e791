//! `fmt.Sprint` and `fmt.Sprintf` as Go writes them, for `print`, `printf` and friends: flags
//! (`-+ 0`), width, precision, the verbs `v s d q x X f F e g t c`, and Go's error notes
//! (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA …)`) where a value does not fit its verb.

use super::value::{go_float, Value};
use std::fmt::Write as _;

/// `fmt.Sprint`: a space between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(v) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&v.text());
    }
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        spec.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match next.next() {
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
            Some(arg) => out.push_str(&format_one(verb, &spec, arg)),
        }
    }
    let extra: Vec<String> = next
        .map(|a| format!("{}={}", a.type_name(), a.text()))
        .collect();
    if !extra.is_empty() {
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

fn number(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        chars.next();
    }
    n
}

/// One operand under its verb, padded to the width.
fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    let bad = || format!("%!{verb}({}={})", arg.type_name(), arg.text());
    let body = match (verb, arg) {
        ('v', Value::Float(f)) => float(*f, 'v', spec),
        ('v', Value::Int(i)) | ('d', Value::Int(i)) => signed(i.to_string(), *i < 0, spec),
        ('v', other) => precise(other.text(), spec),
        ('s', Value::Str(_) | Value::List(_)) => precise(arg.text(), spec),
        ('q', Value::Str(s)) => quote(s, '"'),
        ('q', Value::Int(i)) => char::from_u32(*i as u32).map_or_else(bad, quote_rune),
        ('c', Value::Int(i)) => char::from_u32(*i as u32).map_or_else(bad, String::from),
        ('x' | 'X', Value::Str(s)) => hex_case(&hex(s.as_bytes()), verb),
        ('x' | 'X', Value::Int(i)) => {
            let digits = format!("{:x}", i.unsigned_abs());
            signed(
                hex_case(&format!("{}{digits}", if *i < 0 { "-" } else { "" }), verb),
                *i < 0,
                spec,
            )
        }
        ('f' | 'F' | 'e' | 'g', Value::Float(f)) => float(*f, verb, spec),
        ('t', Value::Bool(b)) => b.to_string(),
        _ => return bad(),
    };
    pad(body, spec, matches!(arg, Value::Int(_) | Value::Float(_)))
}

fn precise(text: String, spec: &Spec) -> String {
    match spec.precision {
        Some(p) => text.chars().take(p).collect(),
        None => text,
    }
}

fn signed(digits: String, negative: bool, spec: &Spec) -> String {
    if negative {
        digits
    } else if spec.plus {
        format!("+{digits}")
    } else if spec.space {
        format!(" {digits}")
    } else {
        digits
    }
}

fn float(f: f64, verb: char, spec: &Spec) -> String {
    let text = match (verb, spec.precision) {
        ('v', _) | ('g', None) => go_float(f),
        ('g', Some(p)) => format!("{:.*}", p.saturating_sub(1), f),
        ('e', p) => {
            let sci = format!("{:.*e}", p.unwrap_or(6), f);
            let (m, e) = sci.split_once('e').unwrap_or((&sci, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        (_, p) => format!("{:.*}", p.unwrap_or(6), f),
    };
    signed(text, f.is_sign_negative(), spec)
}

fn pad(body: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else {
        return body;
    };
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.minus {
        return body + &" ".repeat(fill);
    }
    if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, digits) = match body.strip_prefix(['-', '+', ' ']) {
            Some(rest) => body.split_at(body.len() - rest.len()),
            None => ("", body.as_str()),
        };
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    " ".repeat(fill) + &body
}

fn hex_case(s: &str, verb: char) -> String {
    if verb == 'X' {
        s.to_uppercase()
    } else {
        s.to_string()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `strconv.Quote` (with `"`) or the inside of `strconv.QuoteRune` (with `'`).
pub fn quote(s: &str, delimiter: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(delimiter);
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(delimiter);
    out
}

fn quote_rune(c: char) -> String {
    quote(&c.to_string(), '\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_writes_what_go_writes() {
        // As Promtail 3.6.15's template stage printed them (with 3.14159, 003.1 and ' 3.14').
        let args = [
            Value::Str("42".into()),
            Value::Int(3),
            Value::Float(2.5),
            Value::Str("ab".into()),
            Value::Int(7),
            Value::Float(1.23456),
            Value::Int(3),
        ];
        assert_eq!(
            sprintf("%d|%s|%v|%5s|%-4d|%05.1f|%q", &args),
            r"%!d(string=42)|%!s(int=3)|2.5|   ab|7   |001.2|'\x03'"
        );
        assert_eq!(sprintf("%5.2f", &[Value::Float(1.23456)]), " 1.23");
        assert_eq!(sprintf("%x", &[Value::Str("x y".into())]), "782079");
        assert_eq!(
            sprintf("%v|%s", &[Value::Nil, Value::Str(String::new())]),
            "<nil>|"
        );
        assert_eq!(
            sprintf("%s %s", &[Value::Int(1)]),
            "%!s(int=1) %!s(MISSING)"
        );
        assert_eq!(
            sprintf("%d", &[Value::Int(1), Value::Str("x".into())]),
            "1%!(EXTRA string=x)"
        );
    }
}
